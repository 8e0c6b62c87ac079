"""ONNX export of sdt-dense segmentors and detector trunks (integer mode), checked with onnxruntime.

What is exported (the data preprocessor is not: the graph input is the normalised, padded image
batch ``inputs`` of shape ``(B, 3, H, W)``):

* ``'model'`` -- an mmseg segmentor (``EncoderDecoder``) up to its logits, ``model(inputs,
  mode='tensor')``: output ``logits`` ``(B, num_classes, H / s0, W / s0)`` at the decode head's finest
  stride ``s0``. mmseg's ``predict`` resizes these to the image and takes the argmax;
  :func:`seg_map` does the same on either output.
* ``'backbone-neck'`` -- a detector's (or segmentor's) backbone and neck: outputs ``feat0..featN``,
  the neck's pyramid (``(B, C, H / s_i, W / s_i)``).
* ``'backbone'`` -- the backbone alone: outputs ``feat0..featN``.

The SFA neuron runs in integer mode, ``round(clamp(x, 0, D)) / norm``: its straight-through
``autograd.Function`` is inlined by the TorchScript exporter into ``Clip`` -> ``Round`` (ONNX
``Round`` rounds half to even, as ``torch.round``: the Base rule) or ``Clip`` -> ``Add 0.5`` ->
``Floor`` (the Large family's ``half_up`` rule) -> ``Div``. :func:`check_graph` rejects any node
outside the standard ONNX domain (a ``PythonOp`` would be an autograd Function left opaque). The
attention's spike products are plain ``MatMul`` nodes. ``tools/deployment/export_onnx.py`` folds
BatchNorm first (:func:`~sdt_dense.deploy.bn_fold.fold_bn`, float64) and checks onnxruntime against
that folded module: folding moves pre-activations by float rounding, which can flip a spike count
at a rounding tie (``docs/deploy_onnx.md``).

Exporter: the TorchScript one (``torch.onnx.export(..., dynamo=False)``), opset :data:`OPSET`.
The dynamo exporter (torch.export + onnxscript) was slower by an order of magnitude on these
models and its optimised graph did not load in onnxruntime (a ``Clip`` bound without producer);
see ``docs/deploy_onnx.md``.

Not exportable: spike-driven mode (binary slices travel as a tensor subclass and rely on module
hooks: export the integer model, whose outputs are equal), and a detector's post-processing
(NMS, RoIAlign and per-image Python loops over data samples in mmdet's heads).
"""

from __future__ import annotations

import collections
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.neurons import SFANeuron

__all__ = [
    'OPSET',
    'PARTS',
    'OnnxExportError',
    'SegmentorLogits',
    'BackboneNeck',
    'export_module',
    'export_onnx',
    'check_graph',
    'graph_op_counts',
    'run_onnxruntime',
    'max_abs_diff',
    'seg_map',
]

#: ONNX opset of the exported graphs (Clip with tensor bounds: >= 11; Resize as mmseg uses it: 13+).
OPSET = 17
#: What can be exported: the whole segmentor to logits, or the trunk of any model.
PARTS = ('model', 'backbone-neck', 'backbone')
# Node domains of plain ONNX (the empty string is the default domain).
_STANDARD_DOMAINS = ('', 'ai.onnx')


class OnnxExportError(RuntimeError):
    """A model or graph that cannot be exported as plain ONNX, or outputs that disagree."""


class SegmentorLogits(nn.Module):
    """An mmseg segmentor as a plain module: ``(B, 3, H, W)`` -> logits ``(B, K, H / s0, W / s0)``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: Tensor) -> Tensor:
        return self.segmentor(inputs, mode='tensor')


class BackboneNeck(nn.Module):
    """Backbone (and neck, if given) as a plain module: ``(B, 3, H, W)`` -> tuple of feature maps."""

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def export_module(model: nn.Module, part: str) -> nn.Module:
    """The plain module to export for ``part`` (one of :data:`PARTS`) of an mmdet/mmseg model.

    Raises:
        OnnxExportError: the part does not exist or cannot be exported (a detector's full model).
    """
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    if part == 'model':
        if not hasattr(model, 'decode_head'):
            raise OnnxExportError(
                f'--part model exports mmseg segmentors only; {type(model).__name__} is a detector '
                f'whose post-processing (NMS, RoIAlign, per-image loops over data samples) is not '
                f'plain ONNX: export --part backbone-neck and run the heads in PyTorch or mmdeploy'
            )
        return SegmentorLogits(model)
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        raise OnnxExportError(f'{type(model).__name__} has no backbone to export')
    neck = getattr(model, 'neck', None) if part == 'backbone-neck' else None
    if part == 'backbone-neck' and not isinstance(neck, nn.Module):
        raise OnnxExportError(f'{type(model).__name__} has no neck; export --part backbone')
    return BackboneNeck(model.backbone, neck)


def _check_model(module: nn.Module) -> None:
    neurons = [m for m in module.modules() if isinstance(m, SFANeuron)]
    if any(n.spike_driven for n in neurons):
        raise OnnxExportError(
            'the model is in spike-driven mode (binary slices are a tensor '
            'subclass driven by module hooks); export the integer-mode model, '
            'whose outputs are equal'
        )
    if not neurons:
        raise OnnxExportError(f'{type(module).__name__} has no SFA neuron: not an sdt-dense model')


def export_onnx(
    module: nn.Module,
    inputs: Tensor,
    path: str,
    output_names: Sequence[str],
    opset: int = OPSET,
    dynamic: bool = False,
) -> None:
    """Export ``module`` (put in eval mode) on ``inputs`` ``(B, 3, H, W)`` to the file ``path``.

    Args:
        output_names: one name per output tensor (``['logits']`` or ``['feat0', ...]``).
        dynamic: mark batch, height and width of ``inputs`` (and every output's batch and
            spatial axes) as dynamic; otherwise the graph is fixed to ``inputs.shape``.

    Raises:
        OnnxExportError: spike-driven model, no SFA neuron, or a graph with non-standard nodes.
    """
    _check_model(module)
    module.eval()
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'inputs': {0: 'batch', 2: 'height', 3: 'width'}}
        dynamic_axes.update(
            {name: {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'} for name in output_names}
        )
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = f'{path}.tmp'
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is chosen deliberately (module doc): its deprecation notice
        # is not news to the user. It inlines the SFA autograd Function into Clip/Round.
        warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'torch\.onnx')
        warnings.filterwarnings('ignore', message='.*legacy TorchScript-based ONNX export')
        torch.onnx.export(
            module,
            (inputs,),
            tmp,
            dynamo=False,
            opset_version=opset,
            input_names=['inputs'],
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    try:
        check_graph(tmp)
    except Exception:
        os.remove(tmp)
        raise
    os.replace(tmp, path)  # a half-written or rejected graph never takes the name


def graph_op_counts(path: str) -> Dict[str, int]:
    """``{op_type: count}`` of the nodes of an ONNX file (``domain::op`` outside plain ONNX)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    counts = collections.Counter(
        n.op_type if n.domain in _STANDARD_DOMAINS else f'{n.domain}::{n.op_type}' for n in graph.node
    )
    return dict(sorted(counts.items()))


def check_graph(path: str) -> Dict[str, int]:
    """Validate an exported file with ``onnx.checker`` and reject non-standard nodes.

    Returns:
        the op counts (:func:`graph_op_counts`).

    Raises:
        OnnxExportError: a node outside the standard ONNX domain (e.g. an opaque ``PythonOp``).
    """
    import onnx

    onnx.checker.check_model(path)
    counts = graph_op_counts(path)
    foreign = {op: n for op, n in counts.items() if '::' in op or op == 'PythonOp'}
    if foreign:
        raise OnnxExportError(f'{path}: the graph has nodes outside plain ONNX: {foreign}')
    return counts


def run_onnxruntime(path: str, inputs: Tensor) -> List[np.ndarray]:
    """Run an exported file on ``inputs`` with onnxruntime's CPU provider; outputs in graph order."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    threads = int(os.environ.get('OMP_NUM_THREADS', '0') or 0)
    opts.intra_op_num_threads = max(threads, 0)  # 0: onnxruntime's default
    session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: inputs.detach().cpu().numpy()})


def max_abs_diff(reference: Sequence[Tensor], outputs: Sequence[np.ndarray]) -> List[float]:
    """Max absolute difference per output (shapes must agree)."""
    if len(reference) != len(outputs):
        raise OnnxExportError(f'{len(outputs)} onnxruntime outputs for {len(reference)} PyTorch ones')
    diffs = []
    for i, (ref, out) in enumerate(zip(reference, outputs)):
        ref = ref.detach().cpu().numpy()
        if ref.shape != out.shape:
            raise OnnxExportError(f'output {i}: onnxruntime shape {out.shape}, PyTorch {ref.shape}')
        diffs.append(float(np.abs(ref.astype(np.float64) - out).max()) if ref.size else 0.0)
    return diffs


def seg_map(logits, size: Tuple[int, int], align_corners: bool = False) -> Tensor:
    """Predicted segmentation map ``(B, H, W)`` from logits ``(B, K, h, w)`` (tensor or array),
    as mmseg's ``predict``: bilinear resize to ``size`` then argmax over classes."""
    logits = torch.as_tensor(logits)
    up = F.interpolate(logits, size=tuple(size), mode='bilinear', align_corners=align_corners)
    return up.argmax(1)

"""Export an sdt-dense segmentor, or a detector's backbone and neck, to ONNX and check it with
onnxruntime (``tools/deployment/export_onnx.py``).

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out FILE.onnx \\
        [--part model|backbone-neck|backbone] [--shape H W] [--dynamic] [--img IMAGE]

Default part: ``model`` for a segmentor (logits ``(B, K, H / 4, W / 4)``), ``backbone-neck`` for a
detector (mmdet's post-processing is not plain ONNX). The graph's input ``inputs`` is the
normalised image batch ``(B, 3, H, W)`` (the data preprocessor's output; mean/std and channel
order are not in the graph). The SFA neurons export in integer mode as Clip/Round; the exporter is
PyTorch's TorchScript one at opset 17 (see ``docs/deploy_onnx.md``).

BatchNorm is folded into the convs first (``sdt_dense.deploy.fold_bn``, float64); the graph is that
folded module. The tool prints how far the folded module is from the trained one (spike counts
flipped at rounding ties; information, not a failure). After export the same input runs through
the folded PyTorch module and onnxruntime: the tool prints the max absolute
difference of every output and, for a segmentor, the share of pixels whose predicted class agrees
(logits resized to the input and argmax, as mmseg's ``predict``), and fails if an output differs
by more than ``--atol`` or a pixel's class differs. The input is ``--img`` (resized to the shape
and normalised with the config's data preprocessor) or seeded standard-normal noise.
"""

from __future__ import annotations

import argparse
import math
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from torch import Tensor, nn

from ..registry import init_scope


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export an sdt-dense model to ONNX (integer mode) and check it with onnxruntime',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument('config', help='mmdet or mmseg config file')
    parser.add_argument('checkpoint', help='model checkpoint (loaded strictly)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument(
        '--part',
        choices=('model', 'backbone-neck', 'backbone'),
        help='what to export (default: model for a segmentor, backbone-neck for a detector)',
    )
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help="input height and width (default: the config's data preprocessor "
        'size, else its test Resize scale padded to the size divisor)',
    )
    parser.add_argument('--batch-size', type=int, default=1, help='batch size of the export input')
    parser.add_argument(
        '--dynamic', action='store_true', help='dynamic batch, height and width (default: fixed to --shape)'
    )
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset (default: 17)')
    parser.add_argument('--img', help='image to check with (default: seeded random noise)')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-4,
        help='max absolute difference allowed between PyTorch and onnxruntime',
    )
    parser.add_argument('--no-verify', action='store_true', help='skip the onnxruntime check')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random check input')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (as tools/train.py)',
    )
    args = parser.parse_args(argv)
    if args.shape is not None and min(args.shape) < 1:
        parser.error(f'--shape needs positive H W, got {args.shape}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.atol < 0:
        parser.error(f'--atol must be >= 0, got {args.atol}')
    return args


def default_shape(cfg: Config) -> Tuple[int, int]:
    """``(H, W)``: the data preprocessor's fixed ``size`` (mmseg), else the first test-pipeline
    ``Resize`` scale ``(w, h)`` padded up to the preprocessor's size divisor (mmdet)."""
    pre = cfg.model.get('data_preprocessor') or {}
    if pre.get('size'):
        return tuple(int(s) for s in pre['size'])
    divisor = int(pre.get('pad_size_divisor') or pre.get('size_divisor') or 1)
    for step in cfg.get('test_pipeline', None) or []:
        if step.get('type') == 'Resize' and step.get('scale') is not None:
            w, h = step['scale']  # mmcv convention: (w, h); keep_ratio gives at most this
            return tuple(int(math.ceil(s / divisor) * divisor) for s in (h, w))
    raise ValueError(f'{cfg.filename}: no data_preprocessor.size and no test Resize scale; give --shape H W')


def load_image(path: str, model: nn.Module, shape: Tuple[int, int], batch: int) -> Tensor:
    """``(batch, 3, H, W)``: the image resized to ``shape`` and normalised as the model's data
    preprocessor does (channel order, mean, std)."""
    import mmcv

    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    img = mmcv.imread(path)  # BGR, as the pipelines load
    if img is None:
        raise ValueError(f'cannot read image {path}')
    img = mmcv.imresize(img, (shape[1], shape[0]))
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    pre = model.data_preprocessor
    if getattr(pre, '_channel_conversion', False):
        x = x[[2, 1, 0]]
    if getattr(pre, '_enable_normalize', False):
        x = (x - pre.mean.cpu()) / pre.std.cpu()
    return x.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = init_scope(cfg)  # also imports sdt_dense (registration, safe checkpoint loading)
    from sdt_dense.deploy import onnx as ox

    from .measure_energy import build_model, load_weights

    model = build_model(cfg, scope, backbone_only=False)
    load_weights(model, args.checkpoint, backbone_only=False)  # strict
    model.eval()
    part = args.part or ('model' if scope == 'mmseg' else 'backbone-neck')
    module = ox.export_module(model, part).eval()

    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    if args.img:
        inputs = load_image(args.img, model, shape, args.batch_size)
    else:
        gen = torch.Generator().manual_seed(args.seed)
        inputs = torch.randn((args.batch_size, 3, *shape), generator=gen)
    # The deployable form: BatchNorm folded into the convs (in float64, sdt_dense.deploy.fold_bn).
    # The graph is this module, so the check compares like with like; the trained (unfolded)
    # model may differ where folding moved a pre-activation across a rounding tie (reported).
    from sdt_dense.deploy import fold_bn

    unfolded, module = module, fold_bn(module, inplace=False).eval()
    with torch.no_grad():
        reference = _as_tuple(module(inputs))
        unfolded_ref = _as_tuple(unfolded(inputs))
    names = ['logits'] if part == 'model' else [f'feat{i}' for i in range(len(reference))]

    opset = args.opset or ox.OPSET
    ox.export_onnx(module, inputs, args.out, names, opset=opset, dynamic=args.dynamic)
    ops = ox.graph_op_counts(args.out)
    neurons = sum(isinstance(m, ox.SFANeuron) for m in module.modules())
    result = dict(
        out=args.out,
        part=part,
        opset=opset,
        input_shape=list(inputs.shape),
        dynamic=args.dynamic,
        sfa_neurons=neurons,
        ops=ops,
        outputs={n: list(r.shape) for n, r in zip(names, reference)},
    )
    print_log(
        f'exported {part} of {osp.basename(args.config)} to {args.out} (opset {opset}, '
        f'input {tuple(inputs.shape)}{", dynamic" if args.dynamic else ""}): '
        f'{len(ops)} op types, {neurons} SFA neurons -> Clip {ops.get("Clip", 0)}, '
        f'Round {ops.get("Round", 0)}, Floor {ops.get("Floor", 0)}',
        logger='current',
    )
    if args.no_verify:
        return result
    align = getattr(getattr(model, 'decode_head', None), 'align_corners', False)
    result['unfolded'] = compare_unfolded(
        reference, unfolded_ref, names, part == 'model', args.atol, tuple(inputs.shape[-2:]), align
    )
    result.update(verify(args.out, inputs, reference, names, part == 'model', args.atol, align))
    if args.dynamic:  # the graph must also hold at another batch size and image size
        gen = torch.Generator().manual_seed(args.seed + 1)
        other = torch.randn((args.batch_size + 1, 3, *other_shape(shape)), generator=gen)
        with torch.no_grad():
            other_ref = _as_tuple(module(other))
        result['dynamic_check'] = dict(
            input_shape=list(other.shape),
            **verify(args.out, other, other_ref, names, part == 'model', args.atol, align),
        )
    return result


def _as_tuple(out) -> Tuple[Tensor, ...]:
    return (out,) if isinstance(out, Tensor) else tuple(out)


def compare_unfolded(
    folded, unfolded, names, is_segmentor: bool, atol: float, size: Tuple[int, int], align_corners: bool
) -> dict:
    """How far the BN-folded module (the exported one) is from the trained, unfolded model: max
    abs difference and elements beyond ``atol`` per output (spike counts flipped at rounding ties
    by float rounding of the folding); for a segmentor the share of agreeing pixels."""
    from sdt_dense.deploy import onnx as ox

    report: dict = dict(max_abs_diff={}, elements_over_atol={})
    for n, a, b in zip(names, folded, unfolded):
        d = (a - b).abs()
        report['max_abs_diff'][n] = float(d.max()) if d.numel() else 0.0
        report['elements_over_atol'][n] = [int((d > atol).sum()), d.numel()]
    msg = ', '.join(
        f'{n} {report["max_abs_diff"][n]:.3g} ({k} of {t} over {atol:g})'
        for n, (k, t) in report['elements_over_atol'].items()
    )
    if is_segmentor:
        agree = float(
            (ox.seg_map(folded[0], size, align_corners) == ox.seg_map(unfolded[0], size, align_corners))
            .float()
            .mean()
        )
        report['seg_map_agreement'] = agree
        msg += f'; segmentation map: {agree:.2%} of pixels agree'
    print_log(f'BN-folded (exported) vs trained PyTorch model, max abs difference: {msg}', logger='current')
    return report


def other_shape(shape: Tuple[int, int], multiple: int = 32) -> Tuple[int, int]:
    """A second input size for checking a dynamic graph: about 3/4 of the height and 5/4 of the
    width, in multiples of ``multiple`` (the coarsest stride of the models)."""
    h, w = shape
    return (
        max(multiple, round(h * 0.75 / multiple) * multiple),
        max(multiple, round(w * 1.25 / multiple) * multiple),
    )


def verify(
    path: str, inputs: Tensor, reference, names, is_segmentor: bool, atol: float, align_corners: bool
) -> dict:
    """Run ``path`` in onnxruntime on ``inputs``; compare with the PyTorch ``reference``."""
    from sdt_dense.deploy import onnx as ox

    outputs = ox.run_onnxruntime(path, inputs)
    diffs = ox.max_abs_diff(reference, outputs)
    report = dict(max_abs_diff=dict(zip(names, diffs)))
    msg = ', '.join(f'{n} {d:.3g}' for n, d in zip(names, diffs))
    agree: Optional[float] = None
    if is_segmentor:
        size = tuple(inputs.shape[-2:])
        a = ox.seg_map(reference[0], size, align_corners)
        b = ox.seg_map(outputs[0], size, align_corners)
        agree = float((a == b).float().mean())
        report['seg_map_agreement'] = agree
        msg += f'; predicted segmentation map: {agree:.2%} of {a.numel()} pixels agree'
    print_log(
        f'onnxruntime vs PyTorch (BN folded) on {tuple(inputs.shape)}, max abs difference: {msg}',
        logger='current',
    )
    if max(diffs) > atol or (agree is not None and agree < 1):
        raise ox.OnnxExportError(
            f'{path}: onnxruntime disagrees with PyTorch ({msg}; allowed: {atol:g} and every pixel)'
        )
    return report

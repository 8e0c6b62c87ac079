"""ONNX export (integer mode): SFA as Clip/Round, onnxruntime against PyTorch and mmseg's predict."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

from sdt_dense.deploy import spike_driven
from sdt_dense.deploy.onnx import (
    OPSET,
    OnnxExportError,
    check_graph,
    export_module,
    export_onnx,
    graph_op_counts,
    run_onnxruntime,
    seg_map,
)
from sdt_dense.models.neurons import SFANeuron
from sdt_testing import REPO, randomise_bn, run_tool

SEG_CFG = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'
DET_CFG = REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'
LARGE_DET_CFG = REPO / 'configs/toy/mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py'
# a real photograph that ships with matplotlib (512 x 600)
PHOTO = Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg'

# pre-activations around every rounding tie and both clamp ends
TIES = torch.tensor([-1.0, 0.0, 0.5, 1.5, 2.5, 3.5, 4.4, 4.5, 7.0]).view(1, 1, 3, 3)
# round(clamp(x, 0, 4)) by hand: half to even (0.5 -> 0, 2.5 -> 2) / half up (0.5 -> 1, 2.5 -> 3)
EXPECTED_COUNTS = dict(half_even=[0, 0, 0, 2, 2, 4, 4, 4, 4], half_up=[0, 0, 1, 2, 3, 4, 4, 4, 4])


@pytest.mark.parametrize('rounding', ['half_even', 'half_up'])
def test_sfa_exports_as_clip_and_round(tmp_path, rounding):
    neuron = nn.Sequential(SFANeuron(D=4, rounding=rounding)).eval()
    path = str(tmp_path / 'sfa.onnx')
    export_onnx(neuron, TIES, path, ['out'])
    ops = graph_op_counts(path)
    assert ops['Clip'] == 1
    if rounding == 'half_even':  # ONNX Round is half to even, as torch.round
        assert ops.get('Round') == 1 and 'Floor' not in ops
    else:  # floor(x + 0.5)
        assert ops.get('Floor') == 1 and 'Round' not in ops
    assert not [op for op in ops if '::' in op or op == 'PythonOp']
    assert onnx.load(path).opset_import[0].version == OPSET
    (out,) = run_onnxruntime(path, TIES)
    np.testing.assert_array_equal(out.ravel(), np.array(EXPECTED_COUNTS[rounding]) / 4)


def _save_graph(path, domain: str, op_type: str) -> str:
    node = helper.make_node(op_type, ['x'], ['y'], domain=domain)
    graph = helper.make_graph(
        [node],
        'g',
        [helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])],
    )
    opsets = [helper.make_opsetid('', OPSET)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return str(path)


def test_check_graph_rejects_nodes_outside_plain_onnx(tmp_path):
    assert check_graph(_save_graph(tmp_path / 'ok.onnx', '', 'Relu')) == {'Relu': 1}
    with pytest.raises(OnnxExportError, match=r'com.example::SFAQuantise'):
        check_graph(_save_graph(tmp_path / 'bad.onnx', 'com.example', 'SFAQuantise'))


def test_export_refuses_spike_driven_and_non_spiking_models(tmp_path):
    model = nn.Sequential(SFANeuron(), nn.Conv2d(1, 2, 1)).eval()
    path = tmp_path / 'm.onnx'
    with spike_driven(model), pytest.raises(OnnxExportError, match='spike-driven'):
        export_onnx(model, TIES, str(path), ['out'])
    with pytest.raises(OnnxExportError, match='no SFA neuron'):
        export_onnx(nn.Conv2d(1, 2, 1), TIES, str(path), ['out'])
    assert not path.exists() and not list(tmp_path.iterdir())


def test_export_module_parts():
    class Detector(nn.Module):  # an mmdet-like model: backbone and neck, no decode_head
        def __init__(self):
            super().__init__()
            self.backbone, self.neck = nn.Identity(), nn.Identity()

    with pytest.raises(OnnxExportError, match='post-processing'):
        export_module(Detector(), 'model')
    trunk = export_module(Detector(), 'backbone-neck')
    assert trunk.neck is not None and export_module(Detector(), 'backbone').neck is None
    with pytest.raises(ValueError, match='part must be one of'):
        export_module(Detector(), 'heads')


@pytest.mark.slow  # reading the configs imports mmdet and mmseg
def test_default_shape_from_configs():
    from mmengine.config import Config

    from sdt_dense.cli.export_onnx import default_shape, other_shape

    assert default_shape(Config.fromfile(SEG_CFG)) == (128, 128)  # data_preprocessor.size
    # Resize scale (w, h) = (1333, 800), padded to multiples of 32
    assert default_shape(Config.fromfile(REPO / 'configs/mask_rcnn_sdt.py')) == (800, 1344)
    assert other_shape((128, 128)) == (96, 160)


def _checkpoint(cfg_path, out) -> torch.nn.Module:
    """The config's model with randomised BN (every spike count occurs), saved to ``out``."""
    from mmengine.config import Config

    from sdt_dense.cli.measure_energy import build_model
    from sdt_dense.registry import init_scope

    cfg = Config.fromfile(cfg_path)
    # the weights come from the global generator: seed it so that the model (and whether its
    # segmentation map is non-trivial) does not depend on the tests that ran before
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = randomise_bn(build_model(cfg, init_scope(cfg), backbone_only=False)).eval()
    torch.save({'state_dict': model.state_dict()}, out)
    return model


def _diffs(output: str):
    """Max abs differences printed by the tool, one list per checked input."""
    lines = [ln for ln in output.splitlines() if 'onnxruntime vs PyTorch' in ln]
    return [[float(v) for v in re.findall(r'(?:logits|feat\d) ([0-9.e+-]+)', ln)] for ln in lines]


@pytest.mark.slow
def test_export_segmentor_matches_pytorch_and_mmseg_predict(tmp_path):
    from mmseg.structures import SegDataSample

    model = _checkpoint(SEG_CFG, tmp_path / 'seg.pth')
    out = tmp_path / 'seg.onnx'
    proc = run_tool(
        ['deployment/export_onnx.py', SEG_CFG, tmp_path / 'seg.pth', '--out', out, '--img', PHOTO], check=True
    )
    log = proc.stdout + proc.stderr
    neurons = sum(isinstance(m, SFANeuron) for m in model.modules())
    assert f'{neurons} SFA neurons -> Clip {neurons}, Round {neurons}, Floor 0' in log
    assert _diffs(log) and max(_diffs(log)[0]) <= 1e-4
    assert '100.00% of 16384 pixels agree' in log
    ops = check_graph(str(out))
    assert ops['Clip'] == ops['Round'] == neurons and 'PythonOp' not in ops

    # independent check: another input, against the PyTorch logits and mmseg's own predict
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    (logits,) = run_onnxruntime(str(out), x)
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), pad_shape=(128, 128))
    with torch.no_grad():
        ref_logits = model(x, mode='tensor')
        pred = model.predict(x, [SegDataSample(metainfo=meta)])[0].pred_sem_seg.data
    assert float(np.abs(logits - ref_logits.numpy()).max()) <= 1e-4
    counts = torch.bincount(pred.flatten(), minlength=4)
    assert (counts > 0).sum() >= 2  # a non-trivial map
    assert torch.equal(seg_map(logits, (128, 128)), pred)


@pytest.mark.slow
@pytest.mark.parametrize('cfg', [DET_CFG, LARGE_DET_CFG], ids=['base', 'large'])
def test_export_detector_backbone_neck_dynamic(tmp_path, cfg):
    model = _checkpoint(cfg, tmp_path / 'det.pth')
    out = tmp_path / 'det.onnx'
    proc = run_tool(
        ['deployment/export_onnx.py', cfg, tmp_path / 'det.pth', '--out', out, '--dynamic'], check=True
    )
    log = proc.stdout + proc.stderr
    diffs = _diffs(log)
    assert len(diffs) == 2 and len(diffs[0]) == 5 and max(max(d) for d in diffs) <= 1e-4
    trunk = [
        m
        for name, m in model.named_modules()
        if isinstance(m, SFANeuron) and name.startswith(('backbone.', 'neck.'))
    ]
    half_up = sum(n.rounding == 'half_up' for n in trunk)
    ops = check_graph(str(out))
    assert ops['Clip'] == len(trunk)
    assert ops.get('Floor', 0) == half_up and ops.get('Round', 0) == len(trunk) - half_up
    assert half_up > 0 if cfg == LARGE_DET_CFG else half_up == 0

    # a third size and batch, against the PyTorch trunk
    x = torch.randn(2, 3, 64, 192, generator=torch.Generator().manual_seed(7))
    feats = run_onnxruntime(str(out), x)
    with torch.no_grad():
        ref = model.neck(model.backbone(x))
    assert [f.shape for f in feats] == [tuple(r.shape) for r in ref]
    assert max(float(np.abs(f - r.numpy()).max()) for f, r in zip(feats, ref)) <= 1e-4
    assert any(float(r.abs().max()) > 0 for r in ref)

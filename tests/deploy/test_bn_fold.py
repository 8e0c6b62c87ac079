"""BatchNorm folding into the preceding conv / linear layer (deployment form)."""

import importlib

import pytest
import torch
from torch import nn

from sdt_dense.deploy import BNFoldError, fold_bn, spike_driven
from sdt_dense.models import ESpikeFormer
from sdt_dense.models.layers import SpikeConvBN
from sdt_testing import REPO, assert_outputs_equal, randomise_bn


def test_fold_hand_computed():
    unit = SpikeConvBN(1, 2, 1, bias=True, with_neuron=False).eval()
    with torch.no_grad():
        unit.conv.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        unit.conv.bias.copy_(torch.tensor([1.0, 0.5]))
        unit.bn.running_mean.copy_(torch.tensor([3.0, -1.0]))
        unit.bn.running_var.copy_(torch.tensor([4.0, 0.25]) - unit.bn.eps)  # std 2 and 0.5
        unit.bn.weight.copy_(torch.tensor([1.0, 3.0]))
        unit.bn.bias.copy_(torch.tensor([0.0, 2.0]))
    fold_bn(unit)
    assert isinstance(unit.bn, nn.Identity)
    # channel 0: scale 1/2 -> w 1, b (1 - 3) / 2 + 0 = -1
    # channel 1: scale 3 / 0.5 = 6 -> w -6, b (0.5 + 1) * 6 + 2 = 11
    torch.testing.assert_close(unit.conv.weight.flatten(), torch.tensor([1.0, -6.0]))
    torch.testing.assert_close(unit.conv.bias, torch.tensor([-1.0, 11.0]))


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    model = ESpikeFormer('t', out_indices=(0, 1, 2, 3, 4), layer_scale_init_value=0.5)
    model = randomise_bn(model, seed=3).double().eval()
    return model, fold_bn(model, inplace=False)


def test_backbone_folded_equals_original_integer_and_spike_driven(models):
    model, folded = models
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    x = torch.randn(2, 3, 48, 40, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        assert_outputs_equal(folded(x), ref)
        with spike_driven(folded):
            assert_outputs_equal(folded(x), ref)


def test_folded_state_dict(models):
    model, folded = models
    keys = set(folded.state_dict())
    assert not any('.bn.' in k for k in keys)
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert {f'{n}.bias' for n in convs} <= keys


def test_fold_in_place_returns_same_model():
    unit = SpikeConvBN(2, 3, 3, padding=1).eval()
    assert fold_bn(unit) is unit and isinstance(unit.bn, nn.Identity)
    assert fold_bn(unit) is unit  # nothing left to fold


def test_sequential_conv_and_linear_pairs():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(3, 4, 3),
        nn.BatchNorm1d(4),
        nn.Flatten(),
        nn.Linear(8, 5),
        nn.BatchNorm1d(5),
        nn.BatchNorm1d(5),
    ).eval()
    randomise_bn(model)
    x = torch.randn(6, 3, 4)
    ref = model(x)
    fold_bn(model)
    assert isinstance(model[1], nn.Identity) and isinstance(model[4], nn.Identity)
    assert isinstance(model[5], nn.BatchNorm1d)  # follows a BN, not a layer: kept
    torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)


def test_training_mode_is_an_error():
    unit = SpikeConvBN(2, 3).train()
    with pytest.raises(BNFoldError, match=r'bn is in training mode.*model.eval\(\)'):
        fold_bn(unit)
    assert isinstance(unit.bn, nn.BatchNorm2d)  # nothing half-folded


def test_bn_without_running_stats_is_an_error():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, track_running_stats=False))
    with pytest.raises(BNFoldError, match='no running statistics'):
        fold_bn(model.eval())


def test_sync_bn_in_eval():
    torch.manual_seed(0)
    unit = SpikeConvBN(3, 4, 3, padding=1, norm_cfg=dict(type='SyncBN')).eval()
    assert isinstance(unit.bn, nn.SyncBatchNorm)
    randomise_bn(unit)
    # a plain BN with the same statistics is the reference (SyncBN's eval forward needs no
    # process group, but keep the test independent of that)
    ref_bn = nn.BatchNorm2d(4).eval()
    ref_bn.load_state_dict(unit.bn.state_dict())
    x = torch.randn(2, 3, 5, 5)
    ref = ref_bn(unit.conv(unit.neuron(x)))
    fold_bn(unit)
    torch.testing.assert_close(unit(x), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    'order,folded',
    [(('conv', 'norm', 'act'), True), (('act', 'conv', 'norm'), True), (('norm', 'conv', 'act'), False)],
)
def test_mmcv_conv_module(order, folded):
    cnn = importlib.import_module('mmcv.cnn')
    torch.manual_seed(0)
    in_ch = 3 if order[0] != 'norm' else 4
    module = cnn.ConvModule(
        in_ch, 4, 3, padding=1, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), order=order
    ).eval()
    randomise_bn(module)
    x = torch.randn(2, in_ch, 6, 6)
    ref = module(x)
    fold_bn(module)
    assert isinstance(module.norm, nn.Identity) == folded
    torch.testing.assert_close(module(x), ref, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_semantic_fpn_folded_equals_original_in_both_modes():
    """A whole segmentor (BN in the backbone, in mmcv ConvModules of the neck and head), float64."""
    importlib.import_module('mmcv.ops')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import sdt_dense  # noqa: F401  (registers the models)

    cfg = Config.fromfile(str(REPO / 'configs' / 'toy' / 'fpn_e-spikeformer-t_toy.py'))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = randomise_bn(MODELS.build(cfg.model)).double().eval()
    folded = fold_bn(model, inplace=False)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert isinstance(folded.neck.fpn_convs[0].layer.norm, nn.Identity)  # a ConvModule's BN
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
        torch.testing.assert_close(folded(x, mode='tensor'), ref, atol=1e-4, rtol=0)
        with spike_driven(folded):
            torch.testing.assert_close(folded(x, mode='tensor'), ref, atol=1e-4, rtol=0)

"""The backbone contract (:class:`~sdt_dense.models.backbones.SpikeBackbone`), checked for every
backbone family of the package: each concrete subclass is found by itself, so a new family is
tested here as soon as it is defined (with its ``example_arch``).

Checks: declared channels and strides equal the real ones, backward reaches every trainable
parameter, ``with_cp`` changes nothing, ``frozen_stages`` / ``norm_eval`` freeze what they say,
the root and both toolbox registries build the family, and spike-driven inference equals
integer mode (float64). The classifiers of every family share timm's feature API (last test)."""

from __future__ import annotations

import importlib
import math
from typing import List, Type

import pytest
import torch
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.deploy import spike_driven
from sdt_dense.models.backbones import ESpikeFormerClassifier, ESpikeFormerLargeClassifier, SpikeBackbone
from sdt_testing import randomise_bn


def families() -> List[Type[SpikeBackbone]]:
    """Every concrete backbone class of the package."""
    found, todo = [], list(SpikeBackbone.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith('sdt_dense.') and cls.example_arch is not None:
            found.append(cls)
    return found


FAMILIES = families()
ALL_LEVELS = (0, 1, 2, 3, 4)


def build(cls: Type[SpikeBackbone], **kwargs) -> SpikeBackbone:
    torch.manual_seed(0)
    return cls(arch=cls.example_arch, **{'out_indices': ALL_LEVELS[: cls.num_levels], **kwargs})


def test_every_family_is_found():
    names = {cls.__name__ for cls in FAMILIES}
    assert {'ESpikeFormer', 'ESpikeFormerLarge', 'MultiStepESpikeFormer'} <= names


@pytest.fixture(params=FAMILIES, ids=lambda cls: cls.__name__)
def family(request) -> Type[SpikeBackbone]:
    return request.param


def test_declared_channels_and_strides_are_real(family):
    model = build(family).eval()
    H, W = 70, 45  # not divisible by any stride: each stride-2 layer rounds up
    x = model.example_input(2, H, W)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == len(model.out_indices) == len(model.out_channels) == len(model.out_strides)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, math.ceil(H / s), math.ceil(W / s))
    with torch.no_grad():  # a subset at call time: the same maps
        again = model(x, out_indices=model.out_indices[1::2])
    for a, b in zip(again, outs[1::2]):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match='out_indices'):
        family(arch=family.example_arch, out_indices=(family.num_levels,))


def test_backward_reaches_every_parameter(family):
    model = build(family).train()
    outs = model(model.example_input(2, 64, 64) * 3)
    sum(o.square().mean() for o in outs).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, missing
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


@pytest.mark.slow
def test_with_cp_changes_nothing(family):
    plain = build(family).train()
    ckpt = build(family, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = plain.example_input(2, 64, 64) * 3
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    outs = [plain(x1), ckpt(x2)]
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    for out in outs:
        sum(o.square().mean() for o in out).backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-6)
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-5, msg=name)


def _bn_state(model: nn.Module) -> dict:
    """Every BatchNorm's batch counter (it counts the batches whose statistics it took)."""
    return {n: b.clone() for n, b in model.named_buffers() if n.endswith('num_batches_tracked')}


@pytest.mark.parametrize('frozen', [-1, 1, 3])
def test_frozen_stages(family, frozen):
    model = build(family, frozen_stages=frozen).train()
    before = _bn_state(model)
    outs = model(model.example_input(2, 32, 32))
    # levels 0..frozen depend on no trainable parameter; every later level does
    for level, out in zip(model.out_indices, outs):
        assert out.requires_grad == (level > frozen), level
    after = _bn_state(model)
    frozen_params = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert bool(frozen_params) == (frozen >= 0)
    for name, count in after.items():  # a frozen level's BN is in eval mode: it takes no statistics
        trainable = name.replace('num_batches_tracked', 'weight') not in frozen_params
        assert (count > before[name]).item() == trainable, name


def test_norm_eval_keeps_every_statistic(family):
    model = build(family, norm_eval=True).train()
    before = _bn_state(model)
    outs = model(model.example_input(2, 32, 32))
    assert all(o.requires_grad for o in outs)  # nothing frozen, only the statistics
    for name, b in _bn_state(model).items():
        assert torch.equal(b, before[name]), name


@pytest.mark.parametrize('scope', ['mmengine', 'mmdet', 'mmseg'])
def test_builds_from_the_root_and_both_toolbox_registries(family, scope):
    registry = importlib.import_module(f'{scope}.registry')
    model = registry.MODELS.build(dict(type=family.__name__, arch=family.example_arch))
    assert type(model) is family


@pytest.mark.slow
def test_spike_driven_equals_integer_mode(family):
    model = randomise_bn(build(family)).double().eval()
    x = model.example_input(1, 64, 64).double() * 3
    with torch.no_grad():
        ref = model(x)
        with spike_driven(model):
            out = model(x)
    for a, b in zip(ref, out):
        assert (a - b).abs().max().item() <= 1e-9


@pytest.mark.parametrize(
    'cls,arch,levels',
    [
        (ESpikeFormerClassifier, 't', 5),
        (ESpikeFormerLargeClassifier, dict(embed_dims=[16, 32, 64], depth=2, num_heads=4), 4),
    ],
    ids=['ESpikeFormerClassifier', 'ESpikeFormerLargeClassifier'],
)
def test_classifier_forward_intermediates(cls, arch, levels):
    """timm's feature API of every classifier: levels in ascending order, negative indices from
    the end, an int for the last ``n``, the same output as ``forward``, errors naming ``indices``."""
    torch.manual_seed(0)
    model = cls(arch).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        every = model.forward_intermediates(x, intermediates_only=True)
        picked = model.forward_intermediates(x, indices=[-1, 0], intermediates_only=True)
        out, last = model.forward_intermediates(x, indices=1)
        logits = model(x)
    assert len(every) == len(model.feature_info) == levels
    assert [f.shape[1] for f in every] == [i['num_chs'] for i in model.feature_info]
    assert torch.equal(picked[0], every[0]) and torch.equal(picked[1], every[-1])
    assert len(last) == 1 and torch.equal(last[0], every[-1]) and torch.equal(out, logits)
    for bad in ([levels], [-levels - 1], [], 0, levels + 1):
        with pytest.raises(ValueError, match='indices'):
            model.forward_intermediates(x, indices=bad)

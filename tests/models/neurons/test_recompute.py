"""``save_counts='recompute'``: a spiking unit keeps count codes and bits, and its conv / BN / layer
scale / ``k^T v`` outputs as recipes that backward runs again; what autograd hands back is the
forward's tensor bit for bit, and every gradient equals float saving's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sdt_dense.models.layers import SpikeConvBN, SpikeDrivenSelfAttention, SpikingLayer
from sdt_dense.models.layers.recompute import relu_keep_mask
from sdt_dense.models.neurons import SavedCounts
from sdt_dense.models.neurons.saved_counts import (
    CountsView,
    PackedBits,
    RecomputedView,
    check_save_counts,
    observe_saved,
    saved_storages,
    saving_context,
    set_save_counts,
)


def bits_of(t: torch.Tensor) -> torch.Tensor:
    ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(ints)


def grads_of(module: nn.Module, x: torch.Tensor, mode, amp: bool = False) -> dict:
    """Gradients of a fixed random projection of ``module(x)`` (and of ``x``) under one mode."""
    module.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(x.is_floating_point())
    with saving_context(mode), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        out = module(x)
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (out.double() * r).sum().backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    grads['input'] = x.grad.clone()
    return grads


def assert_same_grads(module: nn.Module, x: torch.Tensor, amp: bool = False) -> None:
    ref = grads_of(module, x, False, amp)
    for mode in (True, 'recompute'):
        new = grads_of(module, x, mode, amp)
        assert ref.keys() == new.keys()
        for name in ref:
            assert torch.equal(bits_of(ref[name]), bits_of(new[name])), (mode, name)


def saved_objects(module: nn.Module, x: torch.Tensor, mode) -> list:
    """What autograd keeps for backward of ``module(x)`` under ``mode``, in packed form."""
    objs = []
    with observe_saved(objs.append), saving_context(mode):
        out = module(x)
    return objs, out


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('conv_dim', [1, 2])
def test_spike_conv_bn_saves_no_float_activation_and_recomputes_exactly(dtype, conv_dim):
    torch.manual_seed(0)
    unit = (
        SpikeConvBN(8, 16, 3 if conv_dim == 2 else 1, padding=1 if conv_dim == 2 else 0, conv_dim=conv_dim)
        .to(dtype)
        .train()
    )
    shape = (2, 8, 9, 7) if conv_dim == 2 else (2, 8, 30)
    x = (torch.randn(shape, dtype=dtype) * 3).requires_grad_()
    objs, out = saved_objects(unit, x, 'recompute')
    views = [o for o in objs if isinstance(o, RecomputedView)]
    assert len(views) == 1  # BN's input, the conv output
    floats = [o for o in objs if isinstance(o, torch.Tensor) and o.numel() == out.numel()]
    assert not floats  # nothing of activation size is kept as a float tensor
    # the recomputed BN input is the forward's conv output, bit for bit
    spikes = unit.neuron(x)
    assert torch.equal(bits_of(views[0].unpack()), bits_of(unit.conv(spikes)))
    assert_same_grads(unit, x)


def test_bn_output_saved_by_a_second_conv_is_a_recipe_too():
    torch.manual_seed(0)
    first = SpikeConvBN(8, 12, 1, conv_dim=1)
    second = SpikeConvBN(12, 8, 1, conv_dim=1, with_neuron=False)  # RepConv's inner pair
    pair = nn.Sequential(first, second).train()
    x = torch.randn(2, 8, 40) * 3
    objs, _ = saved_objects(pair, x, 'recompute')
    assert sum(isinstance(o, RecomputedView) for o in objs) == 3  # BN1 in, conv2 in, BN2 in
    assert not [o for o in objs if isinstance(o, torch.Tensor) and o.numel() >= 2 * 8 * 40]
    assert_same_grads(pair, x)


def test_attention_keeps_k_t_v_as_a_recipe():
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(16, num_heads=2).train()
    x = torch.randn(2, 16, 5, 6) * 3
    objs, _ = saved_objects(attn, x, 'recompute')
    kv_shape = (2 * 2, 8, 32)  # matmul's batch view: (B * heads, d, value_ratio * d)
    assert any(isinstance(o, RecomputedView) and tuple(o.size) == kv_shape for o in objs)
    assert not any(
        isinstance(o, torch.Tensor) and not isinstance(o, nn.Parameter) and o.numel() == 2 * 2 * 8 * 32
        for o in objs
    )
    assert_same_grads(attn, x)


def test_eval_bn_frozen_statistics_and_inputs_without_grad():
    torch.manual_seed(0)
    unit = SpikeConvBN(4, 6, 3, padding=1).train()
    unit.bn.running_mean.uniform_(-1, 1)
    unit.bn.running_var.uniform_(0.5, 2)
    unit.bn.eval()  # norm_eval: frozen statistics, still trained affine parameters
    x = torch.randn(2, 4, 8, 8) * 3
    assert_same_grads(unit, x)
    # an input that needs no gradient (after frozen stages): weights still get identical gradients
    ref = grads_of(unit, x.detach(), False)
    new = grads_of(unit, x.detach(), 'recompute')
    assert all(torch.equal(ref[n], new[n]) for n in ref)


def test_bf16_autocast_recomputes_under_the_forward_autocast_state():
    torch.manual_seed(0)
    unit = SpikeConvBN(8, 8, 3, padding=1).train()
    assert_same_grads(unit, torch.randn(2, 8, 10, 10) * 3, amp=True)


def test_in_place_weight_change_before_backward_is_an_error():
    torch.manual_seed(0)
    unit = SpikeConvBN(4, 4, 1).train()
    with saving_context('recompute'):
        out = unit(torch.randn(2, 4, 6, 6, requires_grad=True) * 3)
    with torch.no_grad():
        unit.conv.weight.mul_(2)
    with pytest.raises(RuntimeError, match='modified in place|modified by an inplace'):
        out.sum().backward()


def test_eval_and_no_grad_save_and_register_nothing():
    unit = SpikeConvBN(4, 4, 1).eval()
    with torch.no_grad(), saving_context('recompute') as ctx:
        unit(torch.randn(1, 4, 3, 3))
        assert not ctx.active and not ctx._registry


def test_spiking_conv_module_keeps_codes_and_relu_bits():
    from mmcv.cnn import ConvModule

    torch.manual_seed(0)
    layer = SpikingLayer(
        ConvModule(8, 8, 3, padding=1, norm_cfg=dict(type='BN')), save_counts='recompute'
    ).train()
    x = torch.randn(2, 8, 10, 10) * 3
    objs = []
    with observe_saved(objs.append):
        layer(x)
    kinds = {type(o).__name__ for o in objs if not isinstance(o, nn.Parameter)}
    assert {'CountsView', 'RecomputedView', 'PackedBits'} <= kinds
    assert not [o for o in objs if isinstance(o, torch.Tensor) and o.numel() >= 2 * 8 * 10 * 10]
    # the module's own switch is what a head uses (no context of its own around it)
    ref = {}
    for mode in (False, True, 'recompute'):
        layer.save_counts = mode
        layer.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        (layer(xi) * torch.linspace(-1, 1, 800).view(2, 8, 10, 5).repeat(1, 1, 1, 2)).sum().backward()
        grads = [p.grad for p in layer.parameters()] + [xi.grad]
        if mode is False:
            ref = grads
        assert all(torch.equal(a, b) for a, b in zip(ref, grads))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16])
def test_relu_keep_mask_equals_relu_in_value_and_gradient(dtype):
    x = torch.tensor(
        [-2.0, -0.0, 0.0, 1e-30, 3.0, float('nan'), float('inf'), -float('inf')] * 10, dtype=dtype
    )
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = relu_keep_mask(a), F.relu(b)
    assert torch.equal(bits_of(ours), bits_of(ref))
    ours.backward(grad)
    ref.backward(grad)
    assert torch.equal(bits_of(a.grad), bits_of(b.grad))
    with SavedCounts(observer=(objs := []).append):
        relu_keep_mask(x.clone().requires_grad_())
    assert [type(o) for o in objs] == [PackedBits]  # a bit per element, not the float result


def test_switch_values_are_checked_and_set_everywhere():
    with pytest.raises(ValueError, match='save_counts must be one of'):
        check_save_counts('yes')
    model = nn.Sequential(SpikingLayer(nn.Conv2d(2, 2, 1)), SpikingLayer(nn.Linear(2, 2)))
    assert set_save_counts(model, True) is model
    assert [m.save_counts for m in model] == [True, True]


def test_recipes_count_the_codes_they_read():
    torch.manual_seed(0)
    unit = SpikeConvBN(8, 16, 1).train()
    objs, _ = saved_objects(unit, torch.randn(2, 8, 4, 4, requires_grad=True), 'recompute')
    (view,) = [o for o in objs if isinstance(o, RecomputedView)]
    (codes,) = [o for o in objs if isinstance(o, CountsView) and not isinstance(o, RecomputedView)]
    keys = dict(saved_storages(view))
    assert keys[('codes', id(codes.source))] == 2 * 8 * 4 * 4 // 2  # two codes per byte

"""SpikeFPN, the detection neck: integer counts in train and eval, the published binary eval as an
option, a hand-written reference, extra convs and input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.models import SFANeuron
from sdt_dense.models.layers import SpikingLayer
from sdt_dense.models.necks import SpikeFPN


def neuron_outputs(module: nn.Module, fn):
    """Run ``fn()`` and return the outputs of every SFANeuron inside ``module``."""
    outs = []
    handles = [
        m.register_forward_hook(lambda _m, _i, o: outs.append(o.detach()))
        for m in module.modules()
        if isinstance(m, SFANeuron)
    ]
    try:
        result = fn()
    finally:
        for h in handles:
            h.remove()
    return result, outs


def small_fpn(**kwargs) -> SpikeFPN:
    torch.manual_seed(0)
    fpn = SpikeFPN([8, 16, 24], 8, num_outs=4, **kwargs)
    fpn.init_weights()
    return fpn


def fpn_inputs():
    g = torch.Generator().manual_seed(1)
    return [3 * torch.randn(2, c, s, s, generator=g) for c, s in ((8, 16), (16, 8), (24, 4))]


def test_spike_fpn_same_in_train_and_eval_with_integer_counts():
    fpn, x = small_fpn(), fpn_inputs()
    out_train, spikes_train = neuron_outputs(fpn.train(), lambda: fpn(x))
    out_eval, spikes_eval = neuron_outputs(fpn.eval(), lambda: fpn(x))
    for a, b in zip(out_train, out_eval):
        assert torch.equal(a, b)
    assert len(spikes_train) == len(spikes_eval) == 6  # 3 lateral + 3 output convs
    for s in spikes_train + spikes_eval:
        assert torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 4
        assert s.max() > 1  # counts above 1 (norm=1): not binary


def test_spike_fpn_published_binary_eval_is_an_option():
    fpn, x = small_fpn(neuron_cfg=dict(eval_ceiling=1)), fpn_inputs()
    neurons = [m for m in fpn.modules() if isinstance(m, SFANeuron)]
    assert all(n.norm == 1 and n.D == 4 and n.eval_ceiling == 1 for n in neurons)
    out_train, spikes_train = neuron_outputs(fpn.train(), lambda: fpn(x))
    out_eval, spikes_eval = neuron_outputs(fpn.eval(), lambda: fpn(x))
    assert all(s.max() > 1 for s in spikes_train)
    assert all(set(s.unique().tolist()) <= {0.0, 1.0} for s in spikes_eval)
    assert not torch.allclose(out_train[0], out_eval[0])


def test_spike_fpn_matches_hand_written_reference():
    fpn, x = small_fpn(), fpn_inputs()
    out = fpn.eval()(x)

    def q(t):  # SFA, D=4, norm=1
        return t.clamp(0, 4).round()

    lat = [fpn.lateral_convs[i].layer.conv for i in range(3)]
    conv = [fpn.fpn_convs[i].layer.conv for i in range(3)]
    p = [lat[i](q(x[i])) for i in range(3)]
    p[1] = p[1] + F.interpolate(p[2], size=p[1].shape[2:], mode='nearest')
    p[0] = p[0] + F.interpolate(p[1], size=p[0].shape[2:], mode='nearest')
    expected = [conv[i](q(p[i])) for i in range(3)]
    expected.append(F.max_pool2d(expected[-1], 1, stride=2))
    assert len(out) == 4
    for a, b in zip(out, expected):
        assert torch.allclose(a, b, atol=1e-5)


def test_spike_fpn_extra_convs_and_bad_inputs():
    torch.manual_seed(0)
    fpn = SpikeFPN([8, 16], 8, num_outs=4, add_extra_convs='on_input')
    assert all(isinstance(m, SpikingLayer) for m in fpn.fpn_convs) and len(fpn.fpn_convs) == 4
    out = fpn([torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8)])
    assert [o.shape[-1] for o in out] == [16, 8, 4, 2]
    with pytest.raises(ValueError, match='2 input levels'):
        fpn([torch.randn(1, 8, 16, 16)])
    with pytest.raises(ValueError, match=r'input level 1: expected \(B, 16, H, W\)'):
        fpn([torch.randn(1, 8, 16, 16), torch.randn(1, 12, 8, 8)])
    with pytest.raises(ValueError, match='in_channels'):
        SpikeFPN(8, 8, num_outs=1)

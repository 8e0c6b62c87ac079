"""spikingjelly 2.0: our SFA neuron (Base rules) equals ``ILIFNode`` forward and backward, our
binary expansion equals ``SpikeCountToBinary``; the Large rules differ where documented; the
converter round-trips a model with equal outputs and gradients (float64)."""

from __future__ import annotations

import pytest
import spikingjelly.activation_based  # noqa: E402,F401  (a test requirement: fail, never skip)
import torch
from spikingjelly.activation_based import layer as sj_layer  # noqa: E402
from spikingjelly.activation_based import neuron as sj_neuron  # noqa: E402
from spikingjelly.activation_based import surrogate as sj_surrogate  # noqa: E402
from torch import nn

from sdt_dense.deploy.spikingjelly import ILIFSFA, UnsupportedNeuronError, from_spikingjelly, to_spikingjelly
from sdt_dense.models import SFANeuron

D = 4


def _inputs() -> torch.Tensor:
    """float64: random values, every exact tie k + 0.5, the window edges and values outside."""
    torch.manual_seed(0)
    ties = torch.arange(-1, D + 1, dtype=torch.float64) + 0.5
    edges = torch.tensor([-1e-9, 0.0, 1e-9, D - 1e-9, D, D + 1e-9, -3.0, 7.0], dtype=torch.float64)
    return torch.cat([torch.empty(500, dtype=torch.float64).uniform_(-1.5, D + 1.5), ties, edges])


def _ilif() -> nn.Module:
    return sj_neuron.ILIFNode(v_threshold=1.0, surrogate_function=sj_surrogate.MultiLevelSpikeCount(D))


def _forward_backward(module: nn.Module, x: torch.Tensor, grad: torch.Tensor):
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(grad)
    return y.detach(), x.grad


def test_sfa_base_rules_equal_ilif_forward_and_backward():
    x = _inputs()
    grad = torch.randn_like(x)
    ilif = _ilif()
    y_sj, g_sj = _forward_backward(ilif, x, grad)
    y_ours, g_ours = _forward_backward(SFANeuron(D, norm=1), x, grad)  # counts, as ILIFNode
    assert torch.equal(y_ours, y_sj) and torch.equal(g_ours, g_sj)
    # the ties round half to even in both: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
    assert y_sj[500:506].tolist() == [0.0, 0.0, 2.0, 2.0, 4.0, 4.0]
    # with the default norm = D our output is the count / D, the gradient / D
    ilif.reset()
    y_n, g_n = _forward_backward(SFANeuron(D), x, grad)
    assert torch.equal(y_n, y_sj / D) and torch.equal(g_n, g_sj / D)


def test_binary_expansion_equals_spike_count_to_binary():
    torch.manual_seed(1)
    x = torch.empty(3, 5, 4, 4, dtype=torch.float64).uniform_(-1, D + 1)
    neuron = SFANeuron(D).eval()
    neuron.spike_driven = True
    ours = neuron(x)  # (D * B, C, H, W), slice-major
    counts = SFANeuron(D, norm=1)(x)
    theirs = sj_layer.SpikeCountToBinary(D).eval()(counts.unsqueeze(0))  # [1 * D, B, ...]
    assert theirs.shape == (D, 3, 5, 4, 4)
    assert torch.equal(ours.as_subclass(torch.Tensor).view(D, 3, 5, 4, 4), theirs)


def test_large_rules_differ_from_ilif_where_documented():
    ilif = _ilif()
    x = torch.tensor([0.0, 0.5, 1.5, 2.5, 3.5, D], dtype=torch.float64)
    grad = torch.ones_like(x)
    y_sj, g_sj = _forward_backward(ilif, x, grad)
    large = SFANeuron(D, norm=1, rounding='half_up', window='exclusive')
    y_l, g_l = _forward_backward(large, x, grad)
    # half up: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3, 3.5 -> 4; ILIF (half to even): 0, 2, 2, 4
    assert y_l.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0] and y_sj.tolist() == [0.0, 0.0, 2.0, 2.0, 4.0, 4.0]
    # open window: no gradient at 0 and D; ILIF's closed window passes it
    assert g_l.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0] and g_sj.tolist() == [1.0] * 6


class _Tiny(nn.Module):
    def __init__(self, neuron_kwargs=None) -> None:
        super().__init__()
        kw = neuron_kwargs or {}
        self.stem = nn.Conv2d(2, 8, 3, padding=1)
        self.block = nn.Sequential(
            SFANeuron(**kw), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), SFANeuron(**kw)
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))


def test_converter_round_trip_equal_outputs_and_gradients():
    torch.manual_seed(0)
    model = _Tiny().double().train()
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64) * 3
    converted = to_spikingjelly(model)
    assert sum(isinstance(m, ILIFSFA) for m in converted.modules()) == 2
    assert not any(isinstance(m, SFANeuron) for m in converted.modules())
    assert any(isinstance(m, sj_neuron.ILIFNode) for m in converted.modules())
    for mode in ('train', 'eval'):
        getattr(model, mode)()
        getattr(converted, mode)()
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = model(xa), converted(xb)
        assert torch.equal(ya, yb)
        ya.sum().backward()
        yb.sum().backward()
        assert torch.equal(xa.grad, xb.grad)
        for (na, pa), (nb, pb) in zip(model.named_parameters(), converted.named_parameters()):
            assert na == nb and torch.equal(pa.grad, pb.grad)
            pa.grad = pb.grad = None
        # memoryless: a second call gives the same result (no membrane carried over); both
        # models run it, so that train-mode BatchNorm statistics stay equal
        with torch.no_grad():
            again = converted(x)
            assert torch.equal(again, model(x))
            if mode == 'eval':
                assert torch.equal(again, yb)
    back = from_spikingjelly(converted)
    assert sum(isinstance(m, SFANeuron) for m in back.modules()) == 2
    assert not any(isinstance(m, ILIFSFA) for m in back.modules())
    back.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


@pytest.mark.parametrize(
    'kwargs, reason',
    [
        (dict(rounding='half_up'), 'rounds half to even'),
        (dict(window='exclusive'), 'gradient window is closed'),
        (dict(eval_ceiling=1), 'same in train and eval'),
    ],
)
def test_converter_refuses_rules_ilif_cannot_map(kwargs, reason):
    model = _Tiny(kwargs)
    with pytest.raises(UnsupportedNeuronError, match=reason) as info:
        to_spikingjelly(model, inplace=True)
    assert "'block.0'" in str(info.value)
    assert sum(isinstance(m, SFANeuron) for m in model.modules()) == 2  # untouched


@pytest.mark.slow
def test_converter_on_e_spikeformer_backbone():
    """Every SFA neuron of the tiny E-SpikeFormer (attention included) swapped: equal features,
    equal input gradient; back again equal."""
    from sdt_dense.models import ESpikeFormer

    torch.manual_seed(0)
    model = ESpikeFormer(arch='t', in_channels=2, out_indices=(2, 4)).double().eval()
    neurons = sum(isinstance(m, SFANeuron) for m in model.modules())
    converted = to_spikingjelly(model)
    assert sum(isinstance(m, ILIFSFA) for m in converted.modules()) == neurons > 10
    x = torch.rand(1, 2, 32, 32, dtype=torch.float64) * 4
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = model(xa), converted(xb)
    for a, b in zip(ya, yb):
        assert torch.equal(a, b)
    sum(a.sum() for a in ya).backward()
    sum(b.sum() for b in yb).backward()
    assert torch.equal(xa.grad, xb.grad)
    with torch.no_grad():
        for a, b in zip(model(x), from_spikingjelly(converted)(x)):
            assert torch.equal(a, b)

"""LIF neuron option: dynamics against hand-computed values and an independent autograd
reference, and E-SpikeFormer with ``neuron_cfg=dict(type='LIF', T=...)``.

Convention under test (SpikingJelly LIF, decay_input, hard reset, v_0 = v_reset)::

    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau
    s_t = [h_t >= v_th]
    v_t = h_t (1 - s_t) + v_reset s_t
"""

import importlib
import math

import pytest
import torch

from sdt_dense.models import ESpikeFormer, ESpikeFormerClassifier, LIFNeuron, build_neuron
from sdt_dense.models.neurons import SFANeuron, neuron_time_steps


def _sg(u: float, alpha: float = 4.0) -> float:
    """Sigmoid surrogate derivative by hand: alpha * sig(alpha u) * (1 - sig(alpha u))."""
    s = 1 / (1 + math.exp(-alpha * u))
    return alpha * s * (1 - s)


def _reference_lif(x_seq, tau, v_th, v_reset, detach_reset, alpha):
    """Plain-autograd LIF (SpikingJelly's torch backend style): the Heaviside is made
    differentiable by a straight-through sigmoid, so autograd alone provides BPTT."""
    v = torch.full_like(x_seq[0], v_reset)
    out = []
    for x in x_seq:
        h = v + (x - (v - v_reset)) / tau
        soft = torch.sigmoid(alpha * (h - v_th))
        s = (h >= v_th).to(h.dtype) + (soft - soft.detach())  # value exactly binary
        s_reset = s.detach() if detach_reset else s
        v = h * (1 - s_reset) + v_reset * s_reset
        out.append(s)
    return torch.stack(out)


def test_lif_spikes_hand_computed():
    # T=4, tau=2, v_th=1: one element driven by 1.5 every step, another by 2, 0, 4, -2.
    x = torch.tensor([[1.5, 2.0], [1.5, 0.0], [1.5, 4.0], [1.5, -2.0]])  # (T, B)
    # col 0: h = .75, 1.125 (fire, reset to 0), .75, 1.125 (fire)
    # col 1: h = 1.0 (fires: threshold inclusive), 0, 2.0 (fire), -1
    expected = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    out = LIFNeuron(T=4)(x.flatten())
    torch.testing.assert_close(out, expected.flatten(), rtol=0, atol=0)


def test_lif_leak_and_reset_value():
    # v_reset = -0.5, tau = 4, threshold 0.8, constant input 2 (v_0 = -0.5):
    # h_1 = -0.5 + (2 - 0) / 4 = 0, h_2 = 0 + (2 - 0.5) / 4 = 0.375,
    # h_3 = 0.375 + (2 - 0.875) / 4 = 0.65625, h_4 = 0.65625 + (2 - 1.15625) / 4 = 0.8671875 (fires,
    # v_4 = -0.5), h_5 = -0.5 + 2 / 4 = 0 again.
    x = torch.full((5, 1), 2.0)
    out = LIFNeuron(T=5, tau=4.0, v_threshold=0.8, v_reset=-0.5)(x.flatten())
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]), rtol=0, atol=0)


def test_lif_bptt_gradient_hand_computed():
    # T=2, tau=2, constant 1.5: h_1 = .75 (no spike), h_2 = 1.125 (spike); loss = s_1 + s_2.
    x = torch.tensor([1.5, 1.5], requires_grad=True)
    LIFNeuron(T=2)(x).sum().backward()
    g_h2 = _sg(1.125 - 1)
    g_h1 = _sg(0.75 - 1) + g_h2 * (1 - 1 / 2) * (1 - 0)  # through v_1 = h_1 (no reset)
    expected = torch.tensor([g_h1 / 2, g_h2 / 2])
    torch.testing.assert_close(x.grad, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('detach_reset', [True, False])
def test_lif_matches_autograd_reference(detach_reset):
    torch.manual_seed(0)
    T, tau, v_th, v_reset, alpha = 3, 3.0, 0.8, -0.2, 2.5
    x = (torch.randn(T * 2, 5, 7) * 1.5).requires_grad_()
    w = torch.randn(T * 2, 5, 7)
    neuron = LIFNeuron(T, tau, v_th, v_reset, detach_reset, alpha)
    (neuron(x) * w).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    out_ref = _reference_lif(x_ref.unflatten(0, (T, -1)), tau, v_th, v_reset, detach_reset, alpha)
    (out_ref.flatten(0, 1) * w).sum().backward()
    torch.testing.assert_close(neuron(x.detach()), out_ref.detach().flatten(0, 1), rtol=0, atol=0)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    assert x.grad.abs().sum() > 0


def test_lif_detach_reset_changes_gradient():
    # With detach_reset=False the reset path adds (v_reset - h_t) * sg(h_t - v_th) to d v_t / d h_t.
    # T=2, tau=2, x = (2.5, 0): h_1 = 1.25 (spike), h_2 = 0 + (0 - 0) / 2 = 0; loss = s_2.
    # d L / d h_2 = sg(-1); d v_1 / d h_1 = (1 - 1) [+ (0 - 1.25) * sg(0.25)];
    # d L / d x_1 = d L / d h_2 * (1 - 1 / tau) * d v_1 / d h_1 / tau.
    grads = {}
    for detach in (True, False):
        x = torch.tensor([2.5, 0.0], requires_grad=True)
        LIFNeuron(T=2, detach_reset=detach)(x)[1].backward()
        grads[detach] = x.grad
    assert grads[True][0].item() == 0.0
    expected = _sg(-1.0) * 0.5 * (-1.25 * _sg(0.25)) / 2
    assert grads[False][0].item() == pytest.approx(expected, rel=1e-5)
    assert grads[True][1].item() == pytest.approx(_sg(-1.0) / 2, rel=1e-5)


def test_lif_surrogate_gradient_shape():
    # One step from rest: h = x / tau, so d s / d x = sg(x / tau - v_th) / tau.
    tau, alpha = 2.0, 4.0
    x = torch.linspace(-2, 6, 33, requires_grad=True)
    out = LIFNeuron(T=1, tau=tau, alpha=alpha)(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    out.sum().backward()
    expected = torch.tensor([_sg(v / tau - 1, alpha) / tau for v in x.detach().tolist()])
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-7)
    peak = x.grad.argmax()
    assert x[peak].item() == pytest.approx(2.0)  # at the threshold (h = 1)
    assert x.grad.max().item() == pytest.approx(alpha / 4 / tau)


def test_lif_outputs_binary_and_shape():
    torch.manual_seed(1)
    x = torch.randn(8, 3, 5, 5) * 3
    out = LIFNeuron(T=4)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_lif_rejects_unfolded_input_and_bad_args():
    with pytest.raises(ValueError, match=r'\(T \* B, \.\.\.\)'):
        LIFNeuron(T=4)(torch.zeros(6, 3))
    with pytest.raises(ValueError, match='T must be a positive integer'):
        LIFNeuron(T=0)
    with pytest.raises(ValueError, match='tau'):
        LIFNeuron(tau=1.0)
    with pytest.raises(TypeError):
        build_neuron(dict(type='LIF', D=4))  # an SFA argument is not silently dropped


def test_build_neuron_lif_and_time_steps():
    n = build_neuron(dict(type='LIF', T=3), norm=1)  # norm (SFA's integer head) is ignored
    assert isinstance(n, LIFNeuron) and n.T == 3
    assert neuron_time_steps(None) == 1
    assert neuron_time_steps(dict(type='SFA', D=8)) == 1
    assert neuron_time_steps(dict(type='LIF')) == 4
    assert neuron_time_steps(dict(type='LIF', T=2)) == 2
    with pytest.raises(KeyError, match='unknown neuron type'):
        neuron_time_steps(dict(type='IF'))


# A narrow, one-block-per-stage E-SpikeFormer: every kind of layer, a fraction of arch 't''s cost.
MINI_ARCH = dict(embed_dims=[8, 16, 32, 48], depths=[1, 1, 1, 1, 1], num_heads=2)


def _tiny_backbone(neuron_cfg):
    torch.manual_seed(0)
    return ESpikeFormer(MINI_ARCH, out_indices=(0, 1, 2, 3, 4), neuron_cfg=neuron_cfg)


def test_backbone_lif_shapes_equal_sfa_and_backward():
    x = torch.randn(2, 3, 32, 48)
    sfa, lif = _tiny_backbone(None), _tiny_backbone(dict(type='LIF', T=2))
    assert sfa.neuron_T == 1 and lif.neuron_T == 2
    assert all(isinstance(m, LIFNeuron) for m in lif.modules() if isinstance(m, (LIFNeuron, SFANeuron)))
    outs_sfa, outs_lif = sfa(x), lif(x)
    assert [o.shape for o in outs_lif] == [o.shape for o in outs_sfa]
    sum(o.square().mean() for o in outs_lif).backward()
    for name, p in lif.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # gradients reach the deepest stage through the surrogate
    assert lif.stages[4][-1].mlp.fc2.conv.weight.grad.abs().sum() > 0


def test_backbone_lif_repeats_input_and_averages_outputs_over_time():
    T, B = 3, 2
    model = _tiny_backbone(dict(type='LIF', T=T)).eval()
    seen = {}
    model.downsamples[0].register_forward_hook(lambda m, i, o: seen.update(stem_in=i[0]))
    for i in range(5):
        model.stages[i][-1].register_forward_hook(lambda m, inp, out, i=i: seen.update({i: out}))
    x = torch.randn(B, 3, 32, 32)
    with torch.no_grad():
        outs = model(x)
    # the image is presented at every timestep, timestep-major
    torch.testing.assert_close(seen['stem_in'], torch.cat([x] * T), rtol=0, atol=0)
    for i, out in enumerate(outs):
        folded = seen[i]
        assert folded.shape[0] == T * B
        torch.testing.assert_close(out, (folded[:B] + folded[B : 2 * B] + folded[2 * B :]) / T)
    # the membranes evolve over time, so the same image gives different timesteps (stage 1 is
    # active at init in eval mode; deeper stages of an untrained net can be silent)
    assert not torch.equal(seen[1][:B], seen[1][B : 2 * B])


def test_classifier_with_lif_neurons():
    torch.manual_seed(0)
    model = ESpikeFormerClassifier(MINI_ARCH, num_classes=10, neuron_cfg=dict(type='LIF', T=2))
    logits = model(torch.randn(3, 3, 32, 32))  # B=3 is not a multiple of T: time must be folded
    assert logits.shape == (3, 10)
    logits.sum().backward()
    assert model.head.weight.grad is not None


def test_lif_from_mm_config():
    importlib.import_module('mmdet')
    from mmdet.registry import MODELS

    model = MODELS.build(
        dict(type='ESpikeFormer', arch=MINI_ARCH, out_indices=(4,), neuron_cfg=dict(type='LIF', T=2))
    )
    assert model.neuron_T == 2
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 48, 2, 2)

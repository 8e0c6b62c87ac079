"""SFA neuron: forward values, gradient window, rounding modes, autocast, saved-tensor memory."""

import pytest
import torch

from sdt_dense.models.neurons import (
    SFANeuron,
    build_neuron,
    get_spike_slices,
    merge_spike_slices,
    sfa_quantise,
)

X = torch.tensor([-1.0, 0.0, 0.4, 0.5, 1.5, 2.5, 3.49, 3.5, 4.0, 5.0])


def test_forward_half_even_normalised():
    out = SFANeuron()(X)
    # round(clamp(x, 0, 4)) with ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
    expected = torch.tensor([0, 0, 0, 0, 2, 2, 3, 4, 4, 4]) / 4
    assert torch.equal(out, expected)


def test_forward_half_up_and_raw_counts():
    out = SFANeuron(norm=1, rounding='half_up')(X)
    assert torch.equal(out, torch.tensor([0.0, 0, 0, 1, 2, 3, 3, 4, 4, 4]))


def test_custom_D_and_norm():
    out = SFANeuron(D=8, norm=2)(torch.tensor([7.6, 9.0, 3.0]))
    assert torch.equal(out, torch.tensor([4.0, 4.0, 1.5]))


def test_gradient_window_inclusive_and_scaled():
    x = torch.tensor([-0.01, 0.0, 2.2, 4.0, 4.01], requires_grad=True)
    SFANeuron()(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0, 0.25, 0.25, 0.25, 0]))
    x.grad = None
    SFANeuron(norm=1)(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1, 1, 1, 0]))


def test_backward_saves_one_byte_per_element():
    x = torch.randn(3, 5, 7, requires_grad=True)
    out = SFANeuron()(x)
    saved = out.grad_fn.saved_tensors
    assert len(saved) == 1
    assert saved[0].dtype == torch.bool and saved[0].element_size() == 1
    assert saved[0].numel() == x.numel()


def test_no_saved_tensor_without_grad():
    out = SFANeuron()(torch.randn(4))
    assert out.grad_fn is None


def test_bf16_autocast():
    conv = torch.nn.Conv2d(3, 4, 3)
    neuron = SFANeuron()
    x = torch.randn(2, 3, 8, 8) * 4
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = conv(x)
        out = neuron(y)
    assert out.dtype == torch.bfloat16
    expected = torch.round(torch.clamp(y.float(), 0, 4)) / 4
    assert torch.equal(out.float(), expected)
    out.float().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


def test_fp16_tensor():
    out = sfa_quantise(torch.tensor([1.4, 2.6], dtype=torch.float16))
    assert out.dtype == torch.float16 and torch.equal(out.float(), torch.tensor([0.25, 0.75]))


def test_extra_repr_and_validation():
    assert 'D=4, norm=4' in repr(SFANeuron())
    assert 'D=8, norm=1' in repr(SFANeuron(D=8, norm=1))
    with pytest.raises(ValueError, match='rounding'):
        SFANeuron(rounding='stochastic')
    with pytest.raises(ValueError, match='D must be'):
        SFANeuron(D=0)
    with pytest.raises(KeyError, match='unknown neuron type'):
        build_neuron(dict(type='Nope'))


def test_eval_ceiling_is_opt_in():
    x = torch.tensor([0.2, 1.0, 3.0])
    default = SFANeuron(norm=1).eval()
    assert torch.equal(default(x), torch.tensor([0.0, 1, 3]))
    published = SFANeuron(norm=1, eval_ceiling=1)
    assert torch.equal(published.train()(x), torch.tensor([0.0, 1, 3]))
    assert torch.equal(published.eval()(x), torch.tensor([0.0, 1, 1]))


def test_spike_slices_sum_to_counts():
    neuron = SFANeuron()
    x = torch.randn(2, 3, 4) * 3
    integer = neuron(x)
    neuron.spike_driven = True
    spikes = neuron(x)
    tag = get_spike_slices(spikes)
    assert tag.steps == 4 and tag.norm == 4
    assert spikes.shape == (8, 3, 4)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(merge_spike_slices(spikes), integer)

"""Exact synaptic operation counts in spike-driven mode, against hand-computed numbers."""

import pytest
import torch
from torch import nn

from sdt_dense.analysis import SynapticOpCounter, count_synaptic_ops
from sdt_dense.analysis.ops import analytic_matmul_acs
from sdt_dense.deploy import is_spike_driven
from sdt_dense.models import ESpikeFormer, SFANeuron
from sdt_dense.models.layers import SpikeDrivenSelfAttention, SpikeMatMul
from sdt_dense.models.neurons import get_spike_slices


class TinyNet(nn.Module):
    """stem conv on pixels -> neuron -> padded 3x3 conv -> neuron -> depthwise 3x3/s2 conv ->
    neuron -> Linear. Weights are irrelevant to the counts; the neurons see hand-set inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, bias=True)  # real input
        self.n1 = SFANeuron(norm=1)
        self.padded = nn.Conv2d(1, 2, 3, padding=1)  # 1 -> 2 channels, 3x3, pad 1
        self.n2 = SFANeuron()
        self.dw = nn.Conv2d(2, 2, 3, stride=2, padding=1, groups=2, bias=False)
        self.n3 = SFANeuron()
        self.fc = nn.Linear(4, 5)

    def forward(self, img, c1, c2, c3):
        self.stem(img)
        self.padded(self.n1(c1))
        self.dw(self.n2(c2))
        return self.fc(self.n3(c3))


C1 = torch.tensor([[[[1.0, 0, 2], [0, 3, 0], [4, 0, 1]]]])  # (1, 1, 3, 3)
C2 = torch.tensor(
    [[[[1.0, 1, 1], [1, 1, 1], [1, 1, 1]], [[0.0, 2, 0], [3, 4, 0], [0, 0, 1]]]]
)  # (1, 2, 3, 3)
C3 = torch.tensor([[1.0, 0, 4, 2], [3, 3, 0, 0]])  # (2, 4)


def rows_by_name(rows):
    return {r.name: r for r in rows}


def test_tiny_network_hand_counts():
    net = TinyNet()
    rows = rows_by_name(count_synaptic_ops(net, torch.randn(1, 1, 4, 4), C1, C2, C3))
    assert list(rows) == ['stem', 'padded', 'dw', 'fc']

    stem = rows['stem']  # 2x2 outputs x 2 channels, 9 MACs each
    assert (stem.input_kind, stem.dense_macs, stem.mac_ops, stem.exact_acs) == ('real', 72, 72, 0)
    assert stem.input_count_sum == 0 and stem.input_numel == 16

    # 3x3, pad 1 on 3x3: a corner reaches 4 outputs, an edge 6, the centre 9 (per out channel)
    # corners 1+2+4+1 = 8 -> 32, edges 0, centre 3 -> 27; x 2 output channels = 118
    padded = rows['padded']
    assert padded.input_kind == 'spike' and padded.mac_ops == 0
    assert padded.exact_acs == 118
    assert padded.input_count_sum == 11 and padded.input_numel == 9
    assert padded.dense_macs == 2 * 9 * 9  # 18 outputs x 9 taps

    # depthwise 3x3 / stride 2 / pad 1 on 3x3: outputs centred on rows/cols {0, 2}; an input at
    # row (col) 0 or 2 is in 1 window, at 1 in 2 windows: fan-out [[1,2,1],[2,4,2],[1,2,1]].
    # channel 0 (all ones): 16; channel 1: 2*2 + 3*2 + 4*4 + 1*1 = 27
    dw = rows['dw']
    assert dw.exact_acs == 16 + 27
    assert dw.input_count_sum == 9 + 10 and dw.input_numel == 18
    assert dw.dense_macs == 2 * 4 * 9  # 2 channels x 2x2 outputs x 9 taps x 1 input channel

    fc = rows['fc']  # 13 spikes x 5 outputs
    assert (fc.exact_acs, fc.input_count_sum, fc.input_numel, fc.dense_macs) == (65, 13, 8, 40)
    assert fc.type == 'Linear' and fc.calls == 1
    assert fc.mean_firing_rate == 13 / 8
    assert not is_spike_driven(net)  # back in integer mode


def test_counts_equal_brute_force_on_binary_slices():
    """The exact count equals the literal number of (spike, weight) accumulates: each binary
    slice convolved with all-ones weights, for strided / dilated / grouped / 1-d convs."""
    torch.manual_seed(0)
    layers = [
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2),
        nn.Conv1d(3, 5, 3, padding=1, stride=2),
        nn.ConvTranspose2d(4, 2, 3, stride=2),
    ]
    for layer in layers:
        net = nn.Sequential(SFANeuron(), layer)
        shape = (2, layer.in_channels) + (7,) * len(layer.kernel_size)
        x = torch.rand(shape) * 5
        (row,) = count_synaptic_ops(net, x)
        counts = net[0].counts(x)
        brute = 0
        conv = {nn.Conv2d: torch.nn.functional.conv2d, nn.Conv1d: torch.nn.functional.conv1d}
        for d in range(1, 5):
            s = (counts >= d).double()
            ones = torch.ones_like(layer.weight, dtype=torch.float64)
            if isinstance(layer, nn.ConvTranspose2d):
                y = torch.nn.functional.conv_transpose2d(s, ones, None, layer.stride)
            else:
                y = conv[type(layer)](
                    s, ones, None, layer.stride, layer.padding, layer.dilation, layer.groups
                )
            brute += int(y.sum())
        assert row.exact_acs == brute > 0, layer
        assert row.input_count_sum == counts.sum()


def _identity_attention() -> SpikeDrivenSelfAttention:
    """dim 2, 1 head, v width 2, with q = k = v = the input's spike counts."""
    attn = SpikeDrivenSelfAttention(2, num_heads=1, value_ratio=1).eval()
    with torch.no_grad():
        for unit in (attn.q, attn.k, attn.v):
            unit.conv.weight.copy_(4 * torch.eye(2).view(2, 2, 1, 1))  # undo the /4 of the neuron
            unit.bn.running_var.fill_(1 - unit.bn.eps)  # BN = identity
    return attn


def test_attention_spike_matmul_hand_counts():
    attn = _identity_attention()
    # tokens n=0: counts (1, 2); n=1: counts (3, 0)
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])  # (1, 2, 1, 2)
    rows = rows_by_name(count_synaptic_ops(attn, x))
    kv, qkv = rows['kv_matmul'], rows['qkv_matmul']
    # k^T v: sum_n (sum_i k_ni)(sum_j v_nj) = 3 * 3 + 3 * 3 = 18 spike-pair coincidences
    assert (kv.type, kv.input_kind, kv.exact_acs, kv.mac_ops) == ('SpikeMatMul', 'spike', 18, 0)
    assert kv.dense_macs == 2 * 2 * 2  # (d x dv) outputs x N
    assert (kv.input_count_sum, kv.input_numel) == (6, 4)  # the k^T operand
    # q (k^T v): each of the 6 q spikes adds a row of dv = 2 integers
    assert (qkv.exact_acs, qkv.dense_macs, qkv.input_count_sum) == (12, 8, 6)
    for name in ('q.conv', 'k.conv', 'v.conv'):
        assert rows[name].exact_acs == 6 * 2  # 6 spikes x 2 output channels


def test_attention_matmul_counts_equal_literal_and_count():
    """k^T v count = number of (t, t') pairs of binary spikes that coincide, counted literally."""
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(16, num_heads=2).eval()
    for bn in (attn.q.bn, attn.k.bn, attn.v.bn):
        bn.running_mean.uniform_(-2, 0)
    x = torch.randn(2, 16, 3, 4) * 3
    caught = {}
    for name in ('k_neuron', 'v_neuron', 'q_neuron'):
        getattr(attn, name).register_forward_hook(
            lambda m, a, out, name=name: caught.__setitem__(name, m.counts(a[0]))
        )
    rows = rows_by_name(count_synaptic_ops(attn, x))
    heads = lambda t: t.flatten(2).unflatten(1, (2, -1)).transpose(-1, -2)  # (B, h, N, d)
    k, v, q = (heads(caught[n]) for n in ('k_neuron', 'v_neuron', 'q_neuron'))
    kb = torch.stack([(k >= d) for d in range(1, 5)]).double()  # (D, B, h, N, d)
    vb = torch.stack([(v >= d) for d in range(1, 5)]).double()
    literal = torch.einsum('sbhni,tbhnj->', kb, vb)  # AND of every slice pair, summed
    assert rows['kv_matmul'].exact_acs == int(literal) > 0
    assert rows['qkv_matmul'].exact_acs == int(q.sum()) * v.shape[-1]


def test_counter_accumulates_over_calls_and_passes():
    net = TinyNet()
    args = (torch.randn(1, 1, 4, 4), C1, C2, C3)
    single = rows_by_name(count_synaptic_ops(net, *args))
    with SynapticOpCounter(net) as counter:
        net(*args)
        net(*args)
        assert is_spike_driven(net)
    assert not is_spike_driven(net)
    double = rows_by_name(counter.rows())
    for name, row in single.items():
        assert double[name].calls == 2
        assert double[name].exact_acs == 2 * row.exact_acs
        assert double[name].dense_macs == 2 * row.dense_macs


def test_backbone_rows_cover_every_synaptic_layer():
    torch.manual_seed(0)
    model = ESpikeFormer('t', out_indices=(4,)).eval()
    rows = count_synaptic_ops(model, torch.randn(1, 3, 32, 32))
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    matmuls = [n for n, m in model.named_modules() if isinstance(m, SpikeMatMul)]
    assert sorted(r.name for r in rows) == sorted(convs + matmuls)
    assert [r.name for r in rows if r.input_kind == 'real'] == ['downsamples.0.conv']
    for r in rows:
        if r.input_kind == 'spike' and r.type != 'SpikeMatMul':
            # an AC per spike and reached output, never more than a dense MAC per input count
            assert 0 <= r.exact_acs <= r.dense_macs * 4


def test_attention_counts_executed_binary_operands_equal_analytic():
    """The counter counts the binary slices SpikeMatMul really multiplies; on the same input this
    equals the analytic count on the integer operands (the formula used before the products ran
    on slices): sum_n (sum_i k_ni)(sum_j v_nj) for k^T v and (sum q) * d_v for q (k^T v)."""
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(16, num_heads=2).eval()
    for bn in (attn.q.bn, attn.k.bn, attn.v.bn):
        bn.running_mean.uniform_(-2, 0)
    x = torch.randn(2, 16, 3, 4) * 3
    counts, operands = {}, {}
    for name in ('q_neuron', 'k_neuron', 'v_neuron'):
        getattr(attn, name).register_forward_hook(
            lambda m, a, out, name=name: counts.__setitem__(name, m.counts(a[0]))
        )
    for name in ('kv_matmul', 'qkv_matmul'):  # what the products receive, as run
        getattr(attn, name).register_forward_pre_hook(lambda m, a, name=name: operands.__setitem__(name, a))
    rows = rows_by_name(count_synaptic_ops(attn, x))
    # executed: k^T, v and q arrive as tagged binary slices, the second operand of q (k^T v) is
    # the accumulated k^T v (an ordinary tensor)
    (k_t, v), (q, kv) = operands['kv_matmul'], operands['qkv_matmul']
    for t in (k_t, v, q):
        assert get_spike_slices(t).steps == 4 and set(t.unique().tolist()) <= {0.0, 1.0}
    assert get_spike_slices(kv) is None and type(kv) is torch.Tensor
    # analytic, on the integer counts of the same forward pass
    heads = lambda t: t.flatten(2).unflatten(1, (2, -1)).transpose(-1, -2)  # (B, h, N, d)
    kc, vc, qc = (heads(counts[n]) for n in ('k_neuron', 'v_neuron', 'q_neuron'))
    kv_analytic = analytic_matmul_acs(kc.transpose(-1, -2), vc, vc.shape[-1])
    qkv_analytic = analytic_matmul_acs(qc, None, vc.shape[-1])
    assert rows['kv_matmul'].exact_acs == kv_analytic > 0
    assert rows['qkv_matmul'].exact_acs == qkv_analytic > 0
    assert rows['kv_matmul'].input_count_sum == kc.sum()
    assert rows['qkv_matmul'].input_count_sum == qc.sum()


class BareMatMul(nn.Module):
    """A SpikeMatMul outside an attention: neuron spikes times a real matrix."""

    def __init__(self, spikes: bool = True) -> None:
        super().__init__()
        self.neuron = SFANeuron() if spikes else nn.Identity()
        self.mm = SpikeMatMul()

    def forward(self, x, w):
        return self.mm(self.neuron(x), w)


def test_matmul_outside_attention_counts_spike_slices():
    x = torch.tensor([[[1.0, 3.0], [0.0, 2.0]]])  # counts: 4 + 2 = 6 spikes per row pair
    w = torch.arange(6.0).reshape(1, 2, 3)
    (row,) = count_synaptic_ops(BareMatMul(), x, w)
    assert (row.exact_acs, row.input_count_sum, row.dense_macs) == (6 * 3, 6, 2 * 3 * 2)
    torch.testing.assert_close(BareMatMul()(x, w), (x / 4) @ w)


def test_matmul_outside_attention_without_spikes_is_rejected():
    with pytest.raises(ValueError, match="'mm' got operands that are not spike slices"):
        count_synaptic_ops(BareMatMul(spikes=False), torch.rand(1, 2, 2), torch.rand(1, 2, 3))

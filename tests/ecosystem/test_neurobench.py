"""NeuroBench's static and workload metrics on a tiny SFA network, against our own counter and
hand-computed values; both documented traps make the report fail loudly."""

from __future__ import annotations

import neurobench  # noqa: E402,F401  (test requirements: fail, never skip)
import pytest
import snntorch  # noqa: E402,F401
import torch
from torch import nn

from sdt_dense.analysis.neurobench import NeuroBenchCheckError, neurobench_report
from sdt_dense.models import SFANeuron


class Tiny(nn.Module):
    """stem 3x3 conv (real input) -> SFA -> 1x1 conv -> SFA -> Linear. With all-ones inputs and
    hand-set weights every count below is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.n1 = SFANeuron(4)
        self.conv = nn.Conv2d(2, 3, 1)
        self.n2 = SFANeuron(4)
        self.fc = nn.Linear(3 * 4 * 4, 5)
        with torch.no_grad():
            self.stem.weight.fill_(0.25)  # interior output 9 * 0.25 = 2.25 -> k = 2
            self.conv.weight.fill_(1.0)  # output: sum of the 2 channels k / 4
            self.conv.bias.zero_()
            self.fc.weight.fill_(0.5)
            self.fc.bias.zero_()

    def forward(self, x):
        x = self.n1(self.stem(x))
        x = self.n2(self.conv(x))
        return self.fc(x.flatten(1))


def _batches():
    x = torch.zeros(2, 1, 4, 4)
    x[0] = 1.0  # sample 0: all ones
    x[1, 0, 0, 0] = 2.0  # sample 1: two events at the corner (the batch is not binary)
    return [x]


def test_report_matches_our_counter_and_hand_counts():
    r = neurobench_report(Tiny(), _batches())
    layers = {row['name']: row for row in r['layers']}
    # stem on real input: NeuroBench counts effective MACs = non-zero inputs x fan-out.
    # sample 0: a 4x4 image of ones, 3x3 pad 1: fan-out per input 4 (corners) / 6 (edges) /
    # 9 (inner): 4*4 + 8*6 + 4*9 = 100 per output channel -> 200; sample 1: the corner -> 4 * 2
    assert layers['stem']['neurobench_macs'] == layers['stem']['our_effective_macs'] == 208
    assert layers['stem']['our_dense_macs'] == 2 * 2 * 16 * 9  # our energy tables' dense MACs
    # stem outputs (x 0.25): corners 4 taps -> 1.0 -> k 1, edges 6 -> 1.5 -> k 2 (half to even),
    # inner 9 -> 2.25 -> k 2; sample 1: one tap of 2 (0.5 -> k 0) near the corner
    # sample 0: per channel 4 * 1 + 8 * 2 + 4 * 2 = 28 spikes, x 2 channels = 56; sample 1: 0
    # conv 1x1 (2 -> 3): each spike reaches 3 outputs: 56 * 3 = 168 ACs
    assert layers['conv']['neurobench_acs'] == layers['conv']['our_acs'] == 168
    # n2: conv output = k_a / 4 + k_b / 4 = 2k / 4 -> corners 0.5 -> k 0 (half to even),
    # edges / inner 1.0 -> k 1: 12 positions x 3 channels = 36 spikes, x 5 outputs = 180 ACs
    assert layers['fc']['neurobench_acs'] == layers['fc']['our_acs'] == 180
    nb = r['neurobench']
    assert r['num_samples'] == 2
    assert nb['SynapticOperations']['Effective_ACs'] == (168 + 180) / 2
    assert nb['SynapticOperations']['Effective_MACs'] == 208 / 2
    # footprint: 18 + 6 + 3 + 240 + 5 float32 parameters
    assert nb['Footprint'] == 4 * (18 + 6 + 3 + 240 + 5)
    assert nb['ConnectionSparsity'] == 0.0
    # activation sparsity over the D = 4 binary slices: n1 56 + n2 36 spikes of
    # 4 * 2 * (32 + 48) slots
    assert nb['ActivationSparsity'] == pytest.approx(1 - (56 + 36) / (4 * 2 * (32 + 48)))
    assert r['matmul_acs_per_sample'] == 0


def test_integer_mode_values_counted_as_macs_fail_loudly():
    """Trap 2: in integer mode the neurons emit k / D, which NeuroBench counts as MACs."""
    with pytest.raises(NeuroBenchCheckError, match=r'as MAC layers \(conv, fc\).*k / D'):
        neurobench_report(Tiny(), _batches(), spike_driven_mode=False)


def test_swallowed_metric_failure_fails_loudly(monkeypatch):
    """Trap 1: NeuroBench catches a failing metric and reports 0."""
    import neurobench.metrics.workload.synaptic_operations as syn

    def broken(*args, **kwargs):
        raise RuntimeError('binary copy failed')

    monkeypatch.setattr(syn, 'single_layer_MACs', broken)
    with pytest.raises(NeuroBenchCheckError, match='swallowed a failed metric.*binary copy failed'):
        neurobench_report(Tiny(), _batches())


def test_neurobench_alone_integer_mode_and_unregistered_neuron():
    """What the report guards against, with NeuroBench used directly on the integer-mode model:
    the k / 4 inputs of conv and fc are counted as MACs, one per non-zero input (conv: 32 inputs
    x 3 = 96 instead of 168 ACs; fc: 36 x 5 = 180), and without registering the SFA neuron the
    activation sparsity is 0.0."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    data = [(x, torch.zeros(len(x))) for x in _batches()]

    class Loader(list):
        dataset = range(2)

    def run(register: bool) -> dict:
        net = TorchModel(Tiny())
        if register:
            net.add_activation_module(SFANeuron)
        bench = Benchmark(net, Loader(data), [], [], [[], [ActivationSparsity, SynapticOperations]])
        return bench.run(dataloader=Loader(data), quiet=True)

    res = run(register=True)
    assert res['SynapticOperations']['Effective_ACs'] == 0
    assert res['SynapticOperations']['Effective_MACs'] == (208 + 96 + 180) / 2
    # integer mode: the fraction of zero counts, 1 - (32 + 36) / (2 * (32 + 48))
    assert res['ActivationSparsity'] == pytest.approx(1 - 68 / 160)
    assert run(register=False)['ActivationSparsity'] == 0.0

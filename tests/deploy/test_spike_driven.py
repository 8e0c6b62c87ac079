"""Spike-driven inference: binary spikes into every synaptic layer, same outputs as integer mode.

Equality tests run in float64: the two modes sum the same products in a different order, and in
float32 a neuron input that lies within ~1e-6 of a rounding boundary (x.5) can round the other way
in one of them. float64 makes such near-ties vanishingly rare, so any difference is a real bug.
"""

import copy
import importlib
import pickle

import pytest
import torch
from torch import nn

from sdt_dense.deploy import SpikeDrivenError, convert_to_spike_driven, is_spike_driven, spike_driven
from sdt_dense.models import ESpikeFormer, SFANeuron
from sdt_dense.models.layers import SpikeDrivenSelfAttention, SpikeMatMul
from sdt_dense.models.neurons import SpikeTensor, get_spike_slices, spikes_lost
from sdt_testing import REPO, assert_outputs_equal, randomise_bn

OFFICIAL = REPO / 'tests' / 'data' / 'base' / 'e_spikeformer_t_official_format.pth'
EXPECTED = REPO / 'tests' / 'data' / 'base' / 'e_spikeformer_t_expected_f64.pt'
SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class SynapticInputRecorder:
    """Records, for each synaptic layer, whether its input came straight from a neuron (the same
    tensor object) and whether every input value was in {0, 1}; and for each SpikeMatMul, per
    operand, whether it was in {0, 1} and whether it was the output of another SpikeMatMul (the
    accumulated k^T v that q multiplies)."""

    def __init__(self, model: nn.Module) -> None:
        self.after_neuron, self.binary = {}, {}
        self.counts = {}  # neuron name -> spike counts emitted (integer mode)
        self.matmul_binary, self.matmul_accumulated = {}, {}  # name -> [operand a, operand b]
        self._neuron_outputs = []
        self._matmul_outputs = []
        self._handles = []
        for name, m in model.named_modules():
            if isinstance(m, SFANeuron):
                self._handles.append(m.register_forward_hook(self._neuron_hook(name)))
            elif isinstance(m, SYNAPTIC):
                self._handles.append(m.register_forward_pre_hook(self._layer_hook(name)))
            elif isinstance(m, SpikeMatMul):
                self._handles.append(m.register_forward_pre_hook(self._matmul_hook(name)))
                self._handles.append(
                    m.register_forward_hook(lambda m, a, out: self._matmul_outputs.append(out))
                )

    def _neuron_hook(self, name):
        def hook(module, args, out):
            self._neuron_outputs.append(out)  # keeps the object alive: ids stay unique
            if get_spike_slices(out) is None:
                counts = (out * module.norm).round().unique().int().tolist()
                self.counts.setdefault(name, set()).update(counts)

        return hook

    def _layer_hook(self, name):
        def hook(module, args):
            x = args[0]
            follows = any(x is o for o in self._neuron_outputs)
            self.after_neuron[name] = self.after_neuron.get(name, False) or follows
            binary = bool(((x == 0) | (x == 1)).all())
            self.binary[name] = self.binary.get(name, True) and binary

        return hook

    def _matmul_hook(self, name):
        def hook(module, args):
            binary = [bool(((x == 0) | (x == 1)).all()) for x in args]
            accumulated = [any(x is o for o in self._matmul_outputs) for x in args]
            old_b = self.matmul_binary.get(name, [True, True])
            old_a = self.matmul_accumulated.get(name, [True, True])
            self.matmul_binary[name] = [o and b for o, b in zip(old_b, binary)]
            self.matmul_accumulated[name] = [o and a for o, a in zip(old_a, accumulated)]

        return hook

    def remove(self):
        for h in self._handles:
            h.remove()
        self._neuron_outputs.clear()
        self._matmul_outputs.clear()

    def spiking_layers(self):
        return {n for n, f in self.after_neuron.items() if f}


def record_inputs(model, *args, **kwargs) -> SynapticInputRecorder:
    rec = SynapticInputRecorder(model)
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        rec.remove()
    return rec


# ---------------------------------------------------------------------------------------------
# Single layers


def test_bias_is_applied_once_hand_computed():
    # x = 3 -> count 3 -> integer mode 2 * 3 / 4 + 10 = 11.5; the four binary slices give
    # 2 + 2 + 2 + 0 = 6, / 4 = 1.5, + 10 once = 11.5 (a bias per slice would give 41.5)
    model = nn.Sequential(SFANeuron(), nn.Linear(1, 1))
    model[1].weight.data.fill_(2.0)
    model[1].bias.data.fill_(10.0)
    seen = []
    model[1].register_forward_pre_hook(lambda m, a: seen.append(a[0].flatten().tolist()))
    with spike_driven(model):
        out = model(torch.tensor([[3.2]]))
    assert out.item() == 11.5
    assert seen == [[1.0, 1.0, 1.0, 0.0]]
    assert model(torch.tensor([[3.2]])).item() == 11.5


@pytest.mark.parametrize(
    'layer,shape',
    [
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True), (2, 4, 9, 7)),
        (nn.Conv2d(6, 6, 5, padding=2, groups=6, dilation=1), (2, 6, 8, 8)),
        (nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2), (2, 4, 7, 7)),
        (nn.Conv1d(4, 5, 1, bias=True), (3, 4, 10)),
        (nn.Linear(6, 3), (2, 5, 6)),  # Linear on (B, N, C)
        (nn.ConvTranspose2d(4, 2, 2, stride=2), (2, 4, 5, 5)),
    ],
    ids=['conv-s2-p1-bias', 'depthwise', 'dilated-grouped', 'conv1d', 'linear-3d', 'deconv'],
)
@pytest.mark.parametrize(
    'neuron', [dict(), dict(norm=1), dict(D=2, rounding='half_up')], ids=['D4', 'norm1', 'D2-half-up']
)
def test_layer_equivalence(layer, shape, neuron):
    torch.manual_seed(0)
    model = nn.Sequential(SFANeuron(**neuron), layer).double()
    x = torch.randn(shape, dtype=torch.float64) * 2 + 1.5
    ref = model(x)
    rec = record_inputs(model, x)
    assert not rec.binary['1']  # integer mode: counts 0..D
    with spike_driven(model):
        out = model(x)
        rec = record_inputs(model, x)
    assert rec.binary['1'] and rec.after_neuron['1']
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_slices_are_folded_time_major():
    neuron = SFANeuron()
    with spike_driven(neuron):
        s = neuron(torch.tensor([[0.2, 1.0, 2.6, 9.0]]))
    assert get_spike_slices(s).steps == 4
    assert s.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]]


def test_eval_ceiling_neuron_emits_that_many_slices():
    model = nn.Sequential(SFANeuron(norm=1, eval_ceiling=1), nn.Conv2d(2, 3, 1)).eval()
    x = torch.rand(1, 2, 4, 4) * 4
    ref = model(x)
    with spike_driven(model):
        torch.testing.assert_close(model(x), ref, atol=1e-6, rtol=0)


def test_real_inputs_are_untouched():
    # a layer that does not follow a neuron computes exactly as before (bias included)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), SFANeuron(), nn.Conv2d(4, 2, 1))
    x = torch.randn(2, 3, 6, 6)
    first = model[0](x)
    with spike_driven(model):
        assert torch.equal(model[0](x), first)


# ---------------------------------------------------------------------------------------------
# Backbone


@pytest.fixture(scope='module')
def backbone():
    torch.manual_seed(0)
    model = ESpikeFormer('t', out_indices=(0, 1, 2, 3, 4))
    return randomise_bn(model).double().eval()


def test_backbone_random_weights_equivalence(backbone):
    x = torch.randn(2, 3, 48, 40, dtype=torch.float64)
    seen = set()

    def record_counts(m, a, out):
        seen.update((out * m.norm).round().unique().int().tolist())

    handles = [m.register_forward_hook(record_counts) for m in backbone.modules() if isinstance(m, SFANeuron)]
    with torch.no_grad():
        ref = backbone(x)
        for h in handles:
            h.remove()
        with spike_driven(backbone):
            out = backbone(x)
    assert seen == {0, 1, 2, 3, 4}  # non-trivial: every spike count occurs in integer mode
    # the attention products run on binary slices too (float64: only summation order differs)
    assert_outputs_equal(out, ref, atol=1e-9)


def test_attention_binary_products_equal_integer_float64():
    """One E-SDSA on its own: k^T v from binary x binary slice pairs and q (k^T v) from binary q
    slices equal the integer-mode products (float64, max difference <= 1e-9)."""
    torch.manual_seed(0)
    attn = randomise_bn(SpikeDrivenSelfAttention(16, num_heads=2, value_ratio=2))
    attn = attn.double().eval()
    attn.q.conv.weight.data *= 2  # so that q, like k and v, emits every count 0..4
    x = torch.randn(2, 16, 6, 7, dtype=torch.float64) * 3
    counts = {}
    handles = [
        getattr(attn, n).register_forward_hook(
            lambda m, a, out, n=n: counts.__setitem__(n, set(m.counts(a[0]).unique().tolist()))
        )
        for n in ('q_neuron', 'k_neuron', 'v_neuron')
    ]
    products = {}
    for n in ('kv_matmul', 'qkv_matmul'):
        getattr(attn, n).register_forward_hook(lambda m, a, out, n=n: products.__setitem__(n, out))
    with torch.no_grad():
        ref = attn(x)
        ref_products = dict(products)
        for h in handles:
            h.remove()
        with spike_driven(attn):
            out = attn(x)
    assert all(c == {0, 1, 2, 3, 4} for c in counts.values()), counts  # every count occurs
    for n in products:  # each product on its own, not only the attention output
        assert type(products[n]) is torch.Tensor  # an ordinary tensor in integer-mode units
        assert (products[n] - ref_products[n]).abs().max() <= 1e-9
    assert ref.abs().max() > 1 and (out - ref).abs().max() <= 1e-9


def test_spike_slices_matmul_every_operand_kind():
    """SpikeMatMul on binary slices (different D and norm per operand, broadcast batch dims)
    equals the product of the integer-mode operands, for spikes x spikes, spikes x real and
    real x spikes."""
    torch.manual_seed(0)
    na, nb = SFANeuron(D=4), SFANeuron(D=2, norm=1)
    xa = torch.rand(2, 3, 5, 6, dtype=torch.float64) * 5
    xb = torch.rand(2, 1, 6, 7, dtype=torch.float64) * 3
    real = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    ia, ib = na(xa), nb(xb)  # integer mode
    mm = SpikeMatMul()
    with spike_driven(nn.ModuleList([na, nb, mm])):
        sa, sb = na(xa), nb(xb)
        cases = {
            'spikes x spikes': (mm(sa, sb), ia @ ib),
            'spikes x real': (mm(sa, real), ia @ real),
            'real x spikes': (mm(xa, sb), xa @ ib),
        }
    assert get_spike_slices(sa).steps == 4 and get_spike_slices(sb).steps == 2
    for name, (out, ref) in cases.items():
        assert type(out) is torch.Tensor and out.shape == ref.shape, name
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=0, msg=name)


def test_hook_contract_backbone(backbone):
    """In spike-driven mode every Conv/Linear after a neuron receives only 0/1; in integer mode
    the same check finds counts (so the test can fail). The stem is the only real-input layer."""
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    integer = record_inputs(backbone, x)
    spiking = integer.spiking_layers()
    all_layers = set(integer.after_neuron)
    assert all_layers - spiking == {'downsamples.0.conv'}
    assert not all(integer.binary[n] for n in spiking)
    with spike_driven(backbone):
        sd = record_inputs(backbone, x)
    assert sd.spiking_layers() == spiking
    assert all(sd.binary[n] for n in spiking)
    assert not sd.binary['downsamples.0.conv']
    matmuls = {n for n, m in backbone.named_modules() if isinstance(m, SpikeMatMul)}
    assert set(integer.matmul_binary) == set(sd.matmul_binary) == matmuls
    _check_matmul_contract(integer, sd)


def _check_matmul_contract(integer, spiking):
    """Spike-matrix products: every operand is binary, except q (k^T v)'s k^T v, which is the
    accumulated output of the k^T v product (a weight-like matrix that q's spikes select rows of),
    never spikes merged to integers. Integer mode gets counts (so the check can fail)."""
    assert set(integer.matmul_binary) == set(spiking.matmul_binary)
    assert not any(all(b) for b in integer.matmul_binary.values())
    for n, (a_bin, b_bin) in spiking.matmul_binary.items():
        if n.endswith('qkv_matmul'):
            assert a_bin and not b_bin and spiking.matmul_accumulated[n] == [False, True], n
        else:
            assert a_bin and b_bin and spiking.matmul_accumulated[n] == [False, False], n


@pytest.mark.slow
def test_reference_weights_reproduce_fixture_spike_driven():
    """Released-layout weights, float64, one reference image at 224 px: the spike-driven backbone
    reproduces the published reference stage outputs and integer mode."""
    expected = torch.load(EXPECTED, weights_only=True)
    model = ESpikeFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(OFFICIAL)))
    model.init_weights()
    model.double().eval()
    x = expected['input_float32'][:1].double()  # the reference input is float32-exact
    with torch.no_grad():
        ref = model(x)
        with spike_driven(model):
            out = model(x)
    for i, (o, r) in enumerate(zip(out, ref), start=1):
        torch.testing.assert_close(o, r, atol=1e-9, rtol=0)
        torch.testing.assert_close(o, expected['eval'][f'stage{i}'][:1], atol=1e-9, rtol=0)


def test_context_restores_everything(backbone):
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    hooks = {n: (len(m._forward_pre_hooks), len(m._forward_hooks)) for n, m in backbone.named_modules()}
    with spike_driven(backbone):
        assert is_spike_driven(backbone)
        backbone(torch.randn(1, 3, 16, 16, dtype=torch.float64))
    assert not is_spike_driven(backbone)
    after = backbone.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert hooks == {
        n: (len(m._forward_pre_hooks), len(m._forward_hooks)) for n, m in backbone.named_modules()
    }


def test_bias_restored_when_forward_fails():
    model = nn.Sequential(SFANeuron(), nn.Conv2d(3, 2, 1, bias=True))
    bias = model[1].bias
    with pytest.raises(RuntimeError):
        with spike_driven(model):
            model(torch.rand(1, 5, 4, 4))  # wrong channel count: the conv raises mid-call
    assert model[1].bias is bias and 'bias' in dict(model[1].named_parameters())


def test_convert_permanent_copy_pickle_idempotent():
    torch.manual_seed(1)
    model = (
        nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, bias=True),
            nn.BatchNorm2d(4),
            SFANeuron(),
            nn.Conv2d(4, 3, 3, padding=1, bias=True),
        )
        .double()
        .eval()
    )
    randomise_bn(model)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    ref = model(x)
    assert convert_to_spike_driven(model) is model
    n_hooks = len(model[3]._forward_pre_hooks)
    convert_to_spike_driven(model)
    assert len(model[3]._forward_pre_hooks) == n_hooks
    for m in (model, copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert is_spike_driven(m)
        rec = record_inputs(m, x)
        assert rec.binary['3'] and rec.after_neuron['3']
        torch.testing.assert_close(m(x), ref, atol=1e-10, rtol=0)
    with spike_driven(model):  # no-op on a converted model, and stays converted after
        pass
    assert is_spike_driven(model) and len(model[3]._forward_pre_hooks) == n_hooks


@pytest.mark.parametrize('bad', [nn.BatchNorm2d(3), nn.ReLU(), SFANeuron()], ids=['bn', 'relu', 'neuron'])
def test_spikes_into_non_synaptic_module_is_an_error(bad):
    model = nn.Sequential(SFANeuron(), bad, nn.Conv2d(3, 3, 1)).eval()
    x = torch.rand(1, 3, 4, 4) * 4
    model(x)  # fine in integer mode
    with spike_driven(model), pytest.raises(SpikeDrivenError, match=type(bad).__name__):
        model(x)


def test_unbatched_spike_input_is_an_error():
    model = nn.Sequential(SFANeuron(), nn.Conv2d(3, 3, 1))
    with spike_driven(model), pytest.raises(SpikeDrivenError, match='batched 4-d'):
        model(torch.rand(3, 4, 4))


# ---------------------------------------------------------------------------------------------
# A user's functional op between a neuron and its synaptic layer: never silently wrong
#
# In spike-driven mode the neuron's output is D binary slices folded into the batch. An op that
# dropped their tag would hand the conv a (D * B, ...) "batch"; at batch size 1 the residual
# addition below would then broadcast it silently. Each op must either keep the slices (same
# result as integer mode) or raise SpikeDrivenError naming the layer.

# op(spikes (D * B, 4, 3, 5), B) -> input of a Conv1d(4, 3, 1) on (., 4, 15)
OPS = {
    'flatten': (lambda s, B: s.flatten(2), 'same'),
    'torch.flatten': (lambda s, B: torch.flatten(s, 2), 'same'),
    'reshape(shape[0])': (lambda s, B: s.reshape(s.shape[0], 4, -1), 'same'),
    'view(-1)': (lambda s, B: s.view(-1, 4, 15), 'same'),
    'permute-back': (lambda s, B: s.permute(0, 2, 3, 1).permute(0, 3, 1, 2).flatten(2), 'same'),
    'contiguous-clone': (lambda s, B: s.clone().contiguous().flatten(2), 'same'),
    'chunk-cat': (lambda s, B: torch.cat(s.flatten(2).chunk(3, dim=2), dim=2), 'same'),
    'index[:,]': (lambda s, B: s[:, :, :, :].flatten(2), 'same'),
    'reshape(B)': (lambda s, B: s.reshape(B, 4, -1), 'error'),
    'mul 1': (lambda s, B: (s * 1).flatten(2), 'error'),
    'add 0': (lambda s, B: (s + 0).flatten(2), 'error'),
    'transpose(0, 1)': (lambda s, B: s.transpose(0, 1).transpose(0, 1).flatten(2), 'error'),
    'in-place mul_': (lambda s, B: s.mul_(1).flatten(2), 'error'),
    'view(dtype)': (lambda s, B: s.view(torch.int64).double().flatten(2), 'error'),
    'index[0]': (lambda s, B: s[0:1].flatten(2), 'error'),
}


class UserNet(nn.Module):
    """neuron -> user op -> Conv1d -> + residual, at any batch size."""

    def __init__(self, op) -> None:
        super().__init__()
        self.op = op
        self.neuron = SFANeuron()
        self.conv = nn.Conv1d(4, 3, 1, bias=True)

    def forward(self, x):
        B = x.shape[0]
        y = self.conv(self.op(self.neuron(x), B))  # (B, 3, 15)
        return y + x[:, :3].flatten(2)


@pytest.mark.parametrize('name', list(OPS))
def test_user_op_between_neuron_and_conv_is_exact_or_raises(name):
    op, expected = OPS[name]
    torch.manual_seed(0)
    model = UserNet(op).double().eval()
    x = torch.rand(1, 4, 3, 5, dtype=torch.float64) * 5  # batch size 1: broadcasting would hide it
    ref = model(x)
    with spike_driven(model):
        if expected == 'same':
            torch.testing.assert_close(model(x), ref, atol=1e-12, rtol=0)
        else:
            with pytest.raises(SpikeDrivenError, match=r"'conv' \(Conv1d\)"):
                model(x)
    assert torch.equal(model(x), ref)  # integer mode afterwards: untouched


def test_user_op_into_linear_and_residual_at_batch_one():
    """flatten(1) into a Linear keeps the slices; a lost tag feeding the residual stream (which
    would otherwise broadcast silently) raises at the next neuron, naming it."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.neuron, self.fc = SFANeuron(), nn.Linear(12, 12)
            self.neuron2, self.fc2 = SFANeuron(), nn.Linear(12, 2)

        def forward(self, x, bad=False):
            s = self.neuron(x)
            h = x.flatten(1) + self.fc(torch.flatten(s, 1))  # (B, 12)
            if bad:
                h = h + torch.flatten(s, 1) * 0.5  # spike slices into the residual stream
            return self.fc2(self.neuron2(h))

    torch.manual_seed(0)
    model = Net().double().eval()
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64) * 5
    ref = model(x)
    with spike_driven(model):
        torch.testing.assert_close(model(x), ref, atol=1e-12, rtol=0)
        with pytest.raises(SpikeDrivenError, match=r"'neuron2' \(SFANeuron\).*by mul"):
            model(x, bad=True)


def test_spike_derived_model_output_is_an_error():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), SFANeuron())
    with spike_driven(model):
        assert get_spike_slices(model(torch.rand(1, 3, 2, 2))) is not None  # slices: returned
    sums = SumSpikes()
    with spike_driven(sums), pytest.raises(SpikeDrivenError, match="'SumSpikes'.*returned"):
        sums(torch.rand(1, 3, 2, 2) * 4)


class SumSpikes(nn.Module):
    def __init__(self):
        super().__init__()
        self.neuron = SFANeuron()

    def forward(self, x):
        return self.neuron(x).sum(1)  # (D * B, ...) summed as if it were a batch


def test_in_place_write_of_spikes_into_a_plain_tensor_raises():
    neuron = SFANeuron()
    with spike_driven(neuron):
        s = neuron(torch.rand(1, 3) * 4)
        acc = torch.zeros(4, 3)
        with pytest.raises(SpikeDrivenError, match='in-place add_'):
            acc += s


def test_spike_tensor_rules_and_integer_mode():
    neuron = SFANeuron()
    x = torch.rand(2, 4, 3, 3) * 5
    assert type(neuron(x)) is torch.Tensor  # integer mode: ordinary tensors, no tracking
    with spike_driven(neuron):
        s = neuron(x)
    assert isinstance(s, SpikeTensor) and get_spike_slices(s).steps == 4
    kept = [
        s.flatten(2),
        s.transpose(1, 3),
        s.permute(0, 2, 1, 3),
        s.unflatten(1, (2, 2)).mT,
        s.float(),
        s[:, 1:],
        s.split(2, dim=1)[1],
        torch.cat([s, s], 1),
        s.unsqueeze(1),
    ]
    for t in kept:
        assert get_spike_slices(t) == get_spike_slices(s) and spikes_lost(t) is None
    lost = {
        'mul': s * 2,
        'sum': s.sum(0),
        'transpose': s.transpose(0, 1),
        'reshape': s.reshape(2, -1),
        'cat': torch.cat([s, s], 0),
        '__getitem__': s[1],
    }
    for op, t in lost.items():
        assert get_spike_slices(t) is None and spikes_lost(t).startswith(op), op
    assert spikes_lost((s * 2).flatten(2) + 1).startswith('mul')  # the first cause is kept


# ---------------------------------------------------------------------------------------------
# Whole detector and segmentor
#
# Built from the project's toy configs. Their synaptic weights and biases are rounded to multiples
# of 2^-10 (and scaled so that every neck/head neuron emits counts 0..4): with such dyadic values
# every conv/linear sum is exact in float32 whatever the summation order, so integer and
# spike-driven mode must agree to the last bit (float64 is not an option: mmcv's NMS is float32).

CONFIGS = REPO / 'configs' / 'toy'


def make_dyadic(model: nn.Module, scale: float = 4.0, bits: int = 10) -> nn.Module:
    for m in model.modules():
        if isinstance(m, SYNAPTIC):
            for p in m.parameters(recurse=False):
                p.data.copy_((p.data * scale * 2**bits).round() / 2**bits)
    return model


def build_toy(config: str, scope: str):
    importlib.import_module('mmcv.ops')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import sdt_dense  # noqa: F401  (registers the models)

    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    cfg = Config.fromfile(str(CONFIGS / config))
    cfg.model.backbone.init_cfg = None
    if scope == 'mmdet':  # fewer proposals and detections: a cheaper test
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=40)
        cfg.model.test_cfg.rcnn.max_per_img = 20
    init_default_scope(scope)
    torch.manual_seed(0)
    model = registry.build(cfg.model)  # PyTorch's default init: weights are made dyadic anyway
    return randomise_bn(make_dyadic(model)).eval()


def _predict_both_modes(model, inputs, data_samples):
    """Integer and spike-driven predictions, with the synaptic inputs recorded in each mode."""
    results = []
    for mode in ('integer', 'spike'):
        samples = copy.deepcopy(data_samples)
        ctx = spike_driven(model) if mode == 'spike' else torch.no_grad()
        with ctx:
            rec = record_inputs(model, inputs, samples, mode='predict')
        rec.results = samples
        results.append(rec)
    return results


def _check_contract(integer, spiking, *real_input):
    layers = integer.spiking_layers()
    assert set(integer.after_neuron) - layers == set(real_input)  # the only real-input layers
    assert spiking.spiking_layers() == layers
    assert all(spiking.binary[n] for n in layers)
    assert not all(integer.binary[n] for n in layers)  # the check can fail
    _check_matmul_contract(integer, spiking)


@pytest.mark.slow
def test_mask_rcnn_spike_driven_equals_integer():
    model = build_toy('mask-rcnn_e-spikeformer-t_spike-fpn_toy.py', 'mmdet')
    from mmdet.testing import demo_mm_inputs

    packed = demo_mm_inputs(2, [[3, 64, 64], [3, 48, 64]], num_items=[2, 3], with_mask=True)
    data = model.data_preprocessor(packed, False)
    integer, spiking = _predict_both_modes(model, data['inputs'], data['data_samples'])
    assert {n.split('.')[0] for n in integer.counts} == {'backbone', 'neck', 'rpn_head', 'roi_head'}
    assert all(c == {0, 1, 2, 3, 4} for c in integer.counts.values())  # not a trivial model
    # the stem reads pixels; the box predictors read the last fc's real output, as published
    _check_contract(
        integer,
        spiking,
        'backbone.downsamples.0.conv',
        'roi_head.bbox_head.fc_cls',
        'roi_head.bbox_head.fc_reg',
    )
    assert any(n.startswith('roi_head.mask_head') for n in spiking.spiking_layers())
    for a, b in zip(integer.results, spiking.results):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) > 0 and len(a) == len(b)
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(b[key], a[key], atol=1e-4, rtol=0)
        assert torch.equal(b.masks, a.masks) and a.masks.any()


def test_semantic_fpn_spike_driven_equals_integer():
    model = build_toy('fpn_e-spikeformer-t_toy.py', 'mmseg')
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=g) for _ in range(2)]
    samples = [SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64))) for _ in range(2)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), False)
    integer, spiking = _predict_both_modes(model, data['inputs'], data['data_samples'])
    assert {n.split('.')[0] for n in integer.counts} == {'backbone', 'neck', 'decode_head'}
    assert set.union(*integer.counts.values()) == {0, 1, 2, 3, 4}
    _check_contract(integer, spiking, 'backbone.downsamples.0.conv')
    assert 'decode_head.conv_seg' in spiking.spiking_layers()
    for a, b in zip(integer.results, spiking.results):
        torch.testing.assert_close(b.seg_logits.data, a.seg_logits.data, atol=1e-4, rtol=0)
        assert torch.equal(b.pred_sem_seg.data, a.pred_sem_seg.data)


@pytest.mark.parametrize('kind', ['ann', 'lif'])
def test_model_without_sfa_neuron_is_refused(kind):
    """Nothing to convert is an error, not a no-op whose outputs trivially equal the integer
    model's (with convert_to_spike_driven and with the context manager)."""
    from sdt_dense.models import LIFNeuron

    body = [nn.Conv2d(3, 4, 3)] + ([LIFNeuron(T=2)] if kind == 'lif' else [nn.ReLU()])
    model = nn.Sequential(*body, nn.Conv2d(4, 4, 1))
    with pytest.raises(SpikeDrivenError, match='Sequential has no SFA neuron'):
        with spike_driven(model):
            pass
    with pytest.raises(SpikeDrivenError, match='no SFA neuron'):
        convert_to_spike_driven(model)
    assert not any(model[0]._forward_pre_hooks.values())  # nothing was installed
    # control: one SFA neuron is enough to convert
    with spike_driven(nn.Sequential(*body, SFANeuron(D=4), nn.Conv2d(4, 4, 1))) as converted:
        assert is_spike_driven(converted)

"""Firing rates, synaptic operations and energy.

The tiny networks are fed hand-set membrane potentials whose spike counts are known, so every number
below is computed by hand in the comments (fan-out maps of padded/strided convs included).
"""

import csv
import importlib.util
import json

import pytest
import torch
from torch import nn

from sdt_dense.analysis import (
    EnergyAccumulator,
    EnergyConstants,
    EnergyMeter,
    FiringRateMonitor,
    plot_firing_rates,
    write_report,
)
from sdt_dense.models import ESpikeFormer, LIFNeuron, repeat_over_time
from sdt_dense.models.layers import SpikeDrivenSelfAttention
from sdt_dense.models.neurons import SFANeuron
from sdt_testing import REPO  # noqa: E402

# Membrane potentials (1, 2, 3, 3) -> SFA counts round(clamp(x, 0, 4)) (half-to-even):
#   channel 0 [[0, 1, 2], [3, 4, 0], [0, 0, 1]]  (-1 -> 0, 2.5 -> 2, 6 -> 4, 0.6 -> 1), sum 11
#   channel 1 [[4, 0, 0], [0, 2, 0], [0, 0, 0]]  (1.6 -> 2, 0.4 -> 0), sum 6
X = torch.tensor(
    [
        [
            [[-1.0, 1.0, 2.5], [3.0, 6.0, 0.0], [0.0, 0.0, 0.6]],
            [[4.0, 0.0, 0.0], [0.0, 1.6, 0.0], [0.0, 0.4, 0.0]],
        ]
    ]
)
COUNT_SUM, NUMEL, NONZERO = 17, 18, 7
HISTOGRAM = [11, 2, 2, 1, 2]  # counts 0..4


class TinyNet(nn.Module):
    """Every synaptic layer kind, each fed by its own SFA neuron from the same input."""

    def __init__(self, with_linear: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 2, 3, padding=1)  # real-valued input: MACs
        self.n_pw, self.pw = SFANeuron(4), nn.Conv2d(2, 3, 1)
        self.n_dw, self.dw = SFANeuron(4), nn.Conv2d(2, 2, 3, padding=1, groups=2)
        self.n_gc, self.gc = SFANeuron(4), nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)
        self.n_c1, self.c1 = SFANeuron(4), nn.Conv1d(2, 3, 1)
        self.with_linear = with_linear
        if with_linear:
            self.n_fc, self.fc = SFANeuron(4), nn.Linear(18, 3)

    def forward(self, x):
        outs = [
            self.stem(x),
            self.pw(self.n_pw(x)),
            self.dw(self.n_dw(x)),
            self.gc(self.n_gc(x)),
            self.c1(self.n_c1(x.flatten(2))),
        ]
        if self.with_linear:
            outs.append(self.fc(self.n_fc(x.flatten(1))))
        return outs


# Per image: (input kind, dense MACs, SOP estimate = 17/18 * MACs, exact ACs).
EXPECTED = {
    # out 2x3x3=18 positions x (2 in / 1 group) x 9 taps
    'stem': ('real', 324, 0, 0),
    # 27 outputs x 2 inputs; exact = 17 spikes x 3 outputs each
    'pw': ('spike', 54, 51, 51),
    # 18 outputs x 1 x 9; fan-out of a 3x3 map under a padded 3x3 kernel [[4,6,4],[6,9,6],[4,6,4]]:
    # ch0 1*6 + 2*4 + 3*6 + 4*9 + 1*4 = 72, ch1 4*4 + 2*9 = 34 -> 106
    'dw': ('spike', 162, 153, 106),
    # out 4x2x2=16 x 1 x 9; stride 2 / pad 1 fan-out [[1,2,1],[2,4,2],[1,2,1]]:
    # ch0 1*2 + 2*1 + 3*2 + 4*4 + 1*1 = 27, ch1 4*1 + 2*4 = 12 -> 39 x 2 outputs per group
    'gc': ('spike', 144, 136, 78),
    # Conv1d k=1 on (1, 2, 9): 27 outputs x 2 inputs
    'c1': ('spike', 54, 51, 51),
    # Linear 18 -> 3
    'fc': ('spike', 54, 51, 51),
}
MACS, SOP_EST, SOP_EXACT = 324, 442, 337


def _measure(model, inputs, constants=EnergyConstants(), headline='estimate'):
    with EnergyMeter(model) as meter:
        for x in inputs:
            model(x)
            meter.step(x.shape[0])
    return meter.report(constants, headline, dict(model='tiny', task='det'))


def _load_tool(name):
    path = REPO / 'tools' / 'analysis_tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_sdt_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_network_hand_computed():
    report = _measure(TinyNet().eval(), [X])
    assert report.num_images == 1
    rows = {r.name: r for r in report.layers}
    assert list(rows) == list(EXPECTED)
    for name, (kind, macs, est, exact) in EXPECTED.items():
        r = rows[name]
        assert (r.input_kind, r.calls) == (kind, 1), name
        assert r.dense_macs == macs, name
        assert r.sop_estimate == pytest.approx(est), name
        assert r.sop_exact == exact, name
        assert r.mac_ops == (macs if kind == 'real' else 0), name
        if kind == 'spike':
            assert r.input_firing_rate == pytest.approx(17 / 18), name
            # E = E_AC * SOP, in mJ (1 mJ = 1e9 pJ)
            assert r.energy_mj_estimate == pytest.approx(0.9 * est * 1e-9), name
            assert r.energy_mj_exact == pytest.approx(0.9 * exact * 1e-9), name
        else:
            assert r.input_firing_rate is None
            assert r.energy_mj_estimate == r.energy_mj_exact == pytest.approx(4.6 * 324e-9)

    for n in report.neurons:  # every neuron saw the same counts
        assert (n.numel, n.count_sum, n.nonzero, n.histogram) == (NUMEL, COUNT_SUM, NONZERO, HISTOGRAM)
        assert n.mean_count == pytest.approx(17 / 18)
        assert n.binary_firing_rate == pytest.approx(17 / 72)
        assert n.nonzero_fraction == pytest.approx(7 / 18)

    t = report.totals()
    assert (t['mac_ops'], t['ac_ops_exact']) == (MACS, SOP_EXACT)
    assert t['ac_ops_estimate'] == pytest.approx(SOP_EST)
    assert t['ac_ops'] == pytest.approx(SOP_EST)  # headline = estimate
    # 4.6 * 324 + 0.9 * 442 = 1888.2 pJ ; 4.6 * 324 + 0.9 * 337 = 1793.7 pJ
    assert t['total_energy_mj'] == pytest.approx(1888.2e-9)
    assert t['total_energy_mj_exact'] == pytest.approx(1793.7e-9)
    assert t['mean_firing_rate'] == pytest.approx(17 / 18)
    assert t['mean_binary_firing_rate'] == pytest.approx(17 / 72)


def test_constants_and_headline_exact():
    report = _measure(TinyNet().eval(), [X], EnergyConstants(e_mac_pj=3.0, e_ac_pj=1.0), 'exact')
    t = report.totals()
    assert t['total_energy_mj'] == pytest.approx((3 * 324 + 337) * 1e-9)
    assert t['total_energy_mj_estimate'] == pytest.approx((3 * 324 + 442) * 1e-9)
    assert t['ac_ops'] == SOP_EXACT
    with pytest.raises(ValueError, match='e_ac_pj'):
        EnergyConstants(e_ac_pj=-0.9)
    with pytest.raises(ValueError, match='SOP mode'):
        report.__class__(report.layers, report.neurons, 1, headline_sop='dense')


def test_integer_mode_statistics_match_spike_driven():
    """The monitor reads integer-mode outputs (k / norm) and spike slices alike."""
    model = TinyNet().eval()
    with FiringRateMonitor(model) as monitor, torch.no_grad():
        model(X)
    for n in monitor.rows():
        assert (n.count_sum, n.histogram) == (COUNT_SUM, HISTOGRAM)
    with pytest.raises(ValueError, match='no spiking neuron'):
        FiringRateMonitor(nn.Linear(2, 2))


def test_batch_size_and_varying_sizes():
    model = TinyNet().eval()
    single = {r.name: r for r in _measure(model, [X]).layers}
    batch = _measure(model, [X.repeat(2, 1, 1, 1)])
    assert batch.num_images == 2
    for r in batch.layers:  # per-image numbers do not depend on the batch size
        s = single[r.name]
        assert (r.dense_macs, r.sop_exact, r.mac_ops) == (s.dense_macs, s.sop_exact, s.mac_ops)
        assert r.sop_estimate == pytest.approx(s.sop_estimate)

    conv = TinyNet(with_linear=False).eval()
    x2 = torch.arange(40.0).reshape(1, 2, 4, 5) % 6 - 1  # another size, counts 0..4
    both = _measure(conv, [X, x2])
    one, two = (_measure(conv, [x]) for x in (X, x2))
    rows1, rows2 = ({r.name: r for r in rep.layers} for rep in (one, two))
    for r in both.layers:  # averages over images of their own per-image numbers
        for key in ('dense_macs', 'mac_ops', 'sop_estimate', 'sop_exact', 'energy_mj_estimate'):
            expected = (getattr(rows1[r.name], key) + getattr(rows2[r.name], key)) / 2
            assert getattr(r, key) == pytest.approx(expected), (r.name, key)
    assert both.neurons[0].count_sum == one.neurons[0].count_sum + two.neurons[0].count_sum


def test_attention_spike_matrix_products():
    """E-SDSA with q = k = v = the input counts (conv 4*I undoes the neuron's 1/4, BN identity)."""
    attn = SpikeDrivenSelfAttention(dim=2, num_heads=1, value_ratio=1).eval()
    for unit in (attn.q, attn.k, attn.v):
        unit.conv.weight.data = 4 * torch.eye(2).view(2, 2, 1, 1)
        unit.bn.eps = 0.0
    report = _measure(attn, [X])
    rows = {r.name: r for r in report.layers}
    # k^T v: (1, 1, 2, 9) @ (1, 1, 9, 2) -> 4 outputs x 9 = 36 dense MACs. Exact: AND of spike
    # pairs, sum over tokens n of (sum_i k_ni)(sum_j v_nj); per-token totals [4,1,2,3,6,0,0,0,1]
    # -> 16+1+4+9+36+1 = 67. Estimate: r_k * r_v * MACs = (17/18)^2 * 36 = 289/9.
    kv = rows['kv_matmul']
    assert (kv.type, kv.dense_macs, kv.sop_exact) == ('SpikeMatMul', 36, 67)
    assert kv.sop_estimate == pytest.approx(289 / 9)
    # q (k^T v): 18 outputs x 2 = 36 MACs; each of the 17 q spikes adds a row of d_v = 2.
    qkv = rows['qkv_matmul']
    assert (qkv.dense_macs, qkv.sop_exact) == (36, 34)
    assert qkv.sop_estimate == pytest.approx(34)
    # the 1x1 q/k/v convs read the head neuron's spikes: estimate == exact
    for name in ('q.conv', 'k.conv', 'v.conv'):
        assert rows[name].sop_exact == 17 * 2 and rows[name].sop_estimate == pytest.approx(34)


def test_report_outputs(tmp_path):
    report = _measure(TinyNet().eval(), [X])
    write_report(report, str(tmp_path))
    plot_firing_rates(report.neurons, str(tmp_path / 'firing_rates.png'))
    assert (tmp_path / 'energy.md').read_text().startswith('# Energy of ')
    data = json.loads((tmp_path / 'energy.json').read_text())
    assert data['num_images'] == 1 and data['headline_sop'] == 'estimate'
    assert data['constants']['e_mac_pj'] == 4.6 and data['constants']['e_ac_pj'] == 0.9
    # totals against the hand-computed counts of TinyNet (not against the rows they sum)
    assert data['mac_ops'] == MACS and data['ac_ops_exact'] == SOP_EXACT
    assert data['ac_ops'] == pytest.approx(SOP_EST)
    assert data['dense_macs'] == sum(e[1] for e in EXPECTED.values())
    assert data['total_energy_mj'] == pytest.approx((MACS * 4.6 + SOP_EST * 0.9) * 1e-9)
    assert [n['name'] for n in data['neurons']] == ['n_pw', 'n_dw', 'n_gc', 'n_c1', 'n_fc']
    md = (tmp_path / 'energy.md').read_text()
    assert '| gc | Conv2d | spike | 144 |' in md and 'E_AC = 0.9 pJ' in md
    assert (tmp_path / 'firing_rates.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_accumulator_rejects_bad_rows():
    acc = EnergyAccumulator()
    row = dict(
        name='x',
        type='Conv2d',
        input_kind='mixed',
        dense_macs=1,
        input_count_sum=1,
        input_numel=1,
        exact_acs=1,
        mac_ops=1,
        calls=2,
    )
    with pytest.raises(ValueError, match='both spike and real'):
        acc.add([row], 1)
    with pytest.raises(RuntimeError, match='no forward pass'):
        acc.layers()
    with EnergyMeter(TinyNet().eval()) as meter:
        with pytest.raises(RuntimeError, match='no synaptic layer'):
            meter.step(1)


def _uniform_fan_out(module: nn.Module) -> bool:
    """Every input element feeds equally many MACs: the exact count must equal the estimate."""
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        return set(module.padding) == {0} and set(module.output_padding) == {0}
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return set(module.kernel_size) | set(module.stride) == {1} and set(module.padding) == {0}
    return False


# ------------------------------------------------------------------------------------------------
# Multi-step LIF models: spikes over T real timesteps


class TinyLIF(nn.Module):
    """Image repeated over T = 2 timesteps -> 1x1 stem (weight 1) -> LIF -> padded Conv1d k=3."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv1d(1, 1, 1, bias=False)
        self.stem.weight.data.fill_(1.0)
        self.lif = LIFNeuron(T=2)
        self.conv = nn.Conv1d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(self.lif(self.stem(repeat_over_time(x, 2))))


def test_lif_network_hand_computed():
    # LIF (tau 2, threshold 1, reset 0): h_t = (v_{t-1} + x) / 2. Inputs [2, 1.5, 1]:
    #   t=1: h = [1, .75, .5] -> spikes [1, 0, 0]; t=2: h = [1, 1.125, .75] -> spikes [1, 1, 0]
    #   counts over T [2, 1, 0]: 3 spikes on 3 elements, mean count 1, binary rate 1/2
    report = _measure(TinyLIF().eval(), [torch.tensor([[[2.0, 1.5, 1.0]]])])
    (neuron,) = report.neurons
    assert (neuron.neuron_type, neuron.D, neuron.steps, neuron.norm) == ('LIFNeuron', 2, 2, 1.0)
    assert (neuron.numel, neuron.count_sum, neuron.nonzero) == (3, 3, 2)
    assert neuron.histogram == [1, 1, 1]
    assert neuron.binary_firing_rate == pytest.approx(0.5)
    stem, conv = report.layers
    # the stem computes the same 3 outputs at both timesteps: charged once, 3 x 1 x 1 MACs
    assert (stem.input_kind, stem.dense_macs, stem.mac_ops) == ('real', 3, 3)
    # per timestep 6 outputs x 1 input x 3 taps = 18 MACs; estimate = 1 spike/element * 18;
    # exact: fan-out of a padded k=3 over 3 positions [2, 3, 2] x counts [2, 1, 0] = 7, x 2 outputs
    assert (conv.input_kind, conv.dense_macs, conv.sop_exact) == ('spike', 18, 14)
    assert conv.input_firing_rate == pytest.approx(1.0)
    assert conv.sop_estimate == pytest.approx(18)
    t = report.totals()
    assert t['total_energy_mj'] == pytest.approx((4.6 * 3 + 0.9 * 18) * 1e-9)  # 30.0 pJ
    assert t['total_energy_mj_exact'] == pytest.approx((4.6 * 3 + 0.9 * 14) * 1e-9)  # 26.4 pJ
    assert t['mean_binary_firing_rate'] == pytest.approx(0.5)


def test_lif_backbone_estimate_and_exact_agree_where_they_must():
    """E-SpikeFormer 't' with LIF neurons (T = 2): per-timestep MACs x spikes over T is the exact
    count wherever every input feeds equally many outputs (1x1 convs, q (k^T v))."""
    torch.manual_seed(0)
    model = ESpikeFormer(arch='t', neuron_cfg=dict(type='LIF', T=2), out_indices=(4,)).eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.0, 2.0)
    report = _measure(model, [torch.rand(1, 3, 32, 32)])
    modules = dict(model.named_modules())
    rows = {r.name: r for r in report.layers}
    stem = rows['downsamples.0.conv']
    conv = modules['downsamples.0.conv']
    # only the stem reads real values: every other layer is fed by a LIF neuron's spikes
    assert [r.name for r in report.layers if r.input_kind != 'spike'] == ['downsamples.0.conv']
    # one 16x16 output map per timestep, computed once
    assert stem.mac_ops == conv.out_channels * 16 * 16 * conv.in_channels * 7 * 7
    equal = 0
    for r in report.layers:
        if (
            r.input_kind == 'spike'
            and r.sop_exact
            and (_uniform_fan_out(modules[r.name]) or r.name.endswith('qkv_matmul'))
        ):
            assert r.sop_exact == pytest.approx(r.sop_estimate, rel=1e-9), r.name
            equal += 1
    assert equal >= 10
    # spike-matrix products per timestep: 8 heads x N = 2x2 tokens x d_v = 4C/8 x d = C/8 for the
    # C = 96 (stage 3) and C = 128 (stage 4) blocks; both k^T v and q (k^T v)
    assert {r.dense_macs for r in report.layers if r.type == 'SpikeMatMul'} == {
        8 * 4 * 48 * 12,
        8 * 4 * 64 * 16,
    }
    assert {n.neuron_type for n in report.neurons} == {'LIFNeuron'}
    assert all(n.steps == 2 for n in report.neurons)
    assert 0 < report.totals()['mean_firing_rate'] <= 2


@pytest.fixture(scope='module')
def toy_detector_energy(tmp_path_factory):
    """The energy tool on the toy Mask R-CNN, 2 toy images of 64 px, with a checkpoint whose
    BatchNorm shifts are randomised so that every part of the network fires."""
    importlib.import_module('mmdet')
    from mmengine.config import Config

    from sdt_dense.toy_data import make_det_dataset

    root = tmp_path_factory.mktemp('energy')
    make_det_dataset(root / 'toy_coco', num_train=1, num_val=2, image_size=64, seed=0)
    config = str(REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py')
    from sdt_dense.cli import measure_energy as tool

    cfg = Config.fromfile(config)
    tool.init_scope(cfg)
    torch.manual_seed(0)
    model = tool.build_model(cfg, 'mmdet', backbone_only=False)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.0, 2.0)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), root / 'toy.pth')
    data = tool.main(
        [
            config,
            str(root / 'toy.pth'),
            '--num-images',
            '2',
            '--out',
            str(root / 'work_dir'),
            '--num-workers',
            '0',
            '--cfg-options',
            f'test_dataloader.dataset.data_root={root}/toy_coco/',
            'test_dataloader.dataset.pipeline.1.scale=(64,64)',
            # few RoIs keep the heads small on a CPU
            'model.test_cfg.rpn.max_per_img=8',
            'model.test_cfg.rcnn.max_per_img=4',
        ]
    )
    return root / 'work_dir', data, dict(model.named_modules())


@pytest.mark.slow
def test_toy_detector_energy_tool(toy_detector_energy):
    work_dir, data, modules = toy_detector_energy
    saved = json.loads((work_dir / 'energy.json').read_text())
    assert saved['num_images'] == 2 and saved['task'] == 'det'
    assert saved['input_size'] == '64x64'
    assert (work_dir / 'energy.md').is_file() and (work_dir / 'firing_rates.png').is_file()
    layers = saved['layers']
    # MACs: the stem on pixels, counted by hand from its shape (a 7x7 conv, 3 -> C0/2 channels,
    # stride 2 on the 64x64 input: 32x32 outputs), plus the box predictors, which read the real
    # output of the last fc as in the published head; every other layer reads spikes.
    stem = modules['backbone.downsamples.0.conv']
    assert (stem.kernel_size, stem.stride, stem.in_channels) == ((7, 7), (2, 2), 3)
    real = {r['name']: r for r in layers if r['input_kind'] == 'real'}
    assert set(real) == {
        'backbone.downsamples.0.conv',
        'roi_head.bbox_head.fc_cls',
        'roi_head.bbox_head.fc_reg',
    }
    # the predictors by hand: per image 8 RoIs (test_cfg.rpn.max_per_img=8 above), each a
    # 256 -> 4 (3 classes + background) and a 256 -> 12 (4 box deltas per class) linear map
    cls, reg = modules['roi_head.bbox_head.fc_cls'], modules['roi_head.bbox_head.fc_reg']
    assert (cls.in_features, cls.out_features, reg.in_features, reg.out_features) == (256, 4, 256, 12)
    assert real['roi_head.bbox_head.fc_cls']['dense_macs'] == 8 * 256 * 4
    assert real['roi_head.bbox_head.fc_reg']['dense_macs'] == 8 * 256 * 12
    assert saved['mac_ops'] == 32 * 32 * stem.out_channels * 3 * 49 + 8 * 256 * (4 + 12)
    # the energy convention: E = 4.6 pJ per MAC + 0.9 pJ per AC
    assert saved['total_energy_mj'] == pytest.approx(
        (saved['mac_ops'] * 4.6 + saved['ac_ops_estimate'] * 0.9) * 1e-9, rel=1e-9
    )
    assert saved['params'] == sum(p.numel() for p in modules[''].parameters())
    # the stem reads pixels (MACs); the rest of this detector reads spikes
    kinds = {r['name']: r['input_kind'] for r in layers}
    assert kinds['backbone.downsamples.0.conv'] == 'real'
    assert {k.split('.')[0] for k, v in kinds.items() if v == 'spike'} >= {
        'backbone',
        'neck',
        'rpn_head',
        'roi_head',
    }

    # Where every input element feeds equally many MACs (1x1 stride-1 unpadded convs, Conv1d k=1,
    # Linear, unpadded transposed convs, q (k^T v)) the exact count equals the estimate; padded or
    # strided convs do fewer accumulates than the estimate.
    equal = fewer = 0
    for r in layers:
        if r['input_kind'] != 'spike' or r['sop_exact'] == 0:
            continue
        module = modules[r['name']]
        if _uniform_fan_out(module) or r['name'].endswith('qkv_matmul'):
            assert r['sop_exact'] == pytest.approx(r['sop_estimate'], rel=1e-9), r['name']
            equal += 1
        elif isinstance(module, nn.Conv2d) and max(module.padding) > 0:
            assert r['sop_exact'] < r['sop_estimate'], r['name']
            fewer += 1
    assert equal >= 10 and fewer >= 10  # both kinds were exercised with spikes
    fired = {n['name'].split('.')[0] for n in saved['neurons'] if n['mean_count'] > 0}
    assert fired == {'backbone', 'neck', 'rpn_head', 'roi_head'}
    assert 0 < saved['mean_firing_rate'] <= 4
    assert saved['total_energy_mj_exact'] < saved['total_energy_mj']  # padding saves ACs


@pytest.mark.slow
def test_backbone_shape_mode(toy_detector_energy):
    """--shape: the detector checkpoint's backbone on constant input, batch 2, no dataset."""
    from sdt_dense.checkpoint import CheckpointMismatchError

    root = toy_detector_energy[0].parent
    from sdt_dense.cli import measure_energy as tool

    config = str(REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py')
    data = tool.main(
        [
            config,
            str(root / 'toy.pth'),
            '--shape',
            '32',
            '48',
            '--num-images',
            '2',
            '--batch-size',
            '2',
            '--input',
            'constant',
            '--input-value',
            '0.5',
            '--out',
            str(root / 'backbone'),
        ]
    )
    assert (data['task'], data['num_images'], data['input_size']) == ('backbone', 2, '32x48')
    assert data['params'] == toy_detector_energy[1]['backbone_params']
    assert {r['name'].split('.')[0] for r in data['layers']} == {'downsamples', 'stages'}
    # the stem on 32x48 pixels: 16x24 outputs x C0/2 x 3 x 49, per image
    stem = toy_detector_energy[2]['backbone.downsamples.0.conv']
    assert data['mac_ops'] == 16 * 24 * stem.out_channels * 3 * 49
    assert data['mean_firing_rate'] > 0.1  # the randomised BN shifts were loaded
    # strict loading: a checkpoint missing a backbone tensor is refused, in both modes
    modules = toy_detector_energy[2]
    state = torch.load(root / 'toy.pth')['state_dict']
    del state['backbone.downsamples.1.bn.bias']
    torch.save(dict(state_dict=state), root / 'broken.pth')
    with pytest.raises(CheckpointMismatchError, match='downsamples.1.bn.bias'):
        tool.load_weights(modules['backbone'], str(root / 'broken.pth'), backbone_only=True)
    with pytest.raises(RuntimeError, match='missing keys.*backbone.downsamples.1.bn.bias'):
        tool.load_weights(modules[''], str(root / 'broken.pth'), backbone_only=False)


def test_benchmark_table(tmp_path):
    det, seg = tmp_path / 'det', tmp_path / 'seg'
    det.mkdir(), seg.mkdir()
    report = _measure(TinyNet().eval(), [X])
    report.meta.update(model='toy-det', task='det', params=2_500_000, input_size='64x64')
    write_report(report, str(det))
    (det / 'metrics.json').write_text(
        json.dumps({'coco/bbox_mAP': 0.123, 'coco/segm_mAP': 0.1, 'coco/bbox_mAP_50': 0.3})
    )
    report.meta.update(model='toy-seg', task='seg')
    write_report(report, str(seg))
    (seg / 'metrics.json').write_text(json.dumps({'mIoU': 38.5, 'aAcc': 90.0}))

    tool = _load_tool('benchmark_table')
    md = tool.main([str(det), str(seg), '--out', str(tmp_path / 'table')])
    assert md == (tmp_path / 'table.md').read_text()
    measured, published = md.split('## Published')
    det_line = next(line for line in measured.splitlines() if line.startswith('| toy-det'))
    # 2.5 M params, 1888.2 pJ = 1.888e-06 mJ, mAP in percent
    for cell in ('| det |', '| 2.5 |', '| 64x64 |', '| 1.888e-06 |', '| estimate |', '| 12.3 |', '| 10.0 |'):
        assert cell in det_line, cell
    assert '| 38.5 |' in next(line for line in measured.splitlines() if line.startswith('| toy-seg'))
    # published numbers are kept apart, for the measured tasks only (auto)
    assert '38.2' in published and '48.9' in published and '78.5' not in published
    assert '38.2' not in measured
    with open(tmp_path / 'table.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['source'] for r in rows[:2]] == ['measured', 'measured']
    # the paper's own numbers are "published"; others' are "reported by <who>", shown as such
    sources = {r['model']: r['source'] for r in rows[2:]}
    assert sources['SpikeYOLO'] == 'reported by the SpikeYOLO paper'
    assert sources['Semantic FPN + E-SpikeFormer 19M'] == 'reported by a third-party reproduction'
    assert all(s.startswith(('published (E-SpikeFormer paper)', 'reported by ')) for s in sources.values())
    assert '| reported by the SpikeYOLO paper |' in published
    assert float(rows[0]['bbox_map']) == pytest.approx(12.3)
    with pytest.raises(FileNotFoundError, match='neither energy.json'):
        tool.main([str(tmp_path / 'empty_dir')])

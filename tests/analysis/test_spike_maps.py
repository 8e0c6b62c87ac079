"""Per-position firing maps (sdt_dense.analysis.spike_maps) and tools/analysis_tools/spike_maps.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sdt_dense.analysis.spike_maps import (
    SpikeMapRecorder,
    plot_firing_distribution,
    plot_stage_map,
    stage_figure_size,
)
from sdt_dense.models import ESpikeFormer
from sdt_dense.models.neurons import SFANeuron
from sdt_testing import randomise_bn, run_tool

# Membrane potentials (1, 2, 3, 3) -> SFA counts round(clamp(x, 0, 4)) (half-to-even):
#   channel 0 [[0, 1, 2], [3, 4, 0], [0, 0, 1]], channel 1 [[4, 0, 0], [0, 2, 0], [0, 0, 0]]
X = torch.tensor(
    [
        [
            [[-1.0, 1.0, 2.5], [3.0, 6.0, 0.0], [0.0, 0.0, 0.6]],
            [[4.0, 0.0, 0.0], [0.0, 1.6, 0.0], [0.0, 0.4, 0.0]],
        ]
    ]
)
SUM01 = np.array([[4, 1, 2], [3, 6, 0], [0, 0, 1]], dtype=float)  # channel 0 + channel 1
NONZERO01 = np.array([[1, 1, 1], [1, 2, 0], [0, 0, 1]], dtype=float)  # channels with count >= 1


class Net(nn.Module):
    """Stage 0: a (B, C, H, W) neuron on X, a token neuron (B, C, N) on 5 everywhere (count 4)
    and a 2x2 neuron (another size: skipped); stage 1: X alone."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.Module(), nn.Module()])
        self.stages[0].map = SFANeuron(4)
        self.stages[0].tokens = SFANeuron(4)
        self.stages[0].small = SFANeuron(4)
        self.stages[1].map = SFANeuron(4)

    def forward(self, x):
        return (
            self.stages[0].map(x),
            self.stages[0].tokens(torch.full_like(x, 5.0).flatten(2)),
            self.stages[0].small(x[..., :2, :2]),
            self.stages[1].map(x),
        )


@pytest.mark.parametrize('spike_driven', [False, True])
def test_maps_by_hand(spike_driven):
    net = Net().eval()
    for m in net.modules():
        if isinstance(m, SFANeuron):
            m.spike_driven = spike_driven  # binary slices: merged back to the same counts
    with torch.no_grad(), SpikeMapRecorder(net) as rec:
        net(X)
    maps = rec.stage_maps()
    assert list(maps) == ['stages.0', 'stages.1']
    s1 = maps['stages.1']
    np.testing.assert_allclose(s1.mean_count, SUM01 / 2)
    np.testing.assert_allclose(s1.binary_rate, SUM01 / 2 / 4)
    np.testing.assert_allclose(s1.nonzero_fraction, NONZERO01 / 2)
    s0 = maps['stages.0']
    assert s0.neurons == ['stages.0.map', 'stages.0.tokens'] and s0.skipped == ['stages.0.small']
    # 2 channels of X and 2 channels at count 4 at every position: (SUM01 + 8) / 4 elements
    np.testing.assert_allclose(s0.mean_count, (SUM01 + 8) / 4)
    np.testing.assert_allclose(s0.binary_rate, (SUM01 + 8) / 16)
    np.testing.assert_allclose(s0.nonzero_fraction, (NONZERO01 + 2) / 4)
    assert s0.summary()['mean_count'] == pytest.approx(((SUM01 + 8) / 4).mean())


def test_backbone_maps_equal_counts_from_neuron_inputs():
    """The maps of a real backbone against counts computed from each neuron's input."""
    torch.manual_seed(0)
    model = randomise_bn(ESpikeFormer(arch='t')).eval()
    model = nn.ModuleDict(dict(backbone=model))
    neurons = {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, SFANeuron) and n.startswith('backbone.stages.1.')
    }
    direct = {}
    for n, m in neurons.items():
        m.register_forward_hook(lambda mod, args, out, n=n: direct.__setitem__(n, mod.counts(args[0])))
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad(), SpikeMapRecorder(model) as rec:
        model['backbone'](x)
    stage = rec.stage_maps()['backbone.stages.1']
    assert sorted(stage.neurons) == sorted(neurons)
    total = sum(c.sum((0, 1)) for c in direct.values())  # (H, W)
    depth = sum(c.shape[0] * c.shape[1] for c in direct.values())
    assert stage.mean_count.shape == (8, 12)  # stride 4 of 32 x 48
    np.testing.assert_allclose(stage.mean_count, (total / depth).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stage.binary_rate, (total / depth / 4).numpy(), rtol=1e-6)
    nonzero = sum((c > 0).sum((0, 1)) for c in direct.values())
    np.testing.assert_allclose(stage.nonzero_fraction, (nonzero / depth).numpy(), rtol=1e-6)
    assert 0 < stage.binary_rate.mean() < 1


def test_figures_have_the_documented_size(tmp_path):
    net = Net().eval()
    with torch.no_grad(), SpikeMapRecorder(net) as rec:
        net(X)
    image = np.random.default_rng(0).integers(0, 255, (30, 45, 3), dtype=np.uint8)
    size = plot_stage_map(image, rec.stage_maps()['stages.1'], str(tmp_path / 's1.png'), padded_hw=(32, 48))
    assert size == stage_figure_size((30, 45)) == (1200, 367)  # 3 x 400, 400 * 30 / 45 + 100
    assert Image.open(tmp_path / 's1.png').size == size
    plot_firing_distribution(rec.rows(), str(tmp_path / 'dist.png'))
    assert Image.open(tmp_path / 'dist.png').size[0] > 0
    with pytest.raises(ValueError, match='no neuron statistics'):
        plot_firing_distribution([], str(tmp_path / 'none.png'))


@pytest.mark.slow
@pytest.mark.parametrize(
    'config',
    ['configs/toy/fpn_e-spikeformer-t_toy.py', 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'],
)
def test_tool_writes_one_png_per_stage(tmp_path, config):
    img = tmp_path / 'tiny.png'
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(img)
    out = tmp_path / 'maps'
    proc = run_tool(['analysis_tools/spike_maps.py', config, img, '--out', out], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'ETA' in proc.stdout  # the progress bar
    summary = json.loads((out / 'spike_maps.json').read_text())
    stages = [f'backbone.downsamples.{i}' for i in range(1, 5)] + [f'backbone.stages.{i}' for i in range(5)]
    assert sorted(summary['stages']) == sorted(stages)
    assert summary['image_size'] == [40, 56]
    for stage in stages:
        assert Image.open(out / f'{stage}.png').size == stage_figure_size((40, 56)) == (1200, 386)
        s = summary['stages'][stage]
        assert 0 <= s['binary_rate'] <= 1 and s['mean_count'] == pytest.approx(4 * s['binary_rate'])
    assert (out / 'firing_distribution.png').stat().st_size > 1000


def test_tool_errors(tmp_path):
    from sdt_dense.cli.plot_spike_maps import main

    with pytest.raises(FileNotFoundError, match='image not found'):
        main(['configs/toy/fpn_e-spikeformer-t_toy.py', str(tmp_path / 'none.png'), '--out', str(tmp_path)])
    with pytest.raises(ValueError, match='image config'):
        main(
            [
                'configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py',
                str(tmp_path / 'none.png'),
                '--out',
                str(tmp_path),
            ]
        )
    with pytest.raises(SystemExit):
        main(['configs/toy/fpn_e-spikeformer-t_toy.py', 'a.pth', 'b.png', 'c.png', '--out', str(tmp_path)])

"""FiringRateHook: per-stage firing rates in the visualizer's scalars.json, warnings once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from torch import nn

from sdt_dense.engine.hooks.firing_rate_hook import FiringRateHook, neuron_stage
from sdt_dense.models.neurons import LIFNeuron, SFANeuron
from sdt_testing.toy_runner import toy_runner_cfg

D = 4


class _Stage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.neuron = SFANeuron(D=D)


@MODELS.register_module(force=True)
class SpikyToyModel(BaseModel):
    """Three backbone stages: 0 fires at varying counts, 1 never fires (its input is < 0), 2 is
    saturated at D (input > D); a head neuron outside the backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_in = nn.Linear(4, 8)
        self.backbone = nn.Module()
        self.backbone.stages = nn.ModuleList(_Stage() for _ in range(3))
        self.head_neuron = SFANeuron(D=D)
        self.fc_out = nn.Linear(8, 1)

    def forward(self, inputs: torch.Tensor, target: torch.Tensor, mode: str = 'loss'):
        h = self.fc_in(inputs) * 3
        s0 = self.backbone.stages[0].neuron(h)
        s1 = self.backbone.stages[1].neuron(-h.abs() - 1)
        s2 = self.backbone.stages[2].neuron(h.abs() + 10)
        y = self.fc_out(self.head_neuron(s0 + s1 + s2)).squeeze(-1)
        loss = ((y - target) ** 2).mean()
        return dict(loss=loss) if mode == 'loss' else [dict(pred=y)]


def _runner(tmp_path, hook_cfg: dict, max_iters: int = 6) -> Runner:
    cfg = toy_runner_cfg(str(tmp_path / 'work'), max_iters=max_iters, interval=100, hooks=[hook_cfg])
    cfg['model'] = dict(type='SpikyToyModel')
    cfg['visualizer'] = dict(
        type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name=f'firing_{tmp_path.name}'
    )
    return Runner.from_cfg(cfg)


def _read_scalars(runner: Runner) -> dict:
    """``{step: {key: value}}`` of every line of the local backend's scalars.json."""
    path = Path(runner.log_dir, 'vis_data', 'scalars.json')
    out: dict = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out.setdefault(rec.pop('step'), {}).update(rec)
    return out


def test_neuron_stage_rule():
    assert neuron_stage('backbone.stages.3.0.attn.q_neuron') == 'backbone.stages.3'
    assert neuron_stage('backbone.downsamples.1.neuron') == 'backbone.downsamples.1'
    assert neuron_stage('backbone.conv_stages.0.1.conv1.neuron') == 'backbone.conv_stages.0'
    assert neuron_stage('rpn_head.rpn_conv.neuron') == 'rpn_head.rpn_conv'
    assert neuron_stage('neuron') == 'neuron'


@pytest.mark.slow  # an mmengine Runner
def test_scalars_match_independent_counts_and_warn_once(tmp_path):
    runner = _runner(tmp_path, dict(type='FiringRateHook', interval=2, low_rate=0.01, high_rate=0.99))
    # Independent record: counts from each neuron's *input* (round(clamp(x, 0, D))), per forward.
    seen = {i: [] for i in range(3)}
    for i, stage in enumerate(runner.model.backbone.stages):
        stage.neuron.register_forward_hook(
            lambda m, args, out, i=i: seen[i].append(torch.round(torch.clamp(args[0].detach(), 0, D)))
        )
    runner.train()

    scalars = _read_scalars(runner)
    logged = {step: vals for step, vals in scalars.items() if 'firing_rate/backbone.stages.0' in vals}
    assert sorted(logged) == [2, 4, 6]  # every 2nd of 6 iterations, 1-based
    for step, vals in logged.items():
        assert not any('head_neuron' in k for k in vals)  # include='^backbone\\.' by default
        for i in range(3):
            counts = seen[i][step - 1]  # one training forward per iteration
            assert vals[f'spike_count/backbone.stages.{i}'] == pytest.approx(float(counts.mean()), abs=1e-6)
            assert vals[f'firing_rate/backbone.stages.{i}'] == pytest.approx(
                float(counts.mean()) / D, abs=1e-6
            )
        assert 0 < vals['firing_rate/backbone.stages.0'] < 1
        assert vals['firing_rate/backbone.stages.1'] == 0
        assert vals['firing_rate/backbone.stages.2'] == 1

    log = Path(runner.log_dir, f'{Path(runner.log_dir).name}.log').read_text()
    assert log.count('FiringRateHook: stage backbone.stages.1 fires at binary rate 0 < low_rate') == 1
    assert log.count('FiringRateHook: stage backbone.stages.2 fires at binary rate 1 > high_rate') == 1
    assert 'FiringRateHook: stage backbone.stages.0' not in log
    assert log.count('FiringRateHook') == 2


@pytest.mark.slow  # an mmengine Runner
def test_include_none_measures_every_neuron_and_checks_can_be_disabled(tmp_path):
    runner = _runner(
        tmp_path,
        dict(type='FiringRateHook', interval=3, include=None, low_rate=None, high_rate=None),
        max_iters=3,
    )
    runner.train()
    vals = _read_scalars(runner)[3]
    assert {k for k in vals if k.startswith('firing_rate/')} == {
        'firing_rate/backbone.stages.0',
        'firing_rate/backbone.stages.1',
        'firing_rate/backbone.stages.2',
        'firing_rate/head_neuron',
    }
    assert 'FiringRateHook' not in Path(runner.log_dir, f'{Path(runner.log_dir).name}.log').read_text()


def test_lif_counts_are_spikes_over_T():
    """A multi-step neuron's count is its number of spikes over the T real timesteps."""
    from sdt_dense.engine.hooks.firing_rate_hook import integer_counts, neuron_steps

    lif = LIFNeuron(T=2)
    spikes = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # (T * B, S) with T=2, B=1
    assert integer_counts(lif, spikes).tolist() == [[2.0, 1.0]]
    assert neuron_steps(lif) == 2


@pytest.mark.slow  # an mmengine Runner
def test_errors(tmp_path):
    with pytest.raises(ValueError, match='interval'):
        FiringRateHook(interval=0)
    with pytest.raises(ValueError, match='low_rate'):
        FiringRateHook(low_rate=0.5, high_rate=0.4)
    cfg = toy_runner_cfg(str(tmp_path / 'w'), max_iters=2, hooks=[dict(type='FiringRateHook')])
    with pytest.raises(ValueError, match='no spiking neuron'):
        Runner.from_cfg(cfg).train()  # RelToyModel has no neuron

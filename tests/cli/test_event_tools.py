"""Event-camera detection through the tools: make_toy_data --task events, tools/train.py,
tools/test.py, the energy tool and the chance-level tool on a tiny toy set, and tools/dist_train.sh
with 2 CPU processes (gloo)."""

from __future__ import annotations

import json

import pytest
import torch

import sdt_dense  # noqa: F401  (allow-lists the classes mmengine checkpoints pickle)
from sdt_testing import REPO, free_port, run_tool

TOY = REPO / 'configs' / 'toy' / 'retinanet_e-spikeformer-t_spike-fpn_events_toy.py'


def _tiny_data(tmp_path):
    data = tmp_path / 'toy_events'
    proc = run_tool(
        [
            'misc/make_toy_data.py',
            '--task',
            'events',
            '--out',
            data,
            '--num-train',
            '2',
            '--num-val',
            '1',
            '--num-test',
            '1',
            '--duration',
            '0.8',
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'train: 2 recordings / 16 labelled timestamps' in proc.stdout
    return data


def _config(tmp_path, data, iters=4):
    cfg = tmp_path / 'toy_events.py'
    cfg.write_text(f"""
_base_ = [{str(TOY)!r}]
_root = {str(data) + '/'!r}
_loader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=_root))
train_dataloader = dict(batch_size=2, **_loader)
val_dataloader = dict(batch_size=2, **_loader)
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval={iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
randomness = dict(seed=0, deterministic=True)
""")
    return cfg


@pytest.mark.slow
def test_toy_events_train_test_energy_chance(tmp_path):
    data = _tiny_data(tmp_path)
    cfg = _config(tmp_path, data)
    work = tmp_path / 'work'
    train = run_tool(['train.py', cfg, '--work-dir', work])
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    test = run_tool(['test.py', cfg, ckpt, '--work-dir', tmp_path / 'test'])
    assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert {'prophesee/mAP', 'prophesee/mAP_50', 'prophesee/num_images'} <= set(metrics)
    # 0.8 s recording, labels every 0.1 s: 0.6 .. 0.8 s are scored (t > 0.5 s), if they keep a box
    assert 0 < metrics['prophesee/num_images'] <= 3

    out = tmp_path / 'energy'
    energy = run_tool(['analysis_tools/energy.py', cfg, ckpt, '--num-images', '2', '--out', out])
    assert energy.returncode == 0, (energy.stdout + energy.stderr)[-4000:]
    report = json.loads((out / 'energy.json').read_text())
    assert report['input_size'] == '64x80' and report['num_images'] == 2
    stem = next(r for r in report['layers'] if r['name'] == 'backbone.downsamples.0.conv')
    # the stem on T = 2 different event frames (2 channels, 76 x 60 padded to 80 x 64): k7 s2 ->
    # 32 x 40 x 12 channels, charged as dense MACs once per real timestep
    per_step = 32 * 40 * 12 * 2 * 7 * 7
    assert stem['input_kind'] == 'real' and stem['mac_ops'] == 2 * per_step
    assert report['total_energy_mj'] > 0

    chance = run_tool(
        ['analysis_tools/event_chance.py', cfg, '--seeds', '2', '--out', tmp_path / 'chance.json']
    )
    assert chance.returncode == 0, (chance.stdout + chance.stderr)[-4000:]
    result = json.loads((tmp_path / 'chance.json').read_text())
    assert 0 <= result['mAP'] < 0.1 and 'mAP_50_std' in result


@pytest.mark.slow
def test_toy_events_dist_train_on_cpu(tmp_path):
    data = _tiny_data(tmp_path)
    cfg = _config(tmp_path, data, iters=2)
    work = tmp_path / 'work'
    train = run_tool(['dist_train.sh', cfg, '2', '--work-dir', work], PORT=str(free_port()))
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 2
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())
    assert 'prophesee/mAP' in log  # the validation at the end ran on both ranks' results

"""RVT's preprocessed layout through the tools: make_rvt_toy_data.py writes tiny Gen1 and 1 Mpx
data, tools/train.py trains the toy configs for a few iterations and tools/test.py scores them
with RVT's protocol."""

from __future__ import annotations

import json

import h5py  # noqa: E402,F401  (test requirements: fail, never skip)
import hdf5plugin  # noqa: E402,F401
import pytest

import sdt_dense  # noqa: F401  (allow-lists the classes mmengine checkpoints pickle)
from sdt_testing import REPO, run_tool


@pytest.mark.slow
@pytest.mark.parametrize('name, dataset', [('gen1', 'gen1'), ('1mpx', 'gen4')])
def test_rvt_toy_train_test(tmp_path, name, dataset):
    data = tmp_path / f'toy_rvt_{name}'
    proc = run_tool(
        [
            'misc/make_rvt_toy_data.py',
            '--dataset',
            dataset,
            '--out',
            data,
            '--num-train',
            '1',
            '--num-val',
            '1',
            '--num-test',
            '1',
            '--duration',
            '0.7',
        ]
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads((data / 'toy_rvt.json').read_text())['splits']
    # 0.7 s, labels every 0.1 s from 0.1 s: 7 frames, windows every 50 ms from 0.1 s: 13
    assert summary['test']['frames'] == 7 and summary['test']['histograms'] == 13
    toy = REPO / 'configs' / 'toy' / f'retinanet_e-spikeformer-t_spike-fpn_rvt-{name}_toy.py'
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"""
_base_ = [{str(toy)!r}]
_root = {str(data) + '/'!r}
# one histogram per sample (T = 1) keeps the 640 x 360 1 Mpx run short
_loader = dict(num_workers=0, persistent_workers=False,
               dataset=dict(data_root=_root, num_steps=1))
model = dict(backbone=dict(T=1))
train_dataloader = dict(batch_size=1, **_loader)
val_dataloader = dict(batch_size=2, **_loader)
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)  # no validation: tools/test.py scores
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
""")
    work = tmp_path / 'work'
    train = run_tool(['train.py', cfg, '--work-dir', work])
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    test = run_tool(['test.py', cfg, ckpt, '--work-dir', tmp_path / 'test'])
    assert test.returncode == 0, (test.stdout + test.stderr)[-4000:]
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert {'prophesee/mAP', 'prophesee/mAP_50', 'prophesee/num_images'} <= set(metrics)
    # frames at 0.6 and 0.7 s are scored (t > 0.5 s) if a box survives the filter
    assert 0 < metrics['prophesee/num_images'] <= 2
    log = test.stdout + test.stderr
    assert "Prophesee protocol '" in log

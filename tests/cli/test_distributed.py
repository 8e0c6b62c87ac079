"""tools/dist_train.sh and tools/dist_test.sh with 2 CPU processes (gloo): on the toy detector,
SyncBN synchronises over gloo, a checkpoint is saved, and 2-process evaluation gives the metrics of
1 process; on the toy regression model, a resumed 2-process run continues every rank's random
stream."""

import json
import shutil

import pytest
import torch

from sdt_dense.engine.hooks.rng_state_hook import RNG_RANKS_KEY
from sdt_testing import free_port, make_toy_data, run_tool, toy_dist_config
from sdt_testing.toy_runner import HELPERS_MODULE, read_losses, toy_runner_cfg


def _config(tmp_path, data):
    return toy_dist_config(
        tmp_path,
        data,
        extra=(
            "custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='RNGStateHook'),\n"
            "                dict(type='StrictLoadHook')]\n"
        ),
    )


@pytest.mark.slow
def test_dist_train_and_dist_test_on_cpu(tmp_path):
    data = make_toy_data('det', tmp_path / 'toy_coco', num_train=8, num_val=4)
    cfg = _config(tmp_path, data)
    work = tmp_path / 'work'

    train = run_tool(['dist_train.sh', cfg, '2', '--work-dir', work], PORT=str(free_port()))
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-4000:]
    # every rank wrapped its model; SyncBN layers were converted and synchronise over gloo
    assert 'SyncBatchNorm layers synchronise over gloo (GlooSyncBatchNorm)' in log
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # runner env info
    ckpt_path = work / 'epoch_1.pth'
    assert (work / 'last_checkpoint').read_text() == str(ckpt_path)
    ckpt = torch.load(ckpt_path)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2  # 8 images / (2 x 2)
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())

    one, two = tmp_path / 'test1', tmp_path / 'test2'
    single = run_tool(['test.py', cfg, ckpt_path, '--work-dir', one])
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    dist = run_tool(['dist_test.sh', cfg, ckpt_path, '2', '--work-dir', two], PORT=str(free_port()))
    assert dist.returncode == 0, (dist.stdout + dist.stderr)[-4000:]
    m1 = json.loads((one / 'metrics.json').read_text())
    m2 = json.loads((two / 'metrics.json').read_text())
    assert 'coco/bbox_mAP' in m1 and 'coco/segm_mAP' in m1
    assert m1 == m2


# ------------------------------------------------------------------------------------------------
# Resume under distributed training: each rank continues its own random stream


def _rel_toy_config(tmp_path):
    """The in-process toy Runner config as a config file for tools/train.py; ranks seeded apart."""
    cfg = toy_runner_cfg('unused', max_iters=8, interval=2, hooks=[dict(type='RNGStateHook')])
    cfg.pop('work_dir')
    cfg.update(
        default_scope='mmdet',
        randomness=dict(seed=0, deterministic=True, diff_rank_seed=True),
        custom_imports=dict(imports=['sdt_dense', HELPERS_MODULE], allow_failed_imports=False),
    )
    path = tmp_path / 'rel_toy_dist.py'
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    return path


def _dist_train(cfg, work, *args):
    proc = run_tool(['dist_train.sh', cfg, '2', '--work-dir', work, *args], PORT=str(free_port()))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_dist_resume_continues_every_ranks_random_stream(tmp_path):
    cfg = _rel_toy_config(tmp_path)
    full, cut, ctl = tmp_path / 'full', tmp_path / 'cut', tmp_path / 'control'
    _dist_train(cfg, full)
    _dist_train(cfg, cut, '--cfg-options', 'train_cfg.max_iters=4')
    ckpt = torch.load(cut / 'iter_4.pth')
    assert len(ckpt[RNG_RANKS_KEY]) == 2
    # diff_rank_seed: the two ranks' generators differ, so restoring rank 0's everywhere is wrong
    assert not torch.equal(ckpt[RNG_RANKS_KEY][0]['torch'], ckpt[RNG_RANKS_KEY][1]['torch'])

    # control: the same checkpoint without the per-rank states (as mmengine's CheckpointHook saves)
    ctl.mkdir()
    del ckpt[RNG_RANKS_KEY]
    torch.save(ckpt, ctl / 'iter_4.pth')
    shutil.copy(cut / 'losses.jsonl', ctl / 'losses.jsonl')
    shutil.copy(cut / 'losses.rank1.jsonl', ctl / 'losses.rank1.jsonl')

    _dist_train(cfg, cut, '--resume')
    log = _dist_train(cfg, ctl, '--resume', str(ctl / 'iter_4.pth'))
    assert "every rank restores rank 0's state" in log

    for rank in (0, 1):
        a, b = read_losses(full, rank), read_losses(cut, rank)
        assert sorted(a) == sorted(b) == list(range(1, 9))
        assert a == b, rank  # bitwise, after the resume point too
    # rank 0 restored its own state: its first loss after the resume matches; rank 1 got rank 0's
    # state and its stream diverged (then both, through the averaged gradients)
    assert read_losses(ctl, 0)[5] == read_losses(full, 0)[5]
    assert read_losses(ctl, 1)[5] != read_losses(full, 1)[5]

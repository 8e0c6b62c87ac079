"""A rank of a 2-process CPU job (``tools/dist_train.sh``, gloo) dies of SIGKILL mid-run: torchrun's
agent notices it, SIGTERMs the other rank (SIGKILL after a 30 s grace) and exits non-zero naming
the failed rank; nothing hangs in a collective. The last checkpoint and ``last_checkpoint`` are
intact and ``--resume`` continues every rank with the losses of an uninterrupted run."""

import json
import os
import re
import time

import pytest
import torch

from sdt_dense.engine.hooks.rng_state_hook import RNG_RANKS_KEY
from sdt_testing import free_port, run_tool
from sdt_testing.faults import FAULTS_MODULE
from sdt_testing.toy_runner import HELPERS_MODULE, read_losses, toy_runner_cfg

#: seconds from the SIGKILL to the end of every process of the job (README: "Faults")
STOP_BOUND_S = 60
ITERS, INTERVAL, KILL_AT = 8, 2, 3


def _config(tmp_path):
    """The toy regression Runner as a tools/train.py config: ranks seeded apart, RNG states saved,
    every rank's pid recorded (and one rank killed when the environment says so)."""
    cfg = toy_runner_cfg(
        'unused',
        max_iters=ITERS,
        interval=INTERVAL,
        hooks=[dict(type='RNGStateHook'), dict(type='KillRankHook')],
    )
    cfg.pop('work_dir')
    cfg.update(
        default_scope='mmdet',
        randomness=dict(seed=0, deterministic=True, diff_rank_seed=True),
        custom_imports=dict(imports=['sdt_dense', HELPERS_MODULE, FAULTS_MODULE], allow_failed_imports=False),
    )
    path = tmp_path / 'dead_rank_toy.py'
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    return path


def _dist_train(cfg, work, *args, **env):
    return run_tool(['dist_train.sh', cfg, '2', '--work-dir', work, *args], PORT=str(free_port()), **env)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_sigkill_of_one_rank_stops_the_job_and_resume_continues(tmp_path):
    cfg = _config(tmp_path)
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    ref = _dist_train(cfg, full)
    assert ref.returncode == 0, (ref.stdout + ref.stderr)[-4000:]

    job = _dist_train(cfg, cut, SDT_TEST_KILL_RANK='1', SDT_TEST_KILL_AT_ITER=str(KILL_AT))
    stopped = time.time()
    log = job.stdout + job.stderr
    assert job.returncode == 1, log[-4000:]
    assert stopped - float((cut / 'killed_at').read_text()) < STOP_BOUND_S
    for rank in (0, 1):
        assert not _alive(int((cut / f'rank{rank}.pid').read_text())), rank
    # torchrun's summary names the dead rank as the root cause, and the rank it stopped
    root_cause = log[log.index('Root Cause (first observed failure)') :]
    assert re.search(r'rank\s*: 1 \(local_rank: 1\)\s+exitcode\s*: -9 .*\(SIGKILL\)', root_cause)
    assert re.search(r'rank\s*: 0 \(local_rank: 0\)\s+exitcode\s*: -15 ', log)

    assert (cut / 'last_checkpoint').read_text() == str(cut / f'iter_{INTERVAL}.pth')
    ckpt = torch.load(cut / f'iter_{INTERVAL}.pth')
    assert ckpt['meta']['iter'] == INTERVAL and len(ckpt[RNG_RANKS_KEY]) == 2
    assert not (cut / f'iter_{2 * INTERVAL}.pth').exists()

    res = _dist_train(cfg, cut, '--resume')
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    for rank in (0, 1):
        # one line per iteration: 1..INTERVAL before the kill, then the resumed run from INTERVAL + 1
        name = 'losses.jsonl' if rank == 0 else f'losses.rank{rank}.jsonl'
        iters = [json.loads(line)['iter'] for line in (cut / name).read_text().splitlines()]
        assert iters[:INTERVAL] == list(range(1, INTERVAL + 1)) and iters.count(1) == 1
        assert iters[-(ITERS - INTERVAL) :] == list(range(INTERVAL + 1, ITERS + 1))
        a, b = read_losses(full, rank), read_losses(cut, rank)
        assert sorted(a) == sorted(b) == list(range(1, ITERS + 1))
        assert a == b, rank  # bitwise, after the resume point too

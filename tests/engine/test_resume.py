"""Resume: a run killed after a checkpoint continues with exactly the losses of an uninterrupted
run (fixed seed, deterministic algorithms, RNG states restored by RNGStateHook)."""

import subprocess
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner

from sdt_testing import PYTHON, REPO, make_toy_data, sigkill_when, tool_env
from sdt_testing.toy_runner import HELPERS_MODULE, read_losses, toy_runner_cfg

RNG = [dict(type='RNGStateHook')]


def _train(cfg):
    Runner.from_cfg(cfg).train()


@pytest.mark.slow
@pytest.mark.parametrize('by_epoch', [False, True], ids=['iter-based', 'epoch-based'])
def test_resume_continues_the_same_random_stream(tmp_path, by_epoch):
    """In-process, toy model whose data and forward draw from Python, numpy and torch RNGs."""
    full, cut = str(tmp_path / 'full'), str(tmp_path / 'cut')
    kw = dict(by_epoch=by_epoch, interval=1 if by_epoch else 2, hooks=RNG)
    n = dict(max_epochs=3) if by_epoch else dict(max_iters=8)
    stop = dict(max_epochs=1) if by_epoch else dict(max_iters=4)
    _train(toy_runner_cfg(full, **kw, **n))
    _train(toy_runner_cfg(cut, **kw, **stop))
    resume_at = max(read_losses(cut))
    _train(toy_runner_cfg(cut, resume=True, **kw, **n))
    a, b = read_losses(full), read_losses(cut)
    assert sorted(a) == sorted(b) and max(a) > resume_at
    for it in a:  # bitwise equal, before and after the resume point
        assert a[it] == b[it], (it, a[it], b[it])


@pytest.mark.slow
def test_without_rng_state_resume_diverges(tmp_path):
    """Control: the same experiment without RNGStateHook does not reproduce the losses (so the test
    above can fail)."""
    full, cut = str(tmp_path / 'full'), str(tmp_path / 'cut')
    _train(toy_runner_cfg(full, max_iters=8))
    _train(toy_runner_cfg(cut, max_iters=4))
    _train(toy_runner_cfg(cut, max_iters=8, resume=True))
    a, b = read_losses(full), read_losses(cut)
    assert all(a[i] == b[i] for i in range(1, 5))
    assert any(a[i] != b[i] for i in range(5, 9))


def _logs(work_dir: str) -> str:
    return ''.join(p.read_text() for p in Path(work_dir).glob('*/*.log'))


def test_resume_without_rng_state_warns(tmp_path):
    """A checkpoint saved without RNGStateHook holds no random state: resuming from it warns that
    the run is no longer exact; a checkpoint with the state resumes without that warning."""
    plain, kept = str(tmp_path / 'plain'), str(tmp_path / 'kept')
    _train(toy_runner_cfg(plain, max_iters=4))  # no RNGStateHook: no random state saved
    _train(toy_runner_cfg(plain, max_iters=6, resume=True, hooks=RNG))
    assert 'resumed at iteration 4 holds no random state' in _logs(plain)
    assert 'the resumed run is not exact' in _logs(plain)
    _train(toy_runner_cfg(kept, max_iters=4, hooks=RNG))
    _train(toy_runner_cfg(kept, max_iters=6, resume=True, hooks=RNG))
    assert 'holds no random state' not in _logs(kept)


def test_load_from_does_not_restore_the_random_state(tmp_path):
    """``load_from`` (fine-tuning) loads weights only: the run starts its own random stream."""
    first = tmp_path / 'first'
    _train(toy_runner_cfg(str(first), max_iters=4, hooks=RNG))
    ft1, ft2 = str(tmp_path / 'ft1'), str(tmp_path / 'ft2')
    _train(toy_runner_cfg(ft1, max_iters=2, hooks=RNG, load_from=str(first / 'iter_4.pth')))
    _train(toy_runner_cfg(ft2, max_iters=2, hooks=[], load_from=str(first / 'iter_4.pth')))
    assert read_losses(ft1) == read_losses(ft2)


# ------------------------------------------------------------------------------------------------
# tools/train.py on the toy segmentation config, SIGKILL, --resume

ITERS, INTERVAL, KILL_AT = 4, 2, 3


def _toy_config(tmp_path: Path, data_root: Path) -> Path:
    cfg = tmp_path / 'toy_resume.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py')!r}]
custom_imports = dict(imports=['sdt_dense', {HELPERS_MODULE!r}], allow_failed_imports=False)
_data = dict(data_root={str(data_root)!r})
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=_data)
val_dataloader = val_cfg = val_evaluator = None  # training only
train_cfg = dict(max_iters={ITERS})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end={ITERS})]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval={INTERVAL}))
custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='RNGStateHook'),
                dict(type='StrictLoadHook'), dict(type='RecordLossHook'),
                dict(type='HangForKillHook')]
randomness = dict(seed=0, deterministic=True)
""")
    return cfg


@pytest.fixture(scope='module')
def toy_seg_data(tmp_path_factory):
    return make_toy_data('seg', tmp_path_factory.mktemp('toy_ade') / 'toy_ade')


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, toy_seg_data):
    cfg = _toy_config(tmp_path, toy_seg_data)
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    train = [PYTHON, str(REPO / 'tools/train.py'), str(cfg)]

    ref = subprocess.run(
        train + ['--work-dir', str(full)],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ref.returncode == 0, ref.stderr[-3000:]

    job = subprocess.Popen(
        train + ['--work-dir', str(cut)],
        cwd=REPO,
        env=tool_env(SDT_TEST_HANG_AT_ITER=str(KILL_AT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sigkill_when(job, (cut / 'hanging').exists)
    assert (cut / 'last_checkpoint').read_text() == str(cut / f'iter_{INTERVAL}.pth')
    assert not (cut / f'iter_{ITERS}.pth').exists()

    res = subprocess.run(
        train + ['--work-dir', str(cut), '--resume'],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert f'resumed epoch: 0, iter: {INTERVAL}' in res.stdout + res.stderr

    a, b = read_losses(full), read_losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, ITERS + 1))
    for it in range(INTERVAL + 1, ITERS + 1):  # after the resume point
        assert a[it].keys() == b[it].keys()
        for k in a[it]:
            assert b[it][k] == pytest.approx(a[it][k], rel=1e-6, abs=1e-6), (it, k)
    wa = torch.load(full / f'iter_{ITERS}.pth')['state_dict']
    wb = torch.load(cut / f'iter_{ITERS}.pth')['state_dict']
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-6, atol=1e-6, msg=k)

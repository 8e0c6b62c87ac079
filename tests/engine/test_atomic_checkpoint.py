"""Atomic checkpoint writing: an interrupted write never replaces a good checkpoint."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.runner import Runner

from sdt_dense.engine.atomic_io import (
    AtomicLocalBackend,
    atomic_write,
    remove_stale_temp_files,
    stale_temp_files,
)
from sdt_dense.engine.hooks import atomic_checkpoint_hook
from sdt_testing import REPO, sigkill_when, tool_env
from sdt_testing.toy_runner import toy_runner_cfg


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_content_and_mode(tmp_path):
    target = tmp_path / 'sub' / 'a.bin'
    atomic_write(b'first', target)
    atomic_write('second', target)
    assert target.read_bytes() == b'second'
    assert (target.stat().st_mode & 0o777) == (0o666 & ~_umask())
    assert os.listdir(target.parent) == ['a.bin']


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    atomic_write(b'good', target)

    def broken_fsync(fd):  # e.g. disk full or an interrupt after part of the data was written
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fsync', broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        AtomicLocalBackend().put(b'partial new', target)
    assert target.read_bytes() == b'good'
    assert stale_temp_files(target) == []  # the temporary file was removed


@pytest.mark.slow
def test_sigkill_during_write_keeps_the_old_checkpoint(tmp_path):
    """A process SIGKILLed after writing the new data but before the rename: the old checkpoint is
    intact and loads; only a hidden temporary file is left, and it is cleaned up."""
    target = tmp_path / 'iter_4.pth'
    good = {'state_dict': {'w': torch.arange(6.0)}}
    torch.save(good, target)
    script = textwrap.dedent(f"""
        import importlib.util, io, os, sys, time, torch
        spec = importlib.util.spec_from_file_location(  # without importing all of sdt_dense
            'atomic_io', {str(REPO / 'sdt_dense/engine/atomic_io.py')!r})
        atomic_io = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic_io)
        def hang(fd):
            print('WRITTEN', flush=True)
            time.sleep(600)
        os.fsync = hang
        buf = io.BytesIO()
        torch.save({{'state_dict': {{'w': torch.zeros(10000)}}}}, buf)
        atomic_io.atomic_write(buf.getvalue(), {str(target)!r})
    """)
    proc = subprocess.Popen(
        [sys.executable, '-c', script], cwd=REPO, env=tool_env(), stdout=subprocess.PIPE, text=True
    )
    sigkill_when(proc, lambda: proc.stdout.readline().strip() == 'WRITTEN')
    loaded = torch.load(target)
    assert torch.equal(loaded['state_dict']['w'], good['state_dict']['w'])
    leftovers = stale_temp_files(target)
    assert len(leftovers) == 1 and os.path.getsize(leftovers[0]) > 40000  # the new data, unused
    assert remove_stale_temp_files(tmp_path, 'iter_*.pth') == leftovers
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth']


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_hook_writes_checkpoints_and_pointer(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / '.iter_2.pth.abc123.tmp').write_bytes(b'left by a killed job')
    _train(toy_runner_cfg(str(work), max_iters=4, interval=2))
    names = sorted(os.listdir(work))
    assert 'iter_2.pth' in names and 'iter_4.pth' in names
    assert not [n for n in names if n.endswith('.tmp') or n.endswith('.staging')], names
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')
    ckpt = torch.load(work / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4 and 'fc.weight' in ckpt['state_dict']


def test_interrupted_pointer_update_keeps_the_previous_pointer(tmp_path, monkeypatch):
    """The job dies while publishing the pointer to iter_4: the pointer still names iter_2, which is
    complete, so --resume works."""
    work = tmp_path / 'work'
    real = atomic_checkpoint_hook.atomic_write

    def dying_write(data, path, **kw):
        if str(path).endswith('last_checkpoint') and 'iter_4' in str(data):
            raise KeyboardInterrupt  # stands in for SIGKILL at that instant
        return real(data, path, **kw)

    monkeypatch.setattr(atomic_checkpoint_hook, 'atomic_write', dying_write)
    with pytest.raises(KeyboardInterrupt):
        _train(toy_runner_cfg(str(work), max_iters=6, interval=2))
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert torch.load(work / 'iter_2.pth')['meta']['iter'] == 2

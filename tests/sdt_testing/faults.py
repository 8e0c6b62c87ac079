"""Injected faults for the reliability tests: failing writes and a file size limit.

* :func:`fail_writes` (in-process): files whose name contains a given text accept ``nbytes`` bytes,
  then every write raises ``OSError(ENOSPC)``, as on a full disk.
* ``FileSizeLimitHook`` (subprocess runs of ``tools/train.py`` import this module through
  ``custom_imports``): from iteration ``SDT_TEST_FSIZE_AT_ITER`` on, the process may not write files
  larger than ``SDT_TEST_FSIZE_BYTES`` (``ulimit -f``; the kernel's ``EFBIG``, with ``SIGXFSZ``
  ignored so that the write fails instead of killing the process).
* ``KillRankHook`` (subprocess runs): one rank of a distributed job SIGKILLs itself at a given
  iteration (``SDT_TEST_KILL_RANK``, ``SDT_TEST_KILL_AT_ITER``); every rank records its pid.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import time
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

#: how subprocesses import this module (``custom_imports``; ``tool_env`` puts its root on the path)
FAULTS_MODULE = __name__


class _FailingFile:
    """A binary file object that takes ``budget`` bytes, then raises ``ENOSPC`` on every write."""

    def __init__(self, f: Any, budget: int) -> None:
        self._f, self._budget = f, budget

    def write(self, data: bytes) -> int:
        take = max(0, min(len(data), self._budget))
        self._f.write(data[:take])
        self._budget -= take
        if take < len(data):
            self._f.flush()  # the partial data reaches the (temporary) file, as on a real disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return take

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def fail_writes(monkeypatch, name_contains: str, nbytes: int = 0) -> None:
    """Make every ``os.fdopen(fd, 'wb')`` of a file whose name contains ``name_contains`` fail after
    ``nbytes`` bytes (``atomic_write`` opens its temporary file this way)."""
    real = os.fdopen

    def fdopen(fd, mode='r', *args, **kwargs):
        f = real(fd, mode, *args, **kwargs)
        name = os.readlink(f'/proc/self/fd/{fd}')
        if 'w' in mode and name_contains in os.path.basename(name):
            return _FailingFile(f, nbytes)
        return f

    monkeypatch.setattr(os, 'fdopen', fdopen)


@HOOKS.register_module(force=True)
class FileSizeLimitHook(Hook):
    """Before iteration ``SDT_TEST_FSIZE_AT_ITER`` (if set), limit this process's file size to
    ``SDT_TEST_FSIZE_BYTES``: larger writes fail with ``EFBIG`` (a disk that fills up mid-run)."""

    priority = 'LOWEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        at = os.environ.get('SDT_TEST_FSIZE_AT_ITER')
        if at is not None and runner.iter + 1 == int(at):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = int(os.environ['SDT_TEST_FSIZE_BYTES'])
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@HOOKS.register_module(force=True)
class KillRankHook(Hook):
    """Every rank writes its pid to ``<work_dir>/rank<r>.pid`` when training starts. If
    ``SDT_TEST_KILL_RANK=r`` and ``SDT_TEST_KILL_AT_ITER=k`` are set, rank ``r`` writes the time to
    ``<work_dir>/killed_at`` and SIGKILLs itself at the start of iteration ``k`` (the other ranks
    are then in, or about to enter, the iteration's collectives)."""

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        with open(os.path.join(runner.work_dir, f'rank{runner.rank}.pid'), 'w') as f:
            f.write(str(os.getpid()))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        rank, at = os.environ.get('SDT_TEST_KILL_RANK'), os.environ.get('SDT_TEST_KILL_AT_ITER')
        if rank is not None and runner.rank == int(rank) and runner.iter + 1 == int(at):
            with open(os.path.join(runner.work_dir, 'killed_at'), 'w') as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)

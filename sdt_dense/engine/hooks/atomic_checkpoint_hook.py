"""Checkpoints that an interrupted job can never corrupt."""

from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Any, List, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..atomic_io import ATOMIC_BACKEND, atomic_write, remove_stale_temp_files
from .rng_state_hook import RNGStateHook

_POINTER = 'last_checkpoint'


class _StagedWorkDir:
    """The runner as ``CheckpointHook`` sees it, except that ``work_dir`` is a staging directory.

    mmengine rewrites ``<work_dir>/last_checkpoint`` in place (truncate, then write); a job killed
    in between leaves an empty pointer and ``--resume`` fails. Letting it write into a private
    directory and publishing the pointer with an atomic rename keeps it valid at all times.
    """

    def __init__(self, runner: Any, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` are recorded, and only run by :meth:`apply`.

    mmengine's ``CheckpointHook`` deletes the oldest checkpoint (``max_keep_ckpts``) *before* it
    writes the new one; with a failed write (full disk) that could leave no loadable checkpoint.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._pending: List[Tuple[str, str]] = []

    def remove(self, filepath: str) -> None:
        self._pending.append(('remove', filepath))

    def rmtree(self, dir_path: str) -> None:
        self._pending.append(('rmtree', dir_path))

    def apply(self) -> None:
        for method, path in self._pending:
            getattr(self._backend, method)(path)
        self._pending.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic writes on local disks.

    Every checkpoint file and the ``last_checkpoint`` pointer are written to a temporary file and
    renamed over the target, so a job killed at any moment leaves the previous checkpoint and the
    pointer to it intact, and ``tools/train.py CONFIG --resume`` continues from it. Temporary files
    of killed writes are removed when training starts. Under distributed training it also gathers
    every rank's random state into the checkpoint (with :class:`RNGStateHook`). A failed write (e.g.
    a full disk) raises an ``OSError`` naming the file and leaves the previous checkpoints, the
    pointer and the work directory as they were: with ``max_keep_ckpts`` the oldest checkpoint is
    deleted only after the new one is complete. Arguments are those
    of ``CheckpointHook``; remote ``out_dir``/``backend_args`` (e.g. ``s3://``) are used unchanged.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._atomic = (
            self.file_client_args is None
            and self.backend_args is None
            and type(self.file_backend) is LocalBackend
        )
        if not self._atomic:
            print_log(
                f'{type(self).__name__}: out_dir {self.out_dir} is not a plain local '
                'directory; checkpoints are written by its own backend (not atomically)',
                logger='current',
            )
            return
        self.backend_args = dict(backend=ATOMIC_BACKEND)
        self.file_backend = get_file_backend(self.out_dir, backend_args=self.backend_args)
        if is_main_process():
            stale = []
            for name in (self.filename_tmpl.format('*'), 'best_*', _POINTER):
                stale += remove_stale_temp_files(self.out_dir, name)
            stale += remove_stale_temp_files(runner.work_dir, _POINTER)
            if stale:
                print_log(
                    f'removed {len(stale)} partial checkpoint file(s) of an interrupted write: {stale}',
                    logger='current',
                )

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # Every rank runs this method, but mmengine's save (and before_save_checkpoint) runs on
        # rank 0 only: collect what the checkpoint needs from every rank here.
        for hook in runner.hooks:
            if isinstance(hook, RNGStateHook):
                hook.gather(runner, meta)
        if not getattr(self, '_atomic', False):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        staging = osp.join(runner.work_dir, f'.{_POINTER}.staging')
        previous = getattr(self, 'last_ckpt', None)
        backend = self.file_backend
        self.file_backend = deferred = _DeferredRemovals(backend)
        try:
            if is_main_process():
                os.makedirs(staging, exist_ok=True)
            super()._save_checkpoint_with_step(_StagedWorkDir(runner, staging), step, meta)
            if is_main_process():
                # The checkpoint file is complete on disk before the pointer names it.
                atomic_write(self.last_ckpt, osp.join(runner.work_dir, _POINTER))
        except BaseException:
            # e.g. a full disk: iter_<k>.pth and the pointer stay as they were; so does the
            # pointer mmengine's auto-resume reads from the message hub
            self.last_ckpt = previous
            runner.message_hub.update_info('last_ckpt', previous)
            raise
        finally:
            self.file_backend = backend
            if is_main_process():
                shutil.rmtree(staging, ignore_errors=True)
        # max_keep_ckpts: the old checkpoints go only once the new one and its pointer are written
        deferred.apply()

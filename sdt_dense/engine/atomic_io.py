"""Atomic file writes: a reader (or a resumed job) sees either the old file or the new one, never a
partial one.

A process killed while writing (SIGKILL, node pre-emption, a full disk) leaves at most a hidden
``.<name>.<random>.tmp`` next to the target; the target itself is only ever replaced by
``os.replace`` of a complete, fsync'ed file, which POSIX guarantees to be atomic on one filesystem.

:class:`AtomicLocalBackend` is mmengine's ``LocalBackend`` with atomic ``put``/``put_text``. It is
registered under the name :data:`ATOMIC_BACKEND` only (no URI prefix), so it replaces nothing
globally; :class:`~sdt_dense.engine.hooks.AtomicCheckpointHook` selects it for checkpoints.
"""

from __future__ import annotations

import contextlib
import glob
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

#: name of the atomic local backend in mmengine's file backend registry
ATOMIC_BACKEND = 'sdt_atomic_local'

# mkstemp creates files with mode 0600; finished files get the mode ``open()`` would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


def _temp_pattern(path: str) -> str:
    directory, name = osp.split(path)
    return osp.join(directory, f'.{glob.escape(name)}.*.tmp')


def atomic_write(data: Union[bytes, str], path: Union[str, Path], encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, fsync, rename).

    Missing parent directories are created. On any failure (including ``KeyboardInterrupt``) the
    temporary file is removed and ``path`` keeps its previous content (or stays absent).

    Raises:
        OSError: a failed write (full disk, file size limit, I/O error) as an ``OSError`` of the
            same ``errno`` whose message names ``path`` and says that it was left unchanged.
    """
    path = osp.abspath(os.fspath(path))
    directory, name = osp.split(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=directory)
    except OSError as exc:
        raise _write_error(exc, path) from exc
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # a full disk can still unlink
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from exc
        raise
    _fsync_directory(directory)  # make the rename itself durable


def _write_error(exc: OSError, path: str) -> OSError:
    """``exc`` (whose message often lacks the file, e.g. ``[Errno 28] No space left on device``)
    as an ``OSError`` of the same errno that names ``path``."""
    reason = exc.strerror or str(exc)
    kept = 'its previous content is unchanged' if osp.exists(path) else 'it was not created'
    return OSError(exc.errno, f'{reason}: could not write {path} ({kept})')


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def stale_temp_files(path: Union[str, Path]) -> List[str]:
    """Temporary files that an interrupted :func:`atomic_write` to ``path`` left behind."""
    return sorted(glob.glob(_temp_pattern(osp.abspath(os.fspath(path)))))


def remove_stale_temp_files(directory: Union[str, Path], name_glob: str = '*') -> List[str]:
    """Remove the temporary files that interrupted :func:`atomic_write` calls to files of
    ``directory`` matching ``name_glob`` left behind. Returns the removed paths.

    Only call this when no other process is writing such files.
    """
    pattern = osp.join(glob.escape(os.fspath(directory)), f'.{name_glob}.*.tmp')
    removed = sorted(glob.glob(pattern))
    for tmp in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return removed


class AtomicLocalBackend(LocalBackend):
    """mmengine ``LocalBackend`` whose writes are atomic (see :func:`atomic_write`)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, encoding=encoding)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)

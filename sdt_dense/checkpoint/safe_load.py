"""Safe checkpoint reading: weights-only unpickling with the project's allow-list.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors, containers and an
allow-list of classes. Two kinds of files this project must read pickle other classes:

* the released E-SpikeFormer classification checkpoints store their training ``args`` as an
  ``argparse.Namespace``;
* mmengine checkpoints (``Runner.save_checkpoint``: resume, ``tools/test.py CONFIG CKPT``) store
  the message hub's ``HistoryBuffer`` objects (whose statistics methods pickle as
  ``getattr(HistoryBuffer, 'min')``), numpy scalars/arrays and, in ``meta['dataset_meta']``,
  possibly ``ConfigDict``.

This module is the single place that allow-lists exactly those classes (``getattr`` only through a
stand-in that resolves the HistoryBuffer methods). Safety is never turned off: a pickle that
references anything else is refused with :class:`UnsafeCheckpointError`.

A file torch cannot read at all (empty, truncated anywhere, corrupt, not a checkpoint) raises
:class:`~sdt_dense.errors.BrokenCheckpointError` naming the file, the problem and the step that
read it (``tools/train.py > --resume``, ``init_cfg``, ...), instead of torch's bare
"PytorchStreamReader failed reading zip archive" or ``OSError: [Errno 22] Invalid argument``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import zipfile
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..errors import BrokenCheckpointError


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint references a class outside the allow-list (its code is never executed)."""


def _numpy_globals() -> List[Any]:
    """What pickled numpy arrays and scalars reference (numpy 2 names, plus the numpy 1.x names of
    the two reconstructors, so files written under either version load)."""
    try:  # numpy >= 2 keeps the reconstructors in numpy._core
        from numpy._core import multiarray as _ma
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma
    items: List[Any] = [
        np.ndarray,
        np.dtype,
        _ma._reconstruct,
        _ma.scalar,
        (_ma._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (_ma.scalar, 'numpy.core.multiarray.scalar'),
    ]
    # A pickled dtype is rebuilt as np.dtype(...) and then restored with BUILD, which torch only
    # permits on allow-listed types: the instance's concrete class (np.dtypes.Float64DType, ...).
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        items += [getattr(dtypes_mod, n) for n in dir(dtypes_mod) if n.endswith('DType')]
    return items


# Statistics methods of mmengine's HistoryBuffer. A checkpoint's message hub pickles them by
# qualified name, which pickle protocol 2 writes as ``getattr(HistoryBuffer, 'min')``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside weights-only unpickling.

    Allowing the real ``getattr`` would let a pickle fetch any attribute of any object it can
    reach; this resolves only the HistoryBuffer statistics methods and refuses everything else.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = set(_HISTORY_BUFFER_METHODS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed: only HistoryBuffer statistics methods '
        f'({", ".join(sorted(allowed))}) may be resolved while loading a checkpoint'
    )


def _mmengine_globals() -> List[Any]:
    """What mmengine checkpoints (``Runner.save_checkpoint``) reference: the message hub's
    HistoryBuffer (and its statistics methods via ``getattr``), and ConfigDict, which appears in
    ``meta['dataset_meta']`` when a dataset's ``metainfo`` from the config has nested dicts."""
    try:
        from mmengine.config import ConfigDict
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # pragma: no cover - mmengine not installed
        return []
    return [HistoryBuffer, ConfigDict, (_history_buffer_getattr, 'builtins.getattr')]


def allowed_globals() -> List[Any]:
    """What our checkpoints may reference besides torch's defaults (tensors, containers,
    ``OrderedDict``, ``Counter``, ...), found by loading real files and reading the errors:

    * ``argparse.Namespace``: the ``args`` of the released classification checkpoints;
    * numpy arrays/scalars and mmengine's HistoryBuffer/ConfigDict: mmengine checkpoints.

    Entries are classes/functions, or ``(object, 'module.name')`` pairs for an object pickled
    under another name (torch's ``add_safe_globals`` convention).
    """
    return [argparse.Namespace] + _numpy_globals() + _mmengine_globals()


def install_allowlist() -> None:
    """Add :func:`allowed_globals` to torch's weights-only allow-list (idempotent).

    This is what makes mmengine's own ``torch.load`` calls (``Runner.resume``, ``load_checkpoint``)
    work under torch's ``weights_only=True`` default without disabling safety.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(allowed_globals())


# What torch.save writes first: a zip archive (torch >= 1.6) or, in the legacy format, a pickle
# (protocol 2+ opcode PROTO). Anything else cannot be a checkpoint.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'
# torch's words for "this pickle references a global outside the allow-list" (and those of our
# getattr stand-in): a refusal, which is UnsafeCheckpointError, not a broken file.
_REFUSAL = re.compile(r'Unsupported global|is not allowed|not an allowed global')
# What torch raises for a file that ends early or is corrupt: miniz errors (RuntimeError), a short
# read (EOFError, RuntimeError "unexpected EOF"), garbage opcodes (UnpicklingError, KeyError,
# ValueError, ...), a broken zip directory (zipfile.BadZipFile is an Exception).
_READ_ERRORS = (
    RuntimeError,
    EOFError,
    pickle.UnpicklingError,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
    UnicodeDecodeError,
)


# A zip archive ends with its "end of central directory" record, at most 64 KiB + 22 bytes before
# the end of the file: without it the file was cut short (or is not a zip at all).
_ZIP_END = b'PK\x05\x06'
_ZIP_END_SEARCH = 65536 + 22


def _zip_has_end_record(path: str) -> bool:
    """Whether the file holds a whole end-of-central-directory record (22 bytes) near its end."""
    with open(path, 'rb') as f:
        f.seek(max(0, os.path.getsize(path) - _ZIP_END_SEARCH))
        tail = f.read()
    start = tail.rfind(_ZIP_END)
    return start >= 0 and len(tail) - start >= 22


def _looks_like_checkpoint(path: str) -> bool:
    """Whether the file starts like something torch.save writes (zip archive or pickle)."""
    with open(path, 'rb') as f:
        return f.read(4).startswith((_ZIP_MAGIC, _PICKLE_PROTO))


def _broken_problem(path: str, err: BaseException) -> str:
    """What is wrong with a checkpoint that torch failed to read, in words."""
    with open(path, 'rb') as f:
        head = f.read(8)
    size = os.path.getsize(path)
    # torch's first sentence; the rest is advice about weights_only or miniz internals
    first = (str(err).strip().splitlines() or [''])[0].split('. ')[0][:200] or type(err).__name__
    if head.startswith(_ZIP_MAGIC):
        if 'central directory' in str(err) or not _zip_has_end_record(path):
            what = 'truncated checkpoint: the zip archive has no central directory (the file ends early)'
        else:
            what = 'corrupt checkpoint (a zip archive that torch cannot read)'
    elif len(head) < len(_ZIP_MAGIC) and _ZIP_MAGIC.startswith(head):
        what = f'truncated checkpoint: only {len(head)} of the 4 bytes that open a zip archive'
    elif head.startswith(_PICKLE_PROTO):
        what = 'truncated or corrupt checkpoint (legacy pickle format)'
    else:
        what = (
            f'not a checkpoint: it starts with {head!r}, while torch.save writes a zip archive '
            f'(PK\\x03\\x04) or a pickle'
        )
    return f'{what}; {size} bytes; torch said: {type(err).__name__}: {first}'


# (function, module) of the frames that read checkpoints, and the step they are for a user. The
# tools come first; Runner.resume calls Runner.load_checkpoint, so the latter is dropped then.
_STEPS = (
    ('main', 'sdt_dense.cli.train', 'tools/train.py'),
    ('main', 'sdt_dense.cli.test', 'tools/test.py'),
    ('main', 'sdt_dense.cli.measure_energy', 'tools/analysis_tools/energy.py'),
    ('main', 'sdt_dense.cli.official2sdt', 'tools/model_converters/official2sdt.py'),
    ('resume', 'mmengine.runner.runner', '--resume (Runner.resume)'),
    ('load_checkpoint', 'mmengine.runner.runner', 'load_from (Runner.load_checkpoint)'),
    ('__call__', 'mmengine.model.weight_init', "init_cfg=dict(type='Pretrained')"),
    ('load_pretrained', 'sdt_dense.checkpoint.loading', "init_cfg=dict(type='Pretrained')"),
)


def reading_step() -> Optional[str]:
    """What is reading a checkpoint now, from the call stack: e.g. ``'tools/train.py > --resume
    (Runner.resume)'``; else the function that called :func:`safe_load`; ``None`` if unknown."""
    seen = set()
    frame = sys._getframe(1)
    caller = None
    while frame is not None:
        key = (frame.f_code.co_name, frame.f_globals.get('__name__'))
        if (
            caller is None
            and key[1] != __name__
            and key[1] != 'sdt_dense.checkpoint.mmengine_loader'
            and not str(key[1]).startswith('mmengine.runner.checkpoint')
        ):
            caller = f'{key[1]}.{key[0]}'
        seen.add(key)
        frame = frame.f_back
    steps = [step for name, module, step in _STEPS if (name, module) in seen]
    if ('resume', 'mmengine.runner.runner') in seen:
        steps = [s for s in steps if not s.startswith('load_from')]
    steps = list(dict.fromkeys(steps))  # init_cfg twice (mmengine's PretrainedInit -> ours)
    return ' > '.join(steps) if steps else caller


def safe_load(path: str | os.PathLike, map_location: Any = 'cpu', step: Optional[str] = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the project's allow-list.

    Args:
        path: a local checkpoint file.
        map_location: as ``torch.load``.
        step: what is reading the file, named in the error message (default: found on the call
            stack by :func:`reading_step`, e.g. ``'tools/test.py > load_from'``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file references a class outside the allow-list.
        BrokenCheckpointError: the file is empty, truncated, corrupt or not a checkpoint (the
            message names the file, the problem, its size and the reading step).
    """
    path = os.fspath(path)
    step = step or reading_step()
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}' + (f' (read by {step})' if step else ''))
    if os.path.getsize(path) == 0:
        raise BrokenCheckpointError(path, 'empty checkpoint file (0 bytes)', step)
    # Not ``torch.serialization.safe_globals(...)``: on exit that context manager *removes* its
    # entries, i.e. it would undo install_allowlist() and break mmengine's later loads.
    install_allowlist()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # A refusal, or an opcode the weights-only unpickler does not run inside what looks like a
        # checkpoint (e.g. a bare pickle stream): refused. Only a file that is no pickle at all
        # (text, JSON, ...) is "not a checkpoint".
        if not (_REFUSAL.search(str(err)) or _looks_like_checkpoint(path)):
            raise BrokenCheckpointError(path, _broken_problem(path, err), step) from err
        raise UnsafeCheckpointError(
            f'refused to load {path}: it references objects outside the allow-list of safe '
            f'classes, so it was not unpickled (nothing in it was executed). Details: {err}'
        ) from err
    except _READ_ERRORS as err:
        raise BrokenCheckpointError(path, _broken_problem(path, err), step) from err
    except OSError as err:
        # torch's zip reader seeks before the start of a short file (EINVAL) when the archive's
        # end is missing: a broken file. Permission or a path that is a folder stay as they are.
        if isinstance(err, (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError)):
            raise
        raise BrokenCheckpointError(path, _broken_problem(path, err), step) from err


def extract_state_dict(obj: Any) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: ``state_dict`` (mmengine), ``model`` (released
    classification files) or the object itself."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError(
        'checkpoint holds no state dict (expected a `state_dict` or `model` key, or a dict of tensors)'
    )


install_allowlist()

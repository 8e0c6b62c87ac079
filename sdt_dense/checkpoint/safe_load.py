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
"""
from __future__ import annotations

import argparse
import os
import pickle
from typing import Any, Dict, List

import numpy as np
import torch


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint references a class outside the allow-list (its code is never executed)."""


def _numpy_globals() -> List[Any]:
    """What pickled numpy arrays and scalars reference (numpy 2 names, plus the numpy 1.x names of
    the two reconstructors, so files written under either version load)."""
    try:  # numpy >= 2 keeps the reconstructors in numpy._core
        from numpy._core import multiarray as _ma
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma
    items: List[Any] = [np.ndarray, np.dtype, _ma._reconstruct, _ma.scalar,
                        (_ma._reconstruct, 'numpy.core.multiarray._reconstruct'),
                        (_ma.scalar, 'numpy.core.multiarray.scalar')]
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
        f'({", ".join(sorted(allowed))}) may be resolved while loading a checkpoint')


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


def safe_load(path: str | os.PathLike, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the project's allow-list.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file references a class outside the allow-list.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    # Not ``torch.serialization.safe_globals(...)``: on exit that context manager *removes* its
    # entries, i.e. it would undo install_allowlist() and break mmengine's later loads.
    install_allowlist()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'refused to load {path}: it references objects outside the allow-list of safe '
            f'classes, so it was not unpickled (nothing in it was executed). Details: {err}'
        ) from err


def extract_state_dict(obj: Any) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: ``state_dict`` (mmengine), ``model`` (released
    classification files) or the object itself."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError('checkpoint holds no state dict (expected a `state_dict` or `model` key, '
                     'or a dict of tensors)')


install_allowlist()

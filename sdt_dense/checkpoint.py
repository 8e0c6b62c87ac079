"""Safe checkpoint loading.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors, containers and an
allow-list of classes. Two kinds of files this project must read pickle other classes:

* the released E-SpikeFormer classification checkpoints store their training ``args`` as an
  ``argparse.Namespace``;
* mmengine checkpoints (``Runner.save_checkpoint``: resume, ``tools/test.py CONFIG CKPT``) store
  the message hub's ``HistoryBuffer`` objects and numpy scalars/arrays in ``message_hub``/``meta``.

This module is the single place that allow-lists exactly those classes. Safety is never turned off:
a pickle that references anything else is refused with :class:`UnsafeCheckpointError`.
"""
from __future__ import annotations

import argparse
import collections
import os
import pickle
from typing import Any, Dict, List

import numpy as np
import torch


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint references a class outside the allow-list (its code is never executed)."""


def _numpy_globals() -> List[Any]:
    """numpy classes and reconstructors that pickled numpy scalars and arrays reference."""
    items: List[Any] = [np.ndarray, np.dtype]
    try:  # numpy >= 2 keeps the reconstructors in numpy._core
        from numpy._core import multiarray as _ma
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma
    items += [_ma._reconstruct, _ma.scalar]
    # Concrete dtype classes (np.dtypes.Float64DType, ...) are pickled by numpy >= 1.25.
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        items += [getattr(dtypes_mod, n) for n in dir(dtypes_mod) if n.endswith('DType')]
    items += [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
              np.uint8, np.bool_]
    return [i for i in items if i is not None]


def _mmengine_globals() -> List[Any]:
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # pragma: no cover - mmengine not installed
        return []
    return [HistoryBuffer]


def allowed_globals() -> List[Any]:
    """The exact classes our checkpoints may reference besides torch's own."""
    return ([argparse.Namespace, collections.OrderedDict, collections.defaultdict]
            + _numpy_globals() + _mmengine_globals())


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
    try:
        with torch.serialization.safe_globals(allowed_globals()):
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

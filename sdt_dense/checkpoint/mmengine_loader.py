"""Safe loading of local checkpoints by mmengine (``load_from``, ``--resume``, ``tools/test.py``).

mmengine's local loader calls ``torch.load`` without ``weights_only``: safe under torch's
``weights_only=True`` default, but turned into arbitrary unpickling by the environment variable
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``. Registering :func:`~sdt_dense.checkpoint.safe_load` as
mmengine's loader for local paths makes every checkpoint the runner reads go through the project's
allow-list, whatever the environment, and a refused file raises
:class:`~sdt_dense.checkpoint.UnsafeCheckpointError` naming it.
"""

from __future__ import annotations

import os.path as osp
from typing import Any

from mmengine.runner import CheckpointLoader

from .safe_load import safe_load


def load_from_safe_local(filename: str, map_location: Any = None) -> Any:
    """mmengine checkpoint loader for local paths (prefix ``''``): weights-only, allow-listed; a
    broken file raises :class:`~sdt_dense.errors.BrokenCheckpointError` naming the step."""
    return safe_load(osp.expanduser(filename), map_location=map_location)


CheckpointLoader.register_scheme(prefixes='', loader=load_from_safe_local, force=True)

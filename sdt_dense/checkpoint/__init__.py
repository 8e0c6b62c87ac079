"""Everything about checkpoints, in one place.

* :mod:`.safe_load`: weights-only reading with the project's allow-list (installed on import, so
  mmengine's own loads are safe too); an empty, truncated or corrupt file raises
  :class:`~sdt_dense.errors.BrokenCheckpointError` naming it and the step that read it;
* :mod:`.mmengine_loader`: mmengine reads local checkpoints through :func:`safe_load`;
* :mod:`.matching`: strict key matching, prefix selection, :class:`CheckpointMismatchError`;
* :mod:`.released`: the authors' released layouts and their conversion (``checkpoint_filter_fn``);
* :mod:`.loading`: :func:`load_pretrained` (what ``init_cfg=dict(type='Pretrained')`` runs) and
  :func:`save_weights`.
"""

from ..errors import BrokenCheckpointError
from . import mmengine_loader  # noqa: F401  (mmengine reads local checkpoints safely)
from .loading import load_pretrained, pretrained_to_init_cfg, save_weights
from .matching import CheckpointMismatchError, match_state_dict, select_prefix, summarise_keys
from .released import BASE_FORMAT, LARGE_FORMAT, ReleasedFormat, checkpoint_filter_fn
from .released_mae import MAE_FORMAT, SPIKE_MAE_FORMAT, pretraining_format
from .safe_load import (
    UnsafeCheckpointError,
    allowed_globals,
    extract_state_dict,
    install_allowlist,
    safe_load,
)

__all__ = [
    'load_pretrained',
    'pretrained_to_init_cfg',
    'save_weights',
    'CheckpointMismatchError',
    'match_state_dict',
    'select_prefix',
    'summarise_keys',
    'BASE_FORMAT',
    'LARGE_FORMAT',
    'ReleasedFormat',
    'checkpoint_filter_fn',
    'UnsafeCheckpointError',
    'allowed_globals',
    'extract_state_dict',
    'install_allowlist',
    'safe_load',
    'MAE_FORMAT',
    'SPIKE_MAE_FORMAT',
    'pretraining_format',
    'BrokenCheckpointError',
]

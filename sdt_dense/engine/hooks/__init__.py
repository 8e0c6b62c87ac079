"""Training hooks for reliable long runs (registered in mmengine's root ``HOOKS``, so configs of
both mmdet and mmseg find them)."""

from .atomic_checkpoint_hook import AtomicCheckpointHook
from .firing_rate_hook import FiringRateHook
from .non_empty_dataset_hook import NonEmptyDatasetHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .num_classes_check_hook import NumClassesCheckHook
from .rng_state_hook import RNGStateHook, get_rng_state, set_rng_state
from .strict_load_hook import StrictLoadHook

__all__ = [
    'AtomicCheckpointHook',
    'NonEmptyDatasetHook',
    'NonFiniteLossError',
    'NonFiniteLossHook',
    'RNGStateHook',
    'get_rng_state',
    'set_rng_state',
    'StrictLoadHook',
    'FiringRateHook',
    'NumClassesCheckHook',
]

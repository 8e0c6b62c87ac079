"""Engine components: atomic checkpoint writing, resumable RNG state, strict and safe checkpoint
loading, a stop on non-finite losses, an error naming an empty dataset, and SyncBN/DDP for CPU
processes (gloo).

Recommended config lines (the toy and released configs include them)::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))
    custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='RNGStateHook'),
                    dict(type='StrictLoadHook'), dict(type='NonEmptyDatasetHook')]
"""

from .atomic_io import ATOMIC_BACKEND, AtomicLocalBackend, atomic_write
from .cpu_sync_bn import CPUDistributedDataParallel, GlooSyncBatchNorm, convert_gloo_sync_batchnorm
from .hooks import (
    AtomicCheckpointHook,
    FiringRateHook,
    NonEmptyDatasetHook,
    NonFiniteLossError,
    NonFiniteLossHook,
    RNGStateHook,
    StrictLoadHook,
)
from .optimizers import LargeLayerDecayOptimWrapperConstructor

__all__ = [
    'ATOMIC_BACKEND',
    'AtomicLocalBackend',
    'atomic_write',
    'CPUDistributedDataParallel',
    'GlooSyncBatchNorm',
    'convert_gloo_sync_batchnorm',
    'AtomicCheckpointHook',
    'NonEmptyDatasetHook',
    'NonFiniteLossError',
    'NonFiniteLossHook',
    'RNGStateHook',
    'StrictLoadHook',
    'FiringRateHook',
    'LargeLayerDecayOptimWrapperConstructor',
]

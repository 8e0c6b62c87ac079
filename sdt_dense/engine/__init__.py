"""Engine components: atomic checkpoint writing, resumable RNG state, strict and safe checkpoint
loading, a stop on non-finite losses, and SyncBN/DDP for CPU processes (gloo).

Recommended config lines (the toy and released configs include them)::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))
    custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='RNGStateHook'),
                    dict(type='StrictLoadHook')]
"""
from . import checkpoint_loader  # noqa: F401  (mmengine reads local checkpoints safely)
from .atomic_io import ATOMIC_BACKEND, AtomicLocalBackend, atomic_write
from .cpu_sync_bn import (CPUDistributedDataParallel, GlooSyncBatchNorm,
                          convert_gloo_sync_batchnorm)
from .hooks import (AtomicCheckpointHook, NonFiniteLossError, NonFiniteLossHook, RNGStateHook,
                    StrictLoadHook)

__all__ = ['ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write', 'CPUDistributedDataParallel',
           'GlooSyncBatchNorm', 'convert_gloo_sync_batchnorm', 'AtomicCheckpointHook',
           'NonFiniteLossError', 'NonFiniteLossHook', 'RNGStateHook', 'StrictLoadHook']

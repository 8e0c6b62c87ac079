"""Normalisation layers from configs."""

from __future__ import annotations

from typing import Optional

from torch import nn


def build_norm(norm_cfg: Optional[dict], num_features: int, dim: int = 2) -> nn.Module:
    """BatchNorm from a config: ``dict(type='BN')`` or ``dict(type='SyncBN')``; ``None`` gives
    BatchNorm (the default, not an identity).

    ``dim`` selects BatchNorm1d (Conv1d units) or BatchNorm2d; other config keys (``eps``,
    ``momentum``) are passed on and ``requires_grad`` is ignored.
    """
    cfg = dict(norm_cfg or dict(type='BN'))
    typ = cfg.pop('type', 'BN')
    cfg.pop('requires_grad', None)
    if typ in ('BN', 'BN2d', 'BN1d'):
        return (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(num_features, **cfg)
    if typ in ('SyncBN', 'MMSyncBN'):
        return nn.SyncBatchNorm(num_features, **cfg)
    raise KeyError(f'unsupported norm type {typ!r}; use BN or SyncBN')

"""Stochastic depth (drop path) per sample or, to reproduce a published quirk, per batch."""

from __future__ import annotations

from timm.layers import DropPath
from torch import Tensor, nn

DROP_PATH_MODES = ('sample', 'batch')


class BatchDropPath(nn.Module):
    """Drop a residual branch for the whole batch at once (one Bernoulli draw per call).

    The published Large classifier applies timm's DropPath to tensors whose first axis is the
    (single) real timestep, so one draw keeps or drops the branch for every sample of the batch.
    Kept surviving branches are scaled by ``1 / (1 - drop_prob)``, as timm does.

    Shape: any ``(B, *)``; identity in eval mode or with ``drop_prob == 0``.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep_prob = 1.0 - self.drop_prob
        keep = x.new_empty((1,) * x.dim()).bernoulli_(keep_prob)
        return x * keep.div_(keep_prob)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob:.3f}'


def build_drop_path(drop_prob: float, mode: str = 'sample') -> nn.Module:
    """``nn.Identity`` for ``drop_prob == 0``, else timm's per-sample :class:`DropPath`
    (``mode='sample'``) or :class:`BatchDropPath` (``mode='batch'``)."""
    if mode not in DROP_PATH_MODES:
        raise ValueError(f'drop_path_mode must be one of {DROP_PATH_MODES}, got {mode!r}')
    if drop_prob <= 0:
        return nn.Identity()
    return DropPath(drop_prob) if mode == 'sample' else BatchDropPath(drop_prob)

"""Per-channel scale of a residual branch with a flat ``(C,)`` parameter."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..neurons.saved_counts import note_recompute


class ChannelScale(nn.Module):
    """Layer scale ``x * gamma`` with ``gamma`` of shape ``(C,)`` broadcast over dim 1.

    Unlike :class:`~sdt_dense.models.layers.LayerScale` (``gamma`` shaped ``(C, 1, 1)``) the
    parameter is a flat vector, the shape the released Large checkpoints store, and it works on
    tokens ``(B, C, N)`` as well as maps ``(B, C, H, W)``.

    Shape: ``(B, C, *) -> (B, C, *)``.
    """

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        gamma = self.gamma.view(-1, *([1] * (x.dim() - 2)))
        out = x * gamma
        # save_counts='recompute': a drop-path product saves this output; keep it as a recipe
        note_recompute(out, lambda y, g=gamma: y * g, (x,), (self.gamma,))
        return out

    def extra_repr(self) -> str:
        return f'dim={self.gamma.numel()}'

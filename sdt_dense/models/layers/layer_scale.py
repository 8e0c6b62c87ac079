"""Per-channel scale of a residual branch."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..neurons.saved_counts import note_recompute


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` of a residual branch, ``(B, C, H, W)``."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, 1, 1), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        out = x * self.gamma
        # save_counts='recompute': a drop-path product saves this output; keep it as a recipe
        note_recompute(out, lambda y, g=self.gamma: y * g, (x,), (self.gamma,))
        return out

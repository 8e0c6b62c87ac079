"""Per-channel scale of a residual branch."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` of a residual branch, ``(B, C, H, W)``."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, 1, 1), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma

"""Spiking MLPs: 3x3-conv MLP of the conv blocks and the token MLP of the transformer blocks."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .spike_conv_bn import SpikeConvBN


class ConvMLP(nn.Module):
    """3x3-conv MLP of the conv blocks, ``(B, C, H, W) -> (B, C, H, W)``, hidden width ``ratio * C``."""

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv1 = SpikeConvBN(dim, hidden, 3, padding=1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.conv2 = SpikeConvBN(hidden, dim, 3, padding=1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class TokenMLP(nn.Module):
    """Channel MLP of the transformer blocks on tokens: ``(B, C, H, W) -> (B, C, H, W)``, computed as
    Conv1d (with bias) on ``(B, C, N)``, hidden width ``ratio * C``."""

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = SpikeConvBN(
            dim, hidden, 1, bias=True, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg, conv_dim=1
        )
        self.fc2 = SpikeConvBN(
            hidden, dim, 1, bias=True, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg, conv_dim=1
        )

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        return self.fc2(self.fc1(x.flatten(2))).reshape(B, C, H, W)

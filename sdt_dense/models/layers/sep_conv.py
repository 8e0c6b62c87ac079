"""The spiking separable convolution (the V3 token mixer)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .spike_conv_bn import SpikeConvBN


class SepConv(nn.Module):
    """Spiking separable conv (the V3 token mixer), ``(B, C, H, W) -> (B, C, H, W)``:
    pointwise ``C -> 2C``, depthwise ``k x k``, pointwise ``2C -> C``, each ``neuron -> conv -> BN``."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        expansion: int = 2,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        hidden = dim * expansion
        self.pwconv1 = SpikeConvBN(dim, hidden, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.dwconv = SpikeConvBN(
            hidden,
            hidden,
            kernel_size,
            padding=kernel_size // 2,
            groups=hidden,
            neuron_cfg=neuron_cfg,
            norm_cfg=norm_cfg,
        )
        self.pwconv2 = SpikeConvBN(hidden, dim, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.pwconv2(self.dwconv(self.pwconv1(x)))

"""RepConv: two stacked pointwise ``Conv1d -> BN`` units on tokens (re-parameterisable)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from .spike_conv_bn import SpikeConvBN


class RepConv(nn.Module):
    """``[neuron ->] Conv1d(C_in -> h, k1) -> BN -> Conv1d(h -> C_out, k1) -> BN`` with
    ``h = int(hidden_ratio * C_in)`` and no conv bias.

    The two maps are linear with no neuron between them, so at inference they fold into a single
    1x1 conv with bias; training them as two wider maps is the over-parameterisation of the
    published Large family (its q/k/v/projection maps and the 83M model's extra token branch).

    Args:
        in_channels, out_channels: token widths.
        hidden_ratio: width of the inner map relative to ``in_channels`` (1.5 as published).
        neuron_cfg: config of the neuron in front of the first conv (``None``: default SFA).
        norm_cfg: norm config of both BNs.
        with_neuron: build that neuron; ``False`` when the input already is a neuron's output
            (the attention feeds one shared neuron into q, k and v).

    Shape: ``(B, C_in, N) -> (B, C_out, N)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_ratio: float = 1.5,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        with_neuron: bool = True,
    ) -> None:
        super().__init__()
        hidden = int(in_channels * hidden_ratio)
        self.conv1 = SpikeConvBN(
            in_channels,
            hidden,
            1,
            neuron_cfg=neuron_cfg,
            norm_cfg=norm_cfg,
            conv_dim=1,
            with_neuron=with_neuron,
        )
        # Fed by BN output (real values), not by spikes: no neuron here.
        self.conv2 = SpikeConvBN(hidden, out_channels, 1, norm_cfg=norm_cfg, conv_dim=1, with_neuron=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))

"""``neuron -> conv -> BN``, the unit every spiking layer of the backbones is made of."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ..neurons import build_neuron
from ..neurons.saved_counts import recompute_active
from .norm import build_norm
from .recompute import note_batch_norm, note_synapse


class SpikeConvBN(nn.Module):
    """``neuron -> Conv{1,2}d -> BN``: the unit every spiking layer is made of.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, groups, bias: of the conv.
        neuron_cfg: neuron config for :func:`~sdt_dense.models.neurons.build_neuron`; ``None``
            builds the default SFA neuron.
        with_neuron: ``False`` builds no neuron (the stem conv on real pixels, or a conv fed by
            another module's neuron).
        norm_cfg: norm config for :func:`build_norm` (``None``: BatchNorm).
        conv_dim: 2 (Conv2d, ``(B, C, H, W)``) or 1 (Conv1d, ``(B, C, N)``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = False,
        neuron_cfg: Optional[dict] = dict(type='SFA'),
        norm_cfg: Optional[dict] = None,
        conv_dim: int = 2,
        with_neuron: bool = True,
    ) -> None:
        super().__init__()
        self.neuron = build_neuron(neuron_cfg) if with_neuron else None
        conv = nn.Conv1d if conv_dim == 1 else nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        self.bn = build_norm(norm_cfg, out_channels, conv_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.neuron is not None:
            x = self.neuron(x)
        y = self.conv(x)
        if recompute_active() is None:
            return self.bn(y)
        # save_counts='recompute': BN keeps a recipe for y (the conv of saved codes), and whoever
        # saves the BN output (a second conv, a layer scale) keeps a recipe for it
        note_synapse(y, self.conv, x)
        out = self.bn(y)
        note_batch_norm(out, self.bn, y)
        return out

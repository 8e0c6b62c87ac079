"""What the detection and segmentation spiking FPNs share: argument checks, one neuron in front of
every lateral/output conv of the toolbox's FPN, and input validation before its forward."""

from __future__ import annotations

from typing import Sequence, Tuple, Union

from torch import Tensor, nn

from ..layers import SpikingLayer
from ..neurons.saved_counts import check_save_counts, saving_context


def check_pyramid_args(in_channels: Sequence[int], num_outs: int, start_level: int = 0) -> None:
    """Clear errors for FPN arguments the toolboxes would reject with a bare assert."""
    if (
        not isinstance(in_channels, (list, tuple))
        or not in_channels
        or not all(isinstance(c, int) and c > 0 for c in in_channels)
    ):
        raise ValueError(
            f'in_channels must be a non-empty list of positive ints (one per '
            f'input level), got {in_channels!r}'
        )
    if num_outs < len(in_channels) - start_level:
        raise ValueError(
            f'num_outs={num_outs} is fewer than the {len(in_channels) - start_level} used input levels'
        )


class SpikingPyramidMixin:
    """Mixin for a subclass of mmdet's or mmseg's ``FPN`` (put it first in the bases)."""

    in_channels: Sequence[int]
    #: keep the neurons' outputs that the convs save for backward as count codes (see
    #: :class:`~sdt_dense.models.neurons.SavedCounts`); set by the neck's ``save_counts`` argument
    save_counts: Union[bool, str] = 'recompute'

    def _add_neurons(self, neuron_cfg: dict, save_counts: Union[bool, str]) -> None:
        """Give each lateral and output ConvModule its own neuron; the FPN forward is reused."""
        self.save_counts = check_save_counts(save_counts)
        self.lateral_convs = nn.ModuleList(
            SpikingLayer(m, neuron_cfg, save_counts) for m in self.lateral_convs
        )
        self.fpn_convs = nn.ModuleList(SpikingLayer(m, neuron_cfg, save_counts) for m in self.fpn_convs)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'{type(self).__name__} was built for {len(self.in_channels)} input '
                f'levels (in_channels={self.in_channels}) but got {len(inputs)}'
            )
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(f'input level {i}: expected (B, {c}, H, W), got {tuple(x.shape)}')
        with saving_context(self.save_counts):
            return super().forward(tuple(inputs))

"""``neuron -> layer``: a spiking front for any conv, linear or mmcv ``ConvModule``."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ..neurons import build_neuron


class SpikingLayer(nn.Module):
    """``SFA neuron -> layer``: feeds a synaptic unit with spikes.

    Args:
        layer: an ``nn.Conv{1,2}d`` / ``nn.Linear``, or an mmcv ``ConvModule`` whose first operation
            is its conv (so the neuron's output reaches the conv directly).
        neuron_cfg: neuron config for :func:`~sdt_dense.models.neuron.build_neuron`.

    Shape: whatever ``layer`` takes and returns; the neuron is element-wise.
    """

    def __init__(self, layer: nn.Module, neuron_cfg: Optional[dict] = None) -> None:
        super().__init__()
        try:
            from mmcv.cnn import ConvModule
        except ImportError:  # pragma: no cover - mmcv not installed
            ConvModule = ()
        if ConvModule and isinstance(layer, ConvModule):
            if layer.order[0] != 'conv' or layer.with_explicit_padding:
                raise ValueError(
                    f'a neuron must feed the conv directly, but this ConvModule runs '
                    f'{"explicit padding" if layer.with_explicit_padding else layer.order[0]} '
                    f'first (order={layer.order}); use order=("conv", "norm", "act") and '
                    f'zero padding')
        elif not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            raise TypeError(f'SpikingLayer needs a conv, linear or ConvModule, got '
                            f'{type(layer).__name__}')
        self.neuron = build_neuron(neuron_cfg)
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(self.neuron(x))

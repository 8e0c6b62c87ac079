"""``neuron -> layer``: a spiking front for any conv, linear or mmcv ``ConvModule``."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from ..neurons import build_neuron
from ..neurons.saved_counts import check_save_counts, saving_active, saving_context
from .recompute import note_batch_norm, note_synapse, relu_keep_mask


class SpikingLayer(nn.Module):
    """``SFA neuron -> layer``: feeds a synaptic unit with spikes.

    Args:
        layer: an ``nn.Conv{1,2}d`` / ``nn.Linear``, or an mmcv ``ConvModule`` whose first operation
            is its conv (so the neuron's output reaches the conv directly).
        neuron_cfg: neuron config for :func:`~sdt_dense.models.neuron.build_neuron`.
        save_counts: what backward keeps when no model-level context is open (heads): ``False``
            float tensors, ``True`` the neuron's output as count codes, ``'recompute'`` codes
            and, for a ``ConvModule``, its norm input as a recipe and its ReLU as a bit mask
            (see :class:`~sdt_dense.models.neurons.SavedCounts`). Gradients are the same bits.

    Shape: whatever ``layer`` takes and returns; the neuron is element-wise.
    """

    def __init__(
        self, layer: nn.Module, neuron_cfg: Optional[dict] = None, save_counts: Union[bool, str] = 'recompute'
    ) -> None:
        super().__init__()
        self.save_counts = check_save_counts(save_counts)
        # a ConvModule run piece by piece while saving (see _saving_forward)
        self._conv_module = False
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
                    f'zero padding'
                )
            self._conv_module = layer.order == ('conv', 'norm', 'act')
        elif not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            raise TypeError(f'SpikingLayer needs a conv, linear or ConvModule, got {type(layer).__name__}')
        self.neuron = build_neuron(neuron_cfg)
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        if not self.save_counts or not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self.layer(self.neuron(x))
        if saving_active() is not None:  # inside a neck's (or a head's) own context
            return self._saving_forward(x)
        with saving_context(self.save_counts):
            return self._saving_forward(x)

    def _saving_forward(self, x: Tensor) -> Tensor:
        spikes = self.neuron(x)
        layer = self.layer
        if not self._conv_module or layer._forward_hooks or layer._forward_pre_hooks:
            return layer(spikes)
        # ConvModule.forward's default path (conv, norm, act), so that the norm's input is a
        # recipe and an in-place ReLU keeps bits instead of overwriting (and saving) the conv output
        out = layer.conv(spikes)
        if layer.with_norm:
            note_synapse(out, layer.conv, spikes)
            normed = layer.norm(out)
            note_batch_norm(normed, layer.norm, out)
            out = normed
        if layer.with_activation:
            out = relu_keep_mask(out) if type(layer.activate) is nn.ReLU else layer.activate(out)
        return out

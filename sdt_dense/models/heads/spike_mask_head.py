"""Spiking FCN mask head (the published ``SpikeFCNMaskHead``), on mmdet's FCNMaskHead.

For mask RoI features ``x`` (real-valued ``(R, C, 14, 14)``)::

    x -> [SFA -> ConvModule 3x3] x num_convs -> SFA -> Deconv 2x2/s2 -> SFA -> Conv1x1 -> logits

Every conv has its own neuron object. ``upsample`` and ``conv_logits`` stay plain mmdet layers
(their neurons are separate attributes), so ``FCNMaskHead.init_weights`` Kaiming-initialises them;
the published head wrapped them and silently lost that initialisation.
"""

from __future__ import annotations

from typing import List, Optional, Union

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from torch import Tensor, nn

from ...registry import register_model
from ..layers import SpikingLayer
from ..neurons import build_neuron
from ..neurons.saved_counts import check_save_counts, saving_context
from ..task_neurons import det_neuron_cfg


@register_model('mmdet')
class SpikeFCNMaskHead(FCNMaskHead):
    """FCN mask head with an SFA neuron in front of every conv, the deconv and the logits conv.

    Args:
        neuron_cfg: neuron config; SFA settings override ``dict(type='SFA', D=4, norm=1)``.
        **kwargs: the arguments of mmdet's ``FCNMaskHead``. ``upsample_cfg`` may be ``deconv``
            (default; gets a neuron), ``nearest``, ``bilinear`` or ``None`` (no synapses, so no
            neuron). ``carafe`` is refused: its kernel predictor is not a single synaptic layer.
        save_counts: what backward keeps of the spiking layers (``'recompute'``, ``True`` or
            ``False``; see :class:`~sdt_dense.models.layers.SpikingLayer`); same gradients.

    Shape:
        ``forward``: ``(R, in_channels, S, S)`` -> mask logits ``(R, num_classes, 2S, 2S)``
        (deconv).
    """

    def __init__(
        self, neuron_cfg: Optional[dict] = None, save_counts: Union[bool, str] = 'recompute', **kwargs
    ) -> None:
        upsample = kwargs.get('upsample_cfg', dict(type='deconv'))
        if upsample is not None and upsample.get('type') == 'carafe':
            raise ValueError(
                'SpikeFCNMaskHead does not support upsample_cfg type "carafe"; use '
                '"deconv", "nearest", "bilinear" or None'
            )
        super().__init__(**kwargs)
        self.neuron_cfg = det_neuron_cfg(neuron_cfg)
        self.save_counts = check_save_counts(save_counts)
        self.convs = nn.ModuleList(SpikingLayer(m, self.neuron_cfg, self.save_counts) for m in self.convs)
        self.upsample_neuron = build_neuron(self.neuron_cfg) if self.upsample_method == 'deconv' else None
        self.logits_neuron = build_neuron(self.neuron_cfg)

    def forward(self, x: Tensor) -> Tensor:
        with saving_context(self.save_counts):
            return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            if self.upsample_neuron is not None:
                x = self.upsample_neuron(x)
            # No ReLU after the deconv (the published head removed it): the next neuron clips at 0.
            x = self.upsample(x)
        return self.conv_logits(self.logits_neuron(x))


__all__: List[str] = ['SpikeFCNMaskHead']

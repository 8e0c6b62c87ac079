"""Spiking RetinaNet head (the published ``SpikeRetinaHead``), on mmdet's RetinaHead.

Per pyramid level ``x`` (real-valued ``(B, C, H, W)``), two independent branches::

    cls: x -> [SFA -> ConvModule 3x3] x stacked_convs -> SFA -> Conv3x3 -> (B, A*K, H, W)
    reg: x -> [SFA -> ConvModule 3x3] x stacked_convs -> SFA -> Conv3x3 -> (B, A*4, H, W)

Every conv has its own neuron object. The published head applied one stateful LIF neuron to both
branches in turn (membrane state leaked from the cls to the reg branch); here the
branches share nothing. The focal-loss bias prior of ``retina_cls`` is kept (mmdet's ``init_cfg``
override reaches the conv inside its :class:`SpikingLayer`).

Initialisation: Kaiming for the stacked convs, Normal(std 0.01) for the predictors. mmdet's
Normal(std 0.01) on the stacked convs shrinks the signal about tenfold per conv, so after two of
them no neuron reaches its first spike threshold (0.5) and the head starts dead: no input spikes
for the predictors and no weight gradient anywhere in the head (measured on the 10M RetinaNet).
"""

from __future__ import annotations

from typing import List, Optional, Union

from mmdet.models.dense_heads import RetinaHead
from torch import nn

from ...registry import register_model
from ..layers import SpikingLayer
from ..neurons.saved_counts import check_save_counts
from ..task_neurons import det_neuron_cfg

#: Kaiming for the stacked convs (they feed neurons); predictors as mmdet's RetinaHead.
SPIKE_RETINA_INIT = dict(
    type='Kaiming',
    layer='Conv2d',
    override=[
        dict(type='Normal', name='retina_cls', std=0.01, bias_prob=0.01),
        dict(type='Normal', name='retina_reg', std=0.01),
    ],
)


@register_model('mmdet')
class SpikeRetinaHead(RetinaHead):
    """RetinaNet head with an SFA neuron in front of every conv.

    Args:
        num_classes: number of object classes.
        in_channels: channels of the input feature maps.
        neuron_cfg: neuron config; SFA settings override ``dict(type='SFA', D=4, norm=1)``.
        save_counts: what backward keeps of the spiking layers (``'recompute'``, ``True`` or
            ``False``; see :class:`~sdt_dense.models.layers.SpikingLayer`); same gradients.
        **kwargs: the arguments of mmdet's ``RetinaHead`` (``stacked_convs``, ``feat_channels``,
            ``anchor_generator``, losses ...).
        init_cfg: default :data:`SPIKE_RETINA_INIT`.

    Shape:
        ``forward_single``: ``(B, in_channels, H, W)`` -> ``(B, A*K, H, W)``, ``(B, A*4, H, W)``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        neuron_cfg: Optional[dict] = None,
        init_cfg: Optional[dict] = SPIKE_RETINA_INIT,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        self.neuron_cfg = det_neuron_cfg(neuron_cfg)
        self.save_counts = check_save_counts(save_counts)
        super().__init__(num_classes, in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        cfg, saving = self.neuron_cfg, self.save_counts
        self.cls_convs = nn.ModuleList(SpikingLayer(m, cfg, saving) for m in self.cls_convs)
        self.reg_convs = nn.ModuleList(SpikingLayer(m, cfg, saving) for m in self.reg_convs)
        self.retina_cls = SpikingLayer(self.retina_cls, cfg, saving)
        self.retina_reg = SpikingLayer(self.retina_reg, cfg, saving)


__all__: List[str] = ['SPIKE_RETINA_INIT', 'SpikeRetinaHead']

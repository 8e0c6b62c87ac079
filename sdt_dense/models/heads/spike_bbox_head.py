"""Spiking RoI box heads (the published ``SpikeConvFCBBoxHead`` family), on mmdet's
ConvFCBBoxHead.

For RoI features ``x`` (real-valued ``(R, C, 7, 7)``)::

    convs:      x -> [SFA -> ConvModule 3x3] x num_convs
    flatten:    (R, C * 7 * 7)                      (before the neuron of the first fc)
    fcs:        [SFA -> Linear] x num_fcs           (no ReLU: the next neuron clips at 0)
    predictors: cls = Linear(h), reg = Linear(h)    (h: real-valued last fc output, as published)
                or  Linear(SFA_cls(h)), Linear(SFA_reg(h))   with ``spiking_predictors=True``

Every conv/fc has its own neuron object. By default the predictors read the real-valued output of
the last fc, as in the published head (they are then the head's only non-spike-driven layers);
``spiking_predictors=True`` gives them neurons of their own, so the whole head is spike-driven.
"""

from __future__ import annotations

from typing import List, Optional, Union

from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from torch import nn

from ...registry import register_model
from ..layers import SpikingLayer
from ..neurons.saved_counts import check_save_counts
from ..task_neurons import det_neuron_cfg


@register_model('mmdet')
class SpikeConvFCBBoxHead(ConvFCBBoxHead):
    """ConvFC box head with an SFA neuron in front of every conv and fc.

    Args:
        neuron_cfg: neuron config; SFA settings override ``dict(type='SFA', D=4, norm=1)``.
        spiking_predictors: put neurons in front of ``fc_cls`` / ``fc_reg`` too. ``False``
            (default, as published) feeds them the real-valued last hidden fc output.
        save_counts: what backward keeps of the spiking layers (``'recompute'``, ``True`` or
            ``False``; see :class:`~sdt_dense.models.layers.SpikingLayer`); same gradients.
        *args, **kwargs: the arguments of mmdet's ``ConvFCBBoxHead`` (``num_shared_convs``,
            ``num_shared_fcs``, ``fc_out_channels``, ``norm_cfg``, ``bbox_coder``, losses ...).

    Shape:
        ``forward``: ``(R, in_channels, S, S)`` -> cls ``(R, num_classes + 1)``, reg ``(R, 4K)``
        (or ``(R, 4)`` class-agnostic).
    """

    def __init__(
        self,
        *args,
        neuron_cfg: Optional[dict] = None,
        spiking_predictors: bool = False,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.neuron_cfg = det_neuron_cfg(neuron_cfg)
        self.save_counts = check_save_counts(save_counts)
        self.spiking_predictors = spiking_predictors
        for name in ('shared_convs', 'shared_fcs', 'cls_convs', 'cls_fcs', 'reg_convs', 'reg_fcs'):
            setattr(
                self,
                name,
                nn.ModuleList(
                    SpikingLayer(m, self.neuron_cfg, self.save_counts) for m in getattr(self, name)
                ),
            )
        if spiking_predictors:
            if self.with_cls:
                self.fc_cls = SpikingLayer(self.fc_cls, self.neuron_cfg, self.save_counts)
            if self.with_reg:
                self.fc_reg = SpikingLayer(self.fc_reg, self.neuron_cfg, self.save_counts)
        # ConvFCBBoxHead.forward applies self.relu after every fc; the neurons already clip at 0,
        # and without spiking predictors the published head also feeds them the raw fc output.
        self.relu = nn.Identity()


@register_model('mmdet')
class SpikeShared2FCBBoxHead(SpikeConvFCBBoxHead):
    """Two shared spiking fcs (Mask R-CNN's box head; the published ``SharedSpike2FCBBoxHead``)."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs) -> None:
        super().__init__(
            *args,
            num_shared_convs=0,
            num_shared_fcs=2,
            num_cls_convs=0,
            num_cls_fcs=0,
            num_reg_convs=0,
            num_reg_fcs=0,
            fc_out_channels=fc_out_channels,
            **kwargs,
        )


@register_model('mmdet')
class SpikeShared4Conv1FCBBoxHead(SpikeConvFCBBoxHead):
    """Four shared spiking convs and one fc (the Cascade Mask R-CNN box head; published
    ``SharedSpike4Conv1FCBBoxHead``)."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs) -> None:
        super().__init__(
            *args,
            num_shared_convs=4,
            num_shared_fcs=1,
            num_cls_convs=0,
            num_cls_fcs=0,
            num_reg_convs=0,
            num_reg_fcs=0,
            fc_out_channels=fc_out_channels,
            **kwargs,
        )


__all__: List[str] = ['SpikeConvFCBBoxHead', 'SpikeShared2FCBBoxHead', 'SpikeShared4Conv1FCBBoxHead']

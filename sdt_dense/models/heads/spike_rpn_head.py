"""Spiking region proposal head (the published ``SpikeRPNHead``), on mmdet's RPNHead.

Per pyramid level ``x`` (real-valued ``(B, C, H, W)``)::

    f        = Conv3x3(SFA(x))                      (num_convs > 1: SFA -> ConvModule, repeated)
    cls      = Conv1x1(SFA_cls(f))                  (B, A, H, W)
    reg      = Conv1x1(SFA_reg(f))                  (B, 4A, H, W)

Each conv has its own neuron object. mmdet's ReLU after ``rpn_conv`` is kept by the reused
``RPNHead.forward_single`` but changes nothing, since the following neurons clip at 0.

Initialisation: Kaiming for ``rpn_conv`` and Normal(std 0.01) for the two predictors. With
mmdet's Normal(std 0.01) on ``rpn_conv`` too, most of its outputs stay below the first spike
threshold (0.5): the predictors' mean input count drops about 3-5x (measured on the 19M Mask R-CNN
at initialisation), and a deeper stack of such convs goes silent altogether (see
:mod:`.spike_retina_head`).
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

from mmdet.models.dense_heads import RPNHead
from torch import Tensor, nn

from ...registry import register_model
from ..layers import SpikingLayer
from ..layers.recompute import relu_keep_mask
from ..neurons.saved_counts import check_save_counts, saving_context
from ..task_neurons import det_neuron_cfg

#: Kaiming for the hidden conv (it feeds neurons), Normal(0.01) for the predictors, as mmdet.
SPIKE_RPN_INIT = dict(
    type='Kaiming',
    layer='Conv2d',
    override=[dict(type='Normal', name='rpn_cls', std=0.01), dict(type='Normal', name='rpn_reg', std=0.01)],
)


@register_model('mmdet')
class SpikeRPNHead(RPNHead):
    """RPN head with an SFA neuron in front of every conv.

    Args:
        in_channels: channels of the input feature maps.
        neuron_cfg: neuron config; SFA settings override ``dict(type='SFA', D=4, norm=1)`` (raw
            counts 0..4, as published).
        save_counts: what backward keeps of the spiking layers (``'recompute'``, ``True`` or
            ``False``; see :class:`~sdt_dense.models.layers.SpikingLayer`); same gradients.
        **kwargs: the arguments of mmdet's ``RPNHead`` (``feat_channels``, ``num_convs``,
            ``anchor_generator``, ``bbox_coder``, losses ...).
        init_cfg: default :data:`SPIKE_RPN_INIT`.

    Shape:
        ``forward_single``: ``(B, in_channels, H, W)`` -> ``(B, A, H, W)``, ``(B, 4A, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        neuron_cfg: Optional[dict] = None,
        init_cfg: Optional[dict] = SPIKE_RPN_INIT,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        # RPNHead.__init__ calls _init_layers, which needs the neuron config.
        self.neuron_cfg = det_neuron_cfg(neuron_cfg)
        self.save_counts = check_save_counts(save_counts)
        super().__init__(in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        if isinstance(self.rpn_conv, nn.Sequential):  # num_convs > 1: ConvModules
            self.rpn_conv = nn.Sequential(
                *(SpikingLayer(m, self.neuron_cfg, self.save_counts) for m in self.rpn_conv)
            )
        else:
            self.rpn_conv = SpikingLayer(self.rpn_conv, self.neuron_cfg, self.save_counts)
        self.rpn_cls = SpikingLayer(self.rpn_cls, self.neuron_cfg, self.save_counts)
        self.rpn_reg = SpikingLayer(self.rpn_reg, self.neuron_cfg, self.save_counts)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """mmdet's ``RPNHead.forward_single`` in one saving context, its ReLU keeping a bit mask
        for backward instead of the float map (same values, same gradient)."""
        with saving_context(self.save_counts):
            x = relu_keep_mask(self.rpn_conv(x))
            return self.rpn_cls(x), self.rpn_reg(x)


__all__: List[str] = ['SPIKE_RPN_INIT', 'SpikeRPNHead']

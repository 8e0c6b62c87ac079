"""Spiking feature pyramid for semantic segmentation (the published ``QFPN``).

mmseg's :class:`~mmseg.models.necks.FPN` with an SFA neuron in front of every conv::

    lateral_i = BN(Conv1x1(SFA(x_i)))                      x_i: real-valued backbone level i
    p_i       = lateral_i + resize_nearest(p_{i+1})        top-down, on membrane values
    out_i     = BN(Conv3x3(SFA(p_i)))

The neuron feeds the conv directly (the spike-driven convention of
:mod:`sdt_dense.deploy.spike_driven`), while additions and resizes act on the real-valued membrane
tensors. Unlike the published module, the norm layers follow ``norm_cfg`` (``SyncBN`` gives
``nn.SyncBatchNorm``) and every FPN option of mmseg (``conv_cfg``, ``act_cfg``, ``start_level``,
extra levels, ``upsample_cfg``) is honoured.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

from mmseg.models.necks import FPN

from ...registry import register_model
from ..task_neurons import SEG_NEURON
from .spiking_pyramid import SpikingPyramidMixin, check_pyramid_args


@register_model('mmseg')
class SpikeSemanticFPN(SpikingPyramidMixin, FPN):
    """Spiking FPN neck of Semantic FPN (the published ``QFPN``).

    Args:
        in_channels: channels of each input level, e.g. ``ESpikeFormer.out_channels``.
        out_channels: channels of every output level.
        num_outs: number of output levels (``len(in_channels)`` for Semantic FPN).
        neuron_cfg: neuron in front of every conv; default ``dict(type='SFA', D=4)`` (normalised
            by ``D``).
        norm_cfg: norm of every conv (the published model: BN after each conv). ``None`` gives
            convs with bias and no norm.
        act_cfg: activation after the norm; ``None`` (default, published) since the next neuron
            already clips at 0.
        save_counts: what backward keeps of the spiking layers: ``'recompute'`` (default) count
            codes, bit masks and recomputed norm inputs, ``True`` codes and bit masks, ``False``
            float tensors (see :class:`~sdt_dense.models.neurons.SavedCounts`); same gradients.
        **kwargs: the other arguments of mmseg's ``FPN`` (``start_level``, ``end_level``,
            ``add_extra_convs``, ``conv_cfg``, ``upsample_cfg``, ``init_cfg`` ...).

    Shape:
        inputs: a sequence of ``(B, in_channels[i], H_i, W_i)``, finest first.
        outputs: a tuple of ``num_outs`` maps ``(B, out_channels, H_i, W_i)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        act_cfg: Optional[dict] = None,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        check_pyramid_args(in_channels, num_outs, kwargs.get('start_level', 0))
        super().__init__(
            list(in_channels), out_channels, num_outs, norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs
        )
        self.neuron_cfg = dict(neuron_cfg or SEG_NEURON)
        self._add_neurons(self.neuron_cfg, save_counts)


__all__: List[str] = ['SpikeSemanticFPN']

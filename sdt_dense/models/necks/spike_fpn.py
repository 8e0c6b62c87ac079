"""Spiking feature pyramid for detection (the published ``SpikeFPN``), on mmdet's FPN.

mmdet's :class:`~mmdet.models.necks.FPN` with an SFA neuron in front of every conv::

    lateral_i = Conv1x1(SFA(c_i))                        c_i: real-valued backbone level i
    p_i       = lateral_i + upsample_nearest(p_{i+1})    top-down, on membrane values
    out_i     = Conv3x3(SFA(p_i))
    extra     = max_pool(out_last, 1, stride 2)  or  Conv3x3/s2(SFA(source))   (add_extra_convs)

Tensors are plain ``(B, C, H, W)`` (the published neck carried a fake time axis of length 1).

Neurons default to ``dict(type='SFA', D=4, norm=1)``: raw spike counts 0..4, which the published
neck emits in training, and here in evaluation too. The published neck clamps to 1 in eval mode only
(binary spikes at test time, a train/test mismatch, docs/differences.md); reproduce it explicitly
with ``neuron_cfg=dict(type='SFA', D=4, norm=1, eval_ceiling=1)``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

from mmdet.models.necks import FPN

from ...registry import register_model
from ..task_neurons import det_neuron_cfg
from .spiking_pyramid import SpikingPyramidMixin, check_pyramid_args


@register_model('mmdet')
class SpikeFPN(SpikingPyramidMixin, FPN):
    """Spiking FPN neck for detection.

    Args:
        in_channels: channels of each input level, e.g. ``ESpikeFormer.out_channels``.
        out_channels: channels of every output level.
        num_outs: number of output levels (5 for Mask R-CNN, P2-P6).
        neuron_cfg: neuron in front of every lateral, output and extra conv (one neuron object per
            conv); SFA settings override :data:`DET_NEURON` (see :func:`det_neuron_cfg`), e.g.
            ``dict(eval_ceiling=1)`` for the published binary-at-test-time behaviour.
        save_counts: what backward keeps of the spiking layers: ``'recompute'`` (default) count
            codes, bit masks and recomputed norm inputs, ``True`` codes and bit masks, ``False``
            float tensors (see :class:`~sdt_dense.models.neurons.SavedCounts`); same gradients.
        **kwargs: the other arguments of mmdet's ``FPN`` (``start_level``, ``end_level``,
            ``add_extra_convs``, ``conv_cfg``, ``norm_cfg``, ``act_cfg``, ``upsample_cfg``,
            ``init_cfg``). ``relu_before_extra_convs`` changes nothing: the neuron clips at 0.

    Shape:
        inputs: a sequence of ``(B, in_channels[i], H_i, W_i)``, finest first.
        outputs: a tuple of ``num_outs`` real-valued maps ``(B, out_channels, H_j, W_j)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        neuron_cfg: Optional[dict] = None,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        check_pyramid_args(in_channels, num_outs, kwargs.get('start_level', 0))
        super().__init__(list(in_channels), out_channels, num_outs, **kwargs)
        self.neuron_cfg = det_neuron_cfg(neuron_cfg)
        self._add_neurons(self.neuron_cfg, save_counts)


__all__: List[str] = ['SpikeFPN']

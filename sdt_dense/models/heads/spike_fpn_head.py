"""Spiking Semantic-FPN decode head (the published ``QFPNHead``).

mmseg's :class:`~mmseg.models.decode_heads.FPNHead` with an SFA neuron in front of every conv. For
input level ``i`` at stride ``s_i`` a scale head of ``max(1, log2(s_i / s_0))`` stages
``SFA -> Conv3x3 -> BN`` (each followed by a bilinear x2 upsampling unless ``i`` is the finest
level) brings the level to stride ``s_0``; the levels are summed (membrane values), and the
classifier is ``SFA -> dropout -> Conv1x1``.

Fixes against the published head: norms follow ``norm_cfg`` (SyncBN honoured), ``dropout_ratio`` is
applied (the published code disabled dropout globally), the first conv of a level takes
``in_channels[i]`` (the published one required ``in_channels == channels``), and the declared
``feature_strides`` are checked against the actual feature sizes (the published configs declared
``[4, 8, 16, 32]`` for features at strides ``[2, 4, 8, 16]``).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import FPNHead
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ...registry import register_model
from ..layers import SpikingLayer
from ..neurons import build_neuron
from ..neurons.saved_counts import check_save_counts, saving_context
from ..task_neurons import SEG_NEURON


def check_feature_strides(feature_strides: Sequence[int], in_channels: Sequence[int]) -> None:
    """Validate the declared strides of a Semantic-FPN head (one power of two per input level,
    the first level the finest)."""
    if not isinstance(in_channels, (list, tuple)):
        raise ValueError(f'in_channels must be a list (one entry per level), got {in_channels!r}')
    if not isinstance(feature_strides, (list, tuple)) or len(feature_strides) != len(in_channels):
        raise ValueError(
            f'feature_strides {feature_strides!r} must give one stride per input '
            f'level (in_channels={list(in_channels)})'
        )
    for s in feature_strides:
        if not isinstance(s, int) or s < 1 or s & (s - 1):
            raise ValueError(f'feature_strides must be powers of two, got {list(feature_strides)}')
    if min(feature_strides) != feature_strides[0]:
        raise ValueError(
            f'the first level must be the finest (smallest stride), got '
            f'feature_strides={list(feature_strides)}'
        )


@register_model('mmseg')
class SpikeFPNHead(FPNHead):
    """Spiking Semantic-FPN head.

    Args:
        feature_strides: true strides of the input levels w.r.t. the image, finest first (must
            match the backbone: ``ESpikeFormer.out_strides``).
        neuron_cfg: neuron in front of every conv; default ``dict(type='SFA', D=4)`` (normalised
            by ``D``, as the published head with ``T = 4``).
        act_cfg: activation after each norm; ``None`` (default, published): the next neuron
            already clips at 0.
        save_counts: what backward keeps of the spiking layers (``'recompute'``, ``True`` or
            ``False``; see :class:`~sdt_dense.models.layers.SpikingLayer`); same gradients.
        **kwargs: arguments of mmseg's ``BaseDecodeHead`` (``in_channels``, ``channels``,
            ``num_classes``, ``in_index``, ``dropout_ratio``, ``norm_cfg``, ``conv_cfg``,
            ``loss_decode``, ``align_corners`` ...).

    Shape:
        inputs: a sequence of ``(B, in_channels[i], H_i, W_i)`` with ``H_i = ceil(H / s_i)``.
        output: logits ``(B, num_classes, H_0, W_0)`` at stride ``feature_strides[0]``.
    """

    def __init__(
        self,
        feature_strides: Sequence[int],
        neuron_cfg: Optional[dict] = None,
        act_cfg: Optional[dict] = None,
        save_counts: Union[bool, str] = 'recompute',
        **kwargs,
    ) -> None:
        check_feature_strides(feature_strides, kwargs.get('in_channels'))
        super().__init__(list(feature_strides), act_cfg=act_cfg, **kwargs)
        self.neuron_cfg = dict(neuron_cfg or SEG_NEURON)
        self.save_counts = check_save_counts(save_counts)
        for scale_head in self.scale_heads:
            for idx, module in enumerate(scale_head):
                if isinstance(module, ConvModule):
                    scale_head[idx] = SpikingLayer(module, self.neuron_cfg, self.save_counts)
        self.out_neuron = build_neuron(self.neuron_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        self._check_inputs(self._transform_inputs(inputs))
        with saving_context(self.save_counts):
            return super().forward(inputs)

    def loss(self, inputs: Sequence[Tensor], batch_data_samples: SampleList, train_cfg: ConfigType) -> dict:
        # training batches are padded to a common size, recorded as pad_shape by mmseg's stack_batch
        pad_shape = batch_data_samples[0].metainfo.get('pad_shape')
        self._check_inputs(
            self._transform_inputs(inputs), None if pad_shape is None else tuple(pad_shape[:2])
        )
        return super().loss(inputs, batch_data_samples, train_cfg)

    def predict(self, inputs: Sequence[Tensor], batch_img_metas: List[dict], test_cfg: ConfigType) -> Tensor:
        self._check_inputs(self._transform_inputs(inputs), _predict_input_size(batch_img_metas[0]))
        return super().predict(inputs, batch_img_metas, test_cfg)

    def cls_seg(self, feat: Tensor) -> Tensor:
        """``SFA -> dropout -> conv_seg``: ``(B, channels, H, W) -> (B, out_channels, H, W)``.

        Dropout2d silences whole spike channels in training; in eval mode it returns its input
        object, so the spikes reach ``conv_seg`` directly (spike-driven convention).
        """
        return super().cls_seg(self.out_neuron(feat))

    def _check_inputs(self, feats: List[Tensor], input_size: Optional[Tuple[int, int]] = None) -> None:
        """Raise if the features contradict ``in_channels`` or ``feature_strides``.

        The levels' sizes must follow the declared stride ratios; with the network input size
        (``loss``/``predict``) the finest level must also be at ``feature_strides[0]``. A level
        declared at another stride than its true one (as in the published configs) is an error.
        """
        for i, (x, c) in enumerate(zip(feats, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(f'input level {i}: expected (B, {c}, H, W), got {tuple(x.shape)}')
        s0, size0 = self.feature_strides[0], tuple(feats[0].shape[-2:])
        checks = [(0, s0, size0, input_size, 'the input')] if input_size is not None else []
        checks += [
            (i, s // s0, tuple(x.shape[-2:]), size0, 'level 0')
            for i, (x, s) in enumerate(zip(feats, self.feature_strides))
        ]
        for i, ratio, size, ref, ref_name in checks:
            # a map at relative stride r of an (h, w) map has ceil(h / r) x ceil(w / r) cells
            if any(abs(n * ratio - m) >= ratio for n, m in zip(size, ref)):
                expected = tuple(math.ceil(m / ratio) for m in ref)
                raise ValueError(
                    f'feature_strides={self.feature_strides} put level {i} at {ratio}x the stride '
                    f'of {ref_name} {ref}, i.e. about {expected}, but it is {size}: declare the '
                    f'true strides of the backbone outputs (ESpikeFormer.out_strides)'
                )


def _predict_input_size(meta: dict) -> Tuple[int, int]:
    """Size of the network input at test time, read as mmseg's ``predict_by_feat`` does."""
    if isinstance(meta['img_shape'], torch.Size):  # slide inference: the crop
        return tuple(meta['img_shape'])
    if 'pad_shape' in meta:
        return tuple(meta['pad_shape'][:2])
    return tuple(meta['img_shape'][:2])


__all__ = ['SpikeFPNHead', 'check_feature_strides']

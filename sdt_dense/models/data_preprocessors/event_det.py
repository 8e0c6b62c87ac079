"""Batches of event tensors for mmdet detectors: ``[(T, C, H, W), ...] -> (B, T, C, H, W)``."""

from __future__ import annotations

import math
from numbers import Number
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.models.utils.misc import samplelist_boxtype2tensor
from torch import Tensor

from ...registry import register_model

__all__ = ['EventDetDataPreprocessor']


@register_model('mmdet')
class EventDetDataPreprocessor(DetDataPreprocessor):
    """Stack event representations ``(T, C, H, W)`` into ``(B, T, C, H, W)``.

    Each sample is padded at the bottom and right (with ``pad_value``) to the batch's largest
    ``H x W`` rounded up to ``pad_size_divisor``; every sample's metainfo gets ``pad_shape`` (its
    own size rounded up to the divisor) and ``batch_input_shape`` (the stacked ``H x W``), which
    mmdet's heads use for anchor validity and box clipping. Boxes need no change (padding is at
    the far sides).

    Args:
        mean, std: per-channel (``C``) normalisation, ``(x - mean) / std``; ``None`` (default)
            leaves the values as the representation made them: event counts are not pixels, and
            a zero count must stay zero (no spikes from an empty region).
        pad_size_divisor: e.g. the backbone's largest stride.
        pad_value: value of the padded border (0 = no events).
        boxtype2tensor: as mmdet's ``DetDataPreprocessor``.

    Shape:
        ``data['inputs']``: a list of ``(T, C, H_i, W_i)`` tensors (or a stacked ``(B, T, C, H,
        W)``); output ``inputs`` float ``(B, T, C, H, W)``.
    """

    def __init__(
        self,
        mean: Optional[Sequence[Number]] = None,
        std: Optional[Sequence[Number]] = None,
        pad_size_divisor: int = 1,
        pad_value: float = 0.0,
        boxtype2tensor: bool = True,
        batch_augments: Optional[List[dict]] = None,
    ) -> None:
        if batch_augments:
            raise ValueError(
                'EventDetDataPreprocessor: batch_augments act on images (B, C, H, '
                'W); augment events in the pipeline instead'
            )
        super().__init__(
            pad_size_divisor=pad_size_divisor, pad_value=pad_value, boxtype2tensor=boxtype2tensor
        )
        if (mean is None) != (std is None):
            raise ValueError('give both mean and std, or neither')
        self.event_normalize = mean is not None
        if self.event_normalize:
            if len(mean) != len(std):
                raise ValueError(f'mean ({len(mean)}) and std ({len(std)}) differ in length')
            self.register_buffer(
                'event_mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), False
            )
            self.register_buffer('event_std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), False)

    def _pad_hw(self, h: int, w: int) -> Tuple[int, int]:
        d = self.pad_size_divisor
        return int(math.ceil(h / d)) * d, int(math.ceil(w / d)) * d

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, data_samples = data['inputs'], data.get('data_samples')
        if isinstance(inputs, Tensor):
            if inputs.dim() != 5:
                raise ValueError(f'expected (B, T, C, H, W) inputs, got {tuple(inputs.shape)}')
            inputs = list(inputs)
        if not inputs:
            raise ValueError('empty batch')
        steps, channels = inputs[0].shape[:2]
        for x in inputs:
            if x.dim() != 4 or x.shape[:2] != (steps, channels):
                raise ValueError(
                    f'every sample must be (T={steps}, C={channels}, H, W); got '
                    f'{tuple(x.shape)} (the representation differs within the '
                    'batch)'
                )
        sample_pads = [self._pad_hw(*x.shape[-2:]) for x in inputs]
        batch_h = max(p[0] for p in sample_pads)
        batch_w = max(p[1] for p in sample_pads)
        padded = []
        for x in inputs:
            x = x.float()
            if self.event_normalize:
                if self.event_mean.shape[1] != channels:
                    raise ValueError(
                        f'mean/std have {self.event_mean.shape[1]} channels, the inputs {channels}'
                    )
                x = (x - self.event_mean) / self.event_std
            h, w = x.shape[-2:]
            padded.append(F.pad(x, (0, batch_w - w, 0, batch_h - h), value=self.pad_value))
        batch = torch.stack(padded)
        if data_samples is not None:
            for sample, pad_shape in zip(data_samples, sample_pads):
                sample.set_metainfo(dict(batch_input_shape=(batch_h, batch_w), pad_shape=pad_shape))
            if self.boxtype2tensor:
                samplelist_boxtype2tensor(data_samples)
        return dict(inputs=batch, data_samples=data_samples)

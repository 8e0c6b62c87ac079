"""Transforms of image-only pretraining: random resized crop and input packing.

mmcv 2.x provides loading and flipping but no Inception-style random resized crop (that lives in
mmpretrain, which this project does not depend on), hence :class:`RandomResizedCropImage`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from mmengine.structures import BaseDataElement


@TRANSFORMS.register_module()
class RandomResizedCropImage(BaseTransform):
    """Crop a random area and aspect ratio of the image and resize it to ``scale`` (the
    Inception / torchvision ``RandomResizedCrop``).

    Up to ``max_attempts`` times, draw an area fraction in ``crop_ratio_range`` and a log-uniform
    aspect ratio in ``aspect_ratio_range``; take the first crop that fits, at a uniformly random
    position. Otherwise fall back to the largest centred crop with the aspect ratio clamped to the
    range. Randomness: numpy's global generator (seeded per worker by mmengine).

    Args:
        scale: output size, ``int`` (square) or ``(width, height)`` as mmcv.
        crop_ratio_range: area fraction range (MAE pretraining: ``(0.2, 1.0)``).
        aspect_ratio_range: width / height range.
        max_attempts: draws before the centred fallback.
        interpolation: mmcv interpolation (``'bicubic'`` as published).
        backend: mmcv resize backend.

    Required keys: ``img``. Modified: ``img``, ``img_shape``. Added: ``crop_bbox``
    (x1, y1, x2, y2 in the input image).
    """

    def __init__(
        self,
        scale: Union[int, Sequence[int]],
        crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
        aspect_ratio_range: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        max_attempts: int = 10,
        interpolation: str = 'bicubic',
        backend: str = 'cv2',
    ) -> None:
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if len(self.scale) != 2 or min(self.scale) < 1:
            raise ValueError(f'scale must be an int or (width, height), got {scale!r}')
        if not 0 < crop_ratio_range[0] <= crop_ratio_range[1] <= 1:
            raise ValueError(f'crop_ratio_range must satisfy 0 < min <= max <= 1, got {crop_ratio_range}')
        if not 0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
            raise ValueError(f'invalid aspect_ratio_range {aspect_ratio_range}')
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.max_attempts = max_attempts
        self.interpolation = interpolation
        self.backend = backend

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """A random crop ``(x1, y1, w, h)`` of a ``height x width`` image."""
        area = height * width
        log_lo, log_hi = (math.log(r) for r in self.aspect_ratio_range)
        for _ in range(self.max_attempts):
            target = area * np.random.uniform(*self.crop_ratio_range)
            aspect = math.exp(np.random.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return (
                    int(np.random.randint(0, width - w + 1)),
                    int(np.random.randint(0, height - h + 1)),
                    w,
                    h,
                )
        ratio = width / height
        if ratio < self.aspect_ratio_range[0]:
            w, h = width, int(round(width / self.aspect_ratio_range[0]))
        elif ratio > self.aspect_ratio_range[1]:
            w, h = int(round(height * self.aspect_ratio_range[1])), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def transform(self, results: dict) -> dict:
        img = results['img']
        x1, y1, w, h = self.crop_box(*img.shape[:2])
        img = mmcv.imresize(
            img[y1 : y1 + h, x1 : x1 + w], self.scale, interpolation=self.interpolation, backend=self.backend
        )
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['crop_bbox'] = np.array([x1, y1, x1 + w, y1 + h], dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(scale={self.scale}, '
            f'crop_ratio_range={self.crop_ratio_range}, '
            f'aspect_ratio_range={self.aspect_ratio_range}, '
            f'interpolation={self.interpolation!r})'
        )


@TRANSFORMS.register_module()
class PackImageInputs(BaseTransform):
    """Pack an image for an mmengine model without annotations (pretraining).

    Output: ``inputs`` ``(C, H, W)`` tensor of the image's dtype (uint8 from the loader; the data
    preprocessor normalises) and ``data_samples``, a ``BaseDataElement`` whose metainfo holds
    ``meta_keys`` found in the results.

    Required keys: ``img`` ``(H, W, C)`` or ``(H, W)``.
    """

    def __init__(
        self,
        meta_keys: Optional[Sequence[str]] = (
            'img_path',
            'ori_shape',
            'img_shape',
            'flip',
            'flip_direction',
            'gt_label',
        ),
    ) -> None:
        self.meta_keys = tuple(meta_keys or ())

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        meta = {k: results[k] for k in self.meta_keys if k in results}
        return dict(inputs=inputs, data_samples=BaseDataElement(metainfo=meta))

"""A segmentation label map that does not fit its dataset stops the run naming the file."""

from __future__ import annotations

from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from ...errors import BrokenLabelMapError


@TRANSFORMS.register_module()
class CheckSegLabel(BaseTransform):
    """Raise :class:`~sdt_dense.errors.BrokenLabelMapError` for a label map holding values that
    are neither a class (``0..num_classes-1``) nor ``ignore_index``, or whose size differs from its
    image.

    Without it, a stray value (say 7 in a 4-class dataset, e.g. from an anti-aliased PNG or a
    label map of another dataset) reaches the loss, which fails on the GPU with a device-side
    assert, or trains on a class that does not exist; a label map of another size is silently
    resized with the image by the random crops. Place it right after mmseg's ``LoadAnnotations``
    (values are checked after its ``reduce_zero_label`` shift, i.e. as the loss sees them), before
    any resize or crop.

    Args:
        num_classes: the number of classes (the decode head's ``num_classes``).
        ignore_index: the label that is not learnt (mmseg's default 255; ``reduce_zero_label``
            maps background 0 to it).
        check_size: also require ``gt_seg_map.shape == img.shape[:2]``.

    Required keys: ``gt_seg_map`` ``(H, W)``, ``seg_map_path``; ``img`` ``(H, W, C)`` with
    ``check_size``. Nothing is modified.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, check_size: bool = True) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'CheckSegLabel: num_classes must be a positive integer, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    def transform(self, results: dict) -> Optional[dict]:
        if 'gt_seg_map' not in results:  # inference pipelines (mmseg's inferencer) load no labels
            return results
        label = results['gt_seg_map']
        path = results.get('seg_map_path') or '<label map>'
        if self.check_size and 'img' in results:
            img_hw = tuple(results['img'].shape[:2])
            if tuple(label.shape[:2]) != img_hw:
                raise BrokenLabelMapError(
                    path,
                    f'label map is {label.shape[1]}x{label.shape[0]} (WxH) but its image '
                    f'{results.get("img_path", "")} is {img_hw[1]}x{img_hw[0]}',
                )
        values, counts = np.unique(label, return_counts=True)
        bad = (values < 0) | ((values >= self.num_classes) & (values != self.ignore_index))
        if bad.any():
            shift = ''
            if results.get('reduce_zero_label'):  # mmseg shifted the labels down by one
                shift = ' after the reduce_zero_label shift; in the file: ' + ', '.join(
                    str((int(v) + 1) % 256) for v in values[bad][:10]
                )
            listed = ', '.join(f'{v} ({c} px)' for v, c in zip(values[bad][:10], counts[bad][:10]))
            raise BrokenLabelMapError(
                path,
                f'label values outside 0..{self.num_classes - 1} and the ignore index '
                f'{self.ignore_index}: {listed}{shift}',
            )
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(num_classes={self.num_classes}, '
            f'ignore_index={self.ignore_index}, check_size={self.check_size})'
        )

"""Pipeline transforms for RVT's stacked histograms (mmdet ``TRANSFORMS``).

* :class:`LoadRVTHistogram`: a sample of :class:`~.rvt_dataset.RVTDataset` -> ``img``
  ``(T, C, H, W)`` float32 from RVT's HDF5 file, plus its boxes (scaled to the histogram).
* :class:`EventRVTStackedHistogram`: RVT's representation computed from raw events (after
  :class:`~.transforms.LoadPropheseeEvents` with ``window_rule='rvt'`` in the dataset), equal to
  RVT's preprocessing without its uint8 wrap.
"""

from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

from .representations import normalize_counts, rvt_stacked_histogram
from .rvt_io import read_rvt_histograms

__all__ = ['LoadRVTHistogram', 'EventRVTStackedHistogram']


def _split_steps(hist: np.ndarray, num_steps: int) -> np.ndarray:
    """``(2 * bins, H, W)`` polarity-major -> ``(num_steps, 2 * bins / num_steps, H, W)``."""
    channels, h, w = hist.shape
    bins = channels // 2
    if num_steps < 1 or bins % num_steps:
        raise ValueError(f'bins ({bins}) must be a multiple of num_steps ({num_steps})')
    per = bins // num_steps
    out = hist.reshape(2, num_steps, per, h, w).transpose(1, 0, 2, 3, 4)
    return np.ascontiguousarray(out.reshape(num_steps, 2 * per, h, w))


@TRANSFORMS.register_module()
class LoadRVTHistogram(BaseTransform):
    """Read a sample's histograms from RVT's HDF5 file (and its boxes).

    Args:
        normalize: one of :data:`~.representations.NORMALIZATIONS` on the uint8 counts
            (``'none'``: the counts as RVT feeds them to its network).
        count_cutoff: for the cutoff normalisations.
        with_bbox: also set ``gt_bboxes`` / ``gt_bboxes_labels`` / ``gt_ignore_flags`` from the
            instances, scaled from sensor pixels to the histogram (so ``LoadAnnotations`` is not
            needed, and cannot be put in the wrong order).

    Required keys: ``img_path``, ``repr_range`` ``(start, stop)`` (a negative start is padded with
    empty histograms), ``sensor_size``, ``instances``. Added: ``img`` ``(T, C, H, W)``
    (``T = stop - start``, oldest first; uint8 counts for ``normalize='none'``, made float32 by
    ``PackEventDetInputs``, else float32), ``img_shape`` (histogram), ``ori_shape`` (sensor),
    ``scale_factor`` ``(W_hist / W_sensor, H_hist / H_sensor)``.
    """

    def __init__(self, normalize: str = 'none', count_cutoff=None, with_bbox: bool = True) -> None:
        self.normalize, self.count_cutoff, self.with_bbox = normalize, count_cutoff, with_bbox
        normalize_counts(np.zeros(1), normalize, count_cutoff)  # validate the arguments now

    def transform(self, results: dict) -> dict:
        start, stop = (int(v) for v in results['repr_range'])
        hist = read_rvt_histograms(results['img_path'], max(start, 0), stop)
        if start < 0:
            pad = np.zeros((-start,) + hist.shape[1:], hist.dtype)
            hist = np.concatenate([pad, hist])
        # raw counts stay uint8 through flip / zoom (4x less memory traffic);
        # PackEventDetInputs makes the float32 tensor
        img = hist if self.normalize == 'none' else normalize_counts(hist, self.normalize, self.count_cutoff)
        sh, sw = results['sensor_size']
        h, w = img.shape[-2:]
        results['img'] = img
        results['img_shape'] = (int(h), int(w))
        results['ori_shape'] = (int(sh), int(sw))
        results['scale_factor'] = (w / sw, h / sh)
        if self.with_bbox:
            inst = results.get('instances') or []
            boxes = np.array([i['bbox'] for i in inst], np.float32).reshape(-1, 4)
            boxes[:, 0::2] *= np.float32(w / sw)
            boxes[:, 1::2] *= np.float32(h / sh)
            results['gt_bboxes'] = HorizontalBoxes(torch.from_numpy(boxes))
            results['gt_bboxes_labels'] = np.array([i['bbox_label'] for i in inst], np.int64)
            results['gt_ignore_flags'] = np.array([bool(i.get('ignore_flag', 0)) for i in inst], bool)
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(normalize={self.normalize!r}, '
            f'count_cutoff={self.count_cutoff}, with_bbox={self.with_bbox})'
        )


@TRANSFORMS.register_module()
class EventRVTStackedHistogram(BaseTransform):
    """RVT's stacked histogram from raw events, value for value (no uint8 wrap).

    See :func:`~.representations.rvt_stacked_histogram` for the rules. The dataset must give the
    window ``T - dt <= t <= T`` (``PropheseeDataset(window_rule='rvt')``).

    Args:
        num_bins: RVT: 10.
        count_cutoff: RVT: 10 (``None``: 255).
        downsample_by_2: 1 Mpx: keep pixel ``(2i + 1, 2j + 1)`` of the full-resolution histogram
            (RVT's ``nearest-exact`` downsampling); boxes and ``scale_factor`` are halved.
        num_steps: split the bins into this many real timesteps (1: RVT's single 20-channel
            input).
        normalize: applied to the clipped counts (``'none'``: RVT's values).
    """

    def __init__(
        self,
        num_bins: int = 10,
        count_cutoff=10,
        downsample_by_2: bool = False,
        num_steps: int = 1,
        normalize: str = 'none',
        keep_events: bool = False,
    ) -> None:
        if num_steps < 1 or num_bins % num_steps:
            raise ValueError(f'num_bins ({num_bins}) must be a multiple of num_steps ({num_steps})')
        self.num_bins, self.count_cutoff = int(num_bins), count_cutoff
        self.downsample_by_2, self.num_steps = bool(downsample_by_2), int(num_steps)
        self.normalize, self.keep_events = normalize, keep_events
        normalize_counts(np.zeros(1), normalize, 10 if count_cutoff is None else count_cutoff)

    def transform(self, results: dict) -> dict:
        events = results['events'] if self.keep_events else results.pop('events')
        h, w = results['img_shape']
        hist = rvt_stacked_histogram(events, self.num_bins, h, w, self.count_cutoff, self.downsample_by_2)
        cutoff = 255 if self.count_cutoff is None else min(int(self.count_cutoff), 255)
        results['img'] = normalize_counts(_split_steps(hist, self.num_steps), self.normalize, cutoff)
        if self.downsample_by_2:
            results['img_shape'] = (h // 2, w // 2)
            if 'gt_bboxes' in results:
                results['gt_bboxes'].rescale_((0.5, 0.5))
            sx, sy = results.get('scale_factor', (1.0, 1.0))
            results['scale_factor'] = (sx / 2, sy / 2)
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(num_bins={self.num_bins}, '
            f'count_cutoff={self.count_cutoff}, downsample_by_2={self.downsample_by_2}, '
            f'num_steps={self.num_steps}, normalize={self.normalize!r})'
        )

"""Pipeline transforms for event-camera detection (registered in mmdet's ``TRANSFORMS``).

A training pipeline, in order::

    LoadPropheseeEvents          results['events'] (EVENT_DTYPE, sanitised), img_shape = sensor
    LoadAnnotations(with_bbox)   mmdet's: gt_bboxes / gt_bboxes_labels from the dataset's instances
    EventDownsample(2)           optional: x // 2, y // 2, boxes and scale_factor / 2 (1 Mpx)
    EventRandomFlip(0.5)         x -> W - 1 - x, polarity kept; boxes flipped
    EventRandomCrop(...)         events and boxes cropped (boxes clipped)
    EventHistogram(T) | EventLastPolarity(T) | EventStackedHistogram(...)
                                 results['img'] = float32 (T, C, H, W); the events are dropped
    EventRandomZoom(...)         on the (T, C, H, W) array, output size kept; boxes follow
    PackEventDetInputs           inputs = (T, C, H, W) tensor, metainfo with the event statistics

Geometric transforms act on the events when they are still there (exact) and on the dense array
otherwise, so flip and crop may also follow the representation.
"""

from __future__ import annotations

import abc
import logging
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from mmengine.logging import print_log

from .io import read_event_window, sanitize_events
from .representations import last_polarity_frames, polarity_histogram, stacked_histogram

__all__ = [
    'LoadPropheseeEvents',
    'EventDownsample',
    'EventRandomFlip',
    'EventRandomCrop',
    'EventHistogram',
    'EventLastPolarity',
    'EventStackedHistogram',
    'EventRandomZoom',
    'PackEventDetInputs',
    'EVENT_META_KEYS',
]

#: metainfo packed by :class:`PackEventDetInputs` (the metric needs instances, recording, label_t)
EVENT_META_KEYS = (
    'img_id',
    'img_path',
    'ori_shape',
    'img_shape',
    'scale_factor',
    'flip',
    'flip_direction',
    'recording',
    'label_t',
    'event_window',
    'event_stats',
    'instances',
)


def _filter_instances(results: dict, keep: np.ndarray) -> None:
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags'):
        if key in results:
            results[key] = results[key][keep]


@TRANSFORMS.register_module()
class LoadPropheseeEvents(BaseTransform):
    """Read the events of a sample's window from its recording.

    Events outside the sensor are dropped and events out of time order sorted; both are counted in
    ``results['event_stats']`` (packed into the metainfo) and logged (a warning for the first
    window of a recording that has any, debug level afterwards).

    Args:
        margin_us: the file is read this much beyond each end of the window, so that events stored
            slightly out of order still land in the right window after sorting.

    Required keys: ``img_path`` (the event file), ``event_window`` ``(t_start, t_end)`` in µs
    (events with ``t_start <= t < t_end``), ``sensor_size`` ``(H, W)``.
    Added keys: ``events``, ``img_shape``, ``ori_shape`` (the sensor), ``scale_factor`` (1, 1),
    ``event_stats`` ``dict(num_events, out_of_bounds, out_of_order, bad_polarity)``.
    """

    def __init__(self, margin_us: int = 1000) -> None:
        self.margin_us = int(margin_us)
        self._warned = set()

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        t_start, t_end = (int(v) for v in results['event_window'])
        height, width = results['sensor_size']
        events = read_event_window(path, t_start, t_end, self.margin_us)
        events, stats = sanitize_events(events, width, height)
        inside = (events['t'] >= t_start) & (events['t'] < t_end)
        events = events[inside]
        if stats:
            level = logging.WARNING if path not in self._warned else logging.DEBUG
            self._warned.add(path)
            print_log(
                f'{path} [{t_start}, {t_end}) us: dropped {stats.out_of_bounds} event(s) '
                f'outside the {width}x{height} sensor, sorted {stats.out_of_order} '
                'event(s) out of time order',
                logger='current',
                level=level,
            )
        results['events'] = events
        results['event_stats'] = dict(num_events=int(len(events)), **stats.as_dict())
        results['img_shape'] = (int(height), int(width))
        results['ori_shape'] = (int(height), int(width))
        results['scale_factor'] = (1.0, 1.0)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(margin_us={self.margin_us})'


@TRANSFORMS.register_module()
class EventDownsample(BaseTransform):
    """Integer spatial downsampling of the events: ``x // f, y // f`` (the counts of ``f x f``
    pixels add up), frame ``ceil(H / f) x ceil(W / f)``, boxes and ``scale_factor`` scaled by
    ``1 / f`` (predictions are mapped back to sensor pixels with ``scale_factor``)."""

    def __init__(self, factor: int = 2) -> None:
        if int(factor) != factor or factor < 1:
            raise ValueError(f'factor must be a positive integer, got {factor!r}')
        self.factor = int(factor)

    def transform(self, results: dict) -> dict:
        f = self.factor
        if f == 1:
            return results
        if 'events' not in results:
            raise KeyError('EventDownsample acts on events: put it before the representation')
        ev = results['events'].copy()
        ev['x'] //= f
        ev['y'] //= f
        results['events'] = ev
        h, w = results['img_shape']
        results['img_shape'] = (-(-h // f), -(-w // f))
        if 'gt_bboxes' in results:
            results['gt_bboxes'].rescale_((1 / f, 1 / f))
        sx, sy = results.get('scale_factor', (1.0, 1.0))
        results['scale_factor'] = (sx / f, sy / f)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(factor={self.factor})'


@TRANSFORMS.register_module()
class EventRandomFlip(BaseTransform):
    """Horizontal flip with probability ``prob``: ``x -> W - 1 - x`` with the polarity kept (a
    mirrored scene produces the same brightness changes, mirrored), boxes ``x -> W - x``.

    Acts on ``events`` if present, else on the last axis of ``img`` ``(T, C, H, W)``.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        flip = bool(np.random.rand() < self.prob)
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return results
        h, w = results['img_shape']
        if 'events' in results:
            ev = results['events'].copy()
            ev['x'] = (w - 1) - ev['x']
            results['events'] = ev
        else:
            results['img'] = np.ascontiguousarray(results['img'][..., ::-1])
        if 'gt_bboxes' in results:
            results['gt_bboxes'].flip_((h, w), direction='horizontal')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


def _clip_boxes(
    results: dict, offset: Tuple[float, float], scale: float, size: Tuple[int, int], min_size: float
) -> None:
    """Boxes -> ``(box - offset) * scale``, clipped to ``size = (h, w)``; boxes narrower or lower
    than ``min_size`` after clipping are dropped with their labels."""
    if 'gt_bboxes' not in results:
        return
    boxes = results['gt_bboxes']
    boxes.translate_((-offset[0], -offset[1]))
    if scale != 1:
        boxes.rescale_((scale, scale))
    boxes.clip_(size)
    t = boxes.tensor
    keep = ((t[:, 2] - t[:, 0]) >= min_size) & ((t[:, 3] - t[:, 1]) >= min_size)
    _filter_instances(results, keep.numpy())


@TRANSFORMS.register_module()
class EventRandomCrop(BaseTransform):
    """Random crop of side ``ratio x`` the frame (``ratio`` uniform in ``crop_ratio``, same for
    both sides) with probability ``prob``; boxes clipped to the crop, boxes smaller than
    ``min_box_size`` px afterwards dropped. The frame becomes the crop (the data preprocessor pads
    the batch). Acts on ``events`` if present, else on ``img``.
    """

    def __init__(
        self, crop_ratio: Tuple[float, float] = (0.6, 1.0), prob: float = 1.0, min_box_size: float = 2.0
    ) -> None:
        lo, hi = crop_ratio
        if not 0 < lo <= hi <= 1:
            raise ValueError(f'crop_ratio must satisfy 0 < min <= max <= 1, got {crop_ratio}')
        self.crop_ratio = (float(lo), float(hi))
        self.prob = prob
        self.min_box_size = float(min_box_size)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        h, w = results['img_shape']
        r = np.random.uniform(*self.crop_ratio)
        ch, cw = max(1, int(round(h * r))), max(1, int(round(w * r)))
        y0, x0 = np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)
        if 'events' in results:
            ev = results['events']
            keep = (ev['x'] >= x0) & (ev['x'] < x0 + cw) & (ev['y'] >= y0) & (ev['y'] < y0 + ch)
            ev = ev[keep].copy()
            ev['x'] -= x0
            ev['y'] -= y0
            results['events'] = ev
        else:
            results['img'] = np.ascontiguousarray(results['img'][..., y0 : y0 + ch, x0 : x0 + cw])
        results['img_shape'] = (ch, cw)
        _clip_boxes(results, (x0, y0), 1.0, (ch, cw), self.min_box_size)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_ratio={self.crop_ratio}, prob={self.prob})'


class _Representation(BaseTransform):
    """Base of the representation transforms: ``events -> img`` ``(T, C, H, W)`` float32."""

    def __init__(self, keep_events: bool = False) -> None:
        self.keep_events = keep_events

    @abc.abstractmethod
    def _make(self, events: np.ndarray, height: int, width: int, t_start: int, t_end: int) -> np.ndarray:
        """The representation ``(T, C, H, W)`` of ``events`` in ``[t_start, t_end)``."""

    def transform(self, results: dict) -> dict:
        events = results['events'] if self.keep_events else results.pop('events')
        h, w = results['img_shape']
        t_start, t_end = results['event_window']
        results['img'] = self._make(events, h, w, int(t_start), int(t_end))
        return results


@TRANSFORMS.register_module()
class EventHistogram(_Representation):
    """``(T, 2, H, W)`` polarity histograms of ``num_bins = T`` equal time bins (channel 0 OFF,
    1 ON), see :func:`~sdt_dense.datasets.events.representations.polarity_histogram`.

    Args:
        num_bins: real timesteps ``T``.
        normalize: ``'none'`` (counts), ``'cutoff'``, ``'cutoff_unit'``, ``'log'``, ``'binary'``.
        count_cutoff: for the cutoff normalisations.
        bin_range: ``'window'`` (fixed bins over the window) or ``'events'``.
    """

    def __init__(
        self,
        num_bins: int = 4,
        normalize: str = 'none',
        count_cutoff: Optional[float] = None,
        bin_range: str = 'window',
        keep_events: bool = False,
    ) -> None:
        super().__init__(keep_events)
        self.num_bins, self.normalize = int(num_bins), normalize
        self.count_cutoff, self.bin_range = count_cutoff, bin_range

    def _make(self, events, height, width, t_start, t_end):
        return polarity_histogram(
            events,
            self.num_bins,
            height,
            width,
            t_start,
            t_end,
            self.normalize,
            self.count_cutoff,
            self.bin_range,
        )

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(num_bins={self.num_bins}, normalize={self.normalize!r}, '
            f'count_cutoff={self.count_cutoff})'
        )


@TRANSFORMS.register_module()
class EventLastPolarity(_Representation):
    """``(T, 1, H, W)`` frames holding the polarity of the last event per pixel and bin
    (``values[0]`` OFF, ``values[1]`` ON, 0 none): SpikeYOLO's Gen1 input, single-channel."""

    def __init__(
        self,
        num_bins: int = 4,
        values: Sequence[float] = (-1.0, 1.0),
        bin_range: str = 'window',
        keep_events: bool = False,
    ) -> None:
        super().__init__(keep_events)
        self.num_bins, self.values, self.bin_range = int(num_bins), tuple(values), bin_range

    def _make(self, events, height, width, t_start, t_end):
        return last_polarity_frames(
            events, self.num_bins, height, width, t_start, t_end, self.values, self.bin_range
        )

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_bins={self.num_bins}, values={self.values})'


@TRANSFORMS.register_module()
class EventStackedHistogram(_Representation):
    """RVT's stacked histogram: ``num_bins`` bins x 2 polarities as channels, counts clipped at
    ``count_cutoff``; ``(num_steps, 2 * num_bins / num_steps, H, W)`` (RVT: 10 bins, cutoff 10,
    one step of 20 channels). The default bins are the window's; ``bin_range='rvt'`` bins as RVT
    does, and :class:`~.rvt_transforms.EventRVTStackedHistogram` is RVT's representation exactly
    (with its 1 Mpx downsampling)."""

    def __init__(
        self,
        num_bins: int = 10,
        count_cutoff: Optional[float] = 10,
        normalize: str = 'cutoff',
        num_steps: int = 1,
        bin_range: str = 'window',
        keep_events: bool = False,
    ) -> None:
        super().__init__(keep_events)
        self.num_bins, self.count_cutoff, self.normalize = int(num_bins), count_cutoff, normalize
        self.num_steps, self.bin_range = int(num_steps), bin_range

    def _make(self, events, height, width, t_start, t_end):
        return stacked_histogram(
            events,
            self.num_bins,
            height,
            width,
            t_start,
            t_end,
            self.count_cutoff,
            self.normalize,
            self.num_steps,
            self.bin_range,
        )

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(num_bins={self.num_bins}, num_steps={self.num_steps}, '
            f'count_cutoff={self.count_cutoff}, normalize={self.normalize!r})'
        )


@TRANSFORMS.register_module()
class EventRandomZoom(BaseTransform):
    """RVT-style zoom on the dense ``img`` ``(T, C, H, W)``, frame size kept.

    With probability ``prob``: zoom in (``z`` uniform in ``zoom_in``: a random ``H/z x W/z``
    window is scaled up to ``H x W``) or out (``z`` in ``zoom_out``: the frame is scaled down to
    ``H/z x W/z`` and placed at a random position on an empty frame), each with probability 1/2.
    Resampling is nearest-neighbour (``nearest-exact``), which keeps the representation's values
    (counts, polarities). Boxes follow; boxes smaller than ``min_box_size`` after clipping are
    dropped.
    """

    def __init__(
        self,
        prob: float = 0.5,
        zoom_in: Tuple[float, float] = (1.0, 1.5),
        zoom_out: Tuple[float, float] = (1.0, 1.2),
        min_box_size: float = 2.0,
    ) -> None:
        for name, rng in (('zoom_in', zoom_in), ('zoom_out', zoom_out)):
            if not 1 <= rng[0] <= rng[1]:
                raise ValueError(f'{name} must satisfy 1 <= min <= max, got {rng}')
        self.prob, self.zoom_in, self.zoom_out = prob, tuple(zoom_in), tuple(zoom_out)
        self.min_box_size = float(min_box_size)

    @staticmethod
    def _resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img))
        t, c, h, w = x.shape
        y = F.interpolate(x.reshape(1, t * c, h, w), size=size, mode='nearest-exact')
        return y.reshape(t, c, *size).numpy()

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        if 'img' not in results:
            raise KeyError(
                'EventRandomZoom acts on the dense representation: put it after '
                'EventHistogram / EventLastPolarity / EventStackedHistogram'
            )
        img = results['img']
        h, w = img.shape[-2:]
        if np.random.rand() < 0.5:  # zoom in
            z = np.random.uniform(*self.zoom_in)
            ch, cw = max(1, int(round(h / z))), max(1, int(round(w / z)))
            y0, x0 = np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)
            results['img'] = self._resize(img[..., y0 : y0 + ch, x0 : x0 + cw], (h, w))
            # exact scale of the resampling, per axis (equal up to rounding)
            _clip_boxes_xy(results, (x0, y0), (w / cw, h / ch), (h, w), self.min_box_size)
        else:  # zoom out
            z = np.random.uniform(*self.zoom_out)
            sh, sw = max(1, int(round(h / z))), max(1, int(round(w / z)))
            y0, x0 = np.random.randint(0, h - sh + 1), np.random.randint(0, w - sw + 1)
            out = np.zeros_like(img)
            out[..., y0 : y0 + sh, x0 : x0 + sw] = self._resize(img, (sh, sw))
            results['img'] = out
            _clip_boxes_xy(results, (-x0 * w / sw, -y0 * h / sh), (sw / w, sh / h), (h, w), self.min_box_size)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, zoom_in={self.zoom_in}, zoom_out={self.zoom_out})'


def _clip_boxes_xy(
    results: dict,
    offset: Tuple[float, float],
    scale: Tuple[float, float],
    size: Tuple[int, int],
    min_size: float,
) -> None:
    """:func:`_clip_boxes` with separate x and y scales: ``(box - offset) * scale``."""
    if 'gt_bboxes' not in results:
        return
    boxes = results['gt_bboxes']
    boxes.translate_((-offset[0], -offset[1]))
    boxes.rescale_(scale)
    boxes.clip_(size)
    t = boxes.tensor
    keep = ((t[:, 2] - t[:, 0]) >= min_size) & ((t[:, 3] - t[:, 1]) >= min_size)
    _filter_instances(results, keep.numpy())


@TRANSFORMS.register_module()
class PackEventDetInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` for event tensors: ``inputs`` is the ``(T, C, H, W)`` float
    tensor of ``img`` as is (no HWC -> CHW permutation); the metainfo holds
    :data:`EVENT_META_KEYS` by default."""

    def __init__(self, meta_keys: Sequence[str] = EVENT_META_KEYS) -> None:
        super().__init__(meta_keys=tuple(meta_keys))

    def transform(self, results: dict) -> dict:
        img = results.pop('img')
        if img.ndim != 4:
            raise ValueError(f'PackEventDetInputs expects img of shape (T, C, H, W), got {img.shape}')
        for key in self.meta_keys:  # PackDetInputs requires every meta key
            results.setdefault(key, None)
        packed = super().transform(results)
        packed['inputs'] = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
        return packed

"""Dense representations of an event window, numpy only.

All take events in :data:`~sdt_dense.datasets.events.io.EVENT_DTYPE` (fields ``t, x, y, p``;
``p`` 1 = ON, 0 = OFF) that lie inside the ``height x width`` frame, and the window
``[t_start, t_end)`` in µs, split into ``num_bins`` bins of equal duration::

    bin(t) = floor((t - t_start) * num_bins / (t_end - t_start)),  clipped to [0, num_bins - 1]

(``bin_range='events'`` spans the bins from the first to the last event instead;
``bin_range='rvt'`` is RVT's rule bit for bit, see :func:`time_bins`).
Outputs are ``float32`` arrays ``(T, C, H, W)``: ``T`` real timesteps for the network, ``C``
channels per timestep.

* :func:`polarity_histogram`: ``(T, 2, H, W)`` event counts per bin, channel 0 OFF, channel 1 ON.
* :func:`last_polarity_frames`: ``(T, 1, H, W)``: per bin, the polarity of the *last* event at each
  pixel (+1 ON, -1 OFF, 0 none). SpikeYOLO's Gen1 frames (grey 127, OFF 0, ON 255, last event
  wins) up to the affine map ``(v - 127) / 128``.
* :func:`stacked_histogram`: RVT's stacked histogram: ``num_bins`` bins x 2 polarities as
  channels, channel ``p * bins + b`` (all OFF bins first), counts clipped at ``count_cutoff``
  (RVT: 10 bins over 50 ms, cutoff 10). ``num_steps > 1`` splits the bins into that many real
  timesteps of ``2 * num_bins / num_steps`` channels each.
* :func:`rvt_stacked_histogram`: RVT's preprocessing of one window, bit for bit (``bin_range=
  'rvt'``, cutoff, optional 1 Mpx downsampling by 2), but counting without RVT's uint8 wrap.

Normalisation of counts (:func:`normalize_counts`): ``'none'`` (raw counts), ``'cutoff'``
(``min(count, cutoff)``, RVT), ``'cutoff_unit'`` (``min(count, cutoff) / cutoff``, in [0, 1]),
``'log'`` (``log1p(count)``), ``'binary'`` (``count > 0``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'NORMALIZATIONS',
    'BIN_RANGES',
    'time_bins',
    'normalize_counts',
    'polarity_histogram',
    'last_polarity_frames',
    'stacked_histogram',
    'rvt_stacked_histogram',
    'representation_shape',
]

NORMALIZATIONS = ('none', 'cutoff', 'cutoff_unit', 'log', 'binary')
BIN_RANGES = ('window', 'events', 'rvt')


def time_bins(
    t: np.ndarray, t_start: int, t_end: int, num_bins: int, bin_range: str = 'window'
) -> np.ndarray:
    """Bin index ``(N,)`` (int64, in ``[0, num_bins)``) of each timestamp.

    ``bin_range='window'``: bins of equal length over ``[t_start, t_end)`` (integer arithmetic, so
    an event exactly on a bin edge starts the later bin). ``'events'``: over the events' own
    span, ``floor((t - t_min) * bins / (t_max - t_min + 1))`` (integer arithmetic).

    ``'rvt'``: RVT's rule, bit for bit: ``t0, t1`` = the first and last timestamp *in stream
    order* (the stream must be sorted, as RVT assumes), ``span = max(t1 - t0, 1)`` and
    ``bin = min(floor(f32(f32(t - t0) / f32(span)) * f32(bins)), bins - 1)`` in float32, as
    torch's true division of integer tensors computes it. An event exactly on an edge
    ``t0 + k * span / bins`` therefore starts bin ``k`` unless float32 rounding lands just below
    ``k``; the last event (``t = t1``) goes into the last bin. ``t_start, t_end`` are ignored.
    """
    if num_bins < 1:
        raise ValueError(f'num_bins must be >= 1, got {num_bins}')
    if bin_range not in BIN_RANGES:
        raise ValueError(f'bin_range must be one of {BIN_RANGES}, got {bin_range!r}')
    t = np.asarray(t, dtype=np.int64)
    if bin_range == 'rvt':
        if not len(t):
            return np.zeros(0, np.int64)
        t0, t1 = int(t[0]), int(t[-1])
        if t1 < t0:
            raise ValueError(f"bin_range='rvt' needs time-sorted events (first {t0}, last {t1})")
        # float32 throughout, in the order RVT's torch code evaluates it
        norm = (t - t0).astype(np.float32) / np.float32(max(t1 - t0, 1))
        idx = np.floor(norm * np.float32(num_bins)).astype(np.int64)
        return np.minimum(idx, num_bins - 1)
    if bin_range == 'events' and len(t):
        t_start, t_end = int(t.min()), int(t.max()) + 1
    span = max(int(t_end) - int(t_start), 1)
    return np.clip((t - int(t_start)) * num_bins // span, 0, num_bins - 1)


def normalize_counts(
    counts: np.ndarray, normalize: str = 'none', count_cutoff: Optional[float] = None
) -> np.ndarray:
    """Apply one of :data:`NORMALIZATIONS` to an array of event counts (float32 result)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f'normalize must be one of {NORMALIZATIONS}, got {normalize!r}')
    counts = counts.astype(np.float32, copy=False)
    if normalize in ('cutoff', 'cutoff_unit'):
        if not count_cutoff or count_cutoff <= 0:
            raise ValueError(f'normalize={normalize!r} needs a positive count_cutoff')
        counts = np.minimum(counts, np.float32(count_cutoff))
        return counts / np.float32(count_cutoff) if normalize == 'cutoff_unit' else counts
    if normalize == 'log':
        return np.log1p(counts)
    if normalize == 'binary':
        return (counts > 0).astype(np.float32)
    return counts


def _check_shape(events: np.ndarray, height: int, width: int) -> None:
    if len(events) and (int(events['x'].max()) >= width or int(events['y'].max()) >= height):
        raise ValueError(f'events outside the {height}x{width} frame (sanitize them first)')


def _counts(
    events: np.ndarray, num_bins: int, height: int, width: int, t_start: int, t_end: int, bin_range: str
) -> np.ndarray:
    """``(2, num_bins, H, W)`` int64 counts, polarity-major."""
    _check_shape(events, height, width)
    counts = np.zeros(2 * num_bins * height * width, np.int64)
    if len(events):
        b = time_bins(events['t'], t_start, t_end, num_bins, bin_range)
        p = events['p'].astype(np.int64) & 1
        flat = ((p * num_bins + b) * height + events['y'].astype(np.int64)) * width + events['x'].astype(
            np.int64
        )
        counts += np.bincount(flat, minlength=counts.size)
    return counts.reshape(2, num_bins, height, width)


def polarity_histogram(
    events: np.ndarray,
    num_bins: int,
    height: int,
    width: int,
    t_start: int,
    t_end: int,
    normalize: str = 'none',
    count_cutoff: Optional[float] = None,
    bin_range: str = 'window',
) -> np.ndarray:
    """``(T, 2, H, W)`` per-bin event counts (channel 0 OFF, 1 ON), ``T = num_bins``."""
    counts = _counts(events, num_bins, height, width, t_start, t_end, bin_range)
    return np.ascontiguousarray(normalize_counts(counts, normalize, count_cutoff).transpose(1, 0, 2, 3))


def last_polarity_frames(
    events: np.ndarray,
    num_bins: int,
    height: int,
    width: int,
    t_start: int,
    t_end: int,
    values: Sequence[float] = (-1.0, 1.0),
    bin_range: str = 'window',
) -> np.ndarray:
    """``(T, 1, H, W)``: per bin and pixel, ``values[p]`` of the last event (``values[0]`` for
    OFF, ``values[1]`` for ON), 0 where no event fired. Events must be sorted by time."""
    _check_shape(events, height, width)
    frames = np.zeros(num_bins * height * width, np.float32)
    if len(events):
        b = time_bins(events['t'], t_start, t_end, num_bins, bin_range)
        flat = (b * height + events['y'].astype(np.int64)) * width + events['x'].astype(np.int64)
        # the last occurrence of each pixel: the first one in the reversed stream
        _, first_rev = np.unique(flat[::-1], return_index=True)
        last = len(flat) - 1 - first_rev
        lut = np.asarray(values, np.float32)
        frames[flat[last]] = lut[events['p'][last].astype(np.int64) & 1]
    return frames.reshape(num_bins, 1, height, width)


def stacked_histogram(
    events: np.ndarray,
    num_bins: int,
    height: int,
    width: int,
    t_start: int,
    t_end: int,
    count_cutoff: Optional[float] = 10,
    normalize: str = 'cutoff',
    num_steps: int = 1,
    bin_range: str = 'window',
) -> np.ndarray:
    """RVT-style stacked histogram, ``(num_steps, 2 * num_bins / num_steps, H, W)``.

    Within each step the channels are polarity-major (``p * bins_per_step + b``), as RVT's
    ``(2, bins, H, W) -> (2 * bins, H, W)`` reshape.
    """
    if num_steps < 1 or num_bins % num_steps:
        raise ValueError(f'num_bins ({num_bins}) must be a multiple of num_steps ({num_steps})')
    counts = _counts(events, num_bins, height, width, t_start, t_end, bin_range)
    per = num_bins // num_steps
    counts = counts.reshape(2, num_steps, per, height, width).transpose(1, 0, 2, 3, 4)
    out = normalize_counts(counts, normalize, count_cutoff)
    return np.ascontiguousarray(out.reshape(num_steps, 2 * per, height, width))


def rvt_stacked_histogram(
    events: np.ndarray,
    num_bins: int,
    height: int,
    width: int,
    count_cutoff: Optional[int] = 10,
    downsample_by_2: bool = False,
    uint8_wrap: bool = False,
) -> np.ndarray:
    """RVT's stacked histogram of one window, ``(2 * num_bins, H', W')`` int64 counts.

    Equal, value for value, to RVT's preprocessing of the same events (``StackedHistogram`` and,
    for 1 Mpx, its ``nearest-exact`` downsampling by 2), except that RVT's fast path counts in
    uint8 and wraps at 256 events per cell before clipping; here counts never wrap.

    Rules:

    * the events are the window ``T - dt <= t <= T`` (both ends included; the caller selects them)
      in stream order (sorted);
    * bins: :func:`time_bins` with ``bin_range='rvt'`` (span ``t_last - t_first``, float32);
    * channel ``p * num_bins + b`` (all OFF bins, then all ON bins), ``p`` 1 = ON;
    * counts clipped to ``[0, min(count_cutoff, 255)]`` (``None``: 255, the uint8 range);
    * ``downsample_by_2``: the full-resolution histogram is clipped, then pixel
      ``(2i + 1, 2j + 1)`` is kept (``H' = H // 2``, ``W' = W // 2``): torch's
      ``interpolate(scale_factor=0.5, mode='nearest-exact')`` samples, it does not sum.

    ``uint8_wrap=True`` restores RVT's fast-path defect (counts modulo 256 before clipping), to
    reproduce its released files exactly.
    """
    if count_cutoff is not None and count_cutoff < 1:
        raise ValueError(f'count_cutoff must be >= 1 or None, got {count_cutoff}')
    cutoff = 255 if count_cutoff is None else min(int(count_cutoff), 255)
    if not downsample_by_2:
        counts = _counts(events, num_bins, height, width, 0, 1, 'rvt')
        counts = counts % 256 if uint8_wrap else counts
        return np.minimum(counts, cutoff).reshape(2 * num_bins, height, width)
    _check_shape(events, height, width)
    # Only pixels (2i + 1, 2j + 1) survive, and clipping commutes with the selection: bin all
    # events (the span is the whole window's), then count the odd-pixel ones at half resolution.
    h2, w2 = height // 2, width // 2
    counts = np.zeros(2 * num_bins * h2 * w2, np.int64)
    if len(events):
        b = time_bins(events['t'], 0, 1, num_bins, 'rvt')
        x, y = events['x'].astype(np.int64), events['y'].astype(np.int64)
        keep = (x & 1).astype(bool) & (y & 1).astype(bool) & (x < 2 * w2) & (y < 2 * h2)
        p = events['p'][keep].astype(np.int64) & 1
        flat = ((p * num_bins + b[keep]) * h2 + y[keep] // 2) * w2 + x[keep] // 2
        counts += np.bincount(flat, minlength=counts.size)
    counts = counts % 256 if uint8_wrap else counts
    return np.minimum(counts, cutoff).reshape(2 * num_bins, h2, w2)


def representation_shape(kind: str, num_bins: int, num_steps: int = 1) -> Tuple[int, int]:
    """``(T, C)`` of a representation: ``'histogram'``, ``'last_polarity'`` or ``'stacked'``."""
    if kind == 'histogram':
        return num_bins, 2
    if kind == 'last_polarity':
        return num_bins, 1
    if kind == 'stacked':
        return num_steps, 2 * num_bins // num_steps
    raise ValueError(f'unknown representation {kind!r}')

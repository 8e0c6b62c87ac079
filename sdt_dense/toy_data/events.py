"""Toy event-camera detection dataset in the Prophesee Gen1 file layout (no download needed).

Layout written under ``out``::

    train/toy_NNNN_td.dat, train/toy_NNNN_bbox.npy     (likewise val/, test/)

Each recording is a static sensor watching a textured, static background with a few moving
objects: class 0 ``car`` (wide rectangles, fast, mostly horizontal) and class 1 ``pedestrian``
(tall ellipses, slower). Some objects flicker (their brightness oscillates at 4-12 Hz, so they fire
over their whole area even when slow). Events come from a DVS pixel model on log intensity::

    every dt: L = log intensity (anti-aliased edges, so sub-pixel motion changes L)
              per pixel, n = floor(|L - L_ref| / C_pixel) events of sign(L - L_ref) (ON / OFF),
              L_ref moves by n * C toward L; timestamps uniform within the step
    plus background activity (Poisson, random polarity) and a few hot pixels

with a per-pixel contrast threshold ``C ~ N(0.2, 0.03)``. Boxes (``*_bbox.npy``, the Gen1 packed
dtype ``ts, x, y, w, h, class_id, confidence, track_id``) are the objects' extents at label times
every ``label_interval_us``, clipped to the sensor. Everything is a pure function of the arguments
(one generator per recording, seeded from ``(seed, split, index)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from .shapes import Progress, image_rng

__all__ = ['EVENT_CLASSES', 'GEN1_BOX_DTYPE', 'make_events_dataset', 'simulate_recording']

#: Classes in label order (the Gen1 classes).
EVENT_CLASSES: Tuple[str, ...] = ('car', 'pedestrian')
#: The Gen1 box layout (packed, 33 bytes), as the dataset's ``*_bbox.npy`` files.
GEN1_BOX_DTYPE = np.dtype(
    [
        ('ts', '<u8'),
        ('x', '<f4'),
        ('y', '<f4'),
        ('w', '<f4'),
        ('h', '<f4'),
        ('class_id', 'u1'),
        ('confidence', '<f4'),
        ('track_id', '<u4'),
    ]
)
SPLITS = ('train', 'val', 'test')


@dataclass
class _Object:
    label: int
    cx: float
    cy: float
    w: float
    h: float
    vx: float  # px / s
    vy: float
    contrast: float  # log-intensity offset against the background
    flicker_hz: float  # 0: steady
    flicker_amp: float
    phase: float

    def extent(self) -> Tuple[float, float, float, float]:
        return (self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2)


def _random_object(rng: np.random.Generator, label: int, width: int, height: int, scale: float) -> _Object:
    if label == 0:  # car: wide, fast, mostly horizontal
        w, h = rng.uniform(44, 90) * scale, rng.uniform(26, 48) * scale
        speed, angle = rng.uniform(70, 160) * scale, rng.normal(0, 0.25) + np.pi * rng.integers(2)
    else:  # pedestrian: tall, slower, any direction
        w, h = rng.uniform(16, 28) * scale, rng.uniform(40, 70) * scale
        speed, angle = rng.uniform(35, 80) * scale, rng.uniform(0, 2 * np.pi)
    flicker = rng.random() < 0.3
    return _Object(
        label=label,
        cx=rng.uniform(w / 2, width - w / 2),
        cy=rng.uniform(h / 2, height - h / 2),
        w=w,
        h=h,
        vx=speed * np.cos(angle),
        vy=speed * np.sin(angle),
        contrast=rng.choice([-1, 1]) * rng.uniform(0.6, 1.2),
        flicker_hz=rng.uniform(4, 12) if flicker else 0.0,
        flicker_amp=rng.uniform(0.3, 0.6),
        phase=rng.uniform(0, 2 * np.pi),
    )


def _step(obj: _Object, dt_s: float, width: int, height: int) -> None:
    """Move, bouncing off the sensor borders (objects stay inside)."""
    obj.cx += obj.vx * dt_s
    obj.cy += obj.vy * dt_s
    if obj.cx - obj.w / 2 < 0 or obj.cx + obj.w / 2 > width:
        obj.vx = -obj.vx
        obj.cx = float(np.clip(obj.cx, obj.w / 2, width - obj.w / 2))
    if obj.cy - obj.h / 2 < 0 or obj.cy + obj.h / 2 > height:
        obj.vy = -obj.vy
        obj.cy = float(np.clip(obj.cy, obj.h / 2, height - obj.h / 2))


def _coverage(obj: _Object, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the object at pixel centres (1-px soft edge)."""
    dx, dy = xs - obj.cx, ys - obj.cy
    if obj.label == 0:  # rectangle
        sd = np.maximum(np.abs(dx) - obj.w / 2, np.abs(dy) - obj.h / 2)
    else:  # ellipse: distance approximated in units of the shorter semi-axis
        a, b = obj.w / 2, obj.h / 2
        sd = (np.sqrt((dx / a) ** 2 + (dy / b) ** 2) - 1) * min(a, b)
    return np.clip(0.5 - sd, 0.0, 1.0)


def _render(
    objects: List[_Object], background: np.ndarray, t_s: float, box: Tuple[int, int, int, int]
) -> np.ndarray:
    """Log intensity inside ``box = (x0, y0, x1, y1)`` at time ``t_s``; later objects occlude."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    out = background[y0:y1, x0:x1].copy()
    for obj in objects:
        level = obj.contrast
        if obj.flicker_hz:
            level += obj.flicker_amp * np.sin(2 * np.pi * obj.flicker_hz * t_s + obj.phase)
        cov = _coverage(obj, xs, ys)
        target = background[y0:y1, x0:x1] + level
        out = out * (1 - cov) + target * cov
    return out


def simulate_recording(
    rng: np.random.Generator,
    width: int = 304,
    height: int = 240,
    duration_us: int = 2_000_000,
    label_interval_us: int = 100_000,
    num_objects: Tuple[int, int] = (1, 3),
    dt_us: int = 2000,
    noise_hz: float = 0.1,
    hot_pixels: int = 4,
    max_events_per_step: int = 4,
) -> Tuple[np.ndarray, np.ndarray]:
    """One recording: ``(events, boxes)``.

    Returns:
        events: structured ``(N,)`` with ``t`` (µs, sorted), ``x``, ``y``, ``p`` (1 ON, 0 OFF);
        boxes: :data:`GEN1_BOX_DTYPE` at ``label_interval_us, 2 * label_interval_us, ...``.
    """
    scale = min(width / 304, height / 240)
    n = int(rng.integers(num_objects[0], num_objects[1] + 1))
    objects = [
        _random_object(rng, int(rng.integers(len(EVENT_CLASSES))), width, height, scale) for _ in range(n)
    ]
    # smooth static texture: a few gratings on a mid-grey log intensity
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.full((height, width), 0.0, np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(-0.06, 0.06, size=2)
        background += np.float32(rng.uniform(0.05, 0.15)) * np.sin(fx * xx + fy * yy + rng.uniform(0, 6.3))
    threshold = np.clip(rng.normal(0.2, 0.03, (height, width)), 0.1, None).astype(np.float32)
    ref = _render(objects, background, 0.0, (0, 0, width, height))

    chunks: List[np.ndarray] = []
    labels: List[tuple] = []
    steps = duration_us // dt_us
    for k in range(1, steps + 1):
        t_us = k * dt_us
        before = [o.extent() for o in objects]
        for obj in objects:
            _step(obj, dt_us * 1e-6, width, height)
        # only pixels near an object can change (the background and sensor are static)
        ext = np.array(before + [o.extent() for o in objects])
        x0, y0 = (max(int(np.floor(v)) - 2, 0) for v in ext[:, :2].min(0))
        x1 = min(int(np.ceil(ext[:, 2].max())) + 2, width)
        y1 = min(int(np.ceil(ext[:, 3].max())) + 2, height)
        level = _render(objects, background, t_us * 1e-6, (x0, y0, x1, y1))
        diff = level - ref[y0:y1, x0:x1]
        thr = threshold[y0:y1, x0:x1]
        count = np.minimum(np.floor(np.abs(diff) / thr), max_events_per_step).astype(np.int64)
        ref[y0:y1, x0:x1] += np.sign(diff) * count * thr
        iy, ix = np.nonzero(count)
        if len(iy):
            reps = count[iy, ix]
            ev = np.empty(int(reps.sum()), [('t', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', 'u1')])
            ev['x'] = np.repeat(ix + x0, reps)
            ev['y'] = np.repeat(iy + y0, reps)
            ev['p'] = np.repeat(diff[iy, ix] > 0, reps)
            ev['t'] = t_us - dt_us + rng.integers(1, dt_us + 1, size=len(ev))
            chunks.append(ev)
        if t_us % label_interval_us == 0:
            for track, obj in enumerate(objects):
                bx0, by0, bx1, by1 = obj.extent()
                bx0, by0 = max(bx0, 0.0), max(by0, 0.0)
                bx1, by1 = min(bx1, float(width)), min(by1, float(height))
                if bx1 - bx0 >= 2 and by1 - by0 >= 2:
                    labels.append((t_us, bx0, by0, bx1 - bx0, by1 - by0, obj.label, 1.0, track))

    # background activity (Poisson, random polarity) and a few hot pixels
    num_noise = int(rng.poisson(noise_hz * width * height * duration_us * 1e-6))
    hot = rng.integers(0, [width, height], size=(hot_pixels, 2))
    num_hot = rng.poisson(20.0 * duration_us * 1e-6, size=hot_pixels)
    noise = np.empty(
        num_noise + int(num_hot.sum()),
        chunks[0].dtype if chunks else [('t', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', 'u1')],
    )
    noise['t'] = rng.integers(0, duration_us, size=len(noise))
    noise['x'] = np.concatenate([rng.integers(0, width, num_noise), np.repeat(hot[:, 0], num_hot)])
    noise['y'] = np.concatenate([rng.integers(0, height, num_noise), np.repeat(hot[:, 1], num_hot)])
    noise['p'] = rng.integers(0, 2, size=len(noise))
    events = np.concatenate(chunks + [noise])
    events = events[np.argsort(events['t'], kind='stable')]
    boxes = np.array(labels, dtype=GEN1_BOX_DTYPE)
    return events, boxes


def make_events_dataset(
    out: str | Path,
    num_train: int = 24,
    num_val: int = 4,
    num_test: int = 4,
    duration_us: int = 2_000_000,
    label_interval_us: int = 100_000,
    width: int = 304,
    height: int = 240,
    seed: int = 0,
    progress: bool = False,
) -> Dict[str, Dict[str, int]]:
    """Write the toy event dataset (see the module docstring) and return per-split counts.

    Args:
        out: dataset root (created).
        num_train, num_val, num_test: recordings per split.
        duration_us: length of each recording (µs).
        label_interval_us: time between labelled timestamps (µs).
        width, height: sensor size (the Gen1 sensor by default).
        seed: all content is a function of ``seed`` (and the other arguments).
        progress: show a progress bar with an ETA (over recordings) on stdout.

    Returns:
        ``{split: {'recordings': n, 'events': n, 'boxes': n, 'labelled_timestamps': n}}``; also
        written to ``out/toy_events.json``.
    """
    from ..datasets.events.io import write_dat  # numpy only

    if min(num_train, num_val, num_test) < 1:
        raise ValueError(f'need at least one recording per split, got {num_train}, {num_val}, {num_test}')
    if duration_us <= label_interval_us:
        raise ValueError('duration_us must exceed label_interval_us')
    out = Path(out)
    summary: Dict[str, Dict[str, int]] = {}
    bar = Progress(num_train + num_val + num_test, progress)
    for split, count in zip(SPLITS, (num_train, num_val, num_test)):
        (out / split).mkdir(parents=True, exist_ok=True)
        stats = dict(recordings=count, events=0, boxes=0, labelled_timestamps=0)
        for index in range(count):
            rng = image_rng(seed, f'events/{split}', index)
            events, boxes = simulate_recording(rng, width, height, duration_us, label_interval_us)
            stem = out / split / f'toy_{index:04d}'
            write_dat(f'{stem}_td.dat', events, width, height)
            np.save(f'{stem}_bbox.npy', boxes)
            stats['events'] += len(events)
            stats['boxes'] += len(boxes)
            stats['labelled_timestamps'] += len(np.unique(boxes['ts']))
            bar.update()
        summary[split] = stats
    bar.close()
    meta = dict(
        classes=list(EVENT_CLASSES),
        width=width,
        height=height,
        seed=seed,
        duration_us=duration_us,
        label_interval_us=label_interval_us,
        splits=summary,
    )
    (out / 'toy_events.json').write_text(json.dumps(meta, indent=2))
    return summary

"""Toy data in RVT's preprocessed layout (Gen1 or 1 Mpx), written by our own code.

The recordings come from the toy event simulator (:func:`~.events.simulate_recording`) at the
real sensor size; each is then preprocessed the way RVT's release was made, with this
repository's implementation of the documented rules:

* labels: clamped to the sensor (flat boxes dropped); Gen1: the published size filter (diagonal
  >= 30 px, sides >= 10 px); 1 Mpx: classes 0-2 only and sides >= 5 px; train split: boxes wider
  than 0.9 W dropped;
* labelled frames: the first label timestamp at or after 100 ms, then each later one whose
  distance to the previous frame is a multiple of ``label_interval_us`` within 2 ms;
* windows: ends every 50 ms; before the first frame back to (but excluding) the first window
  ending in ``(0, 50 ms]``, then 2 per label interval between consecutive frames (integer
  linspace; 50 ms apart for labels every 100 ms), so that every frame's timestamp is a window end;
* histograms: :func:`~sdt_dense.datasets.events.representations.rvt_stacked_histogram` of the
  events with ``T - 50 ms <= t <= T`` (10 bins, cutoff 10; 1 Mpx downsampled by 2), uint8,
  Blosc-compressed HDF5.

``make_rvt_dataset(out, 'gen1')`` writes ``out/{train,val,test}/toy_NNNN/...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from .events import simulate_recording
from .shapes import image_rng

__all__ = [
    'RVT_SENSORS',
    'RVT_LABEL_DTYPE',
    'rvt_filter_labels',
    'rvt_frames_and_windows',
    'rvt_preprocess_recording',
    'make_rvt_dataset',
    'main',
]

#: ``(H, W)`` of the two sensors, by RVT's dataset name.
RVT_SENSORS: Dict[str, Tuple[int, int]] = {'gen1': (240, 304), 'gen4': (720, 1280)}
#: The label records written to ``labels.npz`` (the 1 Mpx box layout).
RVT_LABEL_DTYPE = np.dtype(
    [
        ('t', '<i8'),
        ('x', '<f4'),
        ('y', '<f4'),
        ('w', '<f4'),
        ('h', '<f4'),
        ('class_id', '<u4'),
        ('track_id', '<u4'),
        ('class_confidence', '<f4'),
    ]
)
_SPLITS = ('train', 'val', 'test')


def rvt_filter_labels(boxes: np.ndarray, dataset: str, split: str) -> np.ndarray:
    """RVT's preprocessing filters (see the module docstring) on structured boxes."""
    height, width = RVT_SENSORS[dataset]
    out = np.zeros(len(boxes), RVT_LABEL_DTYPE)
    for name in RVT_LABEL_DTYPE.names:
        src = {
            't': 'ts' if 'ts' in boxes.dtype.names else 't',
            'class_confidence': 'confidence' if 'confidence' in boxes.dtype.names else 'class_confidence',
        }.get(name, name)
        out[name] = boxes[src]
    if dataset == 'gen4':
        out = out[out['class_id'] <= 2]
    x0, y0 = np.clip(out['x'], 0, width - 1), np.clip(out['y'], 0, height - 1)
    x1 = np.clip(out['x'] + out['w'], 0, width - 1)
    y1 = np.clip(out['y'] + out['h'], 0, height - 1)
    out['x'], out['y'], out['w'], out['h'] = x0, y0, x1 - x0, y1 - y0
    out = out[(out['w'] > 0) & (out['h'] > 0)]
    w, h = out['w'], out['h']
    if dataset == 'gen1':
        out = out[(w * w + h * h >= 30**2) & (w >= 10) & (h >= 10)]
    else:
        out = out[(w >= 5) & (h >= 5)]
    if split == 'train':
        out = out[out['w'] <= (9 * width) // 10]
    return out[np.argsort(out['t'], kind='stable')]


def rvt_frames_and_windows(
    label_ts: np.ndarray, label_interval_us: int, delta_us: int = 50_000
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled frames, window ends and each frame's window index (module docstring rules).

    Returns:
        ``(frame_ts (F,), window_ends (N,), frame_repr_idx (F,))``, int64.
    """
    ts = np.unique(np.asarray(label_ts, np.int64))
    first = int(np.searchsorted(ts, 100_000, side='left'))
    if first >= len(ts):
        raise ValueError('no label at or after 100 ms')
    frames = [int(ts[first])]
    steps: List[int] = []
    for t in ts[first + 1 :]:
        diff = int(t) - frames[-1]
        count = int(round(diff / label_interval_us))
        if count > 0 and abs(diff - count * label_interval_us) <= 2000:
            frames.append(int(t))
            steps.append(count * (100_000 // delta_us))  # RVT: 2 windows per label interval
    ends = list(reversed(range(frames[0], 0, -delta_us)))[1:-1]
    for i, (a, b) in enumerate(zip(frames[:-1], frames[1:])):
        edges = np.linspace(a, b, steps[i] + 1).astype(np.int64).tolist()
        ends.extend(edges if i == len(steps) - 1 else edges[:-1])
    if len(frames) == 1:
        ends.append(frames[0])
    ends_arr = np.asarray(ends, np.int64)
    frame_arr = np.asarray(frames, np.int64)
    return frame_arr, ends_arr, np.searchsorted(ends_arr, frame_arr, side='left')


def rvt_preprocess_recording(
    events: np.ndarray,
    boxes: np.ndarray,
    dataset: str,
    split: str,
    label_interval_us: int = 100_000,
    delta_us: int = 50_000,
    num_bins: int = 10,
    count_cutoff: int = 10,
) -> dict:
    """One recording -> the arrays of one RVT sequence folder (``write_rvt_sequence`` kwargs)."""
    from ..datasets.events.representations import rvt_stacked_histogram

    height, width = RVT_SENSORS[dataset]
    labels = rvt_filter_labels(boxes, dataset, split)
    if not len(labels):
        raise ValueError('no label left after filtering')
    frame_ts, ends, frame_repr = rvt_frames_and_windows(labels['t'], label_interval_us, delta_us)
    labels = labels[np.isin(labels['t'], frame_ts)]
    t = events['t'].astype(np.int64)
    starts = np.searchsorted(t, ends - delta_us, side='left')
    stops = np.searchsorted(t, ends, side='right')
    hists = np.stack(
        [
            rvt_stacked_histogram(
                events[a:b], num_bins, height, width, count_cutoff, downsample_by_2=dataset == 'gen4'
            )
            for a, b in zip(starts, stops)
        ]
    ).astype(np.uint8)
    return dict(
        histograms=hists,
        labels=labels,
        frame_repr_idx=frame_repr,
        repr_timestamps_us=ends,
        downsampled=dataset == 'gen4',
    )


def make_rvt_dataset(
    out: str | Path,
    dataset: str = 'gen1',
    num_train: int = 2,
    num_val: int = 1,
    num_test: int = 1,
    duration_us: int = 1_000_000,
    seed: int = 0,
    compression: str = 'blosc',
    sim_scale: int = 0,
) -> Dict[str, Dict[str, int]]:
    """Write a toy dataset in RVT's layout; returns per-split counts (also in ``out/toy_rvt.json``).

    Args:
        out: dataset root (created).
        dataset: ``'gen1'`` (304 x 240) or ``'gen4'`` (1 Mpx, 1280 x 720, histograms at half
            resolution).
        num_train, num_val, num_test: sequences per split.
        duration_us: length of each simulated recording (labels every 100 ms).
        seed: all content is a function of the arguments.
        compression: ``'blosc'`` (RVT's filter, needs hdf5plugin) or ``'gzip'``.
        sim_scale: simulate at ``1 / sim_scale`` of the sensor and spread each event uniformly
            over its ``sim_scale x sim_scale`` block of sensor pixels (boxes scaled alike): the
            full-resolution histograms of a real-size sensor at a fraction of the simulation
            cost. ``0``: 4 for 1 Mpx (simulated at 320 x 180), 1 for Gen1.
    """
    from ..datasets.events.rvt_io import write_rvt_sequence

    if dataset not in RVT_SENSORS:
        raise ValueError(f"dataset must be 'gen1' or 'gen4', got {dataset!r}")
    height, width = RVT_SENSORS[dataset]
    scale = sim_scale or (4 if dataset == 'gen4' else 1)
    if height % scale or width % scale:
        raise ValueError(f'sim_scale {scale} must divide the sensor size {width} x {height}')
    out = Path(out)
    summary: Dict[str, Dict[str, int]] = {}
    for split, count in zip(_SPLITS, (num_train, num_val, num_test)):
        stats = dict(sequences=count, histograms=0, frames=0, boxes=0)
        for index in range(count):
            rng = image_rng(seed, f'rvt/{dataset}/{split}', index)
            # 2-4 objects: enough boxes survive the size filters
            events, boxes = simulate_recording(
                rng,
                width // scale,
                height // scale,
                duration_us,
                100_000,
                num_objects=(2, 4),
                noise_hz=0.05 * scale * scale,
            )
            if scale > 1:
                events = events.copy()
                events['x'] = events['x'] * scale + rng.integers(0, scale, len(events))
                events['y'] = events['y'] * scale + rng.integers(0, scale, len(events))
                boxes = boxes.copy()
                for key in ('x', 'y', 'w', 'h'):
                    boxes[key] *= scale
            seq = rvt_preprocess_recording(events, boxes, dataset, split)
            write_rvt_sequence(str(out / split / f'toy_{index:04d}'), compression=compression, **seq)
            stats['histograms'] += len(seq['histograms'])
            stats['frames'] += len(seq['frame_repr_idx'])
            stats['boxes'] += len(seq['labels'])
        summary[split] = stats
    (out / 'toy_rvt.json').write_text(
        json.dumps(dict(dataset=dataset, seed=seed, duration_us=duration_us, splits=summary), indent=2)
    )
    return summary


def main(argv=None) -> None:
    """``python tools/misc/make_rvt_toy_data.py --dataset gen1 --out data/toy_rvt_gen1``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Write toy data in RVT's preprocessed layout "
        '(Gen1 or 1 Mpx), from the toy event simulator.'
    )
    parser.add_argument(
        '--dataset',
        choices=tuple(RVT_SENSORS),
        default='gen1',
        help="'gen1' (304 x 240) or 'gen4' (1 Mpx, histograms at 640 x 360)",
    )
    parser.add_argument('--out', required=True, help='dataset root (created)')
    parser.add_argument('--num-train', type=int, default=4)
    parser.add_argument('--num-val', type=int, default=1)
    parser.add_argument('--num-test', type=int, default=1)
    parser.add_argument('--duration', type=float, default=1.0, help='seconds per sequence')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    summary = make_rvt_dataset(
        args.out,
        args.dataset,
        args.num_train,
        args.num_val,
        args.num_test,
        int(args.duration * 1e6),
        args.seed,
    )
    print(json.dumps(summary, indent=2))

#!/usr/bin/env python
"""Event-camera loader throughput: samples/s of the training pipelines, raw Prophesee files vs
RVT's preprocessed HDF5 files, Gen1 and 1 Mpx, with 0 / 2 / 4 DataLoader workers.

Data: generated here at the real sensor sizes (304 x 240; 1280 x 720) by the toy simulator, with
background events added up to ``--gen1-rate`` / ``--mpx-rate`` events per second (assumed rates
of a busy driving scene; the simulator's own rate is far lower), written both as ``.dat`` +
``_bbox.npy`` and in RVT's layout (the same recordings preprocessed by our RVT-exact code).

Pipelines: the training pipelines of ``configs/events/_base_/prophesee_{gen1,1mpx}.py`` (raw: read
a 250 ms window, flip, 4 polarity histograms, zoom; 1 Mpx downsampled by 2) and
``configs/events/_base_/rvt_{gen1,1mpx}.py`` (RVT: read 4 stacked histograms from HDF5, flip,
zoom). The first batch (worker start-up) is not timed.

What a GPU step needs: ``--gpu-tflops`` (effective training throughput of the GPU, an assumption
stated in the output) / (3 x forward FLOPs per sample of the 10M RetinaNet of the same configs)
gives the samples/s a GPU would consume; the output compares it to the loader's rate.

    python benchmarks/event_loader.py --out benchmarks/results/event_loader_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
from typing import Dict

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CONFIGS = {
    ('gen1', 'raw'): 'configs/events/retinanet_e-spikeformer-10m_spike-fpn_gen1.py',
    ('gen1', 'rvt'): 'configs/events/retinanet_e-spikeformer-10m_spike-fpn_1xb8-200k_rvt-gen1.py',
    ('1mpx', 'raw'): 'configs/events/retinanet_e-spikeformer-10m_spike-fpn_1mpx.py',
    ('1mpx', 'rvt'): 'configs/events/retinanet_e-spikeformer-10m_spike-fpn_1xb8-200k_rvt-1mpx.py',
}


def write_data(
    root: str, dataset: str, num: int, duration_us: int, rate: float, seed: int
) -> Dict[str, float]:
    """``num`` recordings at the real sensor size, raw (``root/raw/train``) and RVT
    (``root/rvt/train``); returns the events per second written."""
    from sdt_dense.datasets.events.io import BOX_DTYPE, write_dat
    from sdt_dense.datasets.events.rvt_io import write_rvt_sequence
    from sdt_dense.toy_data.events import simulate_recording
    from sdt_dense.toy_data.rvt import RVT_SENSORS, rvt_preprocess_recording

    height, width = RVT_SENSORS[dataset]
    scale = 4 if dataset == 'gen4' else 1
    os.makedirs(osp.join(root, 'raw', 'train'), exist_ok=True)
    total = 0
    for i in range(num):
        rng = np.random.default_rng([seed, i, scale])
        ev, boxes = simulate_recording(
            rng, width // scale, height // scale, duration_us, 100_000, num_objects=(2, 4)
        )
        ev['x'] = ev['x'] * scale + rng.integers(0, scale, len(ev))
        ev['y'] = ev['y'] * scale + rng.integers(0, scale, len(ev))
        for key in ('x', 'y', 'w', 'h'):
            boxes[key] *= scale
        extra = max(int(rate * duration_us * 1e-6) - len(ev), 0)
        noise = np.zeros(extra, ev.dtype)
        noise['t'] = rng.integers(0, duration_us, extra)
        noise['x'], noise['y'] = rng.integers(0, width, extra), rng.integers(0, height, extra)
        noise['p'] = rng.integers(0, 2, extra)
        ev = np.concatenate([ev, noise])
        ev = ev[np.argsort(ev['t'], kind='stable')]
        total += len(ev)
        stem = osp.join(root, 'raw', 'train', f'rec_{i:04d}')
        write_dat(stem + '_td.dat', ev, width, height)
        if dataset == 'gen1':
            np.save(stem + '_bbox.npy', boxes)
        else:
            out = np.zeros(len(boxes), BOX_DTYPE)
            for key in ('x', 'y', 'w', 'h', 'class_id', 'track_id'):
                out[key] = boxes[key]
            out['t'], out['class_confidence'] = boxes['ts'], 1.0
            out['class_id'] = np.where(out['class_id'] == 0, 2, 0)  # car 2, pedestrian 0
            np.save(stem + '_bbox.npy', out)
        seq = rvt_preprocess_recording(ev, boxes, dataset, 'train')
        write_rvt_sequence(osp.join(root, 'rvt', 'train', f'rec_{i:04d}'), **seq)
    return dict(events_per_s=total / (num * duration_us * 1e-6))


def build_loader(key, data_root: str, workers: int, batch_size: int):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from torch.utils.data import DataLoader

    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[key]))
    init_default_scope('mmdet')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = data_root
    dataset = DATASETS.build(ds_cfg)
    return (
        DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            shuffle=True,
            collate_fn=pseudo_collate,
            persistent_workers=workers > 0,
            drop_last=True,
        ),
        len(dataset),
        cfg,
    )


def measure(loader, batches: int, batch_size: int) -> float:
    it = iter(loader)
    next(it)  # worker start-up, file opening: not timed
    done, t0 = 0, time.perf_counter()
    while done < batches:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        done += 1
    return done * batch_size / (time.perf_counter() - t0)


def forward_flops(cfg, batch: dict) -> float:
    """Forward FLOPs per sample of the config's model on a real batch (mmengine's FlopAnalyzer
    over the ``mode='tensor'`` forward, as ``benchmarks/_common.py`` counts them)."""
    from _common import count_dense_complexity  # this folder is on sys.path (script run)
    from mmdet.registry import MODELS

    model = MODELS.build(cfg.model)
    return float(count_dense_complexity(model, batch)['flops_per_image'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--recordings', type=int, default=3)
    parser.add_argument('--duration', type=float, default=2.0, help='seconds per recording')
    parser.add_argument('--gen1-rate', type=float, default=1e6, help='events/s, Gen1')
    parser.add_argument('--mpx-rate', type=float, default=5e6, help='events/s, 1 Mpx')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2, 4])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--batches', type=int, default=6, help='timed batches per run')
    parser.add_argument(
        '--gpu-tflops',
        type=float,
        default=100.0,
        help='assumed effective training throughput of one GPU (TFLOP/s)',
    )
    parser.add_argument('--keep-data', default=None, help='write the data here and keep it')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    import sdt_dense  # noqa: F401  (registers the datasets and transforms)

    root = args.keep_data or tempfile.mkdtemp(prefix='event_loader_')
    results: Dict[str, dict] = {}
    try:
        for dataset, name, rate in (('gen1', 'gen1', args.gen1_rate), ('gen4', '1mpx', args.mpx_rate)):
            t0 = time.perf_counter()
            data = write_data(
                osp.join(root, name), dataset, args.recordings, int(args.duration * 1e6), rate, seed=0
            )
            entry = dict(
                events_per_s=round(data['events_per_s']), generation_s=round(time.perf_counter() - t0, 1)
            )
            for fmt in ('raw', 'rvt'):
                for workers in args.workers:
                    loader, size, cfg = build_loader(
                        (name, fmt), osp.join(root, name, fmt) + '/', workers, args.batch_size
                    )
                    rate_s = measure(loader, args.batches, args.batch_size)
                    entry[f'{fmt}_workers{workers}_samples_per_s'] = round(rate_s, 2)
                    print(
                        f'{name} {fmt} workers={workers}: {rate_s:.1f} samples/s ({size} samples)', flush=True
                    )
                    del loader
                sample = build_loader((name, fmt), osp.join(root, name, fmt) + '/', 0, 1)[0]
                flops = forward_flops(cfg, next(iter(sample)))
                need = args.gpu_tflops * 1e12 / (3 * flops)
                entry[f'{fmt}_forward_gflops_per_sample'] = round(flops / 1e9, 2)
                entry[f'{fmt}_gpu_needs_samples_per_s'] = round(need, 1)
            results[name] = entry
    finally:
        if not args.keep_data:
            shutil.rmtree(root, ignore_errors=True)
    out = dict(
        benchmark='event_loader',
        device='cpu',
        cpu_count=os.cpu_count(),
        torch_threads_per_process=1,
        batch_size=args.batch_size,
        timed_batches=args.batches,
        recordings=args.recordings,
        duration_s=args.duration,
        assumed_gpu_tflops=args.gpu_tflops,
        configs={f'{k[0]}_{k[1]}': v for k, v in CONFIGS.items()},
        results=results,
    )
    print(json.dumps(out, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()

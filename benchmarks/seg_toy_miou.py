#!/usr/bin/env python
"""Train the spiking Semantic FPN ('t' backbone, configs/toy/fpn_e-spikeformer-t_toy.py) on the toy
ADE20K-layout dataset for a few hundred iterations and compare its mIoU with chance baselines.

    python benchmarks/seg_toy_miou.py [--iters 400] [--data data/toy_ade] [--work-dir DIR]

The dataset is generated (``make_seg_dataset``, seed 0) when ``--data`` holds none. Chance
baselines, scored with the same mmseg IoU code on the validation labels: predicting the most
frequent training class everywhere, and a uniformly random class per pixel. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # sdt_dense itself comes from the installed package

CONFIG = ROOT / 'configs' / 'toy' / 'fpn_e-spikeformer-t_toy.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=400, help='training iterations')
    parser.add_argument('--data', default=str(ROOT / 'data' / 'toy_ade'), help='toy dataset root')
    parser.add_argument('--work-dir', default=str(ROOT / 'work_dirs' / 'bench_seg_toy_miou'))
    parser.add_argument('--workers', type=int, default=2, help='dataloader workers')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    return parser.parse_args(argv)


def load_labels(ann_dir: Path) -> list[np.ndarray]:
    """Validation labels after ``reduce_zero_label`` (0 -> 255 = ignore, k -> k - 1)."""
    labels = []
    for path in sorted(ann_dir.glob('*.png')):
        raw = np.asarray(Image.open(path)).astype(np.int64)
        labels.append(np.where(raw == 0, 255, raw - 1))
    return labels


def score(preds, labels, num_classes: int) -> float:
    """mIoU (%) with mmseg's IoUMetric arithmetic."""
    from mmseg.evaluation import IoUMetric

    areas = [
        IoUMetric.intersect_and_union(torch.as_tensor(p), torch.as_tensor(g), num_classes, 255)
        for p, g in zip(preds, labels)
    ]
    totals = [sum(a[i] for a in areas) for i in range(4)]
    metrics = IoUMetric.total_area_to_metrics(*totals, ['mIoU'])
    return float(np.nanmean(metrics['IoU']) * 100)


def chance_baselines(data: Path, num_classes: int) -> dict:
    train = load_labels(data / 'annotations' / 'training')
    val = load_labels(data / 'annotations' / 'validation')
    counts = np.bincount(np.concatenate([t[t != 255] for t in train]), minlength=num_classes)
    majority = [np.full_like(g, counts.argmax()) for g in val]
    rng = np.random.default_rng(0)
    uniform = [rng.integers(0, num_classes, g.shape) for g in val]
    return dict(
        majority_class=score(majority, val, num_classes), uniform_random=score(uniform, val, num_classes)
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not (data / 'meta.json').exists():
        from sdt_dense.toy_data import make_seg_dataset

        make_seg_dataset(data, seed=0)
    meta = json.loads((data / 'meta.json').read_text())

    cfg = Config.fromfile(str(CONFIG))
    if list(cfg.classes) != meta['classes']:
        raise SystemExit(f'{data} has classes {meta["classes"]}, the config {list(cfg.classes)}')
    cfg.work_dir = args.work_dir
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(data)
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
    # train only; evaluate once at the end
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters)
    # linear warmup, then linear decay to 0 at the last iteration
    warmup, poly = cfg.param_scheduler
    warmup.end = poly.begin = min(warmup.end, max(1, args.iters // 8))
    poly.end = args.iters
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=args.iters)

    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    metrics = runner.test()

    result = dict(
        iters=args.iters,
        train_images=meta['counts']['training'],
        val_images=meta['counts']['validation'],
        image_size=meta['image_size'],
        mIoU=float(metrics['mIoU']),
        aAcc=float(metrics['aAcc']),
        chance_mIoU=chance_baselines(data, len(meta['classes'])),
        train_seconds=round(train_s, 1),
    )
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()

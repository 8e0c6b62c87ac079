"""Semantic FPN cost with the E-SpikeFormer 10M / 19M backbones versus mmseg's stock ResNet-50
Semantic FPN, at ADE20K's 512x512 crop: train-step time, inference latency, peak training memory,
parameters and FLOPs.

The segmentation counterpart of ``detector_cost.py``, with the same machinery: models built from
their configs without any checkpoint, synthetic data (random images and label maps of 150
classes, so only cost is meaningful), a train step is ``model.train_step`` with an AdamW
``OptimWrapper``, inference is ``model.test_step`` (logits resized to the image and arg-maxed) under
``torch.no_grad``; each model in a fresh subprocess, in alternating order across rounds; ratios to
ResNet-50 are medians of the per-round ratios. The SFA segmentors run in integer mode (the training
graph). FLOPs: mmengine's ``FlopAnalyzer`` count of one ``mode='tensor'`` forward (dense operation
count; spike-based synaptic operations come from the analysis tools).

Examples::

    python benchmarks/segmentor_cost.py                  # CUDA if available, 512x512, batch 1
    python benchmarks/segmentor_cost.py --device cpu --threads 1 --rounds 2 \\
        --out benchmarks/results/segmentor_cost_cpu.json
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import torch
from _common import (
    REPO_ROOT,
    add_common_args,
    alternating_runs,
    begin_driver,
    build_dense_model,
    dense_cost_summary,
    img_hw,
    measure_dense_model,
    print_dense_cost_table,
    record_load,
    setup_worker,
    stream_worker,
    worker_argv,
    write_json,
)

#: name -> (config, description)
SEGMENTORS = {
    'r50': ('mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', 'ResNet-50 + FPN (mmseg)'),
    'esf-10m': (
        os.path.join(REPO_ROOT, 'configs/e_spikeformer/fpn_e-spikeformer-10m_8xb2-160k_ade20k-512x512.py'),
        'E-SpikeFormer 10M + SpikeFPN',
    ),
    'esf-19m': (
        os.path.join(REPO_ROOT, 'configs/e_spikeformer/fpn_e-spikeformer-19m_8xb2-160k_ade20k-512x512.py'),
        'E-SpikeFormer 19M + SpikeFPN',
    ),
    'esf-19m-stage1234': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer/fpn_e-spikeformer-19m-stage1234_8xb2-160k_ade20k-512x512.py'
        ),
        'E-SpikeFormer 19M (stride-4 head) + SpikeFPN',
    ),
}


def build_segmentor(name: str, device: torch.device):
    """Build a segmentor from its config without any checkpoint, in training mode."""
    # mmseg's R-50 config would download ImageNet weights through model.pretrained
    return build_dense_model(
        SEGMENTORS[name][0], 'mmseg', device, edit=lambda cfg: cfg.model.pop('pretrained', None)
    )


def make_batch(args: argparse.Namespace, device: torch.device, num_classes: int = 150) -> dict:
    """A synthetic batch in the layout ``PackSegInputs`` produces (images uint8 CHW, label maps)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    h, w = img_hw(args.img_size)
    g = torch.Generator().manual_seed(args.seed)
    inputs, samples = [], []
    for _ in range(args.batch_size):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8).to(device))
        label = torch.randint(0, num_classes, (1, h, w), generator=g).to(device)
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    measure_dense_model(args, device, build_segmentor(args.worker, device), make_batch(args, device))


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--img-size', type=int, nargs='+', default=[512, 512], help='H W of the images (one number: square)'
    )
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--segmentors', nargs='+', default=list(SEGMENTORS), choices=list(SEGMENTORS))
    parser.add_argument('--no-flops', action='store_true', help='skip the FLOP count')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='instead of timing, print where a train step spends its time (torch.profiler), per model',
    )
    add_common_args(parser)
    parser.set_defaults(warmup=1, steps=3)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    if args.profile:
        for name in args.segmentors:
            stream_worker(os.path.abspath(__file__), name, worker_argv(args, exclude=['segmentors']))
        return
    h, w = img_hw(args.img_size)
    device, info = begin_driver(args, f'segmentor_cost: {h}x{w}, batch {args.batch_size}')
    script = os.path.abspath(__file__)
    runs = alternating_runs(script, args.segmentors, args.rounds, worker_argv(args, exclude=['segmentors']))
    record_load(info)

    summary = dense_cost_summary(runs, {k: v[1] for k, v in SEGMENTORS.items()}, 'r50')
    print_dense_cost_table('Semantic FPN', summary, 'r50', 'R50')
    write_json(
        args.out,
        dict(
            segmentors=summary,
            memory_kind=next(iter(runs.values()))[0]['memory_kind'],
            settings=dict(
                img_size=[h, w],
                batch_size=args.batch_size,
                warmup=args.warmup,
                steps=args.steps,
                rounds=args.rounds,
            ),
            machine=info,
            runs=runs,
        ),
    )


if __name__ == '__main__':
    main()

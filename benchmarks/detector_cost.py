"""Mask R-CNN cost with the E-SpikeFormer 10M / 19M backbones (spiking FPN and heads) versus mmdet's
stock ResNet-50 Mask R-CNN, at the same input size: train-step time, inference latency, peak
training memory, parameters and FLOPs.

Detectors are built from their configs with the backbone's ``init_cfg=None`` (no checkpoint
needed); the data are mmdet's synthetic ``demo_mm_inputs`` (random images, boxes and masks), so
only cost is meaningful. A train step is ``model.train_step`` with an AdamW ``OptimWrapper``;
inference is ``model.test_step`` (boxes and pasted masks) under ``torch.no_grad``, with the box
score threshold at 0 so that every detector keeps its top 100 boxes (random weights would otherwise
leave a detector-dependent, arbitrary number). The SFA detectors run in integer mode (the training
graph), not in spike-driven mode. Each detector runs in a fresh subprocess, in alternating order
across rounds; ratios to ResNet-50 are medians of the per-round ratios.

FLOPs are mmengine's count (``mmengine.analysis.FlopAnalyzer``, one multiply-add = one FLOP, as
fvcore) of one ``mode='tensor'`` inference forward (RPN proposals through the box head, the mask
head on the first 100 proposals), for the whole detector and for the backbone alone. For spiking
layers this is the dense operation count; the energy-relevant synaptic operations (spikes x
fan-out) are reported by the analysis tools, not here.

Examples::

    python benchmarks/detector_cost.py                  # CUDA if available, 800x1333 (HxW), batch 1
    python benchmarks/detector_cost.py --device cpu --threads 1 --img-size 320 --rounds 2
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

#: name -> (config, description, backbone overrides)
DETECTORS = {
    'r50': ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'ResNet-50 + FPN (mmdet)', {}),
    'esf-10m': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer/mask-rcnn_e-spikeformer-10m_spike-fpn_8xb4-1x_coco.py'
        ),
        'E-SpikeFormer 10M + SpikeFPN',
        {},
    ),
    'esf-19m': (os.path.join(REPO_ROOT, 'configs/mask_rcnn_sdt.py'), 'E-SpikeFormer 19M + SpikeFPN', {}),
    'esf-19m-s32': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer/mask-rcnn_e-spikeformer-19m-s32_spike-fpn_8xb4-1x_coco.py'
        ),
        'E-SpikeFormer 19M stride-32 + SpikeFPN',
        {},
    ),
    'esf-83m': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer_large/mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py'
        ),
        'E-SpikeFormer 83M + SpikeFPN',
        {},
    ),
    'esf-83m-cp': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer_large/mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py'
        ),
        'E-SpikeFormer 83M + SpikeFPN, with_cp',
        dict(with_cp=True),
    ),
    'cascade-19m': (
        os.path.join(
            REPO_ROOT, 'configs/e_spikeformer/cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py'
        ),
        'Cascade Mask R-CNN, E-SpikeFormer 19M + SpikeFPN',
        {},
    ),
}
#: ``NAME:MODE`` runs detector NAME with every ``save_counts`` switch set to MODE
SAVE_MODES = {'float': False, 'codes': True, 'recompute': 'recompute'}


def parse_name(name: str) -> tuple:
    """``'esf-19m:codes'`` -> ``('esf-19m', True)``; no suffix -> the config's own setting."""
    base, _, mode = name.partition(':')
    if base not in DETECTORS or (mode and mode not in SAVE_MODES):
        raise SystemExit(
            f'unknown detector {name!r}: use one of {sorted(DETECTORS)}, optionally '
            f'with :{"/:".join(SAVE_MODES)}'
        )
    return base, SAVE_MODES[mode] if mode else None


def build_detector(name: str, device: torch.device):
    """Build a detector from its config without any checkpoint, in training mode."""
    base, save_counts = parse_name(name)

    def edit(cfg) -> None:
        # Random weights score every box below the usual 0.05 threshold, and how many survive
        # would differ between detectors; keeping the top max_per_img (100) makes inference work
        # comparable.
        rcnn = cfg.model.test_cfg.rcnn
        for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
            stage.score_thr = 0.0
        cfg.model.backbone.update(DETECTORS[base][2])

    return build_dense_model(DETECTORS[base][0], 'mmdet', device, edit=edit, save_counts=save_counts)


def make_batch(args: argparse.Namespace, device: torch.device) -> dict:
    """A synthetic batch in the layout ``PackDetInputs`` produces (images uint8 CHW)."""
    from mmdet.testing import demo_mm_inputs

    return demo_mm_inputs(
        batch_size=args.batch_size,
        image_shapes=(3, *img_hw(args.img_size)),
        num_items=[args.num_gt] * args.batch_size,
        num_classes=80,
        with_mask=True,
        device=str(device),
    )


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    measure_dense_model(args, device, build_detector(args.worker, device), make_batch(args, device))


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        default=[800, 1333],
        help='H W of the images (one number: square); COCO test scale is 800 1333',
    )
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-gt', type=int, default=5, help='ground-truth instances per image')
    parser.add_argument(
        '--detectors',
        nargs='+',
        default=['r50', 'esf-10m', 'esf-19m', 'esf-19m-s32'],
        help=f'any of {sorted(DETECTORS)}, each optionally NAME:MODE with MODE in '
        f'{sorted(SAVE_MODES)} (the save_counts switch of every module)',
    )
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
        for name in args.detectors:
            stream_worker(os.path.abspath(__file__), name, worker_argv(args, exclude=['detectors']))
        return
    h, w = img_hw(args.img_size)
    device, info = begin_driver(args, f'detector_cost: {h}x{w}, batch {args.batch_size}')
    script = os.path.abspath(__file__)
    argv_w = worker_argv(args, exclude=['detectors'])  # each worker measures one detector
    runs = alternating_runs(script, args.detectors, args.rounds, argv_w)
    record_load(info)

    for name in args.detectors:
        parse_name(name)
    labels = {
        n: DETECTORS[parse_name(n)[0]][1] + (f' [{n.partition(":")[2]}]' if ':' in n else '')
        for n in args.detectors
    }
    summary = dense_cost_summary(runs, labels, args.detectors[0])
    print_dense_cost_table('Mask R-CNN', summary, args.detectors[0], args.detectors[0])
    write_json(
        args.out,
        dict(
            detectors=summary,
            memory_kind=next(iter(runs.values()))[0]['memory_kind'],
            settings=dict(
                img_size=[h, w],
                batch_size=args.batch_size,
                num_gt=args.num_gt,
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

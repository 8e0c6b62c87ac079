"""Training cost of Mask R-CNN with the E-SpikeFormer Large backbones (83M, 173M), each with and
without activation checkpointing (``with_cp``), against the 19M Base detector: train-step time,
peak training memory and the exact activation memory (saved for backward).

Detectors come from their configs (``configs/e_spikeformer_large/mask-rcnn_*`` and
``configs/mask_rcnn_sdt.py``) with the backbone's ``init_cfg=None`` (no checkpoint) and, for the
Large ones, ``with_cp`` set per run; everything else (SpikeFPN, spiking heads, drop path 0.1 of the
Large configs) is the config's. Data: mmdet's synthetic ``demo_mm_inputs`` (random images, boxes
and masks), so only cost is meaningful. A train step is ``model.train_step``'s work (data
preprocessing, loss forward, backward, AdamW update). The first step also counts the bytes
autograd saves for backward; then ``--warmup`` untimed and ``--steps`` timed steps follow, or,
with ``--steps 0``, the first step is the timed one (one step per run, for slow CPUs). Each
detector runs in a fresh subprocess, in alternating order across rounds; ratios are medians of
the per-round ratios (runs of a round are adjacent in time).

With ``with_cp`` the saved-for-backward count is what stays alive outside the checkpointed blocks
(each block keeps only its input for the recomputation, not counted here, one feature map per
block); the peak memory is the direct measure of what checkpointing saves.

Examples::

    python benchmarks/large_cost.py                          # CUDA if available, 512 px, batch 1
    python benchmarks/large_cost.py --device cpu --threads 1 --steps 0 --rounds 1
    python benchmarks/large_cost.py --detectors 19m 83m 83m-cp
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
from typing import Dict, Optional

import torch
from _common import (
    REPO_ROOT,
    PeakMemory,
    add_common_args,
    alternating_runs,
    begin_driver,
    emit_result,
    measure_steps,
    per_round_ratios,
    print_table,
    record_load,
    setup_worker,
    synchronize,
    worker_argv,
    write_json,
)

_LARGE = os.path.join(REPO_ROOT, 'configs', 'e_spikeformer_large')
#: name -> (config, with_cp of the backbone (None: the config's), description)
DETECTORS = {
    '19m': (os.path.join(REPO_ROOT, 'configs', 'mask_rcnn_sdt.py'), None, 'E-SpikeFormer 19M (Base)'),
    '83m': (
        os.path.join(_LARGE, 'mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py'),
        False,
        'E-SpikeFormer 83M',
    ),
    '83m-cp': (
        os.path.join(_LARGE, 'mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py'),
        True,
        'E-SpikeFormer 83M, with_cp',
    ),
    '173m': (
        os.path.join(_LARGE, 'mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-1x_coco.py'),
        False,
        'E-SpikeFormer 173M',
    ),
    '173m-cp': (
        os.path.join(_LARGE, 'mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-1x_coco.py'),
        True,
        'E-SpikeFormer 173M, with_cp',
    ),
}
#: the same backbone with and without checkpointing (for the with_cp ratios)
CP_PAIRS = {'83m-cp': '83m', '173m-cp': '173m'}


def build_detector(name: str, device: torch.device):
    """The detector of ``name`` without any checkpoint, in training mode (SyncBN reverted to BN
    as the Runner does without distributed training)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    import sdt_dense  # noqa: F401  (registers the models; the configs' custom_imports)

    path, with_cp, _ = DETECTORS[name]
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    if with_cp is not None:
        cfg.model.backbone.with_cp = with_cp
    model = MODELS.build(cfg.model)
    model.init_weights()
    return revert_sync_batchnorm(model).to(device).train()


class SavedBytes:
    """Bytes autograd saves for backward while active (saved-tensor hooks, each storage once,
    parameters excluded); see ``_common.saved_for_backward_mb``."""

    def __init__(self, params) -> None:
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        self.saved: Dict[int, int] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.param_ptrs:
            self.saved[storage.data_ptr()] = storage.nbytes()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    @property
    def mb(self) -> float:
        return sum(self.saved.values()) / 2**20


def train_step(model, batch: dict, optim_wrapper, counter: Optional[SavedBytes] = None) -> None:
    """``BaseModel.train_step`` (preprocess, loss forward, backward, update), with the forward
    optionally under ``counter``'s saved-tensor hooks."""
    with optim_wrapper.optim_context(model):
        data = model.data_preprocessor(batch, True)
        with counter.hooks() if counter is not None else contextlib.nullcontext():
            losses = model._run_forward(data, mode='loss')
    parsed, _ = model.parse_losses(losses)
    optim_wrapper.update_params(parsed)


def worker(args: argparse.Namespace) -> None:
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import OptimWrapper

    device = setup_worker(args)
    model = build_detector(args.worker, device)
    batch = demo_mm_inputs(
        batch_size=args.batch_size,
        image_shapes=(3, args.img_size, args.img_size),
        num_items=[args.num_gt] * args.batch_size,
        num_classes=80,
        with_mask=True,
        device=str(device),
    )
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05))
    meter = PeakMemory(device)
    meter.start()
    counter = SavedBytes(model.parameters())
    # The first step also counts the saved bytes (the hooks cost next to nothing); it is timed
    # too, and is the only timed step with --steps 0 (for detectors too slow for more).
    first = measure_steps(lambda: train_step(model, batch, optim_wrapper, counter), device, 0, 1)
    timed = (
        measure_steps(lambda: train_step(model, batch, optim_wrapper), device, args.warmup, args.steps)
        if args.steps
        else first
    )
    memory = meter.stop()
    synchronize(device)
    emit_result(
        dict(
            config=args.worker,
            step_s=timed['wall'],
            step_cpu_s=timed['cpu'],
            first_step_s=first['wall'][0],
            first_step_cpu_s=first['cpu'][0],
            timed_first_step=not args.steps,
            saved_mb=counter.mb,
            params=sum(p.numel() for p in model.parameters()),
            backbone_params=sum(p.numel() for p in model.backbone.parameters()),
            **memory,
        )
    )


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--img-size', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-gt', type=int, default=5, help='ground-truth instances per image')
    parser.add_argument('--detectors', nargs='+', default=list(DETECTORS), choices=list(DETECTORS))
    add_common_args(parser)
    parser.set_defaults(warmup=0, steps=2)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    device, info = begin_driver(
        args,
        f'large_cost: {args.img_size}x{args.img_size}, batch {args.batch_size}, '
        f'steps {args.steps or "1 (the first, which also counts saved bytes)"}, '
        f'warmup {args.warmup}, rounds {args.rounds}',
    )
    script = os.path.abspath(__file__)
    argv_w = worker_argv(args, exclude=['detectors'])  # each worker measures one detector
    runs = alternating_runs(script, args.detectors, args.rounds, argv_w)
    record_load(info)

    summary = {}
    for name, rs in runs.items():
        summary[name] = dict(
            description=DETECTORS[name][2],
            params=rs[0]['params'],
            backbone_params=rs[0]['backbone_params'],
            train_step_s=statistics.median(t for r in rs for t in r['step_s']),
            train_step_cpu_s=statistics.median(t for r in rs for t in r['step_cpu_s']),
            peak_mb=statistics.median(r['peak_mb'] for r in rs),
            saved_mb=statistics.median(r['saved_mb'] for r in rs),
        )

    def ratios(num: str, den: str) -> dict:
        return dict(
            train_step_s=statistics.median(per_round_ratios(runs, num, den, 'step_s')),
            train_step_cpu_s=statistics.median(per_round_ratios(runs, num, den, 'step_cpu_s')),
            peak_mb=summary[num]['peak_mb'] / summary[den]['peak_mb'],
            saved_mb=summary[num]['saved_mb'] / summary[den]['saved_mb'],
        )

    for name, s in summary.items():
        if '19m' in runs:
            s['vs_19m'] = ratios(name, '19m')
        if name in CP_PAIRS and CP_PAIRS[name] in runs:
            s['vs_no_cp'] = ratios(name, CP_PAIRS[name])

    def cell(s: dict, key: str, digits: int) -> str:
        rel = f' ({s["vs_19m"][key]:.2f}x)' if 'vs_19m' in s else ''
        return f'{s[key]:.{digits}f}{rel}'

    rows = []
    for s in summary.values():
        cp = s.get('vs_no_cp')
        rows.append(
            [
                s['description'],
                f'{s["params"] / 1e6:.1f}',
                f'{s["backbone_params"] / 1e6:.1f}',
                cell(s, 'train_step_s', 1),
                cell(s, 'train_step_cpu_s', 1),
                cell(s, 'peak_mb', 0),
                cell(s, 'saved_mb', 0),
                (f'time {cp["train_step_cpu_s"]:.2f}x, peak {cp["peak_mb"]:.2f}x' if cp else ''),
            ]
        )
    print()
    print_table(
        [
            'Mask R-CNN',
            'params (M)',
            'backbone (M)',
            'train step s (vs 19M)',
            'train CPU s (vs 19M)',
            'peak train MB (vs 19M)',
            'saved for backward MB (vs 19M)',
            'with_cp vs without',
        ],
        rows,
    )
    write_json(
        args.out,
        dict(
            detectors=summary,
            memory_kind=next(iter(runs.values()))[0]['memory_kind'],
            settings=dict(
                img_size=args.img_size,
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

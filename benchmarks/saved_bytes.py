"""Saved activations at the spike representation's size: what autograd keeps for backward, and the
peak memory of a training step, with the backbone's ``save_counts`` off and on.

Configurations (same model, data and seed; each in a fresh subprocess, alternating order):

* ``float``: ``save_counts=False`` -- every layer after a neuron saves its float input (today's
  behaviour before the option), the neurons' windows are bytes;
* ``bytes``: count codes one per byte, windows as bytes;
* ``nibbles``: count codes two per byte (``D = 4``), windows as bytes;
* ``packed``: ``save_counts=True``: codes two per byte and windows as bits;
* ``recompute``: the default ``save_counts='recompute'``: as ``packed``, and the conv and BN outputs
  (and what layer scales and ``k^T v`` give) kept as recipes run again in backward.

(``bytes`` and ``nibbles`` wrap the step in a :class:`~sdt_dense.models.neurons.SavedCounts`
context with those settings; the backbone's own switch knows ``False``, ``True``, ``'recompute'``.)

One training step = forward of the ImageNet classifier (backbone -> GAP -> neuron -> Linear),
cross-entropy, backward, AdamW step, as ``train_cost.py``. Saved bytes are counted exactly
(each allocation once, parameters excluded, packed objects at their packed size), with a breakdown
by kind; the gradients of every configuration are checked bit-identical to ``float`` in each run.

Example::

    python benchmarks/saved_bytes.py --device cpu --threads 1 --arch m --img-size 224 \\
        --batch-size 2 --warmup 1 --steps 3 --rounds 2 --out benchmarks/results/saved_bytes_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
from typing import Dict

import torch
import torch.nn.functional as F
from _common import (
    PeakMemory,
    add_common_args,
    alternating_runs,
    begin_driver,
    emit_result,
    measure_steps,
    per_round_ratios,
    print_table,
    record_load,
    saved_for_backward_breakdown,
    setup_worker,
    summarise,
    worker_argv,
    write_json,
)

CONFIGS = ('float', 'bytes', 'nibbles', 'packed', 'recompute')
_SWITCH = {'packed': True, 'recompute': 'recompute'}
# SavedCounts settings of the configs that wrap the step in an explicit context
_EXPLICIT = {'bytes': dict(nibbles=False, bits=False), 'nibbles': dict(nibbles=True, bits=False)}


def build(config: str, args: argparse.Namespace, device: torch.device):
    """Model and a closure ``run(x, y) -> loss`` under the config's saving."""
    from sdt_dense.models import ESpikeFormerClassifier
    from sdt_dense.models.neurons import SavedCounts

    if config not in CONFIGS:
        raise ValueError(f'unknown config {config!r}; valid: {CONFIGS}')
    model = (
        ESpikeFormerClassifier(
            args.arch, num_classes=args.num_classes, save_counts=_SWITCH.get(config, False)
        )
        .to(device)
        .train()
    )

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx = SavedCounts(**_EXPLICIT[config]) if config in _EXPLICIT else contextlib.nullcontext()
        with ctx, torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            return F.cross_entropy(model(x), y)

    return model, run


def saved_breakdown(run, x, y, params) -> Dict[str, float]:
    """MB kept for backward by kind (each allocation once, parameters excluded)."""
    return saved_for_backward_breakdown(lambda: run(x, y), params)['by_kind']


def grad_digest(model, run, x, y) -> str:
    """SHA-256 of all parameter gradients' bytes after one backward (no update)."""
    model.zero_grad(set_to_none=True)
    run(x, y).backward()
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if p.grad is not None:
            h.update(name.encode())
            h.update(p.grad.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    model.zero_grad(set_to_none=True)
    return h.hexdigest()


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    model, run = build(args.worker, args, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch_size, 3, args.img_size, args.img_size, generator=gen).to(device)
    labels = torch.randint(0, args.num_classes, (args.batch_size,), generator=gen).to(device)

    # identical weights in every config (the seed), so equal digests = bit-identical gradients
    digest = grad_digest(model, run, images, labels)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        run(images, labels).backward()
        optimizer.step()

    meter = PeakMemory(device)
    meter.start()
    times = measure_steps(step, device, args.warmup, args.steps)
    memory = meter.stop()
    breakdown = saved_breakdown(run, images, labels, model.parameters())
    emit_result(
        dict(
            config=args.worker,
            step_s=times['wall'],
            step_cpu_s=times['cpu'],
            saved_mb=sum(breakdown.values()),
            saved_by_kind_mb=breakdown,
            grad_sha256=digest,
            **memory,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_common_args(parser)
    parser.add_argument('--arch', default='m')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--amp', action='store_true', help='bf16 autocast')
    parser.add_argument(
        '--configs',
        default=','.join(CONFIGS),
        help=f'comma-separated subset of {CONFIGS}; the first is the reference',
    )
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    configs = [c for c in args.configs.split(',') if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f'--configs: unknown {sorted(unknown)}; valid: {CONFIGS}')
    device, info = begin_driver(
        args,
        f'saved activations: arch {args.arch}, {args.img_size} px, batch {args.batch_size}'
        f'{", bf16 autocast" if args.amp else ""}',
    )
    runs = alternating_runs(
        os.path.abspath(__file__),
        configs,
        args.rounds,
        worker_argv(args, exclude=('configs',)) + ['--device', str(device)],
    )
    record_load(info)
    ref = configs[0]
    digests = {c: {r['grad_sha256'] for r in runs[c]} for c in configs}
    identical = all(len(d) == 1 for d in digests.values()) and len(set.union(*digests.values())) == 1
    summary = {c: summarise(runs[c]) for c in configs}
    for c in configs:
        summary[c]['saved_by_kind_mb'] = runs[c][0]['saved_by_kind_mb']
    rows = []
    for c in configs:
        s = summary[c]
        time_ratio = statistics.median(per_round_ratios(runs, c, ref, 'step_cpu_s'))
        s.update(
            saved_ratio=s['saved_mb'] / summary[ref]['saved_mb'],
            peak_ratio=s['peak_mb'] / summary[ref]['peak_mb'],
            cpu_time_ratio=time_ratio,
        )
        kinds = ', '.join(f'{k} {v:.1f}' for k, v in s['saved_by_kind_mb'].items())
        rows.append(
            [
                c,
                f'{s["saved_mb"]:.1f} MB ({kinds})',
                f'{s["saved_ratio"]:.2f}x',
                f'{s["peak_mb"]:.0f} MB',
                f'{s["peak_ratio"]:.2f}x',
                f'{s["step_cpu_s"]:.2f} s',
                f'{time_ratio:.2f}x',
            ]
        )
    print_table(
        [
            'config',
            'saved for backward (by kind)',
            f'saved / {ref}',
            'peak train memory',
            f'peak / {ref}',
            'step (CPU time)',
            f'time / {ref}',
        ],
        rows,
    )
    print(f'gradients bit-identical across configs: {identical}')
    write_json(
        args.out,
        dict(
            args=vars(args),
            machine=info,
            summary=summary,
            gradients_bit_identical=identical,
            grad_sha256={c: sorted(d) for c, d in digests.items()},
            runs=runs,
        ),
    )
    if not identical:
        raise SystemExit('gradients differ between configs')


if __name__ == '__main__':
    main()

"""Training cost of SFA integer training (T=1, D=4) versus binary LIF neurons over T real timesteps,
on the same E-SpikeFormer architecture and batch (the paper's "4.5x faster training"), and versus
the authors' published classifier code on the same batch (``--authors-repo``).

One training step = forward of the ImageNet classifier (backbone -> GAP -> neuron -> Linear),
cross-entropy on random labels, backward, AdamW step. Each configuration runs in a fresh
subprocess (peak memory does not mix), alternating SFA / LIF / LIF / SFA ... to cancel drift.

Examples::

    python benchmarks/train_cost.py                      # CUDA if available: arch m (10M), 224 px
    python benchmarks/train_cost.py --device cpu --threads 1 --arch s --img-size 128 --batch-size 4
    python benchmarks/train_cost.py --profile            # + where the time goes (torch.profiler)
    # against the authors' code: a checkout of their public repository, and a folder with the two
    # packages their model file imports and this project does not (einops, torchinfo):
    #   pip install --target DEPS einops torchinfo
    python benchmarks/train_cost.py --arch l --batch-size 4 --configs sfa,authors \
        --authors-repo PATH/TO/Spike-Driven-Transformer-V3 --authors-deps DEPS

Prints a table and writes JSON (``--out``) with ``sfa_step_s``, ``lif_step_s`` (medians over all
timed steps), ``speedup`` (median over rounds of the LIF / SFA step-time ratio of the two runs of
the round, which are adjacent in time; ``speedup_cpu_time``: the same with the process's CPU time,
robust on a shared CPU), ``sfa_peak_mb``, ``lif_peak_mb``, ``memory_ratio`` (SFA / LIF; peaks
above the pre-training baseline, see ``_common.PeakMemory``) and the exact activation memory
``sfa_saved_mb``, ``lif_saved_mb``, ``saved_ratio``.
"""

from __future__ import annotations

import argparse
import os
import statistics

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
    profile_step,
    record_load,
    saved_for_backward_mb,
    setup_worker,
    stream_worker,
    summarise,
    worker_argv,
    write_json,
)

CONFIGS = ('sfa', 'lif', 'authors')
#: --save-counts -> the models' switch
SAVE_COUNTS = {'recompute': 'recompute', 'true': True, 'false': False}
#: the authors' classifier model file, inside a checkout of their repository
AUTHORS_MODELS = os.path.join('SDT_V3', 'Classification', 'Model_Base', 'models.py')
#: our arch name -> the authors' constructor of the same network
AUTHORS_ARCHS = {
    't': 'Efficient_Spiking_Transformer_t',
    's': 'Efficient_Spiking_Transformer_s',
    'm': 'Efficient_Spiking_Transformer_m',
    'l': 'Efficient_Spiking_Transformer_l',
}


def authors_model_file(repo: str) -> str:
    """The authors' model file in ``repo``, or a plain error saying what is missing."""
    path = os.path.join(repo, AUTHORS_MODELS)
    if not os.path.isfile(path):
        raise SystemExit(
            f'--authors-repo {repo!r}: {AUTHORS_MODELS} not found there; give the '
            f"root of a checkout of the authors' public Spike-Driven-Transformer-V3 "
            f'repository'
        )
    return path


def build_authors_model(args: argparse.Namespace) -> torch.nn.Module:
    """The authors' classifier of ``args.arch``, imported from their file unchanged."""
    import importlib.util
    import sys

    if args.arch not in AUTHORS_ARCHS:
        raise SystemExit(f"--arch {args.arch!r}: the authors' code has {sorted(AUTHORS_ARCHS)}")
    if args.authors_deps:
        sys.path.append(args.authors_deps)
    spec = importlib.util.spec_from_file_location('authors_models', authors_model_file(args.authors_repo))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise SystemExit(
            f"the authors' model file needs {e.name!r}: pip install --target DEPS "
            f'einops torchinfo, then pass --authors-deps DEPS'
        ) from e
    model = getattr(module, AUTHORS_ARCHS[args.arch])()  # 1000 classes, fixed in their constructors
    if args.num_classes != 1000:
        raise SystemExit("--num-classes: the authors' constructors fix 1000 classes")
    return model


def neuron_cfg(config: str, args: argparse.Namespace) -> dict:
    if config == 'sfa':
        return dict(type='SFA', D=args.D)
    if config == 'lif':
        return dict(type='LIF', T=args.T)
    raise ValueError(f'unknown config {config!r}; valid: {CONFIGS}')


def build_step(config: str, args: argparse.Namespace, device: torch.device):
    """Model, data and a closure doing one full training step."""
    from sdt_dense.models import ESpikeFormerClassifier

    if config == 'authors':
        model = build_authors_model(args).to(device).train()
    else:
        model = (
            ESpikeFormerClassifier(
                args.arch,
                num_classes=args.num_classes,
                neuron_cfg=neuron_cfg(config, args),
                save_counts=SAVE_COUNTS[args.save_counts],
            )
            .to(device)
            .train()
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    images = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batch_size,), device=device)

    def step(x: torch.Tensor = images, y: torch.Tensor = labels, update: bool = True) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        if update:
            optimizer.step()

    # Load lazily initialised kernels and libraries before any memory baseline (a tiny
    # forward + backward, no update); the measured peak then covers activations, gradients and
    # optimizer state of the real batch.
    step(images[:1, :, :32, :32], labels[:1], update=False)
    optimizer.zero_grad(set_to_none=True)

    def loss() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            return F.cross_entropy(model(images), labels)

    return model, step, loss


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    model, step, loss = build_step(args.worker, args, device)
    params = sum(p.numel() for p in model.parameters())
    if args.profile:
        profile(step, device, args)
        return
    meter = PeakMemory(device)
    meter.start()
    times = measure_steps(step, device, args.warmup, args.steps)
    memory = meter.stop()
    saved_mb = saved_for_backward_mb(loss, model.parameters())
    emit_result(
        dict(
            config=args.worker,
            step_s=times['wall'],
            step_cpu_s=times['cpu'],
            params=params,
            saved_mb=saved_mb,
            **memory,
        )
    )


def profile(step, device: torch.device, args: argparse.Namespace) -> None:
    """Print where a training step spends its time (see :func:`_common.profile_step`)."""
    print(f'=== {args.worker} ===')
    emit_result(
        dict(config=args.worker, **profile_step(step, device, args.warmup, args.steps, args.profile_rows))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--arch', default='m', help='E-SpikeFormer arch: t, s, m (10M), l (19M)')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--D', type=int, default=4, help='SFA integer ceiling (virtual timesteps)')
    parser.add_argument('--T', type=int, default=4, help='LIF real timesteps')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast for every config')
    parser.add_argument(
        '--save-counts',
        default='recompute',
        choices=['recompute', 'true', 'false'],
        help="our models' save_counts switch (default: the models' default)",
    )
    parser.add_argument(
        '--configs', default='sfa,lif', help=f'comma-separated subset of {CONFIGS}; sfa is the reference'
    )
    parser.add_argument(
        '--authors-repo',
        default=None,
        help="root of a checkout of the authors' repository (config 'authors')",
    )
    parser.add_argument(
        '--authors-deps',
        default=None,
        help='a folder with einops and torchinfo (pip install --target), added to '
        "the path of the authors' run only",
    )
    parser.add_argument(
        '--profile',
        action='store_true',
        help='instead of timing, print a torch.profiler table for each config',
    )
    parser.add_argument('--profile-rows', type=int, default=25)
    add_common_args(parser)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    configs = [c for c in args.configs.split(',') if c]
    if 'sfa' not in configs or set(configs) - set(CONFIGS):
        raise SystemExit(f'--configs {args.configs!r}: a subset of {CONFIGS} including sfa')
    if 'authors' in configs:
        if not args.authors_repo:
            raise SystemExit(
                "config 'authors' needs --authors-repo PATH (a checkout of the "
                "authors' public repository); none was given"
            )
        authors_model_file(args.authors_repo)
    script = os.path.abspath(__file__)
    argv = worker_argv(args, exclude=('configs',))
    if args.profile:
        for config in configs:
            stream_worker(script, config, argv)
        return
    device, info = begin_driver(
        args, f'train_cost: arch {args.arch}, batch {args.batch_size}, {args.img_size} px'
    )
    runs = alternating_runs(script, configs, args.rounds, argv)
    record_load(info)
    summary = {c: summarise(runs[c]) for c in configs}
    sfa = summary['sfa']
    result = dict(
        summary=summary,
        memory_kind=runs['sfa'][0]['memory_kind'],
        params={c: runs[c][0]['params'] for c in configs},
        settings=dict(
            arch=args.arch,
            img_size=args.img_size,
            batch_size=args.batch_size,
            D=args.D,
            T=args.T,
            amp=args.amp,
            save_counts=args.save_counts,
            warmup=args.warmup,
            steps=args.steps,
            rounds=args.rounds,
        ),
        machine=info,
        runs=runs,
    )
    names = {
        'sfa': f'SFA D={args.D} (ours)',
        'lif': f'LIF T={args.T} (ours)',
        'authors': "authors' code, SFA D=4",
    }
    fmt = lambda rs: ', '.join(f'{r:.2f}' for r in rs)  # noqa: E731
    lines = []
    for c in configs[1:] if configs[0] == 'sfa' else [c for c in configs if c != 'sfa']:
        ratios = per_round_ratios(runs, c, 'sfa')
        cpu_ratios = per_round_ratios(runs, c, 'sfa', 'step_cpu_s')
        result[f'sfa_vs_{c}'] = dict(
            speedup=statistics.median(ratios),
            speedup_per_round=ratios,
            speedup_cpu_time=statistics.median(cpu_ratios),
            speedup_cpu_time_per_round=cpu_ratios,
            memory_ratio=sfa['peak_mb'] / summary[c]['peak_mb'],
            saved_ratio=sfa['saved_mb'] / summary[c]['saved_mb'],
        )
        r = result[f'sfa_vs_{c}']
        lines.append(
            f'SFA (ours) vs {names[c]}: {r["speedup"]:.2f}x faster per step in wall time '
            f'({fmt(ratios)}), {r["speedup_cpu_time"]:.2f}x in CPU time '
            f'({fmt(cpu_ratios)}); peak training memory {r["memory_ratio"]:.2f}x '
            f'({result["memory_kind"]}); saved for backward {r["saved_ratio"]:.2f}x.'
        )
    for c, r in summary.items():  # flat keys, as read by benchmarks/gpu/summarise.py
        result.update(
            {f'{c}_{k}': r[k] for k in ('step_s', 'step_cpu_s', 'peak_mb', 'saved_mb', 'peak_total_mb')}
        )
    if 'lif' in configs:
        result.update(
            {
                k: result['sfa_vs_lif'][k]
                for k in ('speedup', 'speedup_cpu_time', 'memory_ratio', 'saved_ratio')
            }
        )
    print()
    print_table(
        [
            'config',
            'median step (ms)',
            'min-max (ms)',
            'median step CPU time (ms)',
            'peak train mem (MB)',
            'peak total (MB)',
            'saved for backward (MB)',
        ],
        [
            [
                names[c],
                f'{r["step_s"] * 1e3:.1f}',
                f'{r["step_s_min"] * 1e3:.0f}-{r["step_s_max"] * 1e3:.0f}',
                f'{r["step_cpu_s"] * 1e3:.1f}',
                f'{r["peak_mb"]:.0f}',
                f'{r["peak_total_mb"]:.0f}',
                f'{r["saved_mb"]:.1f}',
            ]
            for c, r in summary.items()
        ],
    )
    print()
    print('\n'.join(lines))
    write_json(args.out, result)


if __name__ == '__main__':
    main()

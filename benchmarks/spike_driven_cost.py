"""Cost of spike-driven simulation versus integer inference on the E-SpikeFormer backbone.

Spike-driven mode feeds every synaptic layer after a neuron ``D`` binary slices instead of one
integer map, so those layers do up to ``D`` times the work of integer mode on a dense (GPU/CPU)
simulator; the attention's ``k^T v`` runs on the ``D^2`` binary slice pairs and ``q (k^T v)`` on
the ``D`` binary slices of q; the stem, BN and residual additions do not grow. This script
measures the resulting inference-time and peak-memory ratios, with and without BN folding:

* ``integer``      -- the trained network (integer activations), eval mode;
* ``spike``        -- the same network in spike-driven mode (``with spike_driven(model)``);
* ``spike-merged-attn`` -- spike-driven, except that the attention products get their operands
  merged back to integer counts (how they ran before they were executed on binary slices; a
  benchmark-only patch), to isolate what the binary attention products cost;
* ``folded``       -- BN folded into the convs (:func:`sdt_dense.deploy.fold_bn`), integer mode;
* ``folded-spike`` -- the deployment form: BN folded and spike-driven.

Besides whole forward passes, each configuration times its attention products alone
(``SpikeMatMul`` calls, via hooks, in extra passes after the timed ones; wall and CPU time).

Each configuration runs in a fresh subprocess (peaks do not mix), alternating the order across
rounds, and the table reports ratios to ``integer`` measured in the same run (peak memory: see
``_common.PeakMemory``; on CPU it is the process RSS high-water mark, a coarse measure). It also
compares every configuration's outputs with integer mode (max / mean abs difference) and prints the
exact accumulate count of the spike-driven run (:func:`sdt_dense.analysis.count_synaptic_ops`).

Examples::

    python benchmarks/spike_driven_cost.py             # CUDA if available: arch m, 224 px
    python benchmarks/spike_driven_cost.py --device cpu --threads 1 --arch t --img-size 128 \\
        --batch-size 2 --steps 3
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from _common import (
    PeakMemory,
    add_common_args,
    alternating_runs,
    begin_driver,
    emit_result,
    measure_steps,
    print_table,
    record_load,
    setup_worker,
    summarise,
    synchronize,
    worker_argv,
    write_json,
)

CONFIGS = ('integer', 'spike', 'spike-merged-attn', 'folded', 'folded-spike')


def build(config: str, args: argparse.Namespace, device: torch.device):
    """The backbone of ``config`` (same seeded weights for all), its input batch, and an untouched
    integer-mode copy to check the outputs against (run only after the measurement, so that it
    does not raise the memory high-water mark)."""
    from sdt_dense.deploy import convert_to_spike_driven, fold_bn
    from sdt_dense.models import ESpikeFormer

    if config not in CONFIGS:
        raise ValueError(f'unknown config {config!r}; valid: {CONFIGS}')
    torch.manual_seed(args.seed)
    model = ESpikeFormer(args.arch, neuron_cfg=dict(type='SFA', D=args.D)).eval()
    # Non-trivial BN statistics, so that spike counts 0..D all occur (defaults give ~0/1 only).
    g = torch.Generator().manual_seed(args.seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 2.5 + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, generator=g)
    reference = copy.deepcopy(model)
    if config.startswith('folded'):
        fold_bn(model)
    if config.endswith('spike') or config.startswith('spike'):
        convert_to_spike_driven(model)
    if config == 'spike-merged-attn':
        _merge_attention_operands(model)
    return model.to(device), x.to(device), reference.to(device)


def _merged_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from sdt_dense.models.neurons import merge_spike_slices

    return merge_spike_slices(a) @ merge_spike_slices(b)


def _merge_attention_operands(model: torch.nn.Module) -> None:
    """Benchmark-only: the attention products merge their spike operands to integer counts and
    multiply those (what ran before the products were executed on binary slices)."""
    from sdt_dense.models.layers import SpikeMatMul

    for m in model.modules():
        if isinstance(m, SpikeMatMul):
            m.forward = _merged_matmul


class ModuleTimer:
    """Wall and CPU seconds spent inside the given modules' forward calls (hooks; synchronised on
    CUDA, so use it only in passes that are not timed as a whole)."""

    def __init__(self, modules, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0
        self._start = (0.0, 0.0)
        self._handles = []
        for m in modules:
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(self._post))

    def _pre(self, module, args) -> None:
        synchronize(self.device)
        self._start = (time.perf_counter(), time.process_time())

    def _post(self, module, args, output) -> None:
        synchronize(self.device)
        self.wall += time.perf_counter() - self._start[0]
        self.cpu += time.process_time() - self._start[1]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    model, x, reference = build(args.worker, args, device)

    @torch.no_grad()
    def step() -> None:
        model(x)

    meter = PeakMemory(device)
    meter.start()
    times = measure_steps(step, device, args.warmup, args.steps)
    mem = meter.stop()
    result = dict(config=args.worker, step_s=times['wall'], step_cpu_s=times['cpu'], **mem)
    # the attention products alone, per forward pass (extra passes: the hooks synchronise)
    from sdt_dense.models.layers import SpikeMatMul

    timer = ModuleTimer([m for m in model.modules() if isinstance(m, SpikeMatMul)], device)
    matmul_wall, matmul_cpu = [], []
    for _ in range(args.steps):
        timer.wall = timer.cpu = 0.0
        step()
        matmul_wall.append(timer.wall)
        matmul_cpu.append(timer.cpu)
    timer.remove()
    result.update(matmul_s=matmul_wall, matmul_cpu_s=matmul_cpu)
    with torch.no_grad():
        diffs = [(o - r).abs() for o, r in zip(model(x), reference(x))]
    result['max_abs_diff'] = max(float(d.max()) for d in diffs)
    result['mean_abs_diff'] = sum(float(d.sum()) for d in diffs) / sum(d.numel() for d in diffs)
    if args.worker == 'spike':
        from sdt_dense.analysis import count_synaptic_ops

        rows = count_synaptic_ops(model, x)
        result['exact_acs'] = sum(r.exact_acs for r in rows)
        result['dense_macs_spiking'] = sum(r.dense_macs for r in rows if r.input_kind == 'spike')
        result['mac_ops'] = sum(r.mac_ops for r in rows)
    emit_result(result)


def summarise_runs(runs: dict, settings: dict, info: dict):
    """Per-config medians (``summary``) and the JSON result (ratios to ``integer`` within the run)
    of the worker results ``runs`` (config -> list of runs)."""
    summary = {c: summarise(runs[c]) for c in CONFIGS}
    for c in CONFIGS:  # attention products: medians over all timed passes of all runs
        for key in ('matmul_s', 'matmul_cpu_s'):
            summary[c][key] = statistics.median(t for r in runs[c] for t in r[key])
    base = summary['integer']
    spike_run = runs['spike'][0]
    result = dict(
        time_ratio={c: summary[c]['step_s'] / base['step_s'] for c in CONFIGS},
        cpu_time_ratio={c: summary[c]['step_cpu_s'] / base['step_cpu_s'] for c in CONFIGS},
        matmul_time_ratio={c: summary[c]['matmul_s'] / base['matmul_s'] for c in CONFIGS},
        matmul_cpu_time_ratio={c: summary[c]['matmul_cpu_s'] / base['matmul_cpu_s'] for c in CONFIGS},
        matmul_s={c: summary[c]['matmul_s'] for c in CONFIGS},
        matmul_cpu_s={c: summary[c]['matmul_cpu_s'] for c in CONFIGS},
        matmul_cpu_share={c: summary[c]['matmul_cpu_s'] / summary[c]['step_cpu_s'] for c in CONFIGS},
        memory_ratio={
            c: summary[c]['peak_mb'] / base['peak_mb'] if base['peak_mb'] > 0 else None for c in CONFIGS
        },
        step_s={c: summary[c]['step_s'] for c in CONFIGS},
        step_cpu_s={c: summary[c]['step_cpu_s'] for c in CONFIGS},
        peak_mb={c: summary[c]['peak_mb'] for c in CONFIGS},
        max_abs_diff={c: max(r['max_abs_diff'] for r in runs[c]) for c in CONFIGS},
        mean_abs_diff={c: max(r['mean_abs_diff'] for r in runs[c]) for c in CONFIGS},
        exact_acs=spike_run['exact_acs'],
        dense_macs_spiking=spike_run['dense_macs_spiking'],
        mac_ops=spike_run['mac_ops'],
        memory_kind=spike_run['memory_kind'],
        settings=settings,
        machine=info,
        runs=runs,
    )
    return summary, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--arch', default='m', help='E-SpikeFormer arch: t, s, m (10M), l (19M)')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--D', type=int, default=4, help='SFA integer ceiling (virtual timesteps)')
    add_common_args(parser)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    device, info = begin_driver(
        args, f'spike_driven_cost: arch {args.arch}, batch {args.batch_size}, {args.img_size} px, D={args.D}'
    )
    script = os.path.abspath(__file__)
    argv = worker_argv(args)
    runs = alternating_runs(script, CONFIGS, args.rounds, argv)
    record_load(info)
    settings = dict(
        arch=args.arch,
        img_size=args.img_size,
        batch_size=args.batch_size,
        D=args.D,
        warmup=args.warmup,
        steps=args.steps,
        rounds=args.rounds,
    )
    summary, result = summarise_runs(runs, settings, info)
    print()
    print_table(
        [
            'mode',
            'median (ms)',
            'time / integer',
            'CPU time / integer',
            'peak mem (MB)',
            'mem / integer',
            'max |out - integer|',
            'mean |out - integer|',
        ],
        [
            [
                c,
                f'{summary[c]["step_s"] * 1e3:.1f}',
                f'{result["time_ratio"][c]:.2f}x',
                f'{result["cpu_time_ratio"][c]:.2f}x',
                f'{summary[c]["peak_mb"]:.0f}',
                '-' if result['memory_ratio'][c] is None else f'{result["memory_ratio"][c]:.2f}x',
                f'{result["max_abs_diff"][c]:.1e}',
                f'{result["mean_abs_diff"][c]:.1e}',
            ]
            for c in CONFIGS
        ],
    )
    print('\nAttention products (SpikeMatMul k^T v and q (k^T v), all blocks), per forward pass:')
    print_table(
        [
            'mode',
            'median (ms)',
            'CPU time (ms)',
            'time / integer',
            'CPU time / integer',
            'share of the pass (CPU)',
        ],
        [
            [
                c,
                f'{summary[c]["matmul_s"] * 1e3:.2f}',
                f'{summary[c]["matmul_cpu_s"] * 1e3:.2f}',
                f'{result["matmul_time_ratio"][c]:.2f}x',
                f'{result["matmul_cpu_time_ratio"][c]:.2f}x',
                f'{result["matmul_cpu_share"][c]:.1%}',
            ]
            for c in CONFIGS
        ],
    )
    print(
        '(Under load the wall time of such short calls is mostly waiting for a core; the CPU '
        'time is their own compute.)'
    )
    print(
        f'\nspike-driven run: {result["exact_acs"]:.4g} accumulates (exact) vs '
        f'{result["dense_macs_spiking"]:.4g} dense MACs of the spiking layers, '
        f'{result["mac_ops"]:.4g} MACs on real input (stem), per batch of {args.batch_size}.'
    )
    print(
        'Differences of ~1e-6 are float summation order; a max of order 0.1 with a tiny mean is '
        'a neuron input within float rounding of a rounding boundary (x.5) that the two forms '
        'round differently (see docs/spike_driven.md, "Numerical agreement").'
    )
    write_json(args.out, result)


if __name__ == '__main__':
    main()

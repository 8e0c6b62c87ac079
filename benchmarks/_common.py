"""Shared machinery of the benchmark scripts: device choice, per-config subprocesses, step timing,
peak-memory measurement, machine description and table printing.

Every configuration is measured in a fresh subprocess (``<script> --worker CONFIG ...``) so that
peak-memory high-water marks never mix, and configurations alternate A B B A ... across rounds so
that slow drifts of a shared machine affect all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESULT_TAG = 'BENCH_RESULT '


def resolve_device(name: str) -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device {name}: CUDA is not available on this machine')
    return device


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every benchmark script shares."""
    parser.add_argument('--device', default='auto', help="'auto' (CUDA if available), 'cpu', 'cuda:0'")
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads per run (torch.set_num_threads); default: torch default. '
        'On a shared machine 1 gives the most stable ratios.',
    )
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps before timing')
    parser.add_argument('--steps', type=int, default=5, help='timed steps per run')
    parser.add_argument(
        '--rounds', type=int, default=2, help='runs of each config, alternating the order (A B, B A, ...)'
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the results as JSON to this file')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)


def setup_worker(args: argparse.Namespace) -> torch.device:
    """Seed, thread count and device of one measuring subprocess."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # the repository is on the workers' PYTHONPATH (see run_worker): sdt_dense imports from it
    if os.environ.get('SDT_BENCH_LIGHT_IMPORT') == '1':  # a GPU machine without mmcv's ops
        import importlib.util

        path = os.path.join(REPO_ROOT, 'benchmarks', 'gpu', 'light_import.py')
        spec = importlib.util.spec_from_file_location('light_import', path)
        light_import = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(light_import)
        light_import.import_backbones()
    return resolve_device(args.device)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _current_rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak memory of what runs between :meth:`start` and :meth:`stop`.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only). CPU: the process's peak resident set
    size (``getrusage`` high-water mark), which also counts the allocator's caching and the
    interpreter, so the training cost is reported as the peak *above* the RSS at :meth:`start`
    (model, inputs and libraries already resident) next to the total.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0

    def start(self) -> None:
        synchronize(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = _current_rss_bytes()

    def stop(self) -> Dict[str, float]:
        synchronize(self.device)
        if self.device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated(self.device)
            kind = 'cuda_max_allocated'
        else:
            peak = _peak_rss_bytes()
            kind = 'cpu_peak_rss'
        mb = 2**20
        return dict(
            peak_mb=(peak - self.base) / mb, peak_total_mb=peak / mb, base_mb=self.base / mb, memory_kind=kind
        )


def saved_for_backward_mb(forward: Callable[[], object], params: Iterable[torch.Tensor]) -> float:
    """MB that autograd keeps for backward after ``forward()`` (the activation memory of training),
    counted exactly with saved-tensor hooks: each storage once, parameters excluded.

    Independent of the allocator and of the device, so it complements the peak measurements.
    Activations kept as spike-count codes, bit masks or recipes (``save_counts``) are counted at
    their packed size.
    """
    return sum(saved_for_backward_breakdown(forward, params)['by_kind'].values())


def saved_for_backward_breakdown(
    forward: Callable[[], object], params: Iterable[torch.Tensor], model: Optional[torch.nn.Module] = None
) -> Dict[str, Dict[str, float]]:
    """What autograd keeps for backward after ``forward()``, in MB, each storage once, parameters
    excluded: ``by_kind`` (``count codes``, ``bits``, ``recomputed`` (always 0: a recipe keeps
    only codes counted under their own kind), or a float dtype) and, with ``model``, ``by_source``:
    ``'<kind> <- <class of the innermost module running when it was saved>'``, with the
    ``model.<child>`` it belongs to (``backbone``, ``neck``, ``rpn_head`` ...)."""
    from sdt_dense.models.neurons.saved_counts import PackedBits, observe_saved, saved_storages

    param_keys = {('tensor', p.untyped_storage().data_ptr()) for p in params}
    names = {}
    if model is not None:
        for name, child in model.named_children():
            for m in child.modules():
                names.setdefault(id(m), name)
    stack: List[torch.nn.Module] = []
    by_kind: Dict[str, Dict[tuple, int]] = {}
    by_source: Dict[str, Dict[tuple, int]] = {}

    def record(obj: object) -> None:
        for key, nbytes in saved_storages(obj):
            if key in param_keys:
                continue
            kind = {'codes': 'count codes', 'recompute': 'recomputed'}.get(key[0]) or (
                'bits' if isinstance(obj, PackedBits) else str(obj.dtype).replace('torch.', '')
            )
            by_kind.setdefault(kind, {})[key] = nbytes
            if model is not None:
                where = next((m for m in reversed(stack) if id(m) in names), None)
                source = (
                    f'{kind} <- {names[id(where)]}.{type(where).__name__}'
                    if where is not None
                    else f"{kind} <- (outside the model's children)"
                )
                by_source.setdefault(source, {})[key] = nbytes

    def push(module, args):
        stack.append(module)

    def pop(module, args, out):
        if stack and stack[-1] is module:
            stack.pop()

    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    handles = (
        [register_module_forward_pre_hook(push), register_module_forward_hook(pop)]
        if model is not None
        else []
    )
    try:
        with observe_saved(record):
            out = forward()  # keeps the graph (and every saved storage) alive while counting
    finally:
        for h in handles:
            h.remove()
    del out
    mb = lambda d: {k: sum(v.values()) / 2**20 for k, v in sorted(d.items())}  # noqa: E731
    return dict(by_kind=mb(by_kind), by_source=mb(by_source))


# Profiler rows (inclusive time) that make up a training step, by part of the network.
PROFILE_PARTS = {
    'conv forward': ('aten::convolution',),
    'conv backward': ('aten::convolution_backward',),
    'BN forward': ('aten::batch_norm',),
    'BN backward': ('aten::native_batch_norm_backward',),
    'neuron forward': ('_SFAQuantise', '_MultiStepLIF'),
    'neuron backward': ('_SFAQuantiseBackward', '_MultiStepLIFBackward'),
    'matmul (attention)': ('aten::matmul',),
    'optimizer': ('Optimizer.step#AdamW.step',),
}


def profile_step(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int, rows: int = 25
) -> Dict[str, object]:
    """Where a training step spends its time, after ``warmup`` steps: prints a breakdown by part
    of the network (:data:`PROFILE_PARTS`, inclusive times) and the top ``rows`` ops by self time;
    returns both (ms per step)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for _ in range(max(warmup, 1)):
        step()
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    events = prof.key_averages()
    total_of = (lambda e: e.device_time_total) if cuda else (lambda e: e.cpu_time_total)
    self_of = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    step_us = sum(self_of(e) for e in events) / steps
    parts, covered = {}, 0.0
    for part, keys in PROFILE_PARTS.items():
        us = sum(total_of(e) for e in events if e.key in keys) / steps
        covered += us
        parts[part] = us / 1e3
    parts['everything else'] = (step_us - covered) / 1e3
    top = sorted(events, key=self_of, reverse=True)[:rows]
    print(f'{step_us / 1e3:.1f} ms {"CUDA" if cuda else "CPU"} time per step ({steps} profiled steps)')
    print_table(
        ['part', 'ms / step', '%'],
        [[k, f'{v:.1f}', f'{100 * v * 1e3 / step_us:.1f}'] for k, v in parts.items()],
    )
    print()
    print(events.table(sort_by='self_cuda_time_total' if cuda else 'self_cpu_time_total', row_limit=rows))
    return dict(
        profile_step_ms=step_us / 1e3,
        profile_parts_ms=parts,
        profile_top_self_ms={e.key: self_of(e) / steps / 1e3 for e in top},
    )


def time_steps(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> List[float]:
    """Wall-clock seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    return measure_steps(step, device, warmup, steps)['wall']


def measure_steps(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> Dict[str, List[float]]:
    """Time ``steps`` calls of ``step`` after ``warmup`` untimed ones.

    Returns ``{'wall': [...], 'cpu': [...]}`` in seconds per call: wall-clock time (synchronised on
    CUDA) and this process's CPU time (``time.process_time``, all its threads). On a CPU shared with
    other jobs the CPU time is far less disturbed by them than the wall time (with ``--threads 1``
    it is the step's own compute); on CUDA only the wall time is meaningful.
    """
    for _ in range(warmup):
        step()
    synchronize(device)
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        synchronize(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return dict(wall=wall, cpu=cpu)


def emit_result(result: dict) -> None:
    """Worker side: hand ``result`` to the parent process (one tagged JSON line on stdout)."""
    print(_RESULT_TAG + json.dumps(result), flush=True)


def run_worker(script: str, config: str, argv: Sequence[str]) -> dict:
    """Parent side: run ``script --worker config *argv`` in a fresh interpreter; its result."""
    cmd = [sys.executable, script, '--worker', config, *argv]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_TAG)]
    if proc.returncode or not lines:
        raise RuntimeError(
            f'worker {config!r} failed (exit {proc.returncode}):\n'
            f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
        )
    return json.loads(lines[-1][len(_RESULT_TAG) :])


def stream_worker(script: str, config: str, argv: Sequence[str]) -> None:
    """Run a worker with its output going straight to the terminal (profiling tables)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    subprocess.run([sys.executable, script, '--worker', config, *argv], check=True, env=env)


#: options of the orchestrating process only (add_common_args), never passed to a worker
_PARENT_ONLY = ('rounds', 'out', 'worker')


def worker_argv(args: argparse.Namespace, exclude: Sequence[str] = ()) -> List[str]:
    """Re-create the command-line options of ``args`` for a worker: all of them except the
    orchestration ones (``--rounds``, ``--out``) and ``exclude``."""
    argv = []
    for name, value in vars(args).items():
        if name in _PARENT_ONLY or name in exclude or value is None or value is False:
            continue
        flag = '--' + name.replace('_', '-')
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):  # nargs='+' options
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def img_hw(size: Sequence[int]) -> Tuple[int, int]:
    """``(H, W)`` from an ``--img-size`` of one (square) or two numbers."""
    if len(size) not in (1, 2):
        raise SystemExit(f'--img-size takes H W or one number, got {list(size)}')
    return (size[0], size[-1])


def dense_cost_summary(
    runs: Dict[str, List[dict]], descriptions: Dict[str, str], baseline: str
) -> Dict[str, dict]:
    """Medians of train-step / inference times (wall and CPU) and of peak memory per model of a
    detector or segmentor cost run, with drift-robust ratios to ``baseline`` (medians of the
    per-round ratios) when the baseline was measured."""
    summary = {}
    for name, rs in runs.items():
        summary[name] = dict(
            description=descriptions[name],
            train_step_s=statistics.median(t for r in rs for t in r['step_s']),
            infer_s=statistics.median(t for r in rs for t in r['infer_s']),
            train_step_cpu_s=statistics.median(t for r in rs for t in r['step_cpu_s']),
            infer_cpu_s=statistics.median(t for r in rs for t in r['infer_cpu_s']),
            peak_mb=statistics.median(r['peak_mb'] for r in rs),
            peak_total_mb=statistics.median(r['peak_total_mb'] for r in rs),
            params=rs[0].get('params'),
            backbone_params=rs[0]['backbone_params'],
            flops_per_image=rs[0].get('flops_per_image'),
            backbone_flops_per_image=rs[0].get('backbone_flops_per_image'),
            saved_mb=rs[0].get('saved_mb'),
            saved_by_kind_mb=rs[0].get('saved_by_kind_mb'),
            saved_by_source_mb=rs[0].get('saved_by_source_mb'),
        )
    if baseline in runs:  # each round's runs are adjacent in time
        for name, s in summary.items():
            s[f'vs_{baseline}'] = dict(
                {
                    k: statistics.median(per_round_ratios(runs, name, baseline, key))
                    for k, key in (
                        ('train_step_s', 'step_s'),
                        ('infer_s', 'infer_s'),
                        ('train_step_cpu_s', 'step_cpu_s'),
                        ('infer_cpu_s', 'infer_cpu_s'),
                    )
                },
                peak_mb=s['peak_mb'] / summary[baseline]['peak_mb'],
            )
    return summary


def print_dense_cost_table(kind: str, summary: Dict[str, dict], baseline: str, baseline_label: str) -> None:
    """The markdown table of :func:`dense_cost_summary`, each time followed by its ratio."""
    rows = []
    for s in summary.values():

        def rel(k, s=s):
            vs = s.get(f'vs_{baseline}')
            return f'{vs[k]:.2f}x' if vs else '-'

        rows.append(
            [
                s['description'],
                f'{s["params"] / 1e6:.1f}' if s['params'] else '-',
                f'{s["backbone_params"] / 1e6:.1f}',
                f'{s["flops_per_image"] / 1e9:.1f}' if s['flops_per_image'] else '-',
                f'{s["backbone_flops_per_image"] / 1e9:.2f}' if s['flops_per_image'] else '-',
                f'{s["train_step_s"] * 1e3:.0f} ({rel("train_step_s")})',
                f'{s["train_step_cpu_s"] * 1e3:.0f} ({rel("train_step_cpu_s")})',
                f'{s["infer_s"] * 1e3:.0f} ({rel("infer_s")})',
                f'{s["infer_cpu_s"] * 1e3:.0f} ({rel("infer_cpu_s")})',
                f'{s["peak_mb"]:.0f} ({rel("peak_mb")})',
                f'{s["saved_mb"]:.0f}' if s.get('saved_mb') is not None else '-',
            ]
        )
    vs = f'vs {baseline_label}'
    print()
    print_table(
        [
            kind,
            'params (M)',
            'backbone (M)',
            'GFLOPs / image',
            'backbone GFLOPs',
            f'train step ms ({vs})',
            f'train CPU ms ({vs})',
            f'inference ms ({vs})',
            f'inference CPU ms ({vs})',
            f'peak train MB ({vs})',
            'saved for backward MB',
        ],
        rows,
    )


def progress_suffix(done: int, total: int, elapsed_s: float) -> str:
    """``' [3/8, elapsed 0:01:30, ETA 0:02:30]'``: the ETA is the mean time per item so far times
    the items left."""
    eta = elapsed_s / done * (total - done) if done else float('nan')

    def hms(t: float) -> str:
        if t != t:  # NaN: nothing done yet
            return '?'
        t = int(round(t))
        return f'{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}'

    return f' [{done}/{total}, elapsed {hms(elapsed_s)}, ETA {hms(eta)}]'


def alternating_runs(
    script: str, configs: Sequence[str], rounds: int, argv: Sequence[str]
) -> Dict[str, List[dict]]:
    """Run every config ``rounds`` times in fresh subprocesses, order A B / B A / A B ...

    Each run prints one line ending in its place, the elapsed time and an ETA (the mean run time
    so far times the runs left), so a long benchmark shows its progress in a readable log."""
    results: Dict[str, List[dict]] = {c: [] for c in configs}
    total, start = rounds * len(configs), time.monotonic()
    for r in range(rounds):
        order = list(configs) if r % 2 == 0 else list(reversed(configs))
        for config in order:
            res = run_worker(script, config, argv)
            line = (
                f'  round {r + 1}/{rounds} {config:>12}: median step '
                f'{statistics.median(res["step_s"]) * 1e3:8.1f} ms'
            )
            if 'step_cpu_s' in res:
                line += f' (CPU time {statistics.median(res["step_cpu_s"]) * 1e3:8.1f} ms)'
            if 'infer_s' in res:
                line += f', inference {statistics.median(res["infer_s"]) * 1e3:8.1f} ms'
            line += f', peak {res["peak_mb"]:8.1f} MB'
            if 'saved_mb' in res:
                line += f', saved for backward {res["saved_mb"]:8.1f} MB'
            results[config].append(res)
            print(
                line + progress_suffix(sum(map(len, results.values())), total, time.monotonic() - start),
                flush=True,
            )
    return results


def begin_driver(args: argparse.Namespace, header: str) -> Tuple[torch.device, Dict[str, object]]:
    """The opening every driver shares: the device, the machine description and a header line
    (``header`` plus where it runs)."""
    device = resolve_device(args.device)
    info = machine_info(device, args.threads)
    print(
        f'{header}, {info["device"]} ({info.get("gpu", info["cpu"])}), threads {info["torch_threads"]}',
        flush=True,
    )
    return device, info


def record_load(info: Dict[str, object]) -> None:
    """Add the load average at the end of the measurements (how busy a shared machine was)."""
    if hasattr(os, 'getloadavg'):
        info['loadavg_end'] = [round(v, 2) for v in os.getloadavg()]


def summarise(runs: List[dict]) -> Dict[str, float]:
    """Medians of the step times over all timed steps of all runs; median of the per-run peaks."""
    steps = [t for run in runs for t in run['step_s']]
    out = dict(
        step_s=statistics.median(steps),
        step_s_min=min(steps),
        step_s_max=max(steps),
        peak_mb=statistics.median(run['peak_mb'] for run in runs),
        peak_total_mb=statistics.median(run['peak_total_mb'] for run in runs),
    )
    if all('step_cpu_s' in run for run in runs):
        out['step_cpu_s'] = statistics.median(t for run in runs for t in run['step_cpu_s'])
    if all('saved_mb' in run for run in runs):
        out['saved_mb'] = statistics.median(run['saved_mb'] for run in runs)
    return out


def per_round_ratios(runs: Dict[str, List[dict]], num: str, den: str, key: str = 'step_s') -> List[float]:
    """``median(num) / median(den)`` of the ``key`` times for each round. The two runs of a round
    are adjacent in time, so their ratio is the drift-robust estimate; report the median over
    rounds and the spread."""
    return [statistics.median(a[key]) / statistics.median(b[key]) for a, b in zip(runs[num], runs[den])]


def machine_info(device: torch.device, threads: Optional[int]) -> Dict[str, object]:
    """What the numbers were measured on."""
    info: Dict[str, object] = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        platform=platform.platform(),
        device=str(device),
        cpu=_cpu_name(),
        cpu_count=os.cpu_count(),
        torch_threads=threads or torch.get_num_threads(),
    )
    if hasattr(os, 'getloadavg'):
        info['loadavg_start'] = [round(v, 2) for v in os.getloadavg()]
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Markdown table on stdout (pastes into docs/benchmarks.md)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: '| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |'  # noqa: E731
    print(fmt(cells[0]))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for r in cells[1:]:
        print(fmt(r))


def write_json(path: Optional[str], payload: dict) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(payload, f, indent=2)
        print(f'wrote {path}')


def count_dense_complexity(model, batch: dict) -> Dict[str, float]:
    """Parameters and FLOPs of one inference forward of an mmdet/mmseg model, whole model and
    backbone (mmengine's ``FlopAnalyzer`` over a ``mode='tensor'`` forward, as the toolboxes'
    ``tools/analysis_tools/get_flops.py`` count; one multiply-add = one FLOP)."""
    from functools import partial

    from mmengine.analysis import FlopAnalyzer

    model.eval()
    data = model.data_preprocessor(batch, False)
    forward = model.forward
    model.forward = partial(forward, data_samples=data['data_samples'], mode='tensor')
    try:
        with torch.no_grad():
            flops = FlopAnalyzer(model, data['inputs'])
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total, backbone = flops.total(), flops.total('backbone')
    finally:
        model.forward = forward
    model.train()
    images = data['inputs'].shape[0]
    return dict(
        params=sum(p.numel() for p in model.parameters()),
        flops_per_image=total / images,
        backbone_flops_per_image=backbone / images,
    )


def measure_dense_model(args: argparse.Namespace, device: torch.device, model, batch: dict) -> None:
    """Worker side of the detector / segmentor cost scripts: train steps (``model.train_step`` with
    AdamW) with their peak memory, inference steps (``model.test_step``), FLOPs unless
    ``args.no_flops``; the result goes to the parent (:func:`emit_result`)."""
    from mmengine.optim import OptimWrapper

    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05))
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    if getattr(args, 'profile', False):  # where a train step's time goes, instead of timing
        print(f'=== {args.worker} ===')
        emit_result(
            dict(
                config=args.worker,
                **profile_step(
                    lambda: model.train_step(batch, optim_wrapper), device, args.warmup, args.steps
                ),
            )
        )
        return

    meter = PeakMemory(device)
    meter.start()
    train = measure_steps(lambda: model.train_step(batch, optim_wrapper), device, args.warmup, args.steps)
    memory = meter.stop()

    model.eval()

    def infer() -> None:
        with torch.no_grad():
            model.test_step(batch)

    test = measure_steps(infer, device, args.warmup, args.steps)
    complexity = count_dense_complexity(model, batch) if not args.no_flops else {}
    synchronize(device)

    model.train()

    def loss() -> torch.Tensor:
        losses = model(**model.data_preprocessor(batch, True), mode='loss')
        return model.parse_losses(losses)[0]

    saved = saved_for_backward_breakdown(loss, model.parameters(), model)
    emit_result(
        dict(
            config=args.worker,
            step_s=train['wall'],
            step_cpu_s=train['cpu'],
            infer_s=test['wall'],
            infer_cpu_s=test['cpu'],
            backbone_params=backbone_params,
            saved_mb=sum(saved['by_kind'].values()),
            saved_by_kind_mb=saved['by_kind'],
            saved_by_source_mb=saved['by_source'],
            **memory,
            **complexity,
        )
    )


def build_dense_model(
    path: str, scope: str, device: torch.device, edit: Optional[Callable] = None, save_counts=None
):
    """An mmdet/mmseg model from its config file (``'mmdet::...'``/``'mmseg::...'`` for a config
    shipped with the toolbox), without any checkpoint (``backbone.init_cfg=None``), with SyncBN
    reverted to BN, in training mode. ``edit(cfg)`` may change the config before the build;
    ``save_counts`` (``False``, ``True``, ``'recompute'``) sets every module's switch."""
    import importlib

    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    import sdt_dense  # noqa: F401  (registers the models; the configs' custom_imports)

    if '::' not in path and not os.path.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    cfg = get_config(path) if '::' in path else Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', scope))
    cfg.model.backbone.init_cfg = None
    if edit is not None:
        edit(cfg)
    model = importlib.import_module(f'{scope}.registry').MODELS.build(cfg.model)
    model.init_weights()
    if save_counts is not None:
        from sdt_dense.models.neurons.saved_counts import set_save_counts

        set_save_counts(model, save_counts)
    return revert_sync_batchnorm(model).to(device).train()

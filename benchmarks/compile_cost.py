"""``torch.compile`` on E-SpikeFormer: graph breaks, compile time and the train-step ratio of the
compiled model against eager mode.

Two parts:

* **graph breaks** (driver, no timing): ``torch._dynamo.explain`` of the backbone in training and
  evaluation mode, with the SFA neuron and with the LIF option, and of the toy Semantic FPN and
  Mask R-CNN ``train_step`` / ``loss`` as mmengine's ``compile=True`` compiles them; the number of
  graphs, of breaks and their reasons;
* **cost** (one fresh subprocess per mode, alternating): the ImageNet classifier's training step
  (forward, cross-entropy, backward, AdamW step) with ``torch.compile(model)`` (inductor, default
  mode) against the same model eager. The first compiled step includes the compilation; it is
  reported as the compile time (first step minus the median steady step), separately from the
  steady-state ratio.

Examples::

    python benchmarks/compile_cost.py --device cpu --threads 1 --arch m --img-size 224 \\
        --batch-size 2 --out benchmarks/results/compile_cost_cpu.json
    python benchmarks/compile_cost.py --explain-only       # graph breaks only (about a minute)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from _common import (
    REPO_ROOT,
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

MODES = ('eager', 'compiled')


def explain(fn: Callable, *args, **kwargs) -> dict:
    """Graphs, graph breaks and the first break reasons of ``fn(*args, **kwargs)`` under dynamo."""
    import torch._dynamo as dynamo

    dynamo.reset()
    try:
        out = dynamo.explain(fn)(*args, **kwargs)
    except Exception as err:  # noqa: BLE001  (reported, not hidden: it is a result)
        return dict(error=f'{type(err).__name__}: {str(err).splitlines()[0][:300]}')
    reasons = []
    for b in out.break_reasons:
        frame = b.user_stack[-1] if b.user_stack else None
        where = f'{os.path.relpath(frame.filename, REPO_ROOT)}:{frame.lineno}' if frame else '?'
        reasons.append(f'{str(b.reason).splitlines()[0][:200]} @ {where}')
    return dict(graphs=out.graph_count, breaks=out.graph_break_count, reasons=sorted(set(reasons)))


def _toy_model_and_batch(config: str):
    """A toy config's model (training mode) and one preprocessed-ready batch from its pipeline."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    import sdt_dense  # noqa: F401
    from sdt_dense.cli.make_toy_data import main as make_toy

    cfg = Config.fromfile(os.path.join(REPO_ROOT, 'configs/toy', config))
    init_default_scope(cfg.default_scope)
    task = 'seg' if cfg.default_scope == 'mmseg' else 'det'
    root = os.path.join(REPO_ROOT, 'work_dirs', 'compile_cost_data', task)
    if not os.path.isdir(root):
        make_toy(['--task', task, '--out', root, '--num-train', '2', '--num-val', '1', '--image-size', '64'])
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.batch_size = 1
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.pop('persistent_workers', None)
    cfg.model.get('backbone', {}).pop('init_cfg', None)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    net = revert_sync_batchnorm(MODELS.build(cfg.model)).train()
    return net, next(iter(loader))


def explain_all(args: argparse.Namespace) -> Dict[str, dict]:
    """Graph-break reports of the backbone and of the toy detector / segmentor."""
    from sdt_dense.models import ESpikeFormer

    torch.manual_seed(args.seed)
    x = torch.randn(1, 3, 64, 64)
    report = {}
    backbone = ESpikeFormer(arch='t')
    report['backbone train (SFA)'] = explain(backbone.train(), x)
    report['backbone eval (SFA)'] = explain(backbone.eval(), x)
    lif = ESpikeFormer(arch='t', neuron_cfg=dict(type='LIF', T=2)).train()
    report['backbone train (LIF T=2)'] = explain(lif, x)
    from sdt_dense.deploy import spike_driven

    with spike_driven(backbone.eval()):
        report['backbone spike-driven'] = explain(backbone, x)
    for name, config in (
        ('Semantic FPN toy', 'fpn_e-spikeformer-t_toy.py'),
        ('Mask R-CNN toy', 'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'),
    ):
        net, batch = _toy_model_and_batch(config)
        data = net.data_preprocessor(batch, True)
        report[f'{name} loss (model forward)'] = explain(
            partial(net.forward, mode='loss'), data['inputs'], data['data_samples']
        )
        report[f'{name} backbone + neck'] = explain(net.extract_feat, data['inputs'])
    return report


def build_step(mode: str, args: argparse.Namespace, device: torch.device):
    from sdt_dense.models import ESpikeFormerClassifier

    model = ESpikeFormerClassifier(args.arch, num_classes=1000).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    forward = torch.compile(model) if mode == 'compiled' else model
    images = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    labels = torch.randint(0, 1000, (args.batch_size,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(images), labels).backward()
        optimizer.step()

    return step


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    step = build_step(args.worker, args, device)
    synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    step()  # compiles in the compiled mode
    synchronize(device)
    first_s, first_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    timed = measure_steps(step, device, args.warmup, args.steps)
    emit_result(
        dict(
            config=args.worker,
            first_step_s=first_s,
            first_step_cpu_s=first_cpu_s,
            step_s=timed['wall'],
            step_cpu_s=timed['cpu'],
            peak_mb=0.0,
        )
    )


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='m')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--explain-only', action='store_true', help='graph breaks only, no timing')
    parser.add_argument('--no-explain', action='store_true', help='timing only, no graph breaks')
    add_common_args(parser)
    parser.set_defaults(warmup=1, steps=3)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    device, info = begin_driver(
        args, f'compile_cost: arch {args.arch}, {args.img_size} px, batch {args.batch_size}'
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    breaks = {} if args.no_explain else explain_all(args)
    if breaks:
        print_table(
            ['what', 'graphs', 'graph breaks', 'reasons'],
            [
                [
                    k,
                    v.get('graphs', '-'),
                    v.get('breaks', '-'),
                    v.get('error') or '; '.join(v['reasons'][:3]) or '-',
                ]
                for k, v in breaks.items()
            ],
        )
    result = dict(
        graph_breaks=breaks,
        machine=info,
        settings=dict(
            arch=args.arch,
            img_size=args.img_size,
            batch_size=args.batch_size,
            warmup=args.warmup,
            steps=args.steps,
            rounds=args.rounds,
        ),
    )
    if not args.explain_only:
        script = os.path.abspath(__file__)
        runs = alternating_runs(
            script, MODES, args.rounds, worker_argv(args, exclude=['explain_only', 'no_explain'])
        )
        record_load(info)
        steady = {m: statistics.median(t for r in runs[m] for t in r['step_s']) for m in MODES}
        steady_cpu = {m: statistics.median(t for r in runs[m] for t in r['step_cpu_s']) for m in MODES}
        compile_s = statistics.median(r['first_step_s'] for r in runs['compiled']) - steady['eager']
        ratio = statistics.median(per_round_ratios(runs, 'eager', 'compiled'))
        ratio_cpu = statistics.median(per_round_ratios(runs, 'eager', 'compiled', 'step_cpu_s'))
        print()
        print_table(
            ['mode', 'first step s', 'steady step ms', 'steady CPU ms'],
            [
                [
                    m,
                    f'{statistics.median(r["first_step_s"] for r in runs[m]):.1f}',
                    f'{steady[m] * 1e3:.0f}',
                    f'{steady_cpu[m] * 1e3:.0f}',
                ]
                for m in MODES
            ],
        )
        print(
            f'compiled speed-up (eager / compiled step time): {ratio:.2f}x wall, '
            f'{ratio_cpu:.2f}x CPU time; compile time about {compile_s:.0f} s'
        )
        result.update(
            steady_step_s=steady,
            steady_step_cpu_s=steady_cpu,
            speedup=ratio,
            speedup_cpu_time=ratio_cpu,
            compile_s=compile_s,
            runs=runs,
        )
    write_json(args.out, result)


if __name__ == '__main__':
    main()

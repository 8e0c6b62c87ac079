#!/usr/bin/env python
"""Accuracy of the toy recipes over training seeds, with the artifact the docs quote.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/toy_accuracy.py [--recipes NAME ...]
        [--seeds 0 1 2] [--work-dir work_dirs/toy_accuracy] [--out-dir benchmarks/results]

Each recipe is trained from scratch with ``tools/train.py`` once per seed (``randomness.seed``; the
toy data set is the same for every seed: ``tools/misc/make_toy_data.py`` with its defaults and
``--seed 0``, written under ``data/`` when missing) and scored with ``tools/test.py``. Recipes:

* ``mask_rcnn``: ``configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py`` (the quickstart: box
  predictors on real values, as published), 3 seeds, with the chance level of the toy val split
  (random boxes of training-set sizes, :mod:`sdt_dense.analysis.chance`);
* ``mask_rcnn_binary_neck``: the checkpoints of ``mask_rcnn`` tested with the published binary
  neck at test time (``model.neck.neuron_cfg.eval_ceiling=1``, docs/differences.md row 1);
* ``mask_rcnn_spiking_predictors``: the same recipe with ``spiking_predictors=True``, 2 seeds;
* ``semantic_fpn``: ``configs/toy/fpn_e-spikeformer-t_toy.py``, 2 seeds;
* ``event_retinanet``: ``configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py`` on the
  test split, 2 seeds, with its chance level (``tools/analysis_tools/event_chance.py``, 5 draws);
* ``large_mae_detector``: ``configs/toy/spike-mae_e-spikeformer-large-toy_toy.py`` pretraining, then
  ``configs/toy/mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py`` initialised from it (the
  documented child config), 2 seeds (the same seed for both stages).

Every recipe writes ``<out-dir>/toy_accuracy_<recipe>_cpu.json`` after each finished seed (so a
partial run keeps what finished): per-seed metrics and wall times, mean and sample standard
deviation (``ddof=1``) of each metric, the commands (paths relative to the repository) and the
machine. A seed whose ``metrics.json`` already exists in the work directory is not run again
(``--rerun`` to force). One torch thread (``OMP_NUM_THREADS=1``) is the fastest on a small shared
CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
TOY = 'configs/toy'
DET_CFG = f'{TOY}/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'
SEG_CFG = f'{TOY}/fpn_e-spikeformer-t_toy.py'
EVENTS_CFG = f'{TOY}/retinanet_e-spikeformer-t_spike-fpn_events_toy.py'
MAE_CFG = f'{TOY}/spike-mae_e-spikeformer-large-toy_toy.py'
LARGE_DET_CFG = f'{TOY}/mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py'

DET_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')
#: recipe -> (config, extra --cfg-options, metric keys, toy data task, default seeds)
RECIPES: Dict[str, dict] = {
    'mask_rcnn': dict(config=DET_CFG, options=[], keys=DET_KEYS, task='det', seeds=(0, 1, 2), chance=True),
    'mask_rcnn_binary_neck': dict(
        config=DET_CFG,
        options=[],
        keys=DET_KEYS,
        task='det',
        seeds=(0, 1, 2),
        test_only_from='mask_rcnn',
        test_options=['model.neck.neuron_cfg.eval_ceiling=1'],
    ),
    'mask_rcnn_spiking_predictors': dict(
        config=DET_CFG,
        options=['model.roi_head.bbox_head.spiking_predictors=True'],
        keys=DET_KEYS,
        task='det',
        seeds=(0, 1),
    ),
    'semantic_fpn': dict(config=SEG_CFG, options=[], keys=('mIoU', 'mAcc', 'aAcc'), task='seg', seeds=(0, 1)),
    'event_retinanet': dict(
        config=EVENTS_CFG,
        options=[],
        keys=('prophesee/mAP', 'prophesee/mAP_50', 'prophesee/mAP_75'),
        task='events',
        seeds=(0, 1),
        chance=True,
    ),
    'large_mae_detector': dict(
        config=LARGE_DET_CFG,
        options=[],
        keys=DET_KEYS,
        task='det',
        seeds=(0, 1),
        pretrain=MAE_CFG,
        chance=True,
    ),
}
#: toy data set of each task: the configs' data roots, written by make_toy_data.py --seed 0
DATA = {'det': 'data/toy_coco', 'seg': 'data/toy_ade', 'events': 'data/toy_events', 'cls': 'data/toy_cls'}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        '--recipes',
        nargs='+',
        choices=sorted(RECIPES),
        default=list(RECIPES),
        help='recipes to run, in this order (default: all)',
    )
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=None,
        help="training seeds (default: each recipe's own, 3 or 2)",
    )
    parser.add_argument(
        '--work-dir',
        default='work_dirs/toy_accuracy',
        help='checkpoints and logs, relative to the repository',
    )
    parser.add_argument(
        '--out-dir',
        default='benchmarks/results',
        help='where toy_accuracy_<recipe>_cpu.json goes, relative to the repository',
    )
    parser.add_argument('--rerun', action='store_true', help='run seeds that already have metrics')
    parser.add_argument(
        '--table', action='store_true', help='run nothing: print the mean +- std of the results in --out-dir'
    )
    return parser.parse_args(argv)


def table(out_dir: Path) -> str:
    """Markdown: one row per recipe result file, ``mean ± std (n seeds)`` per metric."""
    lines = ['| recipe | seeds | metric: mean ± std | chance |', '|---|---|---|---|']
    for path in sorted(out_dir.glob('toy_accuracy_*_cpu.json')):
        res = json.loads(path.read_text())
        cells = [
            f'{k}: {v["mean"]:.3f} ± {v["std"]:.3f}' if v['std'] is not None else f'{k}: {v["mean"]:.3f}'
            for k, v in res['summary'].items()
        ]
        chance = res.get('chance', {})
        chance_cells = [
            f'{k}: {chance[k]:.4f} ± {chance[k + "_std"]:.4f}' for k in chance if f'{k}_std' in chance
        ]
        lines.append(
            f'| {res["recipe"]} | {", ".join(sorted(res["per_seed"]))} | '
            f'{"; ".join(cells)} | {"; ".join(chance_cells) or "—"} |'
        )
    return '\n'.join(lines)


def summarise(per_seed: Dict[int, Dict[str, float]], keys: Sequence[str]) -> Dict[str, dict]:
    """``{key: {mean, std, n}}`` over the seeds that report ``key`` (``std``: sample standard
    deviation, ``None`` for a single seed)."""
    out = {}
    for key in keys:
        values = [float(m[key]) for m in per_seed.values() if key in m]
        if values:
            out[key] = dict(
                mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else None,
                n=len(values),
            )
    return out


def _run(cmd: List[str], log: Path) -> float:
    """Run ``cmd`` in the repository (one torch thread unless set); output to ``log``; seconds."""
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    env.setdefault('OMP_NUM_THREADS', '1')
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed with exit code {proc.returncode}; see {log}')
    return time.time() - t0


def _rel(path: Path) -> str:
    """``path`` relative to the repository (no machine paths in the results)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return Path(path).name


def ensure_data(task: str) -> None:
    """Write the toy data set of ``task`` with make_toy_data.py's defaults and seed 0, unless a
    matching one is there (its manifest)."""
    _run(
        [
            sys.executable,
            'tools/misc/make_toy_data.py',
            '--task',
            task,
            '--out',
            DATA[task],
            '--seed',
            '0',
            '--reuse',
        ],
        REPO / 'work_dirs' / 'toy_accuracy' / f'data_{task}.log',
    )


def _last_checkpoint(work: Path) -> Path:
    return Path((work / 'last_checkpoint').read_text().strip())


def run_seed(name: str, recipe: dict, seed: int, work_root: Path) -> dict:
    """Train (unless test-only) and test one seed; returns its metrics, times and commands."""
    py = sys.executable
    work = work_root / name / f'seed{seed}'
    seed_opt = [f'randomness.seed={seed}']
    commands, times = [], {}
    config = recipe['config']
    if 'pretrain' in recipe:  # stage 1: spike-MAE; stage 2: the detector initialised from it
        ensure_data('cls')
        mae_work = work / 'mae'
        cmd = [
            py,
            'tools/train.py',
            recipe['pretrain'],
            '--work-dir',
            _rel(mae_work),
            '--cfg-options',
            *seed_opt,
        ]
        times['pretrain_s'] = _run(cmd, mae_work / 'train.out')
        commands.append(cmd[1:])
        child = work / 'from_mae.py'
        child.write_text(
            f"_base_ = ['{REPO / config}']\n"
            "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',\n"
            f"                                         checkpoint='{_last_checkpoint(mae_work)}')))\n"
        )
        config = _rel(child)
    if 'test_only_from' in recipe:
        ckpt = _last_checkpoint(work_root / recipe['test_only_from'] / f'seed{seed}')
    else:
        cmd = [
            py,
            'tools/train.py',
            config,
            '--work-dir',
            _rel(work),
            '--cfg-options',
            *seed_opt,
            *recipe['options'],
        ]
        times['train_s'] = _run(cmd, work / 'train.out')
        commands.append(cmd[1:])
        ckpt = _last_checkpoint(work)
    test_work = work / 'test'
    cmd = [py, 'tools/test.py', config, _rel(ckpt), '--work-dir', _rel(test_work)]
    options = recipe['options'] + recipe.get('test_options', [])
    if options:
        cmd += ['--cfg-options', *options]
    times['test_s'] = _run(cmd, test_work / 'test.out')
    commands.append(cmd[1:])
    metrics = json.loads((test_work / 'metrics.json').read_text())
    return dict(
        metrics={k: metrics[k] for k in recipe['keys'] if k in metrics},
        seconds={k: round(v, 1) for k, v in times.items()},
        commands=[' '.join(c) for c in commands],
    )


def chance_level(config: str, work_root: Path) -> dict:
    """Random boxes of training-set sizes, 10 per image, 5 draws, through the recipe's metric:
    ``event_chance.py`` for events, :func:`sdt_dense.analysis.chance.coco_box_chance` for the toy
    COCO val split."""
    if config != EVENTS_CFG:
        sys.path.insert(0, str(REPO))
        from sdt_dense.analysis.chance import coco_box_chance

        root = REPO / DATA['det'] / 'annotations'
        return dict(
            coco_box_chance(root / 'instances_train2017.json', root / 'instances_val2017.json'),
            command='sdt_dense.analysis.chance.coco_box_chance(train, val) on '
            f'{DATA["det"]}, 10 boxes per image, 5 draws',
        )
    out = work_root / 'event_chance.json'
    _run(
        [
            sys.executable,
            'tools/analysis_tools/event_chance.py',
            config,
            '--split',
            'test',
            '--seeds',
            '5',
            '--out',
            _rel(out),
        ],
        work_root / 'event_chance.out',
    )
    return dict(
        json.loads(out.read_text()),
        command=f'tools/analysis_tools/event_chance.py {config} --split test --seeds 5',
    )


def machine() -> dict:
    import torch

    info = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        cpu_count=os.cpu_count(),
        torch_threads=int(os.environ.get('OMP_NUM_THREADS', 1)),
    )
    if hasattr(os, 'getloadavg'):
        info['loadavg'] = [round(v, 2) for v in os.getloadavg()]
    return info


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    work_root, out_dir = REPO / args.work_dir, REPO / args.out_dir
    if args.table:
        print(table(out_dir))
        return
    for name in args.recipes:
        recipe = RECIPES[name]
        ensure_data(recipe['task'])
        seeds = args.seeds if args.seeds is not None else recipe['seeds']
        out = out_dir / f'toy_accuracy_{name}_cpu.json'
        result = json.loads(out.read_text()) if out.is_file() else {}
        per_seed = {int(s): r for s, r in result.get('per_seed', {}).items()}
        if recipe.get('chance') and 'chance' not in result:
            result['chance'] = chance_level(recipe['config'], work_root / name)
        for seed in seeds:
            if seed in per_seed and not args.rerun:
                continue
            print(f'[toy_accuracy] {name} seed {seed}', flush=True)
            done = run_seed(name, recipe, seed, work_root)
            record(out, name, recipe, seed, done, result.get('chance'))
            print(f'[toy_accuracy] {name} seed {seed}: {done["metrics"]}', flush=True)


def record(out: Path, name: str, recipe: dict, seed: int, done: dict, chance: Optional[dict]) -> None:
    """Add one finished seed to ``out`` (re-read under a lock, so that several invocations may run
    seeds of the same recipe side by side) and recompute the summary."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = REPO / 'work_dirs' / 'toy_accuracy' / f'{name}.lock'
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = json.loads(out.read_text()) if out.is_file() else {}
        per_seed = {int(s): r for s, r in result.get('per_seed', {}).items()}
        per_seed[seed] = done
        result.update(
            recipe=name,
            config=recipe['config'],
            cfg_options=recipe['options'] + recipe.get('test_options', []),
            data=f'tools/misc/make_toy_data.py --task {recipe["task"]} --seed 0 (defaults)',
            seed_option='randomness.seed',
            per_seed={str(s): per_seed[s] for s in sorted(per_seed)},
            summary=summarise({s: r['metrics'] for s, r in per_seed.items()}, recipe['keys']),
            machine=machine(),
        )
        if chance is not None:
            result['chance'] = chance
        tmp = out.with_suffix('.tmp')
        tmp.write_text(json.dumps(result, indent=1) + '\n')
        tmp.replace(out)


if __name__ == '__main__':
    main()

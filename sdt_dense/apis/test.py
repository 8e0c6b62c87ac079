# Copyright (c) OpenMMLab and sdt-dense contributors. Adapted from mmdet 3.3.0 / mmseg 1.2.2 tools/test.py.
"""Test (and evaluate) an sdt-dense detector (mmdet) or segmentor (mmseg).

    .venv/bin/python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE|DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]

The metrics are written to ``<work_dir>/metrics.json`` (a flat dict, e.g. ``coco/bbox_mAP`` or
``mIoU``) besides mmengine's own ``<work_dir>/<timestamp>/<timestamp>.json``. The checkpoint is
read with torch's ``weights_only`` safety on (``import sdt_dense`` allow-lists what mmengine
checkpoints contain).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from train import (add_common_args, build_runner, init_scope, load_config,  # noqa: E402
                   setup_cpu_distributed, shutdown_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) an sdt-dense model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet: dump predictions to this .pkl file; mmseg: save the predicted masks '
        'to this directory')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (under work_dir/timestamp/)')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    add_common_args(parser)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg, args, scope):
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError('VisualizationHook must be included in default_hooks, e.g. '
                           "visualization=dict(type='DetVisualizationHook')")
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def to_jsonable(obj):
    """Metrics as plain JSON types (numpy/torch scalars and arrays become floats and lists)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, 'tolist'):  # numpy / torch
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_metrics(metrics, work_dir):
    """Write ``metrics`` to ``<work_dir>/metrics.json`` and return the path."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, 'metrics.json')
    with open(path, 'w') as f:
        json.dump(to_jsonable(metrics), f, indent=2, sort_keys=True)
    return path


def main():
    args = parse_args()
    cfg = load_config(args)
    scope = init_scope(cfg)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)

    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        assert args.out.endswith(('.pkl', '.pickle')), 'The dump file must be a pkl file.'
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))

    from sdt_dense.datasets import empty_dataset_errors
    with empty_dataset_errors():  # the dataset is built here
        metrics = runner.test()

    from mmengine.dist import is_main_process
    if is_main_process():
        path = write_metrics(metrics, cfg.work_dir)
        runner.logger.info(f'metrics written to {path}')
    del runner
    shutdown_distributed()


if __name__ == '__main__':
    main()

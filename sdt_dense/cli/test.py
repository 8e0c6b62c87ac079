"""Test (and evaluate) an sdt-dense detector (mmdet) or segmentor (mmseg) (``tools/test.py``).

    .venv/bin/python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE|DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]

The metrics are written to ``<work_dir>/metrics.json`` (a flat dict, e.g. ``coco/bbox_mAP`` or
``mIoU``) besides mmengine's own ``<work_dir>/<timestamp>/<timestamp>.json``. The checkpoint is
read with torch's ``weights_only`` safety on (``import sdt_dense`` allow-lists what mmengine
checkpoints contain).
"""

import argparse

from ..datasets import empty_dataset_errors
from ..datasets.annotation_check import annotation_errors, check_annotation_files
from ..registry import init_scope
from .launcher import (
    add_common_args,
    build_runner,
    load_config,
    set_local_rank,
    setup_cpu_distributed,
    shutdown_distributed,
    write_metrics,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) an sdt-dense model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet: dump predictions to this .pkl file; mmseg: save the predicted masks to this directory',
    )
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted images will be saved (under work_dir/timestamp/)'
    )
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    add_common_args(parser)
    args = parser.parse_args(argv)
    set_local_rank(args)
    return args


def enable_visualization(cfg, args, scope):
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks, e.g. '
            "visualization=dict(type='DetVisualizationHook')"
        )
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


def atomic_dump_det_results(out_file_path: str):
    """mmdet's ``DumpDetResults`` metric (``--out FILE.pkl``) writing its file atomically: the pickle
    is complete or absent (an older one unchanged), never half-written, e.g. on a full disk."""
    from mmdet.evaluation import DumpDetResults
    from mmengine.fileio import dump
    from mmengine.logging import print_log

    from ..engine.atomic_io import ATOMIC_BACKEND

    class AtomicDumpDetResults(DumpDetResults):
        def compute_metrics(self, results: list) -> dict:
            dump(results, self.out_file_path, backend_args=dict(backend=ATOMIC_BACKEND))
            print_log(f'Results has been saved to {self.out_file_path}.', logger='current')
            return {}

    return AtomicDumpDetResults(out_file_path=out_file_path)


def main(argv=None):
    """Entry point of ``tools/test.py``."""
    args = parse_args(argv)
    cfg = load_config(args)
    scope = init_scope(cfg)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    check_annotation_files(cfg)  # a broken annotation file is named before anything is built
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)

    if args.out is not None and scope == 'mmdet':
        assert args.out.endswith(('.pkl', '.pickle')), 'The dump file must be a pkl file.'
        runner.test_evaluator.metrics.append(atomic_dump_det_results(args.out))

    with empty_dataset_errors(), annotation_errors():  # the dataset is built here
        metrics = runner.test()

    from mmengine.dist import is_main_process

    if is_main_process():
        path = write_metrics(metrics, cfg.work_dir)
        runner.logger.info(f'metrics written to {path}')
    del runner
    shutdown_distributed()

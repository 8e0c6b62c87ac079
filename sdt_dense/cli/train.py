"""Train a detector (mmdet) or a segmentor (mmseg) with sdt-dense models (``tools/train.py``).

The toolbox is chosen by the config's ``default_scope`` ('mmdet' or 'mmseg').

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_train.sh CONFIG GPUS [same options]

Without GPUs, ``--launcher pytorch`` runs on CPU processes over the gloo backend.
"""

import argparse

from ..datasets import check_not_empty, empty_dataset_errors
from ..datasets.annotation_check import annotation_errors, check_annotation_files
from ..registry import init_scope
from .launcher import (
    add_common_args,
    build_runner,
    load_config,
    set_local_rank,
    setup_cpu_distributed,
    shutdown_distributed,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an sdt-dense detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.',
    )
    parser.add_argument(
        '--amp', action='store_true', default=False, help='enable automatic-mixed-precision training (GPU)'
    )
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    add_common_args(parser)
    args = parser.parse_args(argv)
    set_local_rank(args)
    return args


def build_train_dataloader_early(runner) -> None:
    """Build the runner's train dataloader now, as its train loop would, and raise
    :class:`~sdt_dense.datasets.EmptyDatasetError` if the dataset has no samples.

    mmengine's ``IterBasedTrainLoop`` creates the dataloader iterator in its constructor; with
    ``num_workers > 0`` that prefetches batches at once, and an ``InfiniteSampler`` over zero samples
    loops forever without yielding, before any hook (``NonEmptyDatasetHook``) can run. The loop then
    receives the built dataloader (mmengine accepts a ``DataLoader`` in place of its config), so the
    dataset is built once, with the seed the loop would have used.
    """
    loader = getattr(runner, '_train_dataloader', None)
    if loader is None or not isinstance(getattr(runner, '_train_loop', None), dict):
        return  # nothing to train, or the loop is already built
    if isinstance(loader, dict):
        diff_rank_seed = getattr(runner, '_randomness_cfg', {}).get('diff_rank_seed', False)
        loader = runner.build_dataloader(loader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        runner._train_dataloader = loader
    check_not_empty(loader.dataset, 'train')


def main(argv=None):
    """Entry point of ``tools/train.py``."""
    args = parse_args(argv)
    cfg = load_config(args)
    init_scope(cfg)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if (
            'auto_scale_lr' in cfg
            and 'enable' in cfg.auto_scale_lr
            and 'base_batch_size' in cfg.auto_scale_lr
        ):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError(
                'Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                '"auto_scale_lr.base_batch_size" in your configuration file.'
            )

    # resume from a given checkpoint > auto-resume from the latest one in work_dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    check_annotation_files(cfg)  # a broken annotation file is named before anything is built
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    with empty_dataset_errors(), annotation_errors():  # the datasets are built here
        build_train_dataloader_early(runner)
        runner.train()
    del runner
    shutdown_distributed()

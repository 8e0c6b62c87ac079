"""A non-serialised empty dataset with an ``InfiniteSampler`` and ``num_workers > 0``: mmengine's
``IterBasedTrainLoop`` would prefetch from the sampler in its constructor and loop forever (before
any hook runs); ``tools/train.py`` builds the train dataloader first and stops with
``EmptyDatasetError``."""

import subprocess

import pytest
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from sdt_dense.cli.train import build_train_dataloader_early
from sdt_dense.datasets import EmptyDatasetError
from sdt_testing import REPO, run_tool
from sdt_testing.toy_runner import read_losses, toy_runner_cfg

SEG_CFG = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'


def _infinite_cfg(work_dir, n):
    cfg = toy_runner_cfg(str(work_dir), max_iters=2)
    # num_workers > 0 with an InfiniteSampler: the combination that hangs on an empty dataset
    cfg['train_dataloader'].update(
        num_workers=1, persistent_workers=False, sampler=dict(type='InfiniteSampler', shuffle=False)
    )
    cfg['train_dataloader']['dataset']['n'] = n
    return cfg


def test_empty_infinite_sampler_dataset_is_named_before_the_loop_is_built(tmp_path):
    runner = Runner.from_cfg(_infinite_cfg(tmp_path, n=0))
    with pytest.raises(EmptyDatasetError, match=r'the train dataset has no samples: RelToyDataset'):
        build_train_dataloader_early(runner)
    assert isinstance(runner._train_loop, dict)  # mmengine's loop (the hanging part) never built


@pytest.mark.slow
def test_the_early_dataloader_is_the_one_the_loop_trains_on(tmp_path):
    """A non-empty dataset: the loop receives the early-built dataloader and trains with the same
    losses as a plain ``runner.train()`` (same seed, sampler and worker seeding)."""
    plain, early = tmp_path / 'plain', tmp_path / 'early'
    Runner.from_cfg(_infinite_cfg(plain, n=8)).train()
    runner = Runner.from_cfg(_infinite_cfg(early, n=8))
    build_train_dataloader_early(runner)
    loader = runner._train_dataloader
    assert isinstance(loader, DataLoader) and len(loader.dataset) == 8
    runner.train()
    assert runner.train_dataloader is loader
    assert read_losses(early) == read_losses(plain) and sorted(read_losses(plain)) == [1, 2]


@pytest.mark.slow
def test_tools_train_does_not_hang_on_an_empty_non_serialised_dataset(tmp_path):
    root = tmp_path / 'empty_ade'
    for sub in ('images/training', 'annotations/training'):
        (root / sub).mkdir(parents=True)
    args = [
        'train.py',
        SEG_CFG,
        '--work-dir',
        tmp_path / 'work',
        '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.dataset.serialize_data=False',
        'train_dataloader.num_workers=2',
        'val_dataloader=None',
        'val_cfg=None',
        'val_evaluator=None',
    ]
    try:
        proc = run_tool(args, timeout=60)  # without the early check: no exit at all
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
        pytest.fail('tools/train.py hung on an empty dataset with InfiniteSampler and workers')
    assert proc.returncode != 0
    assert 'EmptyDatasetError: the train dataset has no samples: BaseSegDataset(' in proc.stderr
    assert f"'img_path': '{root}/images/training'" in proc.stderr
    assert not list((tmp_path / 'work').rglob('*.pth'))

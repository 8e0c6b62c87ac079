"""A toy mmengine runner set-up for fast in-process engine tests.

* A toy mmengine model and dataset (a few parameters, draws from every global RNG) for fast
  in-process Runner tests.
* ``RecordLossHook`` (per-iteration raw losses to ``<work_dir>/losses.jsonl``) and
  ``HangForKillHook`` (blocks before an iteration so a test can SIGKILL the job at a known point);
  subprocess runs of ``tools/train.py`` import this module through ``custom_imports``.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import random
import time
import uuid
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, MODELS
from torch import nn
from torch.utils.data import Dataset

#: how subprocesses import this module (``custom_imports``; ``tool_env`` puts its root on the path)
HELPERS_MODULE = __name__


# ------------------------------------------------------------------------------------------------
# Toy model and data for in-process Runner tests


@DATASETS.register_module(force=True)
class RelToyDataset(Dataset):
    """``n`` samples ``(inputs (4,), target ())``; the augmentation draws from numpy's and Python's
    global generators (as mmcv transforms do). ``bad={index: value}`` puts ``value`` (NaN, Inf)
    into the inputs of those samples."""

    def __init__(self, n: int = 8, bad: Optional[Dict[int, float]] = None) -> None:
        self.n, self.bad = n, {int(k): float(v) for k, v in (bad or {}).items()}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        jitter = np.random.rand() + random.random()
        x = torch.linspace(-1, 1, 4) * (i + 1) / self.n + jitter
        if i in self.bad:
            x = torch.full((4,), self.bad[i])
        return dict(inputs=x, target=torch.tensor(float(i % 3)))


@MODELS.register_module(force=True)
class RelToyModel(BaseModel):
    """Linear regression with dropout and noise drawn from torch's generator."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 1)
        self.bn = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs: torch.Tensor, target: torch.Tensor, mode: str = 'loss'):
        y = self.fc(self.drop(self.bn(inputs))).squeeze(-1) + 0.01 * torch.randn(())
        loss = ((y - target) ** 2).mean()
        if mode == 'loss':
            return dict(loss=loss)
        return [dict(pred=y)]


def toy_runner_cfg(
    work_dir: str,
    max_iters: int = 6,
    interval: int = 2,
    hooks: Sequence = (),
    resume: bool = False,
    load_from: Optional[str] = None,
    bad=None,
    checkpoint_type: str = 'AtomicCheckpointHook',
    by_epoch: bool = False,
    max_epochs: int = 2,
) -> dict:
    """Config dict of an mmengine Runner on the toy model (batch 2, SGD with momentum)."""
    if by_epoch:
        train_cfg = dict(by_epoch=True, max_epochs=max_epochs)
    else:
        train_cfg = dict(by_epoch=False, max_iters=max_iters)
    return dict(
        model=dict(type='RelToyModel'),
        work_dir=work_dir,
        experiment_name=f'rel_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=dict(type='RelToyDataset', n=8, bad=bad),
            sampler=dict(type='DefaultSampler', shuffle=bad is None),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate'),
        ),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type=checkpoint_type, by_epoch=by_epoch, interval=interval),
            logger=dict(type='LoggerHook', interval=1),
        ),
        custom_hooks=[dict(type='RecordLossHook')] + list(hooks),
        randomness=dict(seed=0, deterministic=True),
        resume=resume,
        load_from=load_from,
        log_level='WARNING',
        default_scope='mmengine',
    )


# ------------------------------------------------------------------------------------------------
# Instrumentation hooks (also used by tools/train.py subprocesses via custom_imports)


@HOOKS.register_module(force=True)
class RecordLossHook(Hook):
    """Append ``{"iter": k, "losses": {...}}`` (raw, unsmoothed values of this process) for every
    iteration to ``<work_dir>/losses.jsonl`` (rank r > 0: ``losses.rank<r>.jsonl``)."""

    priority = 'HIGHEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        values = {
            k: float(v.detach().float().mean()) if torch.is_tensor(v) else float(v)
            for k, v in (outputs or {}).items()
        }
        with open(osp.join(runner.work_dir, _losses_file(runner.rank)), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, losses=values)) + '\n')


@HOOKS.register_module(force=True)
class RecordParamsHook(Hook):
    """Save this process's model parameters and buffers (unwrapped from DDP) before the first
    iteration (``params_init.rank<r>.pt``) and after the last (``params.rank<r>.pt``) in the work
    dir, so a test can compare the ranks and the model before and after training."""

    priority = 'LOWEST'

    @staticmethod
    def _save(runner, name: str) -> None:
        model = getattr(runner.model, 'module', runner.model)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'{name}.rank{runner.rank}.pt'))

    def before_train(self, runner) -> None:
        self._save(runner, 'params_init')

    def after_train(self, runner) -> None:
        self._save(runner, 'params')


@HOOKS.register_module(force=True)
class HangForKillHook(Hook):
    """If ``SDT_TEST_HANG_AT_ITER=k`` is set, block (without touching any RNG) at the start of
    iteration ``k`` and create ``<work_dir>/hanging``, so that a test kills the job in a known
    state."""

    priority = 'LOWEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        hang_at = os.environ.get('SDT_TEST_HANG_AT_ITER')
        if hang_at is not None and runner.iter + 1 == int(hang_at):
            Path(runner.work_dir, 'hanging').touch()
            while True:
                time.sleep(1)


def _losses_file(rank: int) -> str:
    return 'losses.jsonl' if rank == 0 else f'losses.rank{rank}.jsonl'


def read_losses(work_dir, rank: int = 0) -> Dict[int, Dict[str, float]]:
    """``{iteration: {name: value}}`` recorded by ``RecordLossHook`` on ``rank`` (a later line for
    the same iteration wins, i.e. the resumed run)."""
    out = {}
    for line in Path(work_dir, _losses_file(rank)).read_text().splitlines():
        rec = json.loads(line)
        out[rec['iter']] = rec['losses']
    return out

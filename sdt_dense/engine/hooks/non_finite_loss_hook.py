"""Stop training at the first NaN or Inf loss, naming the iteration."""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else 0.0
    return float(value)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` at the first iteration whose loss is NaN or infinite.

    Checks every loss term the model returns (``train_step`` outputs) after each ``interval``-th
    iteration. It runs before every other ``after_train_iter`` hook, so the checkpoint hook never
    writes the corrupted weights: the last checkpoint is the last good state, and the error names
    it. Under distributed training the check is reduced over ranks, so all ranks stop together
    (none is left waiting in a collective).

    Args:
        interval: check every ``interval`` iterations (1: every iteration, recommended; the check
            costs one scalar all-reduce under distributed training).
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got {interval!r}')
        self.interval = interval

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs: Optional[Dict] = None
    ) -> None:
        if not self.every_n_train_iters(runner, self.interval) or not outputs:
            return
        values = {
            k: _as_float(v)
            for k, v in outputs.items()
            if isinstance(v, (torch.Tensor, float, int)) and 'loss' in k
        }
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if get_world_size() > 1:
            flag = torch.tensor([float(bool(bad))])
            all_reduce(flag, op='max')
            if flag.item() == 0:
                return
        elif not bad:
            return
        iteration = runner.iter + 1  # 1-based, as in the training log ("Iter(train) [k/N]")
        where = f'iteration {iteration}'
        if not hasattr(runner.train_loop, 'dataloader_iterator'):  # epoch-based loop
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        terms = ', '.join(f'{k}={v}' for k, v in values.items())
        if not bad:
            detail = f'another rank saw a non-finite loss (rank {get_rank()} losses: {terms})'
        else:
            detail = f'non-finite terms: {sorted(bad)}; losses: {terms}'
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'training stopped: non-finite loss at {where}; {detail}. Nothing from this iteration '
            f'was saved; the last checkpoint is {last or "none (none written yet)"}. Lower the '
            'learning rate, enable gradient clipping (optim_wrapper.clip_grad) or check the data.'
        )

"""Strict checkpoint loading for ``load_from``, ``--resume`` and ``tools/test.py CONFIG CKPT``."""

from __future__ import annotations

import re
from typing import Dict, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import Tensor

from ...checkpoint import CheckpointMismatchError, match_state_dict


@HOOKS.register_module()
class StrictLoadHook(Hook):
    """Refuse a checkpoint that does not match the model, with a table of every offending tensor.

    mmengine's runner loads weights with ``strict=False``: missing tensors keep their initial
    values and mis-shaped ones are skipped, with a log warning only, so a wrong checkpoint yields a
    silently untrained model. This hook checks the checkpoint before the runner loads it and raises
    :class:`~sdt_dense.models.CheckpointMismatchError` listing missing, unexpected and mis-shaped
    tensors.

    Args:
        ignore_keys: regexes (``re.search``) of tensor names that may be missing, unexpected or of
            another shape, e.g. ``[r'^roi_head\\.bbox_head\\.fc_(cls|reg)\\.']`` to fine-tune a
            detector on another number of classes. Such tensors keep their initial values.
        revise_keys: ``(pattern, replacement)`` applied to checkpoint names first, as the runner
            does (default: strip a DDP ``module.`` prefix).
    """

    priority = 'VERY_HIGH'

    def __init__(
        self, ignore_keys: Sequence[str] = (), revise_keys: Sequence[Sequence[str]] = ((r'^module\.', ''),)
    ) -> None:
        self.ignore_keys = list(ignore_keys)
        for pattern in self.ignore_keys:
            re.compile(pattern)  # a bad regex fails when the config is built, not at load time
        self.revise_keys = [tuple(p) for p in revise_keys]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state_dict: Dict[str, Tensor] = checkpoint.get('state_dict', checkpoint)
        if not isinstance(state_dict, dict):
            raise CheckpointMismatchError('checkpoint holds no state_dict')
        for pattern, repl in self.revise_keys:
            state_dict = {re.sub(pattern, repl, k): v for k, v in state_dict.items()}
        own = model.state_dict()
        # Mis-shaped tensors that may differ are dropped here, so they count as (ignorable) missing.
        state_dict = {
            k: v
            for k, v in state_dict.items()
            if not (
                k in own
                and tuple(own[k].shape) != tuple(v.shape)
                and any(re.search(p, k) for p in self.ignore_keys)
            )
        }
        try:
            match_state_dict(model, state_dict, self.ignore_keys, self.ignore_keys)
        except CheckpointMismatchError as err:
            raise CheckpointMismatchError(
                f'{err}\nNothing was loaded. If these differences are intended (e.g. fine-tuning '
                'on other classes), list them in custom_hooks: '
                "dict(type='StrictLoadHook', ignore_keys=[<regex>, ...])."
            ) from None

"""Strict key matching of a state dict against a model, with one error that lists every problem."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from torch import Tensor, nn


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not match the model (missing, unexpected or mis-shaped tensors)."""


def _mismatch_table(rows: List[Tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f'  {"key".ljust(width)}  {"problem":<12}  detail']
    lines += [f'  {k.ljust(width)}  {p:<12}  {d}' for k, p, d in rows]
    return '\n'.join(lines)


def summarise_keys(keys: List[str], limit: int = 6) -> str:
    """``'a, b, c, ... (+n)'``: a short list of keys for log messages."""
    return ', '.join(keys[:limit]) + (f', ... (+{len(keys) - limit})' if len(keys) > limit else '')


def match_state_dict(
    model: nn.Module,
    state_dict: Dict[str, Tensor],
    ignorable_missing: Sequence[str] = (),
    ignorable_unexpected: Sequence[str] = (),
) -> Dict[str, Tensor]:
    """Check ``state_dict`` against ``model`` strictly and return it ready for ``load_state_dict``.

    Every model tensor must be present with the right shape, except keys matching one of the
    ``ignorable_missing`` regexes (reported, keep their init). Unexpected keys are an error unless
    they match ``ignorable_unexpected`` (reported and skipped).

    Raises:
        CheckpointMismatchError: with a table of every offending key.
    """
    own = model.state_dict()
    rows, skipped, kept_init = [], [], []
    for key, tensor in own.items():
        if key not in state_dict:
            if any(re.search(p, key) for p in ignorable_missing):
                kept_init.append(key)
            else:
                rows.append((key, 'missing', f'expected shape {tuple(tensor.shape)}'))
        elif tuple(state_dict[key].shape) != tuple(tensor.shape):
            rows.append(
                (key, 'shape', f'checkpoint {tuple(state_dict[key].shape)} vs model {tuple(tensor.shape)}')
            )
    for key in state_dict:
        if key not in own:
            if any(re.search(p, key) for p in ignorable_unexpected):
                skipped.append(key)
            else:
                rows.append((key, 'unexpected', 'not a tensor of this model'))
    if rows:
        raise CheckpointMismatchError(
            f'checkpoint does not match {type(model).__name__} ({len(rows)} problems):\n'
            + _mismatch_table(rows)
        )
    if skipped:
        print_log(
            f'checkpoint: skipped {len(skipped)} tensors not used by '
            f'{type(model).__name__}: {summarise_keys(skipped)}',
            logger='current',
        )
    if kept_init:
        print_log(
            f'checkpoint: {len(kept_init)} tensors not in the checkpoint keep their '
            f'initial values: {summarise_keys(kept_init)}',
            logger='current',
        )
    return {k: v for k, v in state_dict.items() if k in own}


def select_prefix(
    state_dict: Dict[str, Tensor], prefix: Optional[str], source: str = 'checkpoint'
) -> Dict[str, Tensor]:
    """The tensors under ``prefix`` with the prefix removed (``prefix=None``: ``'backbone.'`` when
    the checkpoint is a whole detector/segmentor/classifier, else everything).

    Raises:
        CheckpointMismatchError: no key starts with an explicitly requested ``prefix``.
    """
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    if not prefix:
        return dict(state_dict)
    selected = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not selected:
        raise CheckpointMismatchError(f'no tensor in {source} starts with {prefix!r}')
    others = [k for k in state_dict if not k.startswith(prefix)]
    if others:
        print_log(
            f'checkpoint: skipped {len(others)} tensors outside {prefix!r}: {summarise_keys(others)}',
            logger='current',
        )
    return selected

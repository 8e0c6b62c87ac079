"""Loading weights into a model: strict, safe, and aware of the released layouts."""

from __future__ import annotations

import io
import os
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .matching import match_state_dict, select_prefix
from .released import ReleasedFormat
from .released_mae import pretraining_format
from .safe_load import extract_state_dict, safe_load


def load_pretrained(
    model: nn.Module, path: str, prefix: Optional[str] = None, released: Optional[ReleasedFormat] = None
) -> None:
    """Strictly load a released classification checkpoint, or an mmengine checkpoint of one of our
    detectors/segmentors/classifiers (its ``prefix``, ``'backbone.'`` by default), into ``model``.

    A spike-MAE pretraining checkpoint (published, or of our ``SpikeMAE``) loads its encoder:
    see :mod:`sdt_dense.checkpoint.released_mae`.

    Loading is safe (weights-only unpickling with an allow-list). For a released file
    (``released``, default ``model.released_format``), classifier-only tensors are skipped and the
    tensors that format lacks keep their initial value; any other missing, unexpected or mis-shaped
    tensor raises :class:`~sdt_dense.checkpoint.CheckpointMismatchError` with a table.
    """
    state_dict = extract_state_dict(safe_load(path))
    # A pretraining checkpoint (spike-MAE) names its own layout, whatever the model.
    released = released or pretraining_format(state_dict) or getattr(model, 'released_format', None)
    is_released = released is not None and released.detect(state_dict)
    if is_released:
        state_dict = released.convert(state_dict)
        missing_ok, unexpected_ok = released.missing_ok, released.classifier_keys
    else:
        state_dict = select_prefix(state_dict, prefix, path)
        missing_ok, unexpected_ok = (), ()
    state_dict = match_state_dict(model, state_dict, missing_ok, unexpected_ok)
    model.load_state_dict(state_dict, strict=not missing_ok)
    print_log(
        f'loaded {released.name + " released" if is_released else "sdt-dense"} checkpoint '
        f'{path} into {type(model).__name__}',
        logger='current',
    )


def save_weights(state_dict: Dict[str, Tensor], path: str) -> None:
    """Write ``{'state_dict': state_dict}`` atomically: ``path`` is either complete or untouched."""
    from ..engine.atomic_io import atomic_write  # engine imports this package

    buffer = io.BytesIO()
    torch.save({'state_dict': state_dict}, buffer)
    atomic_write(buffer.getvalue(), os.fspath(path))


def pretrained_to_init_cfg(pretrained: Optional[str], init_cfg: Optional[dict]) -> Optional[dict]:
    """The deprecated ``pretrained=PATH`` backbone argument (mmseg's ``EncoderDecoder`` passes its
    ``model.pretrained`` this way) as ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``.

    Loading stays strict. Raises ``ValueError`` when both are given, ``TypeError`` for a
    ``pretrained`` that is not a path.
    """
    if pretrained is None:
        return init_cfg
    if init_cfg is not None:
        raise ValueError(
            'init_cfg and pretrained cannot be set at the same time; use '
            'init_cfg=dict(type="Pretrained", checkpoint=...)'
        )
    if not isinstance(pretrained, (str, os.PathLike)):
        raise TypeError(f'pretrained must be a checkpoint path, got {type(pretrained).__name__}')
    print_log(
        'DeprecationWarning: pretrained is deprecated, please use "init_cfg" instead',
        logger='current',
        level=30,
    )
    return dict(type='Pretrained', checkpoint=os.fspath(pretrained))

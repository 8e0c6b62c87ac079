"""Helpers of the inferencer and demo tests: a real photograph and a checkpoint of a built model."""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from . import randomise_bn

#: a real photograph shipped with matplotlib, 600 x 512 (H x W; 600 is no multiple of 32)
PHOTO = matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)


def save_random_checkpoint(cfg: Config, path: Path, with_meta: bool = True) -> Path:
    """Save the weights of ``cfg.model`` as built (seed 0, BN statistics randomised so that every
    spike count occurs) the way the runner does: ``state_dict`` and ``meta.dataset_meta`` (classes
    and palette of ``cfg.metainfo``; left out with ``with_meta=False``)."""
    from sdt_dense.apis.inference import config_task  # registers mmdet/mmseg and sdt-dense

    scope = 'mmdet' if config_task(cfg) == 'det' else 'mmseg'
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        model = randomise_bn(MODELS.build(cfg.model))
    meta = dict(classes=list(cfg.metainfo['classes']), palette=[list(p) for p in cfg.metainfo['palette']])
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta) if with_meta else {}), path)
    return Path(path)

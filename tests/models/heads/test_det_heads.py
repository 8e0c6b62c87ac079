"""Spiking detection heads built through mmdet's registry: the mask head's upsampling and the box
head's published (real-valued) predictors."""

from __future__ import annotations

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.models.layers import SpikingLayer

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def test_mask_head_rejects_carafe():
    with pytest.raises(ValueError, match='carafe'):
        MODELS.build(dict(type='SpikeFCNMaskHead', upsample_cfg=dict(type='carafe', scale_factor=2)))


def test_bbox_head_published_predictors_option():
    head = MODELS.build(
        dict(
            type='SpikeShared2FCBBoxHead',
            in_channels=8,
            fc_out_channels=16,
            roi_feat_size=7,
            num_classes=3,
            spiking_predictors=False,
        )
    )
    assert isinstance(head.fc_cls, nn.Linear) and isinstance(head.fc_reg, nn.Linear)
    assert all(isinstance(fc, SpikingLayer) for fc in head.shared_fcs)
    cls, reg = head(torch.randn(5, 8, 7, 7))
    assert cls.shape == (5, 4) and reg.shape == (5, 12)

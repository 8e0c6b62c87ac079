"""Small segmentation necks and heads and feature pyramids for their tests."""

from __future__ import annotations

import math

import torch

from sdt_dense.models.heads import SpikeFPNHead
from sdt_dense.models.necks import SpikeSemanticFPN


def sfa(x: torch.Tensor, D: int = 4) -> torch.Tensor:
    """Independent SFA reference: round-half-even(clamp(x, 0, D)) / D."""
    return torch.round(torch.clamp(x, 0, D)) / D


def make_neck(in_channels=(8, 16, 24, 40), out_channels=16, **kwargs) -> SpikeSemanticFPN:
    kwargs.setdefault('norm_cfg', dict(type='BN'))
    return SpikeSemanticFPN(list(in_channels), out_channels, len(in_channels), **kwargs)


def make_head(in_channels=(16, 16, 16, 16), channels=16, strides=(2, 4, 8, 16), **kwargs) -> SpikeFPNHead:
    kwargs.setdefault('num_classes', 5)
    kwargs.setdefault('norm_cfg', dict(type='BN'))
    return SpikeFPNHead(
        list(strides), in_channels=list(in_channels), in_index=[0, 1, 2, 3], channels=channels, **kwargs
    )


def pyramid(channels=(8, 16, 24, 40), strides=(2, 4, 8, 16), size=32, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        2 * torch.randn(batch, c, math.ceil(size / s), math.ceil(size / s), generator=g)
        for c, s in zip(channels, strides)
    ]

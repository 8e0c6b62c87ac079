"""Helpers shared by several test modules (imported as ``from sdt_test_utils import ...``)."""
import torch
from torch import nn


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """BN statistics/affine drawn so that every spike count 0..4 occurs (PyTorch's default init
    gives almost only zeros and ones) and BN folding is non-trivial."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 2.5 + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2)
    return model

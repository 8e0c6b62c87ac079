"""BatchNorm folding: the deployment form of a spiking network.

In eval mode a BatchNorm after a conv / linear layer is an affine map per output channel,
``y = (z - mean) * g + beta`` with ``g = gamma / sqrt(var + eps)``, so it folds into the layer:
``W' = g * W`` (per output channel), ``b' = (b - mean) * g + beta``. The BN becomes ``nn.Identity``
and the layer gets a bias. Folded models compute the same outputs (within float rounding), and in
spike-driven mode (:mod:`sdt_dense.deploy.spike_driven`) the folded BN shift is part of the bias,
which is applied once per output, not once per binary slice.

Pairs that are folded (the BN must directly follow the layer in the forward pass):

* :class:`~sdt_dense.models.layers.SpikeConvBN` units (``.conv`` -> ``.bn``);
* mmcv ``ConvModule`` s whose ``order`` puts the norm right after the conv;
* consecutive ``(Conv | Linear, BatchNorm)`` children of an ``nn.Sequential``.
"""

from __future__ import annotations

import copy
from typing import Iterator, Optional, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.layers import SpikeConvBN

__all__ = ['fold_bn', 'fold_bn_into', 'BNFoldError']

_FOLDABLE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class BNFoldError(RuntimeError):
    """A BatchNorm cannot be folded (training mode, no running statistics, channel mismatch)."""


@torch.no_grad()
def fold_bn_into(layer: nn.Module, bn: _BatchNorm, name: str = '') -> None:
    """Fold ``bn`` (eval-mode statistics) into ``layer`` in place: scale its weight per output
    channel and set its bias (created if missing).

    Raises:
        BNFoldError: if ``bn`` has no running statistics or its width is not ``layer``'s output
            width.
    """
    where = f' ({name})' if name else ''
    if bn.running_mean is None or bn.running_var is None:
        raise BNFoldError(
            f'{type(bn).__name__}{where} has no running statistics '
            f'(track_running_stats=False) and cannot be folded'
        )
    out_channels = layer.weight.shape[0]
    if bn.num_features != out_channels:
        raise BNFoldError(
            f'{type(bn).__name__}{where} has {bn.num_features} features but '
            f'{type(layer).__name__} has {out_channels} output channels'
        )
    # work in float64 so that folding adds no error of its own
    scale = (bn.running_var.double() + bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    if layer.bias is not None:
        shift = shift + layer.bias.double() * scale
    weight = layer.weight.double() * scale.view(-1, *([1] * (layer.weight.dim() - 1)))
    layer.weight.copy_(weight.to(layer.weight.dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(shift.to(layer.weight.dtype), requires_grad=layer.weight.requires_grad)
    else:
        layer.bias.copy_(shift.to(layer.bias.dtype))


def _conv_module_pair(module: nn.Module) -> Optional[Tuple[nn.Module, str]]:
    """``(conv, norm attribute name)`` of an mmcv ConvModule whose norm follows its conv."""
    order = tuple(getattr(module, 'order', ()))
    if not getattr(module, 'with_norm', False) or 'conv' not in order or 'norm' not in order:
        return None
    if order.index('norm') != order.index('conv') + 1:
        return None
    return module.conv, module.norm_name


def _foldable_pairs(model: nn.Module) -> Iterator[Tuple[str, nn.Module, nn.Module, str]]:
    """Yield ``(name, parent, layer, bn attribute name)`` for each foldable pair."""
    for name, module in model.named_modules():
        if isinstance(module, SpikeConvBN):
            yield name, module, module.conv, 'bn'
        elif isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (_, a), (b_name, b) in zip(children, children[1:]):
                if isinstance(a, _FOLDABLE_LAYERS) and isinstance(b, _BatchNorm):
                    yield name, module, a, b_name
        else:
            pair = _conv_module_pair(module)
            if pair is not None:
                yield name, module, pair[0], pair[1]


def fold_bn(model: nn.Module, inplace: bool = True) -> nn.Module:
    """Fold every BatchNorm (1d/2d/3d, SyncBN) that directly follows a conv / linear layer into it
    and replace the BN with ``nn.Identity``.

    Args:
        model: a model in eval mode (folding uses the running statistics; a BN in training mode
            would normalise with batch statistics, which no fixed weight can reproduce).
        inplace: modify ``model`` (default) or fold a deep copy.

    Returns:
        The folded model. In eval mode (integer or spike-driven) it computes the same outputs as
        the original within float rounding; its state dict no longer has BN entries and the folded
        layers gain ``bias`` entries.

    Raises:
        BNFoldError: if a BN to be folded is in training mode or has no running statistics.
    """
    if not inplace:
        model = copy.deepcopy(model)
    pairs = []
    for name, parent, layer, bn_attr in _foldable_pairs(model):
        bn = getattr(parent, bn_attr)
        if not isinstance(bn, _BatchNorm) or not isinstance(layer, _FOLDABLE_LAYERS):
            continue  # no norm, or already folded
        full = f'{name}.{bn_attr}' if name else bn_attr
        if bn.training:
            raise BNFoldError(f'{full} is in training mode; call model.eval() before fold_bn')
        pairs.append((full, parent, layer, bn_attr, bn))
    for full, parent, layer, bn_attr, bn in pairs:
        fold_bn_into(layer, bn, full)
        setattr(parent, bn_attr, nn.Identity())
    return model

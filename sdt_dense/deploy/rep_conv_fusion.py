"""RepConv re-parameterisation: the inference form of the Large family's two-map token convs.

:class:`~sdt_dense.models.layers.RepConv` trains two stacked pointwise maps with no neuron between
them, ``BN2(W2 BN1(W1 s))`` (``s``: the spikes of its input neuron). In eval mode the whole stack
is one affine map ``W s + b`` with ``W = diag(g2) W2 diag(g1) W1`` (``g``: the BN scales), so it
becomes a single 1x1 conv with bias, fed by the spikes directly.

Why it matters for spike-driven inference and energy: unfused, the second conv reads the first
BN's real-valued output, so it is a multiply-accumulate layer (the energy tool charges it as MACs)
and it is not spike-driven; fused, every RepConv is one accumulate-only synaptic layer. The
published Large family (q, k, v and projection maps of every attention, and the 83M model's
token branch) is built of these, so the fused form is the one its energy should describe.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.layers import RepConv
from .bn_fold import BNFoldError, fold_bn_into

__all__ = ['fuse_rep_conv', 'fuse_rep_conv_into']


@torch.no_grad()
def fuse_rep_conv_into(module: RepConv, name: str = '') -> None:
    """Fuse one RepConv (eval mode) in place: ``conv1.conv`` becomes the single ``(C_out, C_in,
    1)`` conv with bias, ``conv1.bn`` and ``conv2`` become ``nn.Identity``; the input neuron
    (``conv1.neuron``) is kept. Computed in float64, stored in the weights' dtype.

    Raises:
        BNFoldError: if a BN is in training mode or has no running statistics.
    """
    where = name or type(module).__name__
    first, second = module.conv1, module.conv2
    if isinstance(second, nn.Identity):
        return  # already fused
    for unit in (first, second):
        if isinstance(unit.bn, nn.modules.batchnorm._BatchNorm) and unit.bn.training:
            raise BNFoldError(f'{where} is in training mode; call model.eval() before fusing')
    for unit, part in ((first, 'conv1'), (second, 'conv2')):
        if isinstance(unit.bn, nn.modules.batchnorm._BatchNorm):
            fold_bn_into(unit.conv, unit.bn, f'{where}.{part}.bn')
            unit.bn = nn.Identity()
    c1, c2 = first.conv, second.conv
    if c1.kernel_size != (1,) or c2.kernel_size != (1,) or c1.groups != 1 or c2.groups != 1:
        raise ValueError(f'{where}: only pointwise, ungrouped RepConv maps can be fused')
    w1, w2 = c1.weight.double()[..., 0], c2.weight.double()[..., 0]  # (h, C_in), (C_out, h)
    b1 = c1.bias.double() if c1.bias is not None else torch.zeros(w1.shape[0], dtype=w1.dtype)
    b2 = c2.bias.double() if c2.bias is not None else torch.zeros(w2.shape[0], dtype=w2.dtype)
    fused = nn.Conv1d(w1.shape[1], w2.shape[0], 1, bias=True, device=c1.weight.device, dtype=c1.weight.dtype)
    fused.weight.copy_((w2 @ w1).unsqueeze(-1).to(c1.weight.dtype))
    fused.bias.copy_((w2 @ b1 + b2).to(c1.weight.dtype))
    fused.weight.requires_grad_(c1.weight.requires_grad)
    fused.bias.requires_grad_(c1.weight.requires_grad)
    first.conv = fused
    module.conv2 = nn.Identity()


def fuse_rep_conv(model: nn.Module, inplace: bool = True) -> nn.Module:
    """Fuse every :class:`~sdt_dense.models.layers.RepConv` of ``model`` (in eval mode) into one
    spike-fed 1x1 conv with bias (see the module docstring).

    Args:
        model: a model in eval mode (the BNs' running statistics are folded).
        inplace: modify ``model`` (default) or fuse a deep copy.

    Returns:
        The fused model: the same outputs in eval mode (integer or spike-driven) within float
        rounding; each RepConv's ``conv2`` and BNs are ``nn.Identity`` and its state-dict entries
        change accordingly. Models without RepConv are returned unchanged.
    """
    if not inplace:
        model = copy.deepcopy(model)
    reps = [(name, m) for name, m in model.named_modules() if isinstance(m, RepConv)]
    for name, m in reps:  # check every BN first, so that nothing is half-fused on an error
        for unit in (m.conv1, m.conv2):
            bn = getattr(unit, 'bn', None)
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.training:
                raise BNFoldError(f'{name} is in training mode; call model.eval() before fuse_rep_conv')
    for name, m in reps:
        fuse_rep_conv_into(m, name)
    return model

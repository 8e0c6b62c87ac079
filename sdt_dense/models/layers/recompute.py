"""What a spiking unit registers so that backward recomputes it instead of saving floats.

In a unit ``neuron -> conv/linear -> BN [-> ReLU]`` the conv reads the neuron's output, which is
saved as count codes (:class:`~sdt_dense.models.neurons.SavedCounts`); the BN saves the conv's
output and a later layer may save the BN's output. With ``save_counts='recompute'`` both are kept
as recipes (:func:`~sdt_dense.models.neurons.saved_counts.note_recompute`) and run again in
backward from the codes; a ReLU keeps a bit mask instead of its float result. Every function here
is a no-op outside a recomputing :class:`SavedCounts` context (eval, inference, ``with_cp``
regions, ``save_counts`` off).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..neurons.saved_counts import note_recompute, recompute_active

__all__ = ['note_synapse', 'note_batch_norm', 'relu_keep_mask']


def note_synapse(out: Tensor, layer: nn.Module, x: Tensor) -> None:
    """``out = layer(x)`` for a conv or linear layer (no side effect): recomputed by the layer's
    own ``forward`` (which bypasses its hooks), reading its parameters."""
    if recompute_active() is not None:
        note_recompute(out, layer.forward, (x,), tuple(layer.parameters(recurse=False)))


def note_batch_norm(out: Tensor, bn: nn.Module, x: Tensor) -> None:
    """``out = bn(x)`` for a plain ``nn.BatchNorm1d/2d``: recomputed with the statistics the forward
    used (the batch's in training, the frozen running ones otherwise) and without touching the
    running statistics again. Other norms (SyncBN: its statistics need the other processes) are
    left alone, so their outputs are saved as usual."""
    if recompute_active() is None or type(bn) not in (nn.BatchNorm1d, nn.BatchNorm2d):
        return
    weight, bias, eps = bn.weight, bn.bias, bn.eps
    if bn.training or bn.running_mean is None:  # batch statistics, as nn's forward chooses

        def fn(y: Tensor) -> Tensor:
            return F.batch_norm(y, None, None, weight, bias, True, 0.0, eps)

        guards = tuple(t for t in (weight, bias) if t is not None)
    else:
        mean, var = bn.running_mean, bn.running_var

        def fn(y: Tensor) -> Tensor:
            return F.batch_norm(y, mean, var, weight, bias, False, 0.0, eps)

        guards = tuple(t for t in (weight, bias, mean, var) if t is not None)
    note_recompute(out, fn, (x,), guards)


class _ReLUKeepMask(torch.autograd.Function):
    """``relu(x)`` whose backward keeps the mask ``relu(x) > 0`` (a bool, packed to bits inside
    :class:`SavedCounts`) instead of the float result; the gradient is autograd's bit for bit
    (``threshold_backward`` passes ``grad`` where the result is not ``<= 0``)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = torch.relu(x)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(~(out <= 0))
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return grad.masked_fill(~keep, 0)


def relu_keep_mask(x: Tensor) -> Tensor:
    """``torch.relu(x)`` saving 1 bit (1 byte outside :class:`SavedCounts`) per element for
    backward instead of 4; same values, same gradient."""
    return _ReLUKeepMask.apply(x)

"""The Spike Firing Approximation (SFA) neuron.

Training (integer mode): the neuron emits an integer spike count ``k = round(clamp(x, 0, D))`` per
element, divided by ``norm``; the backward pass is a straight-through estimator (slope ``1/norm``)
inside a window and zero outside.

Two published families use two rule sets, both configuration of this one module:

* Base (the defaults): ``rounding='half_even'`` (2.5 -> 2), ``window='inclusive'`` (0 <= x <= D).
* Large (83M / 173M): ``rounding='half_up'`` (2.5 -> 3), ``window='exclusive'`` (0 < x < D).

Exact ties occur in practice (attention inputs are dyadic rationals), so the rules matter.

Inference (spike-driven mode, see :mod:`sdt_dense.deploy.spike_driven`): the same count ``k`` is
emitted as ``D`` binary maps ``s_1..s_D`` with ``s_d = [k >= d]`` (so ``sum_d s_d = k``), stacked in
front of the batch dimension: an input of shape ``(B, *S)`` gives ``(D * B, *S)`` with values in
``{0, 1}``. The tensor carries a :class:`SpikeSlices` tag so that the following synaptic layer can
accumulate its ``D`` results and apply its bias once.

This module is the project's only quantiser; every spiking layer uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from .bitwise import within
from .builder import NEURONS
from .saved_counts import note_counts
from .spike_tensor import SLICES_ATTR, make_spike_tensor, plain_tensor

ROUNDING_MODES = ('half_even', 'half_up')
WINDOWS = ('inclusive', 'exclusive')

# Attribute name under which a spike-slice tensor carries its SpikeSlices tag.
_SLICES_ATTR = SLICES_ATTR


@dataclass(frozen=True)
class SpikeSlices:
    """Tag of a spike-driven neuron output.

    Attributes:
        steps: number of binary slices folded into the leading dimension (``D``, or the eval ceiling).
        norm: the divisor of the integer count in integer mode; ``sum_d s_d / norm`` is the value
            the integer-mode neuron would have emitted.
    """

    steps: int
    norm: float


def get_spike_slices(x: Tensor) -> Optional[SpikeSlices]:
    """Return the :class:`SpikeSlices` tag of ``x``, or ``None`` for an ordinary tensor."""
    return getattr(x, _SLICES_ATTR, None)


def merge_spike_slices(x: Tensor) -> Tensor:
    """Fold a spike-slice tensor ``(D * B, *S)`` back to its integer-mode value ``(B, *S)``.

    The result is an ordinary tensor: this is the sanctioned way out of spike form (analysis
    tools), so it does not count as losing the slice structure."""
    tag = get_spike_slices(x)
    if tag is None:
        return x
    counts = plain_tensor(x).unflatten(0, (tag.steps, -1)).sum(0)
    return counts / tag.norm


def _round(x: Tensor, rounding: str) -> Tensor:
    if rounding == 'half_even':
        return torch.round(x)
    return torch.floor(x + 0.5)


class _SFAQuantise(torch.autograd.Function):
    """``round(clamp(x, 0, D)) / norm`` with a clipped straight-through gradient.

    The backward pass keeps only a boolean window mask (1 byte per element) instead of the float
    input (4 bytes), which is what makes integer training cheap in memory.
    """

    @staticmethod
    def forward(
        ctx, x: Tensor, ceiling: int, norm: float, rounding: str, window_max: float, window: str = 'inclusive'
    ) -> Tensor:
        counts = torch.clamp(x, 0, ceiling)
        if ctx.needs_input_grad[0]:
            if window == 'exclusive':
                ctx.save_for_backward((x > 0) & (x < window_max))
            elif ceiling == window_max:  # 0 <= x <= D: one comparison with the clamped input
                ctx.save_for_backward(within(x, counts))
            else:
                ctx.save_for_backward((x >= 0) & (x <= window_max))
        counts = counts.round_() if rounding == 'half_even' else counts.add_(0.5).floor_()
        out = counts / norm if norm != 1 else counts
        # inside SavedCounts the next layers will save the counts, not this float tensor (also
        # when x needs no gradient: a trainable layer after frozen stages saves its input)
        note_counts(out, counts, ceiling, norm)
        ctx.norm = norm
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (window,) = ctx.saved_tensors
        grad_in = grad_out * window
        if ctx.norm != 1:
            grad_in = grad_in.div_(ctx.norm)
        return grad_in, None, None, None, None, None, None


def sfa_quantise(
    x: Tensor,
    D: int = 4,
    norm: Optional[float] = None,
    rounding: str = 'half_even',
    ceiling: Optional[int] = None,
    window: str = 'inclusive',
) -> Tensor:
    """Functional SFA quantiser.

    Args:
        x: any tensor (fp32, fp16 or bf16; the result has the same dtype).
        D: integer ceiling of the spike count and upper end of the gradient window.
        norm: divisor of the count; defaults to ``D``.
        rounding: ``'half_even'`` (``torch.round``, the published Base models) or ``'half_up'``
            (``floor(x + 0.5)``, the published Large models).
        ceiling: clamp ceiling of the forward pass if different from ``D`` (the published
            detection neck's binary-at-eval behaviour uses 1).
        window: straight-through window, ``'inclusive'`` (``0 <= x <= D``, the Base models) or
            ``'exclusive'`` (``0 < x < D``, the Large models).
    """
    _check_rules(rounding, window)
    norm = float(D if norm is None else norm)
    ceiling = D if ceiling is None else ceiling
    return _SFAQuantise.apply(x, ceiling, norm, rounding, float(D), window)


def _check_rules(rounding: str, window: str) -> None:
    if rounding not in ROUNDING_MODES:
        raise ValueError(f'rounding must be one of {ROUNDING_MODES}, got {rounding!r}')
    if window not in WINDOWS:
        raise ValueError(f'window must be one of {WINDOWS}, got {window!r}')


@NEURONS.register_module(name='SFA')
class SFANeuron(nn.Module):
    """Spike Firing Approximation neuron (memoryless multi-level spiking neuron).

    Args:
        D: number of virtual timesteps = maximum spike count per element (default 4).
        norm: divisor applied to the count; ``None`` means ``D`` (outputs in ``[0, 1]``),
            ``1`` gives raw integer counts.
        rounding: ``'half_even'`` (default, as the published Base models) or ``'half_up'``
            (the published Large models).
        window: straight-through window, ``'inclusive'`` (default, Base) or ``'exclusive'``
            (Large).
        eval_ceiling: if set, the count is clamped to this ceiling in eval mode only. This is
            the published SpikeFPN's behaviour (``1``: binary at test time), kept only as an
            explicit option for reproduction; by default train and eval agree.

    Shape:
        input ``(*)``; output ``(*)`` in integer mode, ``(steps * B, *)`` in spike-driven mode.
    """

    def __init__(
        self,
        D: int = 4,
        norm: Optional[float] = None,
        rounding: str = 'half_even',
        eval_ceiling: Optional[int] = None,
        window: str = 'inclusive',
    ) -> None:
        super().__init__()
        if int(D) != D or D < 1:
            raise ValueError(f'D must be a positive integer, got {D!r}')
        _check_rules(rounding, window)
        if norm is not None and norm <= 0:
            raise ValueError(f'norm must be positive, got {norm!r}')
        self.D = int(D)
        self.norm = float(self.D if norm is None else norm)
        self.rounding = rounding
        self.window = window
        self.eval_ceiling = eval_ceiling
        # Switched by sdt_dense.deploy.spike_driven; not part of the state dict.
        self.spike_driven = False

    @property
    def ceiling(self) -> int:
        """The clamp ceiling in force now (``D``, or ``eval_ceiling`` in eval mode)."""
        if not self.training and self.eval_ceiling is not None:
            return int(self.eval_ceiling)
        return self.D

    def counts(self, x: Tensor) -> Tensor:
        """Integer spike counts ``round(clamp(x, 0, ceiling))`` (no gradient)."""
        return _round(torch.clamp(x, 0, self.ceiling), self.rounding)

    def forward(self, x: Tensor) -> Tensor:
        if self.spike_driven:
            return self.emit_spikes(x)
        return sfa_quantise(x, self.D, self.norm, self.rounding, self.ceiling, self.window)

    def emit_spikes(self, x: Tensor) -> Tensor:
        """Binary spike slices ``(steps * B, *S)``: slice ``d`` fires where the count is ``>= d``.

        Returned as a tagged :class:`~sdt_dense.models.neurons.spike_tensor.SpikeTensor`, so that
        layout ops keep the tag and any other op before a synaptic layer is caught."""
        counts = self.counts(x)
        steps = self.ceiling
        levels = torch.arange(1, steps + 1, device=x.device, dtype=x.dtype)
        levels = levels.view(steps, *([1] * x.dim()))
        spikes = (counts.unsqueeze(0) >= levels).to(x.dtype).flatten(0, 1)
        return make_spike_tensor(spikes, SpikeSlices(steps, self.norm))

    def extra_repr(self) -> str:
        s = f'D={self.D}, norm={self.norm:g}'
        if self.rounding != 'half_even':
            s += f', rounding={self.rounding}'
        if self.window != 'inclusive':
            s += f', window={self.window}'
        if self.eval_ceiling is not None:
            s += f', eval_ceiling={self.eval_ceiling}'
        return s

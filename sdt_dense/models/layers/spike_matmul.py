"""Products of spike matrices (the attention's ``k^T v`` and ``q (k^T v)``), executed on binary
spike slices in spike-driven mode."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from ..neurons import SpikeDrivenError, SpikeSlices, get_spike_slices, plain_tensor, spikes_lost


def _slices(x: Tensor, tag: SpikeSlices) -> Tensor:
    """``(steps * B, ..., r, c)`` spike slices -> ``(steps, B, ..., r, c)`` (ordinary tensor)."""
    if x.dim() < 3:
        raise SpikeDrivenError(
            f'a spike-matrix product needs batched operands (steps * B, ..., rows, cols); got '
            f'spike slices of shape {tuple(x.shape)}'
        )
    return plain_tensor(x).unflatten(0, (tag.steps, -1))


def spike_slices_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with one or both operands given as binary spike slices, computed on the slices.

    An operand tagged :class:`~sdt_dense.models.neurons.SpikeSlices` ``(steps, norm)`` holds
    ``steps`` binary slices ``s_1..s_steps`` folded in front of its batch,
    ``(steps * B, ..., r, c)``, and stands for ``(sum_i s_i) / norm``; an untagged operand
    ``(B, ..., r, c)`` is used as is.
    By bilinearity:

    * both tagged (``k^T v``): ``(1 / (n_a n_b)) sum_{i, j} a_i @ b_j`` -- every product is
      binary x binary (AND of spike pairs, accumulated into integer coincidence counts);
    * one tagged (``q (k^T v)``): ``(1 / n_a) sum_i a_i @ b`` -- each binary spike of ``a_i``
      selects a row of ``b`` to add (accumulate only, like a synaptic layer whose weights are
      ``b``); symmetrically ``(1 / n_b) sum_j a @ b_j`` when only ``b`` is tagged.

    The result equals the integer-mode product (exactly, while the integer sums stay below
    ``2**24`` in float32). Memory stays bounded: the loop runs over the slices of ``a`` and holds at
    most ``steps_b`` partial results of the output's size, never all slice pairs at once.

    Returns:
        An ordinary tensor ``(B, ..., r_a, c_b)`` in integer-mode units.
    """
    for x in (a, b):
        if spikes_lost(x) is not None:
            raise SpikeDrivenError(
                f'a spike-matrix product received values computed from spike slices by '
                f'{spikes_lost(x)}, which does not keep their slice structure'
            )
    ta, tb = get_spike_slices(a), get_spike_slices(b)
    if ta is None and tb is None:
        return a @ b
    if ta is None:  # real x spikes: the transposed case of the one below
        return spike_slices_matmul(b.mT, a.mT).mT
    a_sl = _slices(a, ta)  # (Da, B, ..., n, m)
    out: Optional[Tensor] = None
    if tb is None:
        b = plain_tensor(b)
        for a_i in a_sl:  # binary rows of a_i select rows of b: (B, ..., n, p)
            part = a_i @ b
            out = part if out is None else out.add_(part)
        return out / ta.norm
    b_sl = _slices(b, tb)  # (Db, B, ..., m, p)
    # the Db binary slices of b side by side, [b_1 | ... | b_Db]: (B, ..., m, Db * p), so that one
    # binary x binary product per slice of a forms all its pairs
    p = b_sl.shape[-1]
    b_cat = b_sl.movedim(0, -2).flatten(-2)
    for a_i in a_sl:
        part = (a_i @ b_cat).unflatten(-1, (tb.steps, p)).sum(-2)  # sum_j a_i @ b_j
        out = part if out is None else out.add_(part)
    return out / (ta.norm * tb.norm)


class SpikeMatMul(nn.Module):
    """Matrix product ``a @ b`` of spike matrices, ``(B, ..., n, m) @ (B, ..., m, p)``.

    Integer mode (and multi-step LIF spikes): ``a @ b`` on the operands as given (spike counts
    ``count / norm``, or binary spikes per timestep). Spike-driven mode: operands that arrive as the
    neurons' binary spike slices (tagged, ``(steps * B, ..., r, c)``) are multiplied slice by slice,
    see :func:`spike_slices_matmul`; the output ``(B, ..., n, p)`` equals integer mode.

    A module of its own so that :mod:`sdt_dense.deploy.spike_driven` lets spike slices in
    (:attr:`consumes_spike_slices`) and the analysis tools can hook the binary operands as they are
    multiplied. An attention only has to hand the neurons' outputs over through layout ops (head
    split, transposes), which keep the slices tagged; it must not merge them.
    """

    #: spike-driven mode may feed binary spike slices to this module (it sums them itself)
    consumes_spike_slices = True

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return spike_slices_matmul(a, b)

"""Products of spike-count matrices (the attention's ``k^T v`` and ``q (k^T v)``)."""
from __future__ import annotations

from torch import Tensor, nn


class SpikeMatMul(nn.Module):
    """Matrix product ``a @ b`` of spike-count matrices (values ``count / norm``).

    A module of its own so that analysis tools can hook both operands. The operands are always in
    integer form (spike-driven slices are merged before the call): a product of spike counts
    ``a_ij * b_jk`` stands for as many AND + accumulate operations on binary spikes (see
    :mod:`sdt_dense.deploy.spike_driven` for the counting convention).
    """

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a @ b

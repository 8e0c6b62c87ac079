"""The elementwise work of a training step's neurons, in as few passes over memory as possible.

The SFA neuron compares its input with its window and hands out integer codes and bit masks for
backward. PyTorch's CPU kernels that write ``bool`` (comparisons, ``signbit``) and its strided
``uint8`` shifts are several times slower than NumPy's vectorised ones, and a mask packed with
eight strided torch ops costs more than the comparison that made it; on a CPU tensor these
functions therefore run NumPy on the same memory (no copy), and on other devices, or for dtypes
NumPy lacks (``bfloat16``), the equivalent torch ops. Either way the results are the same values.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = ['within', 'pack_bits', 'unpack_bits', 'count_codes']

_SIGNED = {2: np.int16, 4: np.int32, 8: np.int64}
_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bool, torch.uint8)


def _numpy(t: Tensor) -> Optional[np.ndarray]:
    """A NumPy view of ``t``'s memory, or ``None`` where NumPy cannot see it."""
    if t.device.type != 'cpu' or t.dtype not in _NUMPY_DTYPES or not t.is_contiguous():
        return None
    return t.detach().numpy()


def within(x: Tensor, clamped: Tensor) -> Tensor:
    """``(x >= lo) & (x <= hi)`` given ``clamped = clamp(x, lo, hi)``: one comparison,
    ``clamped == x`` (``NaN`` is outside; ``-0.0`` is inside a window starting at 0)."""
    a, b = _numpy(clamped), _numpy(x)
    if a is None or b is None:
        return clamped == x
    return torch.from_numpy(np.equal(a, b))


def pack_bits(mask: Tensor) -> Tensor:
    """A ``bool`` tensor as ``uint8`` ``(ceil(n / 8),)``, 8 elements per byte, lowest bit first
    (storage order of ``mask.reshape(-1)``)."""
    flat = mask.reshape(-1)
    a = _numpy(flat)
    if a is not None:
        return torch.from_numpy(np.packbits(a, bitorder='little'))
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat((flat, flat.new_zeros(pad)))
    b = flat.view(torch.uint8).view(-1, 8)  # bool is one byte, 0 or 1
    bits = b[:, 0].clone()
    for i in range(1, 8):
        bits |= b[:, i] << i
    return bits


_BIT_TABLES: Dict[torch.device, Tensor] = {}


def unpack_bits(bits: Tensor, numel: int) -> Tensor:
    """The inverse of :func:`pack_bits`: ``bool`` ``(numel,)``."""
    a = _numpy(bits)
    if a is not None:
        return torch.from_numpy(np.unpackbits(a, count=numel, bitorder='little').view(np.bool_))
    device = bits.device
    if device not in _BIT_TABLES:  # row b: the 8 bits of b, lowest first
        _BIT_TABLES[device] = (
            (torch.arange(256, device=device).view(-1, 1) >> torch.arange(8, device=device)) & 1
        ).to(torch.uint8)
    table = _BIT_TABLES[device].index_select(0, bits.int())
    return table.flatten()[:numel].view(torch.bool)


def count_codes(counts: Tensor, ceiling: int, nibbles: bool) -> Tensor:
    """The code of each count ``k`` (``0..ceiling``, or ``-0.0``), ``uint8`` in storage order:
    ``k`` itself, ``ceiling + 1`` for ``-0.0`` (so that its sign bit can be restored); two codes
    per byte (low nibble first, ``(ceil(n / 2),)``) if ``nibbles``, else one ``(n,)``."""
    flat = counts.reshape(-1)
    a = _numpy(flat)
    if a is not None:
        codes = np.zeros(a.size + (a.size % 2 if nibbles else 0), np.uint8)
        codes[: a.size] = a  # the counts are whole numbers: the cast is exact
        # -0.0 is the only count with its sign bit set: a negative integer view, found without a
        # temporary of the tensor's size (the usual case: none)
        if a.view(_SIGNED[a.dtype.itemsize]).min() < 0:
            codes[: a.size][np.signbit(a)] = ceiling + 1
        if nibbles:
            odd = codes[1::2]
            np.left_shift(odd, 4, out=odd)
            codes = np.bitwise_or(codes[0::2], odd)
        return torch.from_numpy(codes)
    codes = flat.to(torch.uint8)
    codes.add_(torch.signbit(flat), alpha=ceiling + 1)
    if nibbles:
        if codes.numel() % 2:
            codes = torch.cat((codes, codes.new_zeros(1)))
        codes = codes[0::2] | (codes[1::2] << 4)
    return codes

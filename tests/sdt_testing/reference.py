"""Comparing against the trimmed reference fixtures of ``tests/data`` (see its README).

Large expected tensors are stored as a spatial corner crop plus ``K`` fixed projections of the
whole tensor; :func:`max_error` compares an actual tensor with either form.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Union

import torch


def projection_weights(n: int, k: int = 4) -> torch.Tensor:
    """The fixed ``(k, n)`` projections stored for large tensors. Re-derived here on purpose (the
    writer is ``tools/misc/trim_reference_fixtures.py``); each fixture stores ``projection_check``
    so that a drift between the two definitions fails loudly."""
    mult = (2654435761, 2246822519, 3266489917, 668265263)
    idx = torch.arange(n, dtype=torch.int64)
    return torch.stack(
        [((idx * mult[j] + 40503 * (j + 1)) % 2147483647).double() / 2147483647 * 2 - 1 for j in range(k)]
    )


def max_error(actual: torch.Tensor, stored: Union[torch.Tensor, dict]) -> float:
    """Largest absolute difference to a stored tensor, or to the crop and the projections of a
    trimmed one."""
    if isinstance(stored, torch.Tensor):
        assert actual.shape == stored.shape
        return (actual - stored).abs().max().item()
    assert tuple(actual.shape) == tuple(stored['shape'])
    s = stored['crop_size']
    crop = (actual[..., :s, :s] - stored['crop']).abs().max().item()
    proj = projection_weights(actual.numel()) @ actual.flatten().double()
    return max(crop, (proj - stored['projections']).abs().max().item())


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block."""
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)

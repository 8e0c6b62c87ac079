"""Masked ("sparse") convolution and BatchNorm for masked-image pretraining of a conv stem.

A convolutional stem cannot drop masked patches the way a ViT drops tokens. Instead (the SparK
recipe) every convolution runs densely and its output is zeroed at the masked positions, and every
BatchNorm normalises only the visible positions and leaves the masked ones at exactly 0 (not
``BN(0) = beta - gamma * mean / std``). SFA neurons map 0 to 0 and residual sums of zeros stay 0,
so a masked position is exactly 0 all the way through the stem and never enters a BatchNorm
statistic.

The visible-patch mask of the current forward pass lives in one :class:`PatchMaskState` shared by
all sparse layers of a model; each layer upsamples it (nearest neighbour, integer factor) to its
own feature size. With no mask set the layers are the ordinary dense ones, so a trunk built from
them also runs (and loads) as a plain backbone.

Both classes subclass the dense PyTorch layers and add no parameters or buffers: their state-dict
entries are those of ``nn.Conv2d`` / ``nn.BatchNorm2d``, so weights move freely between the
pretraining trunk and the dense backbone.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional, Tuple

from torch import Tensor, nn


class PatchMaskState:
    """The visible-patch mask of the forward pass in progress, shared by the sparse layers.

    The mask is set with :meth:`use` around one forward pass (a context manager, so an exception
    never leaves a stale mask behind). Do not combine with activation checkpointing: the
    recomputation in the backward pass happens after the mask is cleared.
    """

    def __init__(self) -> None:
        self._active: Optional[Tensor] = None  # (B, 1, gh, gw) bool, True = visible
        self._cache: Dict[Tuple[int, int], Tensor] = {}

    @property
    def active(self) -> Optional[Tensor]:
        """The mask on the patch grid, ``(B, 1, gh, gw)`` bool, or ``None`` (dense mode)."""
        return self._active

    @contextlib.contextmanager
    def use(self, active: Tensor) -> Iterator[None]:
        """Make ``active`` (``(B, gh, gw)`` or ``(B, 1, gh, gw)``, nonzero/True = visible) the
        mask of the sparse layers for the duration of the ``with`` block."""
        if active.dim() == 3:
            active = active.unsqueeze(1)
        if active.dim() != 4 or active.shape[1] != 1:
            raise ValueError(f'expected a (B, gh, gw) or (B, 1, gh, gw) mask, got {tuple(active.shape)}')
        previous = self._active, self._cache
        self._active, self._cache = active.bool(), {}
        try:
            yield
        finally:
            self._active, self._cache = previous

    def at(self, size: Tuple[int, int]) -> Optional[Tensor]:
        """The mask upsampled to a ``(H, W)`` feature map, ``(B, 1, H, W)`` bool (``None`` in
        dense mode). ``H`` and ``W`` must be the same integer multiple of the patch grid."""
        if self._active is None:
            return None
        size = (int(size[0]), int(size[1]))
        if size not in self._cache:
            gh, gw = self._active.shape[-2:]
            fh, fw = size[0] // gh, size[1] // gw
            if fh * gh != size[0] or fw * gw != size[1] or fh != fw or fh < 1:
                raise ValueError(
                    f'feature map {size} is not an integer multiple of the '
                    f'{gh}x{gw} patch grid (inputs must be multiples of 16 px)'
                )
            self._cache[size] = self._active.repeat_interleave(fh, 2).repeat_interleave(fw, 3)
        return self._cache[size]


class SparseConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose output is exactly 0 at masked positions.

    The convolution itself is dense: visible outputs next to a masked area read the zeros there,
    and the bias is added everywhere before masking.

    Shape: ``(B, C_in, H, W) -> (B, C_out, H', W')``; ``H', W'`` a multiple of the patch grid.
    """

    def __init__(self, *args, mask_state: PatchMaskState, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mask_state = mask_state

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, mask_state: PatchMaskState) -> 'SparseConv2d':
        """A sparse copy of ``conv`` (same hyper-parameters and weights)."""
        sparse = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            conv.padding_mode,
            mask_state=mask_state,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        sparse.load_state_dict(conv.state_dict())
        return sparse

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        active = self.mask_state.at(out.shape[-2:])
        return out if active is None else out.masked_fill(~active, 0.0)


class SparseBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the visible positions only; masked positions stay exactly 0.

    Training: the batch mean/variance (and the running-statistics update) use the ``M`` visible
    feature vectors of the batch, as a ``BatchNorm1d`` over ``(M, C)``. Evaluation: the running
    statistics are applied to the visible positions. Without a mask it is ``nn.BatchNorm2d``.

    Statistics are per process (no synchronisation), as in the published pretraining.

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, *args, mask_state: PatchMaskState, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mask_state = mask_state

    @classmethod
    def from_dense(cls, bn: nn.BatchNorm2d, mask_state: PatchMaskState) -> 'SparseBatchNorm2d':
        """A sparse copy of ``bn`` (same hyper-parameters, affine parameters and statistics)."""
        sparse = cls(
            bn.num_features,
            bn.eps,
            bn.momentum,
            bn.affine,
            bn.track_running_stats,
            mask_state=mask_state,
            device=bn.weight.device,
            dtype=bn.weight.dtype,
        )
        sparse.load_state_dict(bn.state_dict())
        return sparse

    def forward(self, x: Tensor) -> Tensor:
        active = self.mask_state.at(x.shape[-2:])
        if active is None:
            return super().forward(x)
        keep = active[:, 0]  # (B, H, W)
        visible = x.permute(0, 2, 3, 1)[keep]  # (M, C), row-major over (B, H, W)
        # A (M, C, 1, 1) batch gives exactly the per-channel statistics over the M vectors.
        normed = super().forward(visible[:, :, None, None])[:, :, 0, 0]
        out = x.new_zeros(x.shape[0], x.shape[2], x.shape[3], x.shape[1])
        out[keep] = normed
        return out.permute(0, 3, 1, 2)


def sparsify_convs_and_norms(module: nn.Module, mask_state: PatchMaskState) -> int:
    """Replace, in place, every ``nn.Conv2d`` / ``nn.BatchNorm2d`` below ``module`` by its sparse
    version (weights, statistics and parameter names kept). Returns the number replaced.

    Raises:
        TypeError: a norm that is not a plain ``BatchNorm2d`` (e.g. SyncBN): its statistics
            could not be restricted to the visible positions.
    """
    count = 0
    for name, child in list(module.named_children()):
        if type(child) is nn.Conv2d:
            setattr(module, name, SparseConv2d.from_dense(child, mask_state))
            count += 1
        elif type(child) is nn.BatchNorm2d:
            setattr(module, name, SparseBatchNorm2d.from_dense(child, mask_state))
            count += 1
        elif isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, (SparseBatchNorm2d, nn.BatchNorm1d)
        ):
            raise TypeError(
                f'{name}: cannot make {type(child).__name__} sparse; the masked stem '
                'needs plain BatchNorm2d (norm_cfg=dict(type="BN"))'
            )
        else:
            count += sparsify_convs_and_norms(child, mask_state)
    return count

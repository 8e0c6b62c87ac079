"""Self-supervised pretrainers of the backbones: the spike-masked autoencoder (:class:`SpikeMAE`)
and its masked ("sparse") stem layers."""

from .sparse_layers import PatchMaskState, SparseBatchNorm2d, SparseConv2d, sparsify_convs_and_norms
from .spike_mae import DECODER_GATHERS, PatchMask, SpikeMAE, patchify, random_patch_mask, sincos_pos_embed_2d

__all__ = [
    'PatchMaskState',
    'SparseBatchNorm2d',
    'SparseConv2d',
    'sparsify_convs_and_norms',
    'DECODER_GATHERS',
    'PatchMask',
    'SpikeMAE',
    'patchify',
    'random_patch_mask',
    'sincos_pos_embed_2d',
]

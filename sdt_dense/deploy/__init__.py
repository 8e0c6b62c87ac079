"""Deployment transforms of trained models: spike-driven (binary spike) inference and BN folding."""

from .bn_fold import BNFoldError, fold_bn
from .rep_conv_fusion import fuse_rep_conv
from .spike_driven import (
    SYNAPTIC_TYPES,
    SpikeDrivenError,
    convert_to_spike_driven,
    is_spike_driven,
    spike_driven,
)

__all__ = [
    'BNFoldError',
    'fold_bn',
    'fuse_rep_conv',
    'SYNAPTIC_TYPES',
    'SpikeDrivenError',
    'convert_to_spike_driven',
    'is_spike_driven',
    'spike_driven',
]

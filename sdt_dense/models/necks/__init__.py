"""Necks of sdt-dense."""

from .spike_fpn import SpikeFPN
from .spike_semantic_fpn import SpikeSemanticFPN

__all__ = ['SpikeFPN', 'SpikeSemanticFPN']

"""Necks of sdt-dense."""
from .spike_fpn import DET_NEURON, SpikeFPN

__all__ = ['DET_NEURON', 'SpikeFPN']
from .spike_semantic_fpn import SpikeSemanticFPN, SpikingLayer  # noqa: E402

__all__ += ['SpikeSemanticFPN', 'SpikingLayer']

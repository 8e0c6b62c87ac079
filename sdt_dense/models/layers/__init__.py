"""Spiking building blocks, one per file: neuron -> synaptic layer -> BN units, SepConv, MLPs,
spike-matrix products, the spike-driven self-attention (layer scale is timm's ``LayerScale2d``).

Every synaptic layer (conv / linear) that follows a neuron sits in the same unit as that neuron, so
the spike-driven conversion and the operation counters can find every (neuron, synapse) pair.
Residual streams between blocks are real-valued ("membrane potentials").
"""

from .attention import SpikeDrivenSelfAttention
from .drop_path import DROP_PATH_MODES, BatchDropPath, build_drop_path
from .linear_attention import SpikeLinearAttention
from .mlp import ConvMLP, TokenMLP
from .norm import build_norm
from .rep_conv import RepConv
from .sep_conv import SepConv
from .spike_conv_bn import SpikeConvBN
from .spike_matmul import SpikeMatMul
from .spiking_layer import SpikingLayer

__all__ = [
    'SpikeDrivenSelfAttention',
    'ConvMLP',
    'TokenMLP',
    'build_norm',
    'SepConv',
    'SpikeConvBN',
    'SpikeMatMul',
    'SpikingLayer',
    'DROP_PATH_MODES',
    'BatchDropPath',
    'build_drop_path',
    'SpikeLinearAttention',
    'RepConv',
]

"""Models of sdt-dense. Importing this package registers them into mmdet's and mmseg's MODELS."""
from .neuron import SFANeuron, build_neuron, sfa_quantise
from .backbones import (ARCH_ZOO, CheckpointMismatchError, ESpikeFormer, ESpikeFormerClassifier,
                        checkpoint_filter_fn, load_pretrained)

__all__ = ['SFANeuron', 'build_neuron', 'sfa_quantise', 'ARCH_ZOO', 'CheckpointMismatchError',
           'ESpikeFormer', 'ESpikeFormerClassifier', 'checkpoint_filter_fn', 'load_pretrained']

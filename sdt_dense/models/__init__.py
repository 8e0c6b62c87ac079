"""Models of sdt-dense. Importing this package registers them into mmdet's and mmseg's MODELS.

Layout: ``neurons/`` (SFA, LIF and their registry), ``layers/`` (one building block per file),
``backbones/``, ``necks/``, ``heads/``. Spike-driven conversion and BN folding live in
:mod:`sdt_dense.deploy`; their names are re-exported here for backward compatibility.
"""
from .neurons import (NEURONS, LIFNeuron, SFANeuron, TimeSteps, build_neuron, get_time_steps,
                      neuron_time_steps, repeat_over_time, sfa_quantise)
from .layers import SpikingLayer
from .backbones import ARCH_ZOO, ESpikeFormer, ESpikeFormerClassifier
from .necks import DET_NEURON, SpikeFPN, SpikeSemanticFPN
from .heads import (SpikeConvFCBBoxHead, SpikeFCNMaskHead, SpikeFPNHead, SpikeRetinaHead,
                    SpikeRPNHead, SpikeShared2FCBBoxHead, SpikeShared4Conv1FCBBoxHead)
from ..checkpoint import CheckpointMismatchError, checkpoint_filter_fn, load_pretrained
from ..deploy import (BNFoldError, SpikeDrivenError, convert_to_spike_driven, fold_bn,
                      is_spike_driven, spike_driven)

__all__ = ['NEURONS', 'LIFNeuron', 'SFANeuron', 'TimeSteps', 'build_neuron', 'get_time_steps',
           'neuron_time_steps', 'repeat_over_time', 'sfa_quantise', 'SpikingLayer', 'ARCH_ZOO',
           'ESpikeFormer', 'ESpikeFormerClassifier', 'DET_NEURON', 'SpikeFPN', 'SpikeSemanticFPN',
           'SpikeConvFCBBoxHead', 'SpikeFCNMaskHead', 'SpikeFPNHead', 'SpikeRetinaHead',
           'SpikeRPNHead', 'SpikeShared2FCBBoxHead', 'SpikeShared4Conv1FCBBoxHead',
           'CheckpointMismatchError', 'checkpoint_filter_fn', 'load_pretrained', 'BNFoldError',
           'SpikeDrivenError', 'convert_to_spike_driven', 'fold_bn', 'is_spike_driven',
           'spike_driven']

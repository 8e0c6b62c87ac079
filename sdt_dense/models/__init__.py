"""Models of sdt-dense. Importing this package registers them into mmdet's and mmseg's MODELS
and the classifiers into timm.

Layout: ``neurons/`` (SFA, LIF and their registry), ``layers/`` (one building block per file),
``backbones/`` (the backbone contract and the families), ``necks/``, ``heads/``, ``pretrainers/``,
``data_preprocessors/``. Spike-driven conversion and BN folding live in :mod:`sdt_dense.deploy`.
"""

from ..checkpoint import CheckpointMismatchError, checkpoint_filter_fn, load_pretrained
from . import timm_models  # noqa: F401  (registers the classifiers with timm)
from .backbones import (
    ESpikeFormer,
    ESpikeFormerClassifier,
    ESpikeFormerLarge,
    ESpikeFormerLargeClassifier,
    MultiStepESpikeFormer,
    SpikeBackbone,
    SpikeClassifierMixin,
)
from .data_preprocessors import EventDetDataPreprocessor
from .heads import (
    SpikeConvFCBBoxHead,
    SpikeFCNMaskHead,
    SpikeFPNHead,
    SpikeRetinaHead,
    SpikeRPNHead,
    SpikeShared2FCBBoxHead,
    SpikeShared4Conv1FCBBoxHead,
)
from .layers import SpikingLayer
from .necks import SpikeFPN, SpikeSemanticFPN
from .neurons import (
    NEURONS,
    LIFNeuron,
    SFANeuron,
    TimeSteps,
    build_neuron,
    get_time_steps,
    neuron_time_steps,
    repeat_over_time,
    sfa_quantise,
)
from .pretrainers import PatchMask, SpikeMAE
from .task_neurons import DET_NEURON, SEG_NEURON, det_neuron_cfg

__all__ = [
    'NEURONS',
    'LIFNeuron',
    'SFANeuron',
    'TimeSteps',
    'build_neuron',
    'get_time_steps',
    'neuron_time_steps',
    'repeat_over_time',
    'sfa_quantise',
    'SpikingLayer',
    'SpikeBackbone',
    'SpikeClassifierMixin',
    'ESpikeFormer',
    'ESpikeFormerClassifier',
    'ESpikeFormerLarge',
    'ESpikeFormerLargeClassifier',
    'MultiStepESpikeFormer',
    'DET_NEURON',
    'SEG_NEURON',
    'det_neuron_cfg',
    'SpikeFPN',
    'SpikeSemanticFPN',
    'SpikeConvFCBBoxHead',
    'SpikeFCNMaskHead',
    'SpikeFPNHead',
    'SpikeRetinaHead',
    'SpikeRPNHead',
    'SpikeShared2FCBBoxHead',
    'SpikeShared4Conv1FCBBoxHead',
    'PatchMask',
    'SpikeMAE',
    'EventDetDataPreprocessor',
    'CheckpointMismatchError',
    'checkpoint_filter_fn',
    'load_pretrained',
]

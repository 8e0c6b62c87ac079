"""Models of sdt-dense. Importing this package registers them into mmdet's and mmseg's MODELS.

Layout: ``neurons/`` (SFA, LIF and their registry), ``layers/`` (one building block per file),
``backbones/``, ``necks/``, ``heads/``. Spike-driven conversion and BN folding live in
:mod:`sdt_dense.deploy`; their names are re-exported here for backward compatibility.
"""
from ..checkpoint import CheckpointMismatchError, checkpoint_filter_fn, load_pretrained
from .backbones import (
                      ARCH_ZOO,
                      LARGE_ARCH_ZOO,
                      ESpikeFormer,
                      ESpikeFormerClassifier,
                      ESpikeFormerLarge,
                      ESpikeFormerLargeClassifier,
)
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
from .necks import DET_NEURON, SpikeFPN, SpikeSemanticFPN
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

__all__ = ['NEURONS', 'LIFNeuron', 'SFANeuron', 'TimeSteps', 'build_neuron', 'get_time_steps',
           'neuron_time_steps', 'repeat_over_time', 'sfa_quantise', 'SpikingLayer', 'ARCH_ZOO',
           'ESpikeFormer', 'ESpikeFormerClassifier', 'DET_NEURON', 'SpikeFPN', 'SpikeSemanticFPN',
           'SpikeConvFCBBoxHead', 'SpikeFCNMaskHead', 'SpikeFPNHead', 'SpikeRetinaHead',
           'SpikeRPNHead', 'SpikeShared2FCBBoxHead', 'SpikeShared4Conv1FCBBoxHead',
           'CheckpointMismatchError', 'checkpoint_filter_fn', 'load_pretrained']
__all__ += ['LARGE_ARCH_ZOO', 'ESpikeFormerLarge', 'ESpikeFormerLargeClassifier']
from . import timm_models  # noqa: E402,F401  (registers the classifiers with timm)
from .pretrainers import PatchMask, SpikeMAE  # noqa: E402  (masked-image pretraining)

__all__ += ['PatchMask', 'SpikeMAE']
from .backbones import MultiStepESpikeFormer  # noqa: E402  (event cameras)
from .data_preprocessors import EventDetDataPreprocessor  # noqa: E402

__all__ += ['MultiStepESpikeFormer', 'EventDetDataPreprocessor']

# The deployment API moved to sdt_dense.deploy (which imports this package); its names stay
# importable from here, resolved on first use so that neither package imports the other eagerly.
_DEPLOY_NAMES = ('BNFoldError', 'SpikeDrivenError', 'convert_to_spike_driven', 'fold_bn',
                 'is_spike_driven', 'spike_driven')


def __getattr__(name: str):
    if name in _DEPLOY_NAMES:
        from .. import deploy
        return getattr(deploy, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

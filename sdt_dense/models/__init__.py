"""Models of sdt-dense. Importing this package registers them into mmdet's and mmseg's MODELS."""
from .neuron import SFANeuron, build_neuron, sfa_quantise
from .backbones import (ARCH_ZOO, CheckpointMismatchError, ESpikeFormer, ESpikeFormerClassifier,
                        checkpoint_filter_fn, load_pretrained)

__all__ = ['SFANeuron', 'build_neuron', 'sfa_quantise', 'ARCH_ZOO', 'CheckpointMismatchError',
           'ESpikeFormer', 'ESpikeFormerClassifier', 'checkpoint_filter_fn', 'load_pretrained']
from .lif import (LIFNeuron, TimeSteps, get_time_steps, neuron_time_steps,  # noqa: E402
                  repeat_over_time)  # (registers NEURONS['LIF'])

__all__ += ['LIFNeuron', 'TimeSteps', 'get_time_steps', 'neuron_time_steps', 'repeat_over_time']
from .spike_driven import (SpikeDrivenError, convert_to_spike_driven,  # noqa: E402
                           is_spike_driven, spike_driven)
from .bn_fold import BNFoldError, fold_bn  # noqa: E402

__all__ += ['spike_driven', 'convert_to_spike_driven', 'is_spike_driven', 'SpikeDrivenError',
            'fold_bn', 'BNFoldError']
from .necks import DET_NEURON, SpikeFPN  # noqa: E402  (detection neck, issue 5)
from .heads import (SpikeConvFCBBoxHead, SpikeFCNMaskHead, SpikeRetinaHead,  # noqa: E402
                    SpikeRPNHead, SpikeShared2FCBBoxHead, SpikeShared4Conv1FCBBoxHead)

__all__ += ['DET_NEURON', 'SpikeFPN', 'SpikeConvFCBBoxHead', 'SpikeFCNMaskHead', 'SpikeRetinaHead',
            'SpikeRPNHead', 'SpikeShared2FCBBoxHead', 'SpikeShared4Conv1FCBBoxHead']
from .necks import SpikeSemanticFPN, SpikingLayer  # noqa: E402  (segmentation neck, issue 6)
from .heads import SpikeFPNHead  # noqa: E402  (segmentation head, issue 6)

__all__ += ['SpikeSemanticFPN', 'SpikingLayer', 'SpikeFPNHead']

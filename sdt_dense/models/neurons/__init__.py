"""Spiking neurons, built from configs through the :data:`NEURONS` registry.

* :mod:`.sfa`: the Spike Firing Approximation neuron (integer training, binary spike-driven
  inference); its rounding and straight-through window are configuration, which covers both the
  Base and the Large published families.
* :mod:`.lif`: the multi-timestep binary LIF neuron, the baseline SFA is compared against.
* :mod:`.saved_counts`: saved activations at the spike representation's size (count codes and
  bit masks instead of float tensors, bit-identical gradients).
* :mod:`.spike_tensor`: the tensor subclass that carries spike-driven slices (keeps their tag
  through layout ops, marks anything else so that a lost tag is an error, not a silent result).
"""

from .builder import NEURONS, build_neuron, neuron_class, neuron_time_steps
from .lif import LIFNeuron, TimeSteps, get_time_steps, repeat_over_time, tag_time_steps
from .saved_counts import SavedCounts
from .sfa import (
    ROUNDING_MODES,
    WINDOWS,
    SFANeuron,
    SpikeSlices,
    get_spike_slices,
    merge_spike_slices,
    sfa_quantise,
)
from .spike_tensor import SpikeDrivenError, SpikeTensor, plain_tensor, spikes_lost

__all__ = [
    'NEURONS',
    'build_neuron',
    'neuron_class',
    'neuron_time_steps',
    'LIFNeuron',
    'TimeSteps',
    'get_time_steps',
    'repeat_over_time',
    'tag_time_steps',
    'ROUNDING_MODES',
    'WINDOWS',
    'SFANeuron',
    'SpikeSlices',
    'get_spike_slices',
    'merge_spike_slices',
    'sfa_quantise',
    'SpikeDrivenError',
    'SpikeTensor',
    'plain_tensor',
    'spikes_lost',
    'SavedCounts',
]

"""Analysis of spiking models: firing rates, synaptic operations and energy."""
from .ops import SynapticLayerOps, SynapticOpCounter, count_synaptic_ops
from .firing import FiringRateMonitor, NeuronStats, mean_firing_rate
from .energy import (EnergyAccumulator, EnergyConstants, EnergyMeter, EnergyReport, LayerEnergy,
                     layer_energy_mj, plot_firing_rates)

__all__ = ['SynapticLayerOps', 'SynapticOpCounter', 'count_synaptic_ops', 'FiringRateMonitor',
           'NeuronStats', 'mean_firing_rate', 'EnergyAccumulator', 'EnergyConstants',
           'EnergyMeter', 'EnergyReport', 'LayerEnergy', 'layer_energy_mj', 'plot_firing_rates']

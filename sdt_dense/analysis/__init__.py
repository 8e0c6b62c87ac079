"""Analysis of spiking models: firing rates, synaptic operations and energy."""
from .energy import (
                     EnergyAccumulator,
                     EnergyConstants,
                     EnergyMeter,
                     EnergyReport,
                     LayerEnergy,
                     layer_energy_mj,
                     plot_firing_rates,
)
from .firing import FiringRateMonitor, NeuronStats, mean_firing_rate
from .ops import SynapticLayerOps, SynapticOpCounter, count_synaptic_ops

__all__ = ['SynapticLayerOps', 'SynapticOpCounter', 'count_synaptic_ops', 'FiringRateMonitor',
           'NeuronStats', 'mean_firing_rate', 'EnergyAccumulator', 'EnergyConstants',
           'EnergyMeter', 'EnergyReport', 'LayerEnergy', 'layer_energy_mj', 'plot_firing_rates']

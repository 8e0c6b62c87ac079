"""Analysis of spiking models: firing rates, synaptic operations and energy."""

from .energy import (
    EnergyAccumulator,
    EnergyConstants,
    EnergyMeter,
    EnergyReport,
    LayerEnergy,
    layer_energy_mj,
)
from .energy_report import plot_firing_rates, render_markdown, write_report
from .firing import FiringRateMonitor, NeuronStats, mean_firing_rate
from .ops import SynapticLayerOps, SynapticOpCounter, count_synaptic_ops

__all__ = [
    'SynapticLayerOps',
    'SynapticOpCounter',
    'count_synaptic_ops',
    'FiringRateMonitor',
    'NeuronStats',
    'mean_firing_rate',
    'EnergyAccumulator',
    'EnergyConstants',
    'EnergyMeter',
    'EnergyReport',
    'LayerEnergy',
    'layer_energy_mj',
    'plot_firing_rates',
    'render_markdown',
    'write_report',
]

"""Firing statistics of spiking neurons.

:class:`FiringRateMonitor` hooks every :class:`~sdt_dense.models.neurons.SFANeuron` and every
:class:`~sdt_dense.models.neurons.LIFNeuron` of a model (by module name) and accumulates, over any
number of forward passes, what each neuron emitted:

* the **mean integer count** per element (the "firing rate" of this line of work, in ``[0, D]``);
  for a LIF neuron, the number of spikes over its ``T`` real timesteps, in ``[0, T]``;
* the **binary firing rate** = mean count / number of timesteps (``D`` virtual ones; the eval
  ceiling for a neuron built with ``eval_ceiling``, which emits that many binary slices; ``T`` real
  ones for LIF): the probability that a binary slot spikes;
* the **fraction of non-zero outputs**, and a histogram of the counts ``0..steps``.

It works in both inference modes: an integer-mode output ``k / norm`` is multiplied back by
``norm``; a spike-driven output (binary slices ``(steps * B, *S)``) is merged back to counts
first, as is a LIF output ``(T * B, *S)``, so the statistics are per element of ``(B, *S)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from ..models.neurons import LIFNeuron, SFANeuron, get_spike_slices, merge_spike_slices

#: neuron types the analysis understands
SPIKING_NEURONS = (SFANeuron, LIFNeuron)


@dataclass
class NeuronStats:
    """Accumulated output statistics of one neuron.

    Attributes:
        name: module name in the model.
        D: the neuron's integer ceiling ``D`` (LIF: ``T``).
        steps: timesteps in force when it ran (``D``, or its eval ceiling in eval mode; LIF: ``T``
            real ones).
        norm: divisor of the count in integer mode (LIF: 1).
        calls: forward calls seen.
        numel: output elements seen (integer-mode elements, summed over calls and batch).
        count_sum: sum of the integer counts.
        nonzero: number of elements with a non-zero count.
        histogram: ``histogram[k]`` = number of elements with count ``k`` (``k = 0..steps``).
        neuron_type: ``'SFANeuron'`` or ``'LIFNeuron'``.
    """

    name: str
    D: int
    steps: int
    norm: float
    calls: int = 0
    numel: int = 0
    count_sum: int = 0
    nonzero: int = 0
    histogram: List[int] = field(default_factory=list)
    neuron_type: str = 'SFANeuron'

    @property
    def mean_count(self) -> float:
        """Mean integer spike count per element, in ``[0, steps]``."""
        return self.count_sum / self.numel if self.numel else 0.0

    @property
    def binary_firing_rate(self) -> float:
        """Mean count / ``steps``: the probability that a binary virtual-timestep slot spikes."""
        return self.mean_count / self.steps

    @property
    def nonzero_fraction(self) -> float:
        """Fraction of elements that emitted at least one spike."""
        return self.nonzero / self.numel if self.numel else 0.0

    def to_dict(self) -> dict:
        """JSON-ready row (the derived rates included)."""
        return dict(
            name=self.name,
            D=self.D,
            steps=self.steps,
            norm=self.norm,
            calls=self.calls,
            numel=self.numel,
            count_sum=self.count_sum,
            nonzero=self.nonzero,
            mean_count=self.mean_count,
            binary_firing_rate=self.binary_firing_rate,
            nonzero_fraction=self.nonzero_fraction,
            histogram=list(self.histogram),
            neuron_type=self.neuron_type,
        )


def output_counts(neuron: nn.Module, output: Tensor) -> Tensor:
    """Integer spike counts ``(B, *S)`` behind a neuron output of either inference mode.

    Args:
        neuron: the neuron that produced ``output`` (supplies ``norm``, or ``T`` for LIF).
        output: integer-mode ``(B, *S)`` values ``k / norm``, spike-driven binary slices
            ``(steps * B, *S)`` carrying a ``SpikeSlices`` tag, or LIF spikes ``(T * B, *S)``.
    """
    if isinstance(neuron, LIFNeuron):  # spikes over T real timesteps: count them per element
        return output.detach().unflatten(0, (neuron.T, -1)).sum(0).float()
    tag = get_spike_slices(output)
    norm = tag.norm if tag is not None else neuron.norm
    # k / norm * norm is not exact in floating point for every norm; the count is an integer.
    return torch.round(merge_spike_slices(output).detach().float() * norm)


class FiringRateMonitor:
    """Context manager accumulating :class:`NeuronStats` for every SFA neuron of ``model``.

    Example::

        with FiringRateMonitor(model) as monitor:
            for batch in loader:
                model.test_step(batch)
        for row in monitor.rows():
            print(row.name, row.mean_count, row.binary_firing_rate)

    Args:
        model: any module; every submodule that is an :class:`SFANeuron` or a
            :class:`~sdt_dense.models.neurons.LIFNeuron` (or a subclass) is hooked.

    Raises:
        ValueError: ``model`` has no spiking neuron (nothing could be measured).
    """

    def __init__(self, model: nn.Module) -> None:
        self.neurons: Dict[str, nn.Module] = {
            name: m for name, m in model.named_modules() if isinstance(m, SPIKING_NEURONS)
        }
        if not self.neurons:
            raise ValueError(
                f'{type(model).__name__} contains no spiking neuron (SFANeuron or LIFNeuron) to monitor'
            )
        self._stats: Dict[str, NeuronStats] = {}
        self._handles: list = []

    def __enter__(self) -> 'FiringRateMonitor':
        for name, neuron in self.neurons.items():
            self._handles.append(neuron.register_forward_hook(self._make_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _make_hook(self, name: str):
        def hook(module: nn.Module, args, output: Tensor) -> None:
            self._record(name, module, output)

        return hook

    def _record(self, name: str, neuron: nn.Module, output: Tensor) -> None:
        lif = isinstance(neuron, LIFNeuron)
        steps = neuron.T if lif else neuron.ceiling
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = NeuronStats(
                name,
                steps if lif else neuron.D,
                steps,
                neuron.norm,
                histogram=[0] * (steps + 1),
                neuron_type=type(neuron).__name__,
            )
        elif stats.steps != steps:
            # Train-mode (ceiling D) and eval-mode (eval_ceiling) counts must not be mixed.
            raise RuntimeError(
                f'neuron {name!r} ran with ceiling {steps} after {stats.steps}; '
                'measure train and eval mode separately'
            )
        counts = output_counts(neuron, output).flatten()
        hist = torch.bincount(counts.long(), minlength=steps + 1)
        if hist.numel() > steps + 1:
            raise RuntimeError(f'neuron {name!r} emitted a count above its ceiling {steps}')
        stats.calls += 1
        stats.numel += counts.numel()
        # Integer accumulation: exact for any number of images.
        stats.count_sum += int((hist * torch.arange(steps + 1, device=hist.device)).sum())
        stats.nonzero += int(counts.numel() - hist[0])
        stats.histogram = [a + int(b) for a, b in zip(stats.histogram, hist.tolist())]

    def rows(self) -> List[NeuronStats]:
        """Statistics of every neuron that ran, in module order."""
        return [self._stats[n] for n in self.neurons if n in self._stats]

    def stats(self, name: str) -> Optional[NeuronStats]:
        """Statistics of the neuron called ``name`` (``None`` if it has not run)."""
        return self._stats.get(name)

    def reset(self) -> None:
        """Forget everything accumulated so far (the hooks stay)."""
        self._stats.clear()


def mean_firing_rate(rows: List[NeuronStats]) -> Dict[str, float]:
    """Element-weighted mean over neurons: total count / total elements (``mean_count``), the
    corresponding binary rate (total count / total binary slots) and the non-zero fraction."""
    numel = sum(r.numel for r in rows)
    if not numel:
        return dict(mean_count=0.0, binary_firing_rate=0.0, nonzero_fraction=0.0)
    counts = sum(r.count_sum for r in rows)
    return dict(
        mean_count=counts / numel,
        binary_firing_rate=counts / sum(r.numel * r.steps for r in rows),
        nonzero_fraction=sum(r.nonzero for r in rows) / numel,
    )

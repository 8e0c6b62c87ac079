"""Per-stage firing rates logged as scalars during training, with a warning on collapse or
saturation.

The hook finds the spiking neurons of the model by class name (``neuron_types``, by default the
two neurons of ``sdt_dense.models.neurons``: ``SFANeuron`` and ``LIFNeuron``, subclasses
included) and reads what they need through module attributes (``norm`` and ``ceiling`` of an SFA
neuron, ``T`` and ``multi_step`` of a LIF neuron), so ``sdt_dense.engine`` never imports the
models. Neurons are grouped into stages by :func:`neuron_stage`.
"""

from __future__ import annotations

import logging
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import Tensor, nn

#: class names of the spiking neurons the hook measures (``sdt_dense.models.neurons``)
DEFAULT_NEURON_TYPES: Tuple[str, ...] = ('SFANeuron', 'LIFNeuron')


def neuron_stage(name: str) -> str:
    """The stage a neuron belongs to, from its module name.

    The name up to and including its first purely numeric component (the index of a module
    list), or, when there is none, the name of the neuron's parent module. Examples:
    ``backbone.stages.3.0.attn.q_neuron -> backbone.stages.3``,
    ``backbone.downsamples.1.neuron -> backbone.downsamples.1``,
    ``backbone.conv_stages.0.1.conv1.neuron -> backbone.conv_stages.0`` (Large),
    ``backbone.blocks.5.mlp.fc1.neuron -> backbone.blocks.5`` (Large: one stage per block),
    ``rpn_head.rpn_conv.neuron -> rpn_head.rpn_conv``.
    """
    parts = name.split('.')
    for i, part in enumerate(parts[:-1]):  # the neuron's own name is never the stage
        if part.isdigit():
            return '.'.join(parts[: i + 1])
    return '.'.join(parts[:-1]) or name


def is_spiking_neuron(module: nn.Module, neuron_types: Sequence[str] = DEFAULT_NEURON_TYPES) -> bool:
    """Whether ``module``'s class or one of its bases is named in ``neuron_types``."""
    return any(cls.__name__ in neuron_types for cls in type(module).__mro__)


def neuron_steps(neuron: nn.Module) -> int:
    """Binary timesteps behind one count: the ceiling in force (SFA: ``D``, or the eval ceiling
    in eval mode) or the ``T`` real timesteps of a multi-step (LIF) neuron."""
    if getattr(neuron, 'multi_step', False):
        return int(neuron.T)
    return int(neuron.ceiling)


def integer_counts(neuron: nn.Module, output: Tensor) -> Tensor:
    """Integer spike counts ``(B, *S)`` behind an integer-mode output.

    Args:
        neuron: the neuron (its ``norm``; a multi-step neuron's ``T``).
        output: SFA integer mode ``(B, *S)`` values ``k / norm``; a multi-step (LIF) neuron's
            binary spikes ``(T * B, *S)``, summed over the ``T`` timesteps.
    """
    output = output.detach()
    if getattr(neuron, 'multi_step', False):
        return output.unflatten(0, (int(neuron.T), -1)).sum(0).float()
    # k / norm * norm is not exact in floating point for every norm; the count is an integer.
    return torch.round(output.float() * float(neuron.norm))


@HOOKS.register_module()
class FiringRateHook(Hook):
    """Log every stage's firing rate through the runner's visualizer every ``interval``
    iterations, and warn (once per stage) when a stage stops firing or saturates.

    On the iterations it logs (every ``interval``-th, counted from 1 as the training log), the
    hook accumulates, for each stage, the integer counts of all of its neurons' outputs during
    that iteration's forward pass and writes two scalars per stage with
    ``runner.visualizer.add_scalars`` (so to every backend the config chooses: local
    ``scalars.json``, TensorBoard, W&B), at step ``iteration``:

    * ``firing_rate/<stage>``: the **binary firing rate** = total count / total binary slots
      (``sum_n sum_elements count / sum_n numel_n * steps_n``, ``steps`` = ``D`` for SFA, ``T``
      for LIF), in ``[0, 1]``: 0 is a silent stage, 1 a stage saturated at ``D``;
    * ``spike_count/<stage>``: the **mean integer count** per element, in ``[0, D]``.

    Under distributed training the sums are reduced over ranks first. Nothing is recorded on
    other iterations (the forward hooks return at once).

    Args:
        interval: log every ``interval`` training iterations.
        low_rate: warn once per stage when its binary rate is below this (a collapse to zero
            firing); ``None`` disables the check.
        high_rate: warn once per stage when its binary rate is above this (saturation: nearly
            every element at the ceiling ``D``); ``None`` disables the check.
        include: regular expression (``re.search``) a neuron's module name must match to be
            measured; default: the backbone's neurons. ``None``: every neuron of the model.
        neuron_types: class names of the neurons to measure (a subclass counts as its base).
    """

    priority = 'NORMAL'

    def __init__(
        self,
        interval: int = 50,
        low_rate: Optional[float] = 0.01,
        high_rate: Optional[float] = 0.99,
        include: Optional[str] = r'^backbone\.',
        neuron_types: Sequence[str] = DEFAULT_NEURON_TYPES,
    ) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got {interval!r}')
        for key, value in (('low_rate', low_rate), ('high_rate', high_rate)):
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f'{key} is a binary firing rate in [0, 1], got {value!r}')
        if low_rate is not None and high_rate is not None and low_rate >= high_rate:
            raise ValueError(f'low_rate ({low_rate}) must be below high_rate ({high_rate})')
        self.interval = interval
        self.low_rate, self.high_rate = low_rate, high_rate
        self.include = re.compile(include) if include is not None else None
        self.neuron_types = tuple(neuron_types)
        self._handles: List = []
        self._stages: List[str] = []
        # stage -> tensor([count_sum, numel, binary slots]) of the iteration being recorded
        self._sums: Dict[str, Tensor] = {}
        self._recording = False
        self._warned: Dict[str, set] = dict(low=set(), high=set())

    # -- neuron hooks ------------------------------------------------------------------------

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name, module in model.named_modules():
            if not is_spiking_neuron(module, self.neuron_types):
                continue
            if self.include is not None and not self.include.search(name):
                continue
            stage = neuron_stage(name)
            if stage not in self._stages:
                self._stages.append(stage)
            self._handles.append(module.register_forward_hook(self._make_hook(stage)))
        if not self._handles:
            pattern = self.include.pattern if self.include is not None else None
            raise ValueError(
                f'FiringRateHook: {type(model).__name__} has no spiking neuron '
                f'({", ".join(self.neuron_types)}) whose name matches include='
                f'{pattern!r}; set include=None to measure every neuron'
            )

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _make_hook(self, stage: str):
        def hook(module: nn.Module, args, output: Tensor) -> None:
            if not self._recording or not module.training:
                return
            counts = integer_counts(module, output)
            row = torch.stack(
                [
                    counts.sum(),
                    counts.new_tensor(counts.numel()),
                    counts.new_tensor(counts.numel() * neuron_steps(module)),
                ]
            )
            row = row.double()
            self._sums[stage] = self._sums[stage] + row if stage in self._sums else row

        return hook

    # -- logging -----------------------------------------------------------------------------

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._recording = self.every_n_train_iters(runner, self.interval)
        self._sums.clear()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._recording:
            return
        self._recording = False
        rates = self.stage_rates()
        iteration = runner.iter + 1  # 1-based, as the training log
        scalars = {}
        for stage, (mean_count, binary_rate) in rates.items():
            scalars[f'firing_rate/{stage}'] = binary_rate
            scalars[f'spike_count/{stage}'] = mean_count
        if scalars:
            runner.visualizer.add_scalars(scalars, step=iteration)
        for stage, (_, rate) in rates.items():
            self._check(stage, rate, iteration)

    def stage_rates(self) -> Dict[str, Tuple[float, float]]:
        """``{stage: (mean count, binary firing rate)}`` of the iteration just recorded, reduced
        over ranks (stages that did not run are left out)."""
        stages = [s for s in self._stages if s in self._sums]
        if get_world_size() > 1:
            # every rank runs the same stages; one all-reduce for all of them
            stacked = torch.stack([self._sums[s] for s in stages]) if stages else None
            if stacked is not None:
                all_reduce(stacked, op='sum')
                self._sums = dict(zip(stages, stacked))
        out = {}
        for stage in stages:
            count_sum, numel, slots = (float(v) for v in self._sums[stage].cpu())
            out[stage] = (count_sum / numel if numel else 0.0, count_sum / slots if slots else 0.0)
        return out

    def _check(self, stage: str, rate: float, iteration: int) -> None:
        if self.low_rate is not None and rate < self.low_rate and stage not in self._warned['low']:
            self._warned['low'].add(stage)
            print_log(
                f'FiringRateHook: stage {stage} fires at binary rate {rate:.4g} < low_rate '
                f'{self.low_rate:g} at iteration {iteration}: its neurons are (nearly) '
                'silent, a collapse to zero firing (this warning is shown once per stage)',
                logger='current',
                level=logging.WARNING,
            )
        if self.high_rate is not None and rate > self.high_rate and stage not in self._warned['high']:
            self._warned['high'].add(stage)
            print_log(
                f'FiringRateHook: stage {stage} fires at binary rate {rate:.4g} > high_rate '
                f'{self.high_rate:g} at iteration {iteration}: its neurons saturate at the '
                'ceiling D (this warning is shown once per stage)',
                logger='current',
                level=logging.WARNING,
            )

"""Exact operation counts of spike-driven inference, per synaptic layer.

The model runs once (or several times) in spike-driven mode
(:func:`sdt_dense.deploy.spike_driven`) and every synaptic layer reports what it really computes:

* **Spike input** (the layer follows an SFA neuron and receives binary slices ``s_1..s_D``): every
  binary spike adds one weight to each output it reaches, so the accumulates (ACs) are
  ``sum over input spikes of fan-out(spike)``. For a convolution the fan-out of an input position
  depends on padding, stride, dilation and groups; it is counted exactly as
  ``conv(s, ones_like(W)).sum()`` (computed in float64 on the merged counts, which is the same by
  linearity). For a Linear it is ``spikes * out_features``. The bias (and folded BatchNorm shift)
  is added once per output and is not counted, as BN folding is free in the energy convention.
* **Real input** (the stem on pixels, predictors on real features): charged as MACs, equal to the
  dense MACs of the layer.
* **Multi-step LIF models** (:class:`~sdt_dense.models.neurons.LIFNeuron`, ``T`` real timesteps folded
  into the batch): a layer after a LIF neuron gets binary spikes ``(T * B, *S)`` (tagged
  :class:`~sdt_dense.models.neurons.TimeSteps`) and accumulates for every spike of every timestep;
  ``dense_macs`` and ``input_numel`` are per timestep and ``input_count_sum`` counts the spikes of
  all ``T``, so ``mean_firing_rate * dense_macs`` is the paper's ``fr * T * FLOPs``. The stem on the
  image repeated over ``T`` (tagged ``repeated``) computes the same result ``T`` times and is
  charged once.
* **Spike-matrix products** of the attention (:class:`~sdt_dense.models.layers.SpikeMatMul`), in
  count units (an operand value ``c / norm`` stands for ``c`` binary spikes):

  - ``k^T v`` (both operands spikes): the product of two spike trains is computed as AND of spike
    pairs + accumulate of each coincidence; ``k_ni * v_nj`` coincidences contribute to
    ``(k^T v)_ij``, so ``exact_acs = sum_{n,i,j} k_ni v_nj = sum_n (sum_i k_ni)(sum_j v_nj)``.
  - ``q (k^T v)``: ``k^T v`` is an integer matrix of coincidence counts; each q spike at
    ``(n, i)`` adds the row ``(k^T v)_i`` to the output: ``exact_acs = (sum q) * d_v``. The
    constant attention scale is absorbed into the next neuron's threshold and not counted.

  ``input_count_sum``/``input_numel`` describe the first operand (``k^T``, resp. ``q``), so that
  ``mean_firing_rate * dense_macs`` is the usual SOP estimate (an upper bound of the exact count for
  ``k^T v``, equal to it for ``q (k^T v)``); ``dense_macs`` is the MAC count of the dense product
  (FLOPs convention).

Rows are per module name, accumulated over calls and forward passes; ``dense_macs`` and the counts
are summed over the batch.
"""
from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..models.layers import SpikeDrivenSelfAttention, SpikeMatMul
from ..models.neurons import get_time_steps
from ..models.neurons import get_spike_slices, merge_spike_slices
from ..deploy.spike_driven import SYNAPTIC_TYPES, spike_driven

__all__ = ['SynapticLayerOps', 'SynapticOpCounter', 'count_synaptic_ops', 'conv_exact_acs',
           'spike_matmul_operands']


@dataclass
class SynapticLayerOps:
    """Operation count of one synaptic layer (accumulated over its calls).

    Attributes:
        name: module name in the model.
        type: ``'Conv2d'``, ``'Conv1d'``, ``'ConvTranspose2d'``, ``'ConvTranspose1d'``,
            ``'Linear'`` or ``'SpikeMatMul'``.
        input_kind: ``'spike'`` (follows an SFA neuron / spike matmul), ``'real'``, or ``'mixed'``
            if a layer saw both over its calls.
        dense_macs: MACs of the dense layer for the inputs it got (FLOPs convention).
        input_count_sum: sum of input spike counts in integer units (0 for real inputs).
        input_numel: number of input elements (batch included, one virtual time step).
        exact_acs: accumulates performed in spike-driven mode (0 for real inputs).
        mac_ops: MACs charged for real-valued inputs (their ``dense_macs``), else 0.
        calls: number of forward calls.
    """

    name: str
    type: str
    input_kind: str
    dense_macs: int = 0
    input_count_sum: float = 0.
    input_numel: int = 0
    exact_acs: int = 0
    mac_ops: int = 0
    calls: int = 0

    @property
    def mean_firing_rate(self) -> float:
        """Mean spike count per input element (the paper's "firing rate"; 0 for real inputs).
        Divide by ``D`` for the binary firing rate per virtual time step."""
        return self.input_count_sum / self.input_numel if self.input_numel else 0.

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d['mean_firing_rate'] = self.mean_firing_rate
        return d


# ---------------------------------------------------------------------------------------------
# Counting rules


def conv_exact_acs(module: nn.Module, counts: Tensor) -> int:
    """Accumulates of a (transposed) convolution driven by spike ``counts`` ``(B, C_in, *S)``:
    ``sum over inputs of count * fan-out``, exact at borders, strides, dilations and groups.

    Equals ``conv(counts, ones_like(weight)).sum()``. With all-ones weights every output channel of
    a group is the same, so the input channels of each group are summed first and one channel per
    group is convolved (float64: exact for any realistic count).
    """
    groups = module.groups
    transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d))
    out_per_group = module.out_channels // groups
    x = counts.detach().to(torch.float64)
    x = x.unflatten(1, (groups, -1)).sum(2)  # (B, groups, *S)
    ones = x.new_ones((groups, 1, *module.kernel_size))
    if transposed:
        fn = F.conv_transpose1d if x.dim() == 3 else F.conv_transpose2d
        y = fn(x, ones, None, module.stride, module.padding, module.output_padding, groups,
               module.dilation)
    else:
        padding = module.padding
        if module.padding_mode != 'zeros':  # a padded border copies inputs: count them too
            x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        fn = F.conv1d if x.dim() == 3 else F.conv2d
        y = fn(x, ones, None, module.stride, padding, module.dilation, groups)
    return int(round(y.sum().item())) * out_per_group


def _dense_macs(module: nn.Module, x_numel: int, out_numel: int) -> int:
    """Dense MACs (FLOPs convention) of ``module`` for ``x_numel`` input elements giving
    ``out_numel`` output elements."""
    if isinstance(module, nn.Linear):
        return x_numel * module.out_features
    kernel = math.prod(module.kernel_size)
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        # each input element is multiplied into (out / groups) * kernel outputs
        return x_numel * (module.out_channels // module.groups) * kernel
    return out_numel * (module.in_channels // module.groups) * kernel


def spike_matmul_operands(
        model: nn.Module) -> Dict[nn.Module, Tuple[float, Optional[float], int]]:
    """Per :class:`SpikeMatMul` of ``model``: the norms turning its operand values back into spike
    counts (``None``: a real-valued operand) and the real timesteps folded into the operands'
    batch (LIF: ``T``; SFA: 1).

    Raises:
        ValueError: a :class:`SpikeMatMul` outside a :class:`SpikeDrivenSelfAttention` (the spike
            units of its operands are unknown).
    """
    operands: Dict[nn.Module, Tuple[float, Optional[float], int]] = {}
    for m in model.modules():
        if isinstance(m, SpikeDrivenSelfAttention):
            steps = getattr(m.q_neuron, 'T', 1)
            operands[m.kv_matmul] = (m.k_neuron.norm, m.v_neuron.norm, steps)  # k^T v
            operands[m.qkv_matmul] = (m.q_neuron.norm, None, steps)  # q (k^T v)
    for name, m in model.named_modules():
        if isinstance(m, SpikeMatMul) and m not in operands:
            raise ValueError(f'SpikeMatMul {name!r} is not part of a SpikeDrivenSelfAttention; '
                             f'cannot tell the spike units of its operands')
    return operands


class SynapticOpCounter:
    """Context manager that counts synaptic operations over any number of forward passes.

    The model runs spike-driven inside the block (and under ``torch.no_grad``)::

        with SynapticOpCounter(model) as counter:
            for batch in loader:
                model(batch)
        rows = counter.rows()

    Args:
        model: any model with SFA (or LIF) neurons. Every ``Conv1d/Conv2d/ConvTranspose/Linear``
            and every :class:`SpikeMatMul` of an attention module is counted.

    Raises:
        ValueError: if the model has a :class:`SpikeMatMul` outside a
            :class:`SpikeDrivenSelfAttention` (its operands' spike units are unknown).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._rows: Dict[str, SynapticLayerOps] = OrderedDict()
        self._handles: List[RemovableHandle] = []
        self._stack = None
        self._matmul_norms = spike_matmul_operands(model)

    def _row(self, name: str, module: nn.Module, kind: str) -> SynapticLayerOps:
        row = self._rows.get(name)
        if row is None:
            row = self._rows[name] = SynapticLayerOps(name, type(module).__name__, kind)
            if isinstance(module, SYNAPTIC_TYPES):  # report the torch base type for wrappers
                row.type = next(t.__name__ for t in SYNAPTIC_TYPES if isinstance(module, t))
        elif row.input_kind != kind:
            row.input_kind = 'mixed'
        row.calls += 1
        return row

    def _synaptic_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            x = args[0]
            tag, time = get_spike_slices(x), get_time_steps(x)
            if tag is None and (time is None or time.repeated):
                row = self._row(name, module, 'real')
                once = time.steps if time is not None else 1  # T equal copies: computed once
                macs = _dense_macs(module, x.numel() // once, output.numel() // once)
                row.dense_macs += macs
                row.mac_ops += macs
                row.input_numel += x.numel() // once
                return
            row = self._row(name, module, 'spike')
            steps = tag.steps if tag is not None else time.steps
            counts = x.unflatten(0, (steps, -1)).sum(0)  # (B, ...) integer counts
            row.input_numel += counts.numel()
            total = int(round(counts.double().sum().item()))
            row.input_count_sum += total
            # (B, ...) per timestep: the spike-driven hook already merged an SFA layer's output;
            # a LIF layer's output still has the T timesteps
            out_numel = output.numel() * counts.shape[0] // output.shape[0]
            row.dense_macs += _dense_macs(module, counts.numel(), out_numel)
            if isinstance(module, nn.Linear):
                row.exact_acs += total * module.out_features
            else:
                row.exact_acs += conv_exact_acs(module, counts)
        return hook

    def _matmul_hook(self, name: str):
        a_norm, b_norm, steps = self._matmul_norms_by_name[name]

        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            a, b = args[0], args[1]
            row = self._row(name, module, 'spike')
            # per timestep (LIF operands hold T of them); the counts below cover all of them,
            # one product per timestep
            row.dense_macs += output.numel() * a.shape[-1] // steps
            a_counts = (merge_spike_slices(a).double() * a_norm).round()
            row.input_numel += a.numel() // steps
            a_sum = int(a_counts.sum().item())
            row.input_count_sum += a_sum
            if b_norm is None:  # spikes x integer matrix: each spike adds a row of b
                row.exact_acs += a_sum * b.shape[-1]
                return
            b_counts = (merge_spike_slices(b).double() * b_norm).round()
            # AND + accumulate of spike pairs:
            # sum_{i,k} sum_j a_ij b_jk = sum_j (sum_i a_ij)(sum_k b_jk)
            coincidences = (a_counts.sum(-2) * b_counts.sum(-1)).sum()
            row.exact_acs += int(round(coincidences.item()))
        return hook

    def __enter__(self) -> 'SynapticOpCounter':
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(torch.no_grad())
        self._stack.enter_context(spike_driven(self.model))
        names = {}
        for name, m in self.model.named_modules():
            names.setdefault(m, name)
        self._matmul_norms_by_name = {names[m]: v for m, v in self._matmul_norms.items()}
        for m, name in names.items():
            if isinstance(m, SYNAPTIC_TYPES):
                self._handles.append(m.register_forward_hook(self._synaptic_hook(name)))
            elif isinstance(m, SpikeMatMul):
                self._handles.append(m.register_forward_hook(self._matmul_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._stack.close()

    def rows(self) -> List[SynapticLayerOps]:
        """Per-layer rows in order of first call."""
        return list(self._rows.values())

    def reset(self) -> None:
        self._rows.clear()


def count_synaptic_ops(model: nn.Module, *args, **kwargs) -> List[SynapticLayerOps]:
    """Run ``model(*args, **kwargs)`` once spike-driven under ``torch.no_grad`` and return one
    :class:`SynapticLayerOps` row per synaptic layer that ran (accumulated over repeated calls)."""
    with SynapticOpCounter(model) as counter:
        model(*args, **kwargs)
    return counter.rows()


"""Exact operation counts of spike-driven inference, per synaptic layer.

The model runs in spike-driven mode (:func:`sdt_dense.deploy.spike_driven`) and every synaptic
layer reports what it computes, one :class:`SynapticLayerOps` row per module name (accumulated over
calls and forward passes, summed over the batch):

* spike input (binary slices ``s_1..s_D`` after an SFA neuron): accumulates
  ``exact_acs = sum over input spikes of fan-out(spike)``, for a conv ``conv(s, ones_like(W)).sum()``
  (exact at padding, strides, dilation, groups; float64 on the merged counts), for a Linear
  ``spikes * out_features``; biases and folded BN shifts are not counted;
* real input (the stem on pixels, predictors on real features): ``mac_ops = dense_macs``;
* the attention's :class:`~sdt_dense.models.layers.SpikeMatMul`: ``k^T v`` counts the coinciding
  spike pairs of all slice pairs, ``sum_n (sum_i k_ni)(sum_j v_nj)``; ``q (k^T v)`` counts
  ``(q spikes) * d_v`` (:func:`executed_matmul_acs`, equal to :func:`analytic_matmul_acs`);
* multi-step LIF models (``T`` real timesteps folded into the batch, tagged
  :class:`~sdt_dense.models.neurons.TimeSteps`): every spike of every timestep; ``dense_macs`` is
  per timestep; the stem on an image repeated over ``T`` is charged once, real inputs whose steps
  differ (event bins) once per step.

``mean_firing_rate * dense_macs`` is the usual SOP estimate. The fields and the conventions:
docs/spike_driven.md ("Exact operation counts") and docs/energy.md ("Multi-step LIF models").
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

from ..deploy.spike_driven import SYNAPTIC_TYPES, spike_driven
from ..models.layers import SpikeMatMul
from ..models.neurons import get_spike_slices, get_time_steps, merge_spike_slices, plain_tensor

__all__ = [
    'SynapticLayerOps',
    'SynapticOpCounter',
    'count_synaptic_ops',
    'conv_exact_acs',
    'spike_matmul_operands',
    'executed_matmul_acs',
    'analytic_matmul_acs',
    'matmul_operand_slices',
]


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
    input_count_sum: float = 0.0
    input_numel: int = 0
    exact_acs: int = 0
    mac_ops: int = 0
    calls: int = 0

    @property
    def mean_firing_rate(self) -> float:
        """Mean spike count per input element (the paper's "firing rate"; 0 for real inputs).
        Divide by ``D`` for the binary firing rate per virtual time step."""
        return self.input_count_sum / self.input_numel if self.input_numel else 0.0

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
        y = fn(x, ones, None, module.stride, module.padding, module.output_padding, groups, module.dilation)
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


def spike_matmul_operands(model: nn.Module) -> Dict[nn.Module, Tuple[float, Optional[float], int]]:
    """Per attention :class:`SpikeMatMul` of ``model``: the norms turning its operand values back
    into spike counts (``None``: a real-valued operand) and the real timesteps folded into the
    operands' batch (LIF: ``T``; SFA: 1).

    Needed only for operands that are not spike slices (multi-step LIF spikes): spike-driven SFA
    operands carry their units in their tag. An attention is recognised by its attributes
    ``q_neuron``, ``k_neuron``, ``v_neuron`` (neurons), ``kv_matmul`` (``k^T v``) and
    ``qkv_matmul`` (``q (k^T v)``), the layout of every attention of the project.
    """
    operands: Dict[nn.Module, Tuple[float, Optional[float], int]] = {}
    for m in model.modules():
        kv, qkv = getattr(m, 'kv_matmul', None), getattr(m, 'qkv_matmul', None)
        neurons = [getattr(m, n, None) for n in ('q_neuron', 'k_neuron', 'v_neuron')]
        if (
            isinstance(kv, SpikeMatMul)
            and isinstance(qkv, SpikeMatMul)
            and all(hasattr(n, 'norm') for n in neurons)
        ):
            q, k, v = neurons
            steps = getattr(q, 'T', 1)
            operands[kv] = (k.norm, v.norm, steps)  # k^T v
            operands[qkv] = (q.norm, None, steps)  # q (k^T v)
    return operands


def matmul_operand_slices(x: Tensor) -> Optional[Tensor]:
    """The binary slices ``(steps, B, ..., r, c)`` of a spike-slice matmul operand (an ordinary
    tensor), or ``None`` for an operand that is not spike slices."""
    tag = get_spike_slices(x)
    if tag is None:
        return None
    return plain_tensor(x).detach().unflatten(0, (tag.steps, -1))


def executed_matmul_acs(
    a_slices: Optional[Tensor], b_slices: Optional[Tensor], a_shape: torch.Size, b_shape: torch.Size
) -> int:
    """Accumulates that :func:`~sdt_dense.models.layers.spike_matmul.spike_slices_matmul`
    performs on binary slices ``(steps, B, ..., r, c)`` (``None``: that operand is not spikes).

    * both binary: one AND + accumulate per coinciding spike pair, over all slice pairs:
      ``sum_{i,j} sum_{n,m,p} a_i[n,m] b_j[m,p] = sum_m (sum_{i,n} a_i[n,m])(sum_{j,p} b_j[m,p])``
      (per batch entry, summed over the broadcast batch);
    * one binary: each spike selects a row (column) of the other operand, ``spikes * length``,
      times the broadcast batch entries it serves.

    Args:
        a_slices, b_slices: binary slices of the operands, or ``None``.
        a_shape, b_shape: the operands' shapes per slice, ``(B, ..., n, m)`` and ``(B, ..., m, p)``.
    """
    batch = torch.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    if a_slices is not None and b_slices is not None:
        a_cols = a_slices.double().sum((0, -2))  # (B, ..., m): spikes in column m of a over slices
        b_rows = b_slices.double().sum((0, -1))  # (B, ..., m)
        return int(round((a_cols * b_rows).sum().item()))
    if a_slices is not None:  # each spike of a adds a row of b (length p)
        per_batch = a_slices.double().sum((0, -2, -1))
        return int(round(per_batch.broadcast_to(batch).sum().item())) * b_shape[-1]
    per_batch = b_slices.double().sum((0, -2, -1))  # each spike of b adds a column of a (length n)
    return int(round(per_batch.broadcast_to(batch).sum().item())) * a_shape[-2]


def analytic_matmul_acs(a_counts: Tensor, b_counts: Optional[Tensor], b_cols: int) -> int:
    """Accumulates of a spike-matrix product derived from integer spike counts.

    Args:
        a_counts: integer counts of the first operand ``(B, ..., n, m)``.
        b_counts: integer counts of the second operand ``(B, ..., m, p)``, or ``None`` for a
            weight-like (accumulated, real-valued) second operand.
        b_cols: ``p``, the row length of the second operand.

    Returns:
        ``sum_m (sum_n a_nm)(sum_p b_mp)`` (AND + accumulate of spike pairs), or
        ``(sum a) * p`` when only ``a`` is spikes.
    """
    if b_counts is None:
        return int(round(a_counts.double().sum().item())) * b_cols
    coincidences = (a_counts.double().sum(-2) * b_counts.double().sum(-1)).sum()
    return int(round(coincidences.item()))


class SynapticOpCounter:
    """Context manager that counts synaptic operations over any number of forward passes.

    The model runs spike-driven inside the block (and under ``torch.no_grad``)::

        with SynapticOpCounter(model) as counter:
            for batch in loader:
                model(batch)
        rows = counter.rows()

    Args:
        model: any model with SFA (or LIF) neurons. Every ``Conv1d/Conv2d/ConvTranspose/Linear``
            and every :class:`SpikeMatMul` is counted.

    Raises:
        ValueError: during a forward pass, if a :class:`SpikeMatMul` gets operands that are not
            spike slices and is not part of an attention (:func:`spike_matmul_operands`), so
            the spike units of its operands are unknown.
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
            x = plain_tensor(x)  # count on the values; no spike-tensor bookkeeping needed here
            if tag is None and (time is None or time.repeated or time.real):
                row = self._row(name, module, 'real')
                # T equal copies: computed once; T different real steps (events): T times
                once = time.steps if time is not None and time.repeated else 1
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
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            a, b = args[0], args[1]
            a_sl, b_sl = matmul_operand_slices(a), matmul_operand_slices(b)
            if a_sl is None and b_sl is None:
                return self._count_matmul_analytic(name, module, a, b, output)
            # spike-driven: count on the binary operands as SpikeMatMul multiplies them
            row = self._row(name, module, 'spike')
            a_shape = a_sl.shape[1:] if a_sl is not None else a.shape
            b_shape = b_sl.shape[1:] if b_sl is not None else b.shape
            row.dense_macs += output.numel() * a_shape[-1]
            spikes = a_sl if a_sl is not None else b_sl
            row.input_numel += spikes[0].numel()
            row.input_count_sum += int(round(spikes.double().sum().item()))
            row.exact_acs += executed_matmul_acs(a_sl, b_sl, a_shape, b_shape)

        return hook

    def _count_matmul_analytic(
        self, name: str, module: nn.Module, a: Tensor, b: Tensor, output: Tensor
    ) -> None:
        """Operands that are not spike slices (LIF spikes, binary per timestep): counts from
        their values and the attention's neuron units."""
        if module not in self._matmul_norms:
            raise ValueError(
                f'SpikeMatMul {name!r} got operands that are not spike slices and is not part '
                f'of an attention (q/k/v_neuron, kv_matmul, qkv_matmul); cannot tell the spike '
                f"units of its operands. In spike-driven mode feed it the neurons' slices "
                f'(do not merge them).'
            )
        a_norm, b_norm, steps = self._matmul_norms[module]
        row = self._row(name, module, 'spike')
        # per timestep (LIF operands hold T of them); the counts below cover all of them,
        # one product per timestep
        row.dense_macs += output.numel() * a.shape[-1] // steps
        a_counts = (merge_spike_slices(a).double() * a_norm).round()
        row.input_numel += a.numel() // steps
        row.input_count_sum += int(a_counts.sum().item())
        b_counts = None if b_norm is None else (merge_spike_slices(b).double() * b_norm).round()
        row.exact_acs += analytic_matmul_acs(a_counts, b_counts, b.shape[-1])

    def __enter__(self) -> 'SynapticOpCounter':
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(torch.no_grad())
        # (LIF models have no SFA neuron to switch; the guards still apply)
        self._stack.enter_context(spike_driven(self.model, require_sfa=False))
        names = {}
        for name, m in self.model.named_modules():
            names.setdefault(m, name)
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

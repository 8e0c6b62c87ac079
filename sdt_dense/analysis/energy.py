"""Energy model of a spiking network (45 nm convention of the spiking-Transformer literature).

Per synaptic layer and image, with ``E_MAC = 4.6 pJ`` and ``E_AC = 0.9 pJ`` (:class:`EnergyConstants`):

* real-valued input (the stem on pixels, non-spiking head layers): ``E = E_MAC * MACs``;
* spike input: ``E = E_AC * SOPs`` with two SOP counts, ``sop_estimate = r * dense MACs`` (the
  paper's convention, ``r`` the mean integer count feeding the layer, evaluated per forward pass)
  and ``sop_exact`` (the accumulates spike-driven inference performs, :mod:`.ops`); they agree for
  1x1 stride-1 convs and Linears; attention products: ``k^T v`` estimated as
  ``r_k * r_v * dense MACs``, ``q (k^T v)`` as ``r_q * dense MACs`` (:class:`_MatMulEstimator`).

Multi-step LIF models are charged over their ``T`` real timesteps (the stem on the repeated image
once), event-camera models (:class:`~sdt_dense.models.backbones.MultiStepESpikeFormer`) for all
``T`` different frames. ``total_energy_mj`` uses ``headline_sop`` (default ``'estimate'``, to
compare with published tables); both totals are reported. Folded BatchNorm costs nothing;
additions, pooling, resizing, RoI ops and NMS are not counted. The conventions in full:
docs/energy.md; the report files: :mod:`.energy_report`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..models.layers import SpikeMatMul
from ..models.neurons import merge_spike_slices
from .firing import FiringRateMonitor, NeuronStats, mean_firing_rate
from .ops import SynapticOpCounter, matmul_operand_slices, spike_matmul_operands

SOP_MODES = ('estimate', 'exact')
PJ_PER_MJ = 1e9


@dataclass(frozen=True)
class EnergyConstants:
    """Energy per operation in picojoules.

    Defaults: 32-bit float MAC 4.6 pJ and AC 0.9 pJ in 45 nm CMOS (Horowitz, ISSCC 2014), the
    numbers used by the spiking-Transformer papers.
    """

    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    source: str = '45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014)'

    def __post_init__(self) -> None:
        for name in ('e_mac_pj', 'e_ac_pj'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite non-negative number (pJ), got {value!r}')


@dataclass
class LayerEnergy:
    """Operation counts and energy of one synaptic layer, **per image** (averaged over images).

    Attributes:
        name: module name; type: ``'Conv2d'``, ``'Conv1d'``, ``'Linear'`` or ``'SpikeMatMul'``.
        input_kind: ``'spike'`` (charged as ACs) or ``'real'`` (charged as MACs).
        calls: forward calls over all images.
        dense_macs: multiply-accumulates of the dense (non-spiking) computation.
        input_firing_rate: mean integer spike count per input element (``None`` for real input).
        mac_ops: operations charged as MACs.
        sop_estimate: ``input firing rate * dense MACs`` (0 for real input).
        sop_exact: accumulates counted in spike-driven mode (0 for real input).
        energy_mj_estimate / energy_mj_exact: ``E_MAC * mac_ops + E_AC * sop`` in mJ.
    """

    name: str
    type: str
    input_kind: str
    calls: int
    dense_macs: float
    input_firing_rate: Optional[float]
    mac_ops: float
    sop_estimate: float
    sop_exact: float
    energy_mj_estimate: float
    energy_mj_exact: float

    @property
    def exact_over_estimate(self) -> Optional[float]:
        """``sop_exact / sop_estimate`` (``None`` when the estimate is 0)."""
        return self.sop_exact / self.sop_estimate if self.sop_estimate else None

    def sop(self, mode: str) -> float:
        """SOPs of the given mode (``'estimate'`` or ``'exact'``)."""
        return self.sop_estimate if _check_mode(mode) == 'estimate' else self.sop_exact

    def energy_mj(self, mode: str) -> float:
        """Energy of the given SOP mode."""
        return self.energy_mj_estimate if _check_mode(mode) == 'estimate' else self.energy_mj_exact

    def to_dict(self, headline_sop: str = 'estimate') -> dict:
        row = asdict(self)
        row['exact_over_estimate'] = self.exact_over_estimate
        row['ac_ops'] = self.sop(headline_sop)
        row['energy_mj'] = self.energy_mj(headline_sop)
        return row


def _check_mode(mode: str) -> str:
    if mode not in SOP_MODES:
        raise ValueError(f'SOP mode must be one of {SOP_MODES}, got {mode!r}')
    return mode


def _field(row: Any, name: str) -> Any:
    try:
        return row[name] if isinstance(row, dict) else getattr(row, name)
    except (KeyError, AttributeError):
        raise KeyError(f'synaptic-op row {row!r} has no field {name!r}') from None


class EnergyAccumulator:
    """Accumulates synaptic-op rows forward pass by forward pass and turns them into energy.

    Feed it the rows of every forward pass (a :class:`~sdt_dense.analysis.ops.SynapticOpCounter`'s
    rows, reset after each pass): the SOP estimate is formed per pass, ``mean input count of that
    pass * dense MACs of that pass``, so images of different sizes each weigh with their own MACs.
    Rows are objects or dicts with the fields ``name, type, input_kind, dense_macs,
    input_count_sum, input_numel, exact_acs, mac_ops, calls``.
    """

    _SUMMED = ('dense_macs', 'input_count_sum', 'input_numel', 'exact_acs', 'mac_ops', 'calls')

    def __init__(self) -> None:
        self._layers: Dict[str, Dict[str, Any]] = {}
        self.num_images = 0
        self.passes = 0

    def add(
        self, rows: Iterable[Any], num_images: int, sop_estimates: Optional[Dict[str, float]] = None
    ) -> None:
        """Add the rows of one forward pass over ``num_images`` images.

        Args:
            rows: the pass's synaptic-op rows.
            num_images: images in the pass (the batch size).
            sop_estimates: per layer name, an SOP estimate of this pass that replaces
                ``mean count * dense MACs`` (used for the attention's spike-matrix products, see
                :class:`EnergyMeter`).
        """
        if num_images < 1:
            raise ValueError(f'num_images must be >= 1, got {num_images}')
        sop_estimates = sop_estimates or {}
        for row in rows:
            name, kind = _field(row, 'name'), _field(row, 'input_kind')
            if kind == 'mixed':
                raise ValueError(
                    f'layer {name!r} received both spike and real-valued inputs in one pass; its '
                    'SOP estimate is undefined (feed it from a neuron on every call, or from none)'
                )
            if kind not in ('spike', 'real'):
                raise ValueError(f'layer {name!r}: input_kind must be spike or real, got {kind!r}')
            acc = self._layers.get(name)
            if acc is None:
                acc = self._layers[name] = dict(
                    name=name,
                    type=_field(row, 'type'),
                    input_kind=kind,
                    sop_estimate=0.0,
                    **{k: 0 for k in self._SUMMED},
                )
            elif acc['input_kind'] != kind:
                raise ValueError(f'layer {name!r} received {kind} input after {acc["input_kind"]} input')
            for key in self._SUMMED:
                acc[key] += _field(row, key)
            if kind != 'spike':
                continue
            if name in sop_estimates:
                acc['sop_estimate'] += sop_estimates[name]
            elif _field(row, 'input_numel'):
                acc['sop_estimate'] += (
                    _field(row, 'input_count_sum') / _field(row, 'input_numel') * _field(row, 'dense_macs')
                )
        self.num_images += num_images
        self.passes += 1

    def layers(self, constants: EnergyConstants = EnergyConstants()) -> List[LayerEnergy]:
        """Per-image :class:`LayerEnergy` rows, in the order the layers first ran."""
        if not self.num_images:
            raise RuntimeError('no forward pass was added')
        n = self.num_images
        out = []
        for acc in self._layers.values():
            spike = acc['input_kind'] == 'spike'
            mac_ops = acc['mac_ops'] / n
            sop_est = acc['sop_estimate'] / n if spike else 0.0
            sop_exact = acc['exact_acs'] / n if spike else 0.0
            fr = acc['input_count_sum'] / acc['input_numel'] if spike and acc['input_numel'] else None
            out.append(
                LayerEnergy(
                    name=acc['name'],
                    type=acc['type'],
                    input_kind=acc['input_kind'],
                    calls=acc['calls'],
                    dense_macs=acc['dense_macs'] / n,
                    input_firing_rate=fr,
                    mac_ops=mac_ops,
                    sop_estimate=sop_est,
                    sop_exact=sop_exact,
                    energy_mj_estimate=layer_energy_mj(mac_ops, sop_est, constants),
                    energy_mj_exact=layer_energy_mj(mac_ops, sop_exact, constants),
                )
            )
        return out


class _MatMulEstimator:
    """Per-call SOP estimates of the attention's spike-matrix products (:class:`SpikeMatMul`).

    Convention (``r`` = mean integer count per operand element, one call at a time):

    * ``k^T v``, both operands spikes: an accumulate happens only where a k spike and a v spike
      coincide, so ``SOP_est = r_k * r_v * dense MACs`` (independent-firing estimate; the exact
      count replaces the product of means by the mean of products over tokens);
    * ``q (k^T v)``, spikes times an integer matrix: each q spike adds one row,
      ``SOP_est = r_q * dense MACs`` (which equals the exact count).
    """

    def __init__(self, model: nn.Module) -> None:
        names = {m: n for n, m in reversed(list(model.named_modules()))}
        # operand norms turn operand values (count / norm) back into counts; None = not spikes.
        # Only needed for operands that are not spike slices (LIF): slices carry their units.
        self.norms: Dict[nn.Module, Tuple[float, Optional[float]]] = {
            m: (a_norm, b_norm) for m, (a_norm, b_norm, _) in spike_matmul_operands(model).items()
        }
        self.names = {m: names[m] for m in names if isinstance(m, SpikeMatMul)}
        self.estimates: Dict[str, float] = {}
        self._handles: list = []

    def __enter__(self) -> '_MatMulEstimator':
        for module in self.names:
            self._handles.append(module.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        a, b = args[0], args[1]
        a_sl, b_sl = matmul_operand_slices(a), matmul_operand_slices(b)
        if a_sl is not None or b_sl is not None:  # spike-driven: binary slices
            macs = output.numel() * (a_sl.shape[-1] if a_sl is not None else a.shape[-1])
            estimate = macs
            for sl in (a_sl, b_sl):  # mean integer count = spikes over the slices / elements
                if sl is not None:
                    estimate *= float(sl.double().sum(0).mean())
        else:  # integer-form operands (LIF spikes): units from the attention's neurons
            if module not in self.norms:
                return  # the op counter raises for this module, with its name
            a_norm, b_norm = self.norms[module]
            estimate = _mean_count(a, a_norm) * output.numel() * a.shape[-1]
            if b_norm is not None:
                estimate *= _mean_count(b, b_norm)
        name = self.names[module]
        self.estimates[name] = self.estimates.get(name, 0.0) + estimate


def _mean_count(x: Tensor, norm: float) -> float:
    return float(torch.round(merge_spike_slices(x).double() * norm).mean())


class EnergyMeter:
    """Measures firing rates, synaptic operations and energy of a model over forward passes.

    Inside the ``with`` block the model runs spike-driven (under ``torch.no_grad``; see
    :class:`~sdt_dense.analysis.ops.SynapticOpCounter`); call :meth:`step` after each forward pass
    with the number of images it processed::

        with EnergyMeter(model) as meter:
            for data in loader:
                model.test_step(data)
                meter.step(len(data['inputs']))
        report = meter.report(EnergyConstants(e_ac_pj=0.9), headline_sop='estimate')

    Args:
        model: a model with SFA neurons (or multi-step LIF neurons).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.firing = FiringRateMonitor(model)
        self.counter = SynapticOpCounter(model)
        self.matmuls = _MatMulEstimator(model)
        self.accumulator = EnergyAccumulator()
        self._stack: Optional[contextlib.ExitStack] = None

    def __enter__(self) -> 'EnergyMeter':
        self._stack = contextlib.ExitStack()
        for ctx in (self.counter, self.firing, self.matmuls):
            self._stack.enter_context(ctx)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def step(self, num_images: int) -> None:
        """Close one forward pass over ``num_images`` images (the batch size)."""
        rows = self.counter.rows()
        if not rows:
            raise RuntimeError('no synaptic layer ran since the last step()')
        self.accumulator.add(rows, num_images, self.matmuls.estimates)
        self.counter.reset()
        self.matmuls.estimates = {}

    def report(
        self,
        constants: EnergyConstants = EnergyConstants(),
        headline_sop: str = 'estimate',
        meta: Optional[Dict[str, Any]] = None,
    ) -> 'EnergyReport':
        """The :class:`EnergyReport` of every pass closed by :meth:`step` so far."""
        if self.counter.rows():
            raise RuntimeError('a forward pass ran after the last step(); call step(num_images)')
        return EnergyReport(
            self.accumulator.layers(constants),
            self.firing.rows(),
            self.accumulator.num_images,
            constants,
            headline_sop,
            dict(meta or {}),
        )


def layer_energy_mj(mac_ops: float, ac_ops: float, constants: EnergyConstants = EnergyConstants()) -> float:
    """``E = E_MAC * MACs + E_AC * ACs`` in millijoules."""
    return (constants.e_mac_pj * mac_ops + constants.e_ac_pj * ac_ops) / PJ_PER_MJ


@dataclass
class EnergyReport:
    """Everything the energy tool writes: per-layer rows, per-neuron rows, totals and metadata.

    Attributes:
        layers: per-image synaptic-layer rows.
        neurons: accumulated neuron statistics.
        num_images: images the numbers are averaged over.
        constants: the energy constants used.
        headline_sop: which SOP count ``total_energy_mj`` / ``ac_ops`` use.
        meta: free-form metadata written into the JSON (model, config, input size, params, ...).
    """

    layers: List[LayerEnergy]
    neurons: List[NeuronStats]
    num_images: int
    constants: EnergyConstants = field(default_factory=EnergyConstants)
    headline_sop: str = 'estimate'
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_mode(self.headline_sop)

    def totals(self) -> Dict[str, Any]:
        """Per-image totals; every one is the sum of the corresponding layer column."""
        layers, h = self.layers, self.headline_sop
        e_est = sum(r.energy_mj_estimate for r in layers)
        e_exact = sum(r.energy_mj_exact for r in layers)
        sop_est = sum(r.sop_estimate for r in layers)
        sop_exact = sum(r.sop_exact for r in layers)
        fr = mean_firing_rate(self.neurons)
        return dict(
            total_energy_mj=e_est if h == 'estimate' else e_exact,
            total_energy_mj_estimate=e_est,
            total_energy_mj_exact=e_exact,
            mac_ops=sum(r.mac_ops for r in layers),
            ac_ops=sop_est if h == 'estimate' else sop_exact,
            ac_ops_estimate=sop_est,
            ac_ops_exact=sop_exact,
            dense_macs=sum(r.dense_macs for r in layers),
            spike_dense_macs=sum(r.dense_macs for r in layers if r.input_kind == 'spike'),
            mean_firing_rate=fr['mean_count'],
            mean_binary_firing_rate=fr['binary_firing_rate'],
            mean_nonzero_fraction=fr['nonzero_fraction'],
        )

    def to_dict(self) -> Dict[str, Any]:
        return dict(
            **self.meta,
            num_images=self.num_images,
            constants=asdict(self.constants),
            headline_sop=self.headline_sop,
            units=dict(
                energy='mJ per image',
                ops='operations per image',
                firing_rate='mean integer spike count per element',
            ),
            **self.totals(),
            layers=[r.to_dict(self.headline_sop) for r in self.layers],
            neurons=[r.to_dict() for r in self.neurons],
        )

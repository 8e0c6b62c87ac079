"""NeuroBench's static and workload metrics on our models, checked against our own counter.

NeuroBench (``neurobench`` 2.x) measures footprint, connection sparsity, activation sparsity and
synaptic operations through forward hooks on ``Linear``/``Conv`` layers and on registered
activation modules. :func:`neurobench_report` runs them on a model with our SFA neuron
registered, in spike-driven mode, and checks every number against an independent computation
(:class:`~sdt_dense.analysis.ops.SynapticOpCounter` for the operations), layer by layer.

Two traps make NeuroBench report wrong numbers without an error, so the report refuses them
(:class:`NeuroBenchCheckError`):

1. **Swallowed failures.** NeuroBench's metric managers catch every exception of a metric,
   print ``Error running ... metric`` and report ``0.0`` (workload) or ``None`` (static). A
   failed count therefore reads as "0 operations". The report captures NeuroBench's output and
   raises on any such line, on a ``None``/``0`` result where our count is not zero, and on any
   difference from our counter.
2. **Integer activations counted as MACs.** NeuroBench calls a layer's input "spiking" only if
   every value is 0 or +-1, and then counts one accumulate per non-zero input and fan-out. Our
   neurons in integer (training) mode emit ``k / D`` (0, 0.25, ..., 1): NeuroBench counts those
   layers as MACs, one per non-zero input whatever ``k`` is. Only spike-driven mode (``D``
   binary slices per neuron, :mod:`sdt_dense.deploy.spike_driven`) gives NeuroBench binary
   inputs, for which its count equals our exact AC count. With ``spike_driven=False`` the report
   raises naming the layers NeuroBench took for MAC layers.

Further differences, by NeuroBench's definitions (not errors; the report states them):

* NeuroBench does not see the attention's spike-matrix products (``SpikeMatMul`` is not a
  ``Linear``/``Conv``) nor transposed convolutions; their operations are reported separately
  (``matmul_acs_per_sample``, ``not_seen_by_neurobench``).
* For real-valued inputs (the stem on event histograms) NeuroBench counts *effective* MACs, one
  per non-zero input and fan-out; our energy tables charge the dense MACs. Both are reported.
* NeuroBench skips zero weights (its binary copy of a layer keeps only non-zero weights); our
  count charges every weight. Layers with a zero weight are listed (``zero_weight_layers``) and
  left out of the layer-by-layer comparison; the totals of the compared layers are reported.
* NeuroBench finds activation layers by type (``nn.ReLU``, ``nn.Sigmoid`` and snntorch neurons):
  without ``add_activation_module(SFANeuron)`` it hooks none and reports activation sparsity
  0.0, another silent default; the report registers the neuron and checks that it was hooked.
  NeuroBench's number also includes any ``nn.ReLU`` / ``nn.Sigmoid`` of the model (listed as
  ``other_activation_layers``); ours follows it. In spike-driven mode a neuron's output is ``D``
  binary slices, so its sparsity is
  ``1 - sum(k) / (D * N)`` over the ``N`` neuron outputs (in integer mode NeuroBench would
  report the fraction of zero counts instead).
* A real-valued input made only of 0 and +-1 (binary event frames) is "spiking" to NeuroBench: its
  operations are reported as ACs, ours as MACs; the check compares their sum.
"""

from __future__ import annotations

import contextlib
import io
from typing import Dict, List, Sequence

import torch
from torch import Tensor, nn

from ..deploy.spike_driven import SYNAPTIC_TYPES, spike_driven
from ..models.neurons import SFANeuron, get_spike_slices, plain_tensor
from .ops import SynapticOpCounter, conv_exact_acs

__all__ = ['NeuroBenchCheckError', 'neurobench_report', 'import_neurobench']


class NeuroBenchCheckError(RuntimeError):
    """NeuroBench's numbers cannot be trusted for this run (the message says why)."""


def import_neurobench():
    """NeuroBench's ``Benchmark``, ``TorchModel``, metric classes and ``single_layer_MACs``.

    Raises:
        ImportError: naming the package (``pip install neurobench==2.3.0``).
    """
    try:
        from neurobench.benchmarks import Benchmark
        from neurobench.metrics.static import ConnectionSparsity, Footprint
        from neurobench.metrics.utils.layers import single_layer_MACs
        from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
        from neurobench.models import TorchModel
    except ImportError as e:
        raise ImportError(
            'the NeuroBench report needs neurobench (pip install '
            "'neurobench==2.3.0'); neurobench or one of its dependencies is "
            f'missing ({e})'
        ) from e
    return dict(
        Benchmark=Benchmark,
        TorchModel=TorchModel,
        Footprint=Footprint,
        ConnectionSparsity=ConnectionSparsity,
        ActivationSparsity=ActivationSparsity,
        SynapticOperations=SynapticOperations,
        single_layer_MACs=single_layer_MACs,
    )


class _Runner(nn.Module):
    """The model as NeuroBench calls it: ``net(batch)``, spike-driven (or not), no gradient."""

    def __init__(self, model: nn.Module, spike_driven_mode: bool) -> None:
        super().__init__()
        self.model = model
        self.spike_driven_mode = spike_driven_mode

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            ctx = spike_driven(self.model) if self.spike_driven_mode else contextlib.nullcontext()
            with ctx:
                out = self.model(x)
        return _first_tensor(out)


def _first_tensor(out):
    while isinstance(out, (list, tuple)):
        out = out[0]
    return plain_tensor(out) if isinstance(out, Tensor) else out


def _our_reference(model: nn.Module, batches: Sequence[Tensor]) -> dict:
    """Our numbers, from one spike-driven pass (as NeuroBench's): exact ACs per layer
    (:class:`SynapticOpCounter`), effective MACs of real-input layers (``conv_exact_acs`` of the
    non-zero mask), the neurons' counts, footprint and connection sparsity."""
    names = {m: n for n, m in model.named_modules()}
    effective: Dict[str, int] = {}
    k_sum, slots = 0, 0
    per_batch = []  # NeuroBench averages the sparsity of each batch, weighted by its size

    def real_hook(module, args, output):
        x = args[0]
        if get_spike_slices(x) is None:
            nz = (plain_tensor(x) != 0).double()
            effective[names[module]] = effective.get(names[module], 0) + (
                int(nz.sum().item()) * module.out_features
                if isinstance(module, nn.Linear)
                else conv_exact_acs(module, nz)
            )

    def neuron_hook(module, args, output):
        # the counts the spike-driven model fires (its float inputs can differ from integer
        # mode in the last bit, which can move a count across a rounding edge)
        nonlocal k_sum, slots
        k = module.counts(plain_tensor(args[0]))
        k_sum += int(k.sum().item())
        slots += k.numel() * module.ceiling

    def activation_hook(module, args, output):
        # NeuroBench also hooks its own activation types (ReLU, Sigmoid): non-zero outputs
        nonlocal k_sum, slots
        k_sum += int(torch.count_nonzero(plain_tensor(output)).item())
        slots += output.numel()

    def pick(m):
        if isinstance(m, SYNAPTIC_TYPES):
            return real_hook
        return neuron_hook if isinstance(m, SFANeuron) else activation_hook

    others = (nn.ReLU, nn.Sigmoid)
    handles = [
        m.register_forward_hook(pick(m))
        for m in model.modules()
        if isinstance(m, SYNAPTIC_TYPES + (SFANeuron,) + others)
    ]
    other_activations = [n for n, m in model.named_modules() if isinstance(m, others)]
    try:
        with SynapticOpCounter(model) as counter:
            for x in batches:
                before = (k_sum, slots)
                model(x)
                k, n = k_sum - before[0], slots - before[1]
                per_batch.append((1 - k / n if n else 0.0, len(x)))
    finally:
        for h in handles:
            h.remove()
    rows: Dict[str, dict] = {}
    for r in counter.rows():
        rows[r.name] = dict(
            type=r.type,
            kind=r.input_kind,
            exact_acs=r.exact_acs,
            dense_macs=r.dense_macs,
            effective_macs=effective.get(r.name, 0) if r.input_kind == 'real' else 0,
        )
    weights = [
        m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    footprint = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    num = sum(b for _, b in per_batch)
    return dict(
        rows=rows,
        activation_sparsity=sum(s * b for s, b in per_batch) / num,
        connection_sparsity=zeros / total if total else None,
        footprint=footprint,
        spike_count=k_sum,
        neuron_slots=slots,
        other_activations=other_activations,
    )


def neurobench_report(model: nn.Module, batches: Sequence[Tensor], spike_driven_mode: bool = True) -> dict:
    """Run NeuroBench's footprint, connection sparsity, activation sparsity and synaptic
    operations on ``model`` and check them against our own numbers.

    Args:
        model: a model with SFA neurons, taking one tensor (e.g. a backbone, ``(B, C, H, W)``);
            put it in eval mode first.
        batches: input batches (each ``(B, ...)``).
        spike_driven_mode: run NeuroBench on the spike-driven model (required for correct
            counts; ``False`` demonstrates trap 2 and raises).

    Returns:
        ``dict(neurobench=..., ours=..., layers=[...], matmul_acs=...)``: NeuroBench's results
        (per sample, as it reports them), ours on the same scale, and one row per Linear/Conv
        layer with both counts.

    Raises:
        NeuroBenchCheckError: a swallowed metric error, a layer NeuroBench counted as MACs where
            our neurons feed it, or any number that differs from ours.
    """
    nb = import_neurobench()
    model.eval()
    runner = _Runner(model, spike_driven_mode)
    nb_model = nb['TorchModel'](runner)
    nb_model.add_activation_module(SFANeuron)
    data = [(x, torch.zeros(len(x))) for x in batches]
    num_samples = sum(len(x) for x in batches)
    bench = nb['Benchmark'](
        nb_model,
        data,
        [],
        [],
        [[nb['Footprint'], nb['ConnectionSparsity']], [nb['ActivationSparsity'], nb['SynapticOperations']]],
    )
    if not any(isinstance(h.layer, SFANeuron) for h in nb_model.activation_hooks):
        raise NeuroBenchCheckError(
            'NeuroBench hooked no SFA neuron: its activation sparsity would be 0.0 (no activation layer)'
        )

    class _Loader(list):
        # NeuroBench weighs a batch by batch size / len(dataset): one entry per sample
        dataset = range(num_samples)

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        results = bench.run(dataloader=_Loader(data), quiet=False)
    errors = [line for line in log.getvalue().splitlines() if line.startswith('Error running')]
    if errors:
        raise NeuroBenchCheckError(
            'NeuroBench swallowed a failed metric and reported 0 / None for it: ' + ' | '.join(errors)
        )
    missing = [k for k, v in results.items() if v is None]
    if missing:
        raise NeuroBenchCheckError(f'NeuroBench returned None for {missing}')

    # per layer, with NeuroBench's own counting function on the inputs its hooks record
    per_layer: Dict[nn.Module, List[int]] = {}
    with torch.no_grad():
        for x, _ in data:
            nb_model(x)
            for hook in nb_model.connection_hooks:
                hook.hook.remove()  # as NeuroBench does: the layer is deep-copied below
                for inp in hook.inputs:
                    spikes = inp[0] if len(inp) == 1 else inp
                    ops, spiking = nb['single_layer_MACs'](spikes, hook.layer)
                    acc = per_layer.setdefault(hook.layer, [0, 0])
                    acc[0 if spiking else 1] += ops
                hook.register_hook()
            nb_model.reset_hooks()
    bench.workload_metric_manager.cleanup_hooks(nb_model)

    ours = _our_reference(model, batches)
    names = {m: n for n, m in model.named_modules()}
    layers, problems, as_macs, zero_weight_layers = [], [], [], []
    for layer, (nb_ac, nb_mac) in per_layer.items():
        name = names[layer]
        if bool((layer.weight == 0).any()):
            # NeuroBench skips zero weights, our count charges every weight: not comparable
            zero_weight_layers.append(name)
        row = ours['rows'].get(name)
        if row is None:
            problems.append(f'{name}: NeuroBench counted a layer our counter did not see')
            continue
        layers.append(
            dict(
                name=name,
                type=row['type'],
                input=row['kind'],
                neurobench_acs=nb_ac,
                neurobench_macs=nb_mac,
                our_acs=row['exact_acs'],
                our_effective_macs=row['effective_macs'],
                our_dense_macs=row['dense_macs'],
            )
        )
        if row['kind'] == 'spike' and nb_mac:
            as_macs.append(name)
        elif name in zero_weight_layers:
            continue
        elif row['kind'] == 'spike' and nb_ac != row['exact_acs']:
            problems.append(f'{name}: NeuroBench {nb_ac} ACs, ours {row["exact_acs"]}')
        elif row['kind'] == 'real' and nb_ac + nb_mac != row['effective_macs']:
            # a real input of only 0 / +-1 values (binary event frames) is ACs to NeuroBench
            problems.append(
                f'{name}: NeuroBench {nb_mac} MACs + {nb_ac} ACs on a real input, '
                f'ours {row["effective_macs"]} effective operations'
            )
    if as_macs:
        raise NeuroBenchCheckError(
            f'NeuroBench counted {len(as_macs)} layer(s) fed by SFA neurons as MAC layers '
            f'({", ".join(as_macs[:5])}{" ..." if len(as_macs) > 5 else ""}): their inputs are '
            'integer-mode k / D values, not binary spikes; run it spike-driven'
        )
    seen = {names[m] for m in per_layer}
    hookable = ('Conv1d', 'Conv2d', 'Linear')  # NeuroBench's stateless layers (no transposed)
    problems += [
        f'{n}: our counter saw a {r["type"]} NeuroBench did not hook'
        for n, r in ours['rows'].items()
        if r['type'] in hookable and n not in seen
    ]
    unseen = {
        n: r['exact_acs'] + (r['dense_macs'] if r['kind'] == 'real' else 0)
        for n, r in ours['rows'].items()
        if r['type'] not in hookable
    }
    syn = results['SynapticOperations']
    total_ac = sum(r['neurobench_acs'] for r in layers)
    total_mac = sum(r['neurobench_macs'] for r in layers)
    if (
        abs(syn['Effective_ACs'] * num_samples - total_ac) > 0.5
        or abs(syn['Effective_MACs'] * num_samples - total_mac) > 0.5
    ):
        problems.append(
            f'NeuroBench totals {syn} per sample disagree with its per-layer '
            f'counts ({total_ac} ACs, {total_mac} MACs over {num_samples} samples)'
        )
    our_acs = sum(r['exact_acs'] for n, r in ours['rows'].items() if n in seen)
    nb_acs_compared = sum(r['neurobench_acs'] for r in layers if r['name'] not in zero_weight_layers)
    our_acs_compared = sum(r['our_acs'] for r in layers if r['name'] not in zero_weight_layers)
    if our_acs and not syn['Effective_ACs']:
        problems.append(f'NeuroBench reports 0 ACs where our counter has {our_acs}: a failed count')
    if results['Footprint'] != ours['footprint']:
        problems.append(f'footprint {results["Footprint"]} B, ours {ours["footprint"]} B')
    if abs(results['ConnectionSparsity'] - round(ours['connection_sparsity'], 4)) > 1e-9:
        problems.append(
            f'connection sparsity {results["ConnectionSparsity"]}, ours {ours["connection_sparsity"]:.6f}'
        )
    act = results['ActivationSparsity']
    if spike_driven_mode and abs(act - ours['activation_sparsity']) > 1e-9:
        problems.append(f'activation sparsity {act}, ours {ours["activation_sparsity"]}')
    if problems:
        raise NeuroBenchCheckError('NeuroBench disagrees with our counter: ' + '; '.join(problems))
    matmul = sum(r['exact_acs'] for r in ours['rows'].values() if r['type'] == 'SpikeMatMul')
    unseen_ops = sum(unseen.values())
    return dict(
        neurobench=dict(results),
        num_samples=num_samples,
        ours=dict(
            footprint=ours['footprint'],
            connection_sparsity=ours['connection_sparsity'],
            activation_sparsity=ours['activation_sparsity'],
            acs_per_sample=our_acs / num_samples,
            acs_per_sample_compared=our_acs_compared / num_samples,
            effective_macs_per_sample=total_mac / num_samples,
            dense_macs_real_inputs_per_sample=sum(
                r['dense_macs'] for r in ours['rows'].values() if r['kind'] == 'real'
            )
            / num_samples,
        ),
        layers=layers,
        matmul_acs_per_sample=matmul / num_samples,
        not_seen_by_neurobench=sorted(unseen),
        zero_weight_layers=zero_weight_layers,
        other_activation_layers=ours['other_activations'],
        neurobench_acs_per_sample_compared=nb_acs_compared / num_samples,
        not_seen_ops_per_sample=unseen_ops / num_samples,
    )


class _TensorForward(nn.Module):
    """An mmdet / mmseg model as ``net(inputs)``: its ``mode='tensor'`` forward (backbone, neck
    and head outputs; no data preprocessor, no post-processing)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor):
        return self.model(x, None, mode='tensor')


def main(argv=None) -> None:
    """``python tools/analysis_tools/neurobench_metrics.py CONFIG [--checkpoint CKPT]``: NeuroBench
    next to our counter on random sparse event tensors of the config's input shape."""
    import argparse
    import json

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    parser = argparse.ArgumentParser(
        description='NeuroBench metrics of a model, checked against our exact operation counter.'
    )
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help="input shape without batch (default: (T, C, 64, 80) from the config's backbone T / in_channels)",
    )
    parser.add_argument('--rate', type=float, default=0.05, help='mean events per input cell (Poisson)')
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the report as JSON')
    args = parser.parse_args(argv)
    import sdt_dense  # noqa: F401  (registers our modules)

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS

    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.checkpoint:
        from mmengine.runner import load_checkpoint

        load_checkpoint(model, args.checkpoint, map_location='cpu')
    shape = args.shape or (cfg.model.backbone.get('T', 1), cfg.model.backbone.get('in_channels', 3), 64, 80)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [
        torch.poisson(torch.full((args.batch_size, *shape), args.rate), generator=gen)
        for _ in range(args.batches)
    ]
    report = neurobench_report(_TensorForward(model), batches)
    report.update(config=args.config, input_shape=list(shape), event_rate=args.rate)
    nb, ours = report['neurobench'], report['ours']
    print(f'{"metric (per sample)":38s} {"NeuroBench":>16s} {"ours":>16s}')
    rows = [
        ('footprint (bytes)', nb['Footprint'], ours['footprint']),
        ('connection sparsity', nb['ConnectionSparsity'], ours['connection_sparsity']),
        ('activation sparsity (binary slices)', nb['ActivationSparsity'], ours['activation_sparsity']),
        (
            'synaptic ops: ACs (Linear/Conv)',
            nb['SynapticOperations']['Effective_ACs'],
            ours['acs_per_sample'],
        ),
        (
            'effective MACs (real inputs)',
            nb['SynapticOperations']['Effective_MACs'],
            ours['effective_macs_per_sample'],
        ),
        ('ACs of spike matmuls (ours only)', '-', report['matmul_acs_per_sample']),
        ('dense MACs of real inputs (ours)', '-', ours['dense_macs_real_inputs_per_sample']),
    ]
    for name, a, b in rows:
        print(f'{name:38s} {a!s:>16s} {b!s:>16s}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2, default=float)

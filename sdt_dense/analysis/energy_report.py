"""Rendering of an :class:`~sdt_dense.analysis.energy.EnergyReport`: ``energy.json``,
``energy.md`` (summary, per-layer and per-neuron tables) and the firing-rate bar chart.

:func:`write_report` writes each file atomically: complete or absent (a previous file unchanged),
never half-written, even on a full disk.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

from .energy import EnergyReport
from .firing import NeuronStats

__all__ = ['render_markdown', 'write_report', 'plot_firing_rates']


def write_report(report: EnergyReport, out: str) -> None:
    """``energy.json`` and ``energy.md`` of ``report`` in the directory ``out``."""
    from ..engine.atomic_io import atomic_write  # engine/ pulls in mmengine's runner: on use only

    os.makedirs(out, exist_ok=True)
    atomic_write(json.dumps(report.to_dict(), indent=2), os.path.join(out, 'energy.json'))
    atomic_write(render_markdown(report), os.path.join(out, 'energy.md'))


def render_markdown(report: EnergyReport) -> str:
    """Summary, per-layer and per-neuron tables as GitHub markdown."""
    t, c, h = report.totals(), report.constants, report.headline_sop
    title = report.meta.get('model', 'model')
    lines = [f'# Energy of {title}', '']
    for key in ('config', 'checkpoint', 'input_size'):
        if report.meta.get(key) is not None:
            lines.append(f'- {key.replace("_", " ")}: `{report.meta[key]}`')
    lines += [
        f'- images: {report.num_images}',
        f'- constants: E_MAC = {c.e_mac_pj:g} pJ, E_AC = {c.e_ac_pj:g} pJ ({c.source})',
        f'- headline energy uses the SOP **{h}** '
        + (
            '(paper convention: mean input count x dense MACs)'
            if h == 'estimate'
            else '(accumulates counted in spike-driven mode)'
        ),
        '',
        '| energy (mJ/img) | energy, exact SOPs | MACs | SOPs (estimate) | SOPs (exact) '
        '| exact / estimate | mean firing rate (count) | binary rate | non-zero |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
        f'| {t["total_energy_mj_estimate"]:.4g} | {t["total_energy_mj_exact"]:.4g} '
        f'| {_si(t["mac_ops"])} | {_si(t["ac_ops_estimate"])} | {_si(t["ac_ops_exact"])} '
        f'| {_ratio(t["ac_ops_exact"], t["ac_ops_estimate"])} '
        f'| {t["mean_firing_rate"]:.4f} | {t["mean_binary_firing_rate"]:.4f} '
        f'| {t["mean_nonzero_fraction"]:.4f} |',
        '',
        '## Synaptic layers (per image)',
        '',
        '| layer | type | input | dense MACs | input rate | SOPs (estimate) | SOPs (exact) '
        '| exact / estimate | energy (mJ) |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for r in report.layers:
        fr = '-' if r.input_firing_rate is None else f'{r.input_firing_rate:.4f}'
        ratio = '-' if r.exact_over_estimate is None else f'{r.exact_over_estimate:.4f}'
        lines.append(
            f'| {r.name} | {r.type} | {r.input_kind} | {_si(r.dense_macs)} | {fr} '
            f'| {_si(r.sop_estimate)} | {_si(r.sop_exact)} | {ratio} '
            f'| {r.energy_mj(h):.4g} |'
        )
    lines += [
        '',
        '## Neurons',
        '',
        '| neuron | D | steps | mean count | binary rate | non-zero |',
        '|---|---:|---:|---:|---:|---:|',
    ]
    for n in report.neurons:
        lines.append(
            f'| {n.name} | {n.D} | {n.steps} | {n.mean_count:.4f} '
            f'| {n.binary_firing_rate:.4f} | {n.nonzero_fraction:.4f} |'
        )
    return '\n'.join(lines) + '\n'


def plot_firing_rates(neurons: Sequence[NeuronStats], path: str, title: Optional[str] = None) -> None:
    """Write a PNG bar chart of per-neuron firing rates (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt

    if not neurons:
        raise ValueError('no neuron statistics to plot')
    x = list(range(len(neurons)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * len(neurons) + 2), 4.5))
    ax.bar(
        x,
        [n.binary_firing_rate for n in neurons],
        color='tab:blue',
        label='binary firing rate (mean count / D)',
    )
    ax.plot(x, [n.nonzero_fraction for n in neurons], '.', color='tab:orange', label='non-zero fraction')
    ax.set_xticks(x)
    ax.set_xticklabels([n.name for n in neurons], rotation=90, fontsize=5)
    ax.set_ylim(0, 1)
    ax.set_ylabel('rate')
    ax.set_title(f'Firing rates{f" of {title}" if title else ""}', loc='left')
    ax.legend(loc='lower right', bbox_to_anchor=(1, 1), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _si(x: float) -> str:
    """``12_345_678 -> '12.35 M'`` (operation counts)."""
    for div, unit in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(x) >= div:
            return f'{x / div:.4g} {unit}'
    return f'{x:.4g}'


def _ratio(a: float, b: float) -> str:
    return f'{a / b:.4f}' if b else '-'

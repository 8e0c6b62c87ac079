"""Where a spiking network fires: per-position firing-rate maps of each stage, and figures.

:class:`SpikeMapRecorder` hooks every spiking neuron of a model (as
:class:`~sdt_dense.analysis.firing.FiringRateMonitor`, whose :func:`output_counts` turns an output
of either inference mode into integer counts) and keeps, per neuron, the counts summed over the
channel dimension at every spatial position. :meth:`SpikeMapRecorder.stage_maps` combines the
neurons of each stage (:func:`~sdt_dense.engine.hooks.firing_rate_hook.neuron_stage`, the rule the
training hook uses) into three maps of shape ``(H, W)``; for a position ``p`` of a stage with
neurons ``n`` of ``C_n`` channels and ``steps_n`` binary timesteps (``D``; ``T`` for LIF), with
``B`` images and counts ``k_n[b, c, p]``:

* ``mean_count[p] = sum_{n,b,c} k_n[b, c, p] / (B * sum_n C_n)``: the **mean integer count over
  channels**, in ``[0, D]``;
* ``binary_rate[p] = sum_{n,b,c} k_n[b, c, p] / (B * sum_n C_n * steps_n)``: the **binary firing
  rate**, the fraction of the binary spike slots ``s_1..s_D`` of the spike-driven form that
  fire (``mean_count / D`` when every neuron of the stage has the same ``D``), in ``[0, 1]``;
* ``nonzero_fraction[p]``: the fraction of channels (and images) with a count ``>= 1``, i.e. the
  rate of the first binary slice ``s_1 = [k >= 1]``.

A neuron output counts as spatial when its counts are ``(B, C, H, W)``, or ``(B, C, N)`` tokens with
``N = H * W`` of the stage's first ``(B, C, H, W)`` neuron (the token MLPs of the transformer
stages, row-major); other outputs (and maps of another size) are left out of the maps and listed
in :attr:`StageMap.skipped`, but still count in :class:`~sdt_dense.analysis.firing.NeuronStats`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.hooks.firing_rate_hook import neuron_stage
from .firing import FiringRateMonitor, NeuronStats, output_counts


@dataclass
class StageMap:
    """Per-position firing of one stage (see the module docstring for the definitions).

    Attributes:
        stage: stage name (:func:`neuron_stage`).
        mean_count: ``(H, W)`` mean integer count over channels, in ``[0, D]``.
        binary_rate: ``(H, W)`` binary firing rate, in ``[0, 1]``.
        nonzero_fraction: ``(H, W)`` fraction of channels with at least one spike.
        steps: largest binary timestep count among the stage's neurons (``D``).
        neurons: names of the neurons behind the maps.
        skipped: names of the stage's neurons whose output is not a map of this size.
    """

    stage: str
    mean_count: np.ndarray
    binary_rate: np.ndarray
    nonzero_fraction: np.ndarray
    steps: int
    neurons: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready means over positions."""
        h, w = self.mean_count.shape
        return dict(
            stage=self.stage,
            height=h,
            width=w,
            steps=self.steps,
            mean_count=float(self.mean_count.mean()),
            binary_rate=float(self.binary_rate.mean()),
            nonzero_fraction=float(self.nonzero_fraction.mean()),
            neurons=list(self.neurons),
            skipped=list(self.skipped),
        )


@dataclass
class _NeuronMap:
    count_sum: Tensor  # (H, W) or (N,): counts summed over batch and channels
    nonzero: Tensor  # same shape: number of (image, channel) pairs with a count >= 1
    depth: int  # B * C: elements behind each position
    steps: int


class SpikeMapRecorder(FiringRateMonitor):
    """:class:`FiringRateMonitor` that also keeps per-position maps of every neuron.

    Example::

        with SpikeMapRecorder(model) as rec:
            model.extract_feat(images)
        maps = rec.stage_maps()          # {stage: StageMap}
        rows = rec.rows()                # per-neuron NeuronStats (histograms)

    Args:
        model: any module with spiking neurons.
        include: keep maps only of neurons whose name starts with one of these prefixes
            (default: all); the statistics of :meth:`rows` cover every neuron.
    """

    def __init__(self, model: nn.Module, include: Optional[Sequence[str]] = None) -> None:
        super().__init__(model)
        self.include = tuple(include) if include else None
        self._maps: Dict[str, _NeuronMap] = {}

    def _record(self, name: str, neuron: nn.Module, output: Tensor) -> None:
        super()._record(name, neuron, output)
        if self.include is not None and not name.startswith(self.include):
            return
        counts = output_counts(neuron, output)  # (B, *S)
        if counts.dim() not in (3, 4):
            return  # not a (B, C, H, W) map nor (B, C, N) tokens
        steps = self.stats(name).steps
        entry = _NeuronMap(
            counts.sum((0, 1)).cpu().double(),
            (counts > 0).sum((0, 1)).cpu().double(),
            counts.shape[0] * counts.shape[1],
            steps,
        )
        old = self._maps.get(name)
        if old is not None and old.count_sum.shape == entry.count_sum.shape:
            entry = _NeuronMap(
                old.count_sum + entry.count_sum, old.nonzero + entry.nonzero, old.depth + entry.depth, steps
            )
        self._maps[name] = entry

    def reset(self) -> None:
        super().reset()
        self._maps.clear()

    def stage_maps(self) -> Dict[str, StageMap]:
        """``{stage: StageMap}`` in module order (stages with no spatial neuron are left out)."""
        by_stage: Dict[str, List[str]] = {}
        for name in self.neurons:
            if name in self._maps:
                by_stage.setdefault(neuron_stage(name), []).append(name)
        out: Dict[str, StageMap] = {}
        for stage, names in by_stage.items():
            size = next(
                (tuple(self._maps[n].count_sum.shape) for n in names if self._maps[n].count_sum.dim() == 2),
                None,
            )
            if size is None:
                continue  # tokens only: no spatial layout to draw
            count = torch.zeros(size, dtype=torch.float64)
            nonzero = torch.zeros(size, dtype=torch.float64)
            depth = slots = 0
            used, skipped = [], []
            for n in names:
                m = self._maps[n]
                if m.count_sum.dim() == 1 and m.count_sum.numel() == size[0] * size[1]:
                    m = _NeuronMap(m.count_sum.view(size), m.nonzero.view(size), m.depth, m.steps)
                if tuple(m.count_sum.shape) != size:
                    skipped.append(n)
                    continue
                count += m.count_sum
                nonzero += m.nonzero
                depth += m.depth
                slots += m.depth * m.steps
                used.append(n)
            out[stage] = StageMap(
                stage,
                (count / depth).numpy(),
                (count / slots).numpy(),
                (nonzero / depth).numpy(),
                max(self._maps[n].steps for n in used),
                used,
                skipped,
            )
        return out


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib, Agg backend)

#: PNG resolution of the figures
DPI = 100
#: width of one panel of a stage figure, inches (three panels: image, mean count, non-zero)
PANEL_INCHES = 4.0
#: room for the titles and colour bars below each panel row, inches
TITLE_INCHES = 1.0


def stage_figure_size(image_hw: Tuple[int, int]) -> Tuple[int, int]:
    """``(width, height)`` in pixels of the PNG :func:`plot_stage_map` writes for an image of
    ``image_hw``: ``3 * 400`` by ``400 * H / W + 100`` (rounded)."""
    h, w = image_hw
    return (int(round(3 * PANEL_INCHES * DPI)), int(round((PANEL_INCHES * h / w + TITLE_INCHES) * DPI)))


def plot_stage_map(
    image: np.ndarray,
    stage_map: StageMap,
    path: str,
    padded_hw: Optional[Tuple[int, int]] = None,
    title: Optional[str] = None,
    alpha: float = 0.6,
) -> Tuple[int, int]:
    """Write a PNG of one stage: the image, and the mean-count and non-zero-fraction maps
    overlaid on it. Returns the PNG's ``(width, height)`` (:func:`stage_figure_size`).

    Args:
        image: ``(H, W, 3)`` uint8 RGB image as the network saw it (after any resize).
        stage_map: the stage's maps; a map cell covers ``padded / map`` pixels of the image.
        path: PNG to write (its directory is created).
        padded_hw: ``(H_pad, W_pad)`` of the network input if it was padded to a multiple of
            the stride (the maps then cover the padded canvas; the padding is cropped off).
        title: figure title (default: the stage name).
        alpha: opacity of the maps over the image.
    """
    import matplotlib

    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt

    h, w = image.shape[:2]
    hp, wp = padded_hw or (h, w)
    width_px, height_px = stage_figure_size((h, w))
    fig, axes = plt.subplots(1, 3, figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    extent = (0, wp, hp, 0)
    panels = [
        (None, 'image', None),
        (
            stage_map.mean_count,
            f'mean count over channels (0..{stage_map.steps})\n'
            f'binary rate = count / {stage_map.steps}: mean {stage_map.binary_rate.mean():.3f}',
            (0, stage_map.steps),
        ),
        (
            stage_map.nonzero_fraction,
            f'non-zero fraction (rate of slice s1)\nmean {stage_map.nonzero_fraction.mean():.3f}',
            (0, 1),
        ),
    ]
    for ax, (values, label, limits) in zip(axes, panels):
        ax.imshow(image, extent=(0, w, h, 0), interpolation='bilinear')
        if values is not None:
            im = ax.imshow(
                values,
                extent=extent,
                cmap='inferno',
                vmin=limits[0],
                vmax=limits[1],
                alpha=alpha,
                interpolation='nearest',
            )
            fig.colorbar(im, ax=ax, orientation='horizontal', fraction=0.05, pad=0.04)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_axis_off()
        ax.set_title(label, fontsize=8)
    mh, mw = stage_map.mean_count.shape
    fig.suptitle(f'{title or stage_map.stage}: {mh}x{mw} map, {len(stage_map.neurons)} neurons', fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)  # fixed size: no bbox_inches='tight'
    plt.close(fig)
    return width_px, height_px


def plot_firing_distribution(rows: Sequence[NeuronStats], path: str, title: Optional[str] = None) -> None:
    """Write a PNG of the firing-rate distribution per layer: for every neuron a stacked bar of
    the fractions of its elements with count ``k = 0..steps`` (the histogram of
    :class:`NeuronStats`), and its binary firing rate as a line."""
    import matplotlib

    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.numel]
    if not rows:
        raise ValueError('no neuron statistics to plot')
    steps = max(r.steps for r in rows)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * len(rows) + 2), 4.5), dpi=DPI)
    bottom = np.zeros(len(rows))
    colours = plt.get_cmap('viridis')(np.linspace(0, 1, steps + 1))
    for k in range(steps + 1):
        frac = np.array([r.histogram[k] / r.numel if k < len(r.histogram) else 0.0 for r in rows])
        ax.bar(x, frac, bottom=bottom, width=1.0, color=colours[k], label=f'count {k}')
        bottom += frac
    ax.plot(
        x, [r.binary_firing_rate for r in rows], '.-', color='tab:red', lw=0.8, label='binary firing rate'
    )
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xticks(x)
    ax.set_xticklabels([r.name for r in rows], rotation=90, fontsize=4)
    ax.set_ylabel('fraction of elements')
    ax.set_title(
        f'Spike-count distribution per layer{f" of {title}" if title else ""}', loc='left', fontsize=9
    )
    ax.legend(loc='lower right', bbox_to_anchor=(1, 1), ncol=min(steps + 2, 7), fontsize=6, frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI * 1.5)
    plt.close(fig)

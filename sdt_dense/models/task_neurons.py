"""Neuron configs of the detection and segmentation necks and heads (their defaults); the neurons
themselves are in :mod:`sdt_dense.models.neurons`."""

from __future__ import annotations

from typing import Optional

#: Neuron of the detection neck and heads: spike counts 0..4 fed unnormalised (``norm=1``), as the
#: published detection code does.
DET_NEURON = dict(type='SFA', D=4, norm=1)

#: Neuron of the segmentation neck and head: counts normalised by D, as the published QFPN.
SEG_NEURON = dict(type='SFA', D=4)


def det_neuron_cfg(neuron_cfg: Optional[dict] = None) -> dict:
    """The neuron config of a detection neck/head: ``neuron_cfg`` applied on top of
    :data:`DET_NEURON` when it is an SFA config (so ``dict(eval_ceiling=1)`` keeps ``norm=1``), or
    ``neuron_cfg`` as is for another neuron type."""
    cfg = dict(neuron_cfg or {})
    if cfg.get('type', 'SFA') == 'SFA':
        return {**DET_NEURON, **cfg}
    return cfg

"""The neuron registry: every spiking neuron of the project is built from a config dict.

A new neuron is one new file in this folder that decorates its class with
``@NEURONS.register_module()``, plus one config line such as ``neuron_cfg=dict(type='MyNeuron')``.
"""

from __future__ import annotations

import inspect
from typing import Optional

from mmengine.registry import Registry
from torch import nn

NEURONS = Registry('neuron', scope='sdt_dense', locations=['sdt_dense.models.neurons'])

# Builds run under the toolbox's default scope (mmdet or mmseg, set by the Runner). mmengine looks
# that scope up among the children of the registry's root and, finding none, warns that it fell back
# to another registry ("Failed to search registry with scope ..."). One empty child per toolbox
# scope makes that lookup succeed; a child holds nothing and finds every neuron in its parent. (Its
# own import location: without one, mmengine would call the toolbox's register_all_modules, with
# another warning.)
NEURON_SCOPES = ('mmdet', 'mmseg')
_SCOPE_CHILDREN = {
    scope: Registry('neuron', parent=NEURONS, scope=scope, locations=['sdt_dense.models.neurons'])
    for scope in NEURON_SCOPES
}


def build_neuron(cfg: Optional[dict] = None, **overrides) -> nn.Module:
    """Build a neuron from a config dict such as ``dict(type='SFA', D=4)``.

    ``overrides`` (e.g. ``norm=1``) are applied on top of ``cfg``; a missing ``type`` means ``'SFA'``.
    """
    cfg = dict(cfg or {})
    cfg.update(overrides)
    cfg.setdefault('type', 'SFA')
    neuron_class(cfg)  # an unknown type fails here, with the registered names
    return NEURONS.build(cfg)


def neuron_class(cfg: Optional[dict]) -> type:
    """The class that ``cfg`` builds (``SFA`` when ``cfg`` is ``None`` or has no ``type``)."""
    typ = dict(cfg or {}).get('type', 'SFA')
    cls = typ if inspect.isclass(typ) else NEURONS.get(typ)
    if cls is None:
        raise KeyError(f'unknown neuron type {typ!r}; registered: {sorted(NEURONS.module_dict)}')
    return cls


def neuron_time_steps(neuron_cfg: Optional[dict]) -> int:
    """Real timesteps a network must repeat its input over for ``neuron_cfg``.

    ``1`` for single-step neurons (SFA); ``T`` (or the class default) for neurons flagged
    ``multi_step`` such as the LIF neuron.
    """
    cls = neuron_class(neuron_cfg)
    if not getattr(cls, 'multi_step', False):
        return 1
    cfg = dict(neuron_cfg or {})
    return int(cfg.get('T', inspect.signature(cls).parameters['T'].default))

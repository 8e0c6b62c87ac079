"""Registration of sdt-dense modules into the OpenMMLab registries.

One class is registered into every downstream ``MODELS`` registry that is installed (mmdet's and/or
mmseg's), so ``dict(type='ESpikeFormer')`` builds from either. The core modules import even when
neither toolbox is installed.
"""
from __future__ import annotations

import importlib
from typing import Callable, Iterable, List, Type

_SCOPES = ('mmdet', 'mmseg')


def available_model_registries(scopes: Iterable[str] = _SCOPES) -> List:
    """Return the ``MODELS`` registries of the installed toolboxes among ``scopes``."""
    registries = []
    for scope in scopes:
        try:
            module = importlib.import_module(f'{scope}.registry')
        except ImportError:
            continue
        registries.append(module.MODELS)
    return registries


def register_model(scopes: Iterable[str] = _SCOPES) -> Callable[[Type], Type]:
    """Class decorator: register ``cls`` into the ``MODELS`` registry of every installed scope.

    Args:
        scopes: toolboxes to register into (``'mmdet'``, ``'mmseg'``). Missing ones are skipped.
    """
    scopes = tuple(scopes)

    def _register(cls: Type) -> Type:
        for registry in available_model_registries(scopes):
            registry.register_module(module=cls, force=True)
        return cls

    return _register

"""Where sdt-dense registers its modules.

* Modules that both toolboxes use (the backbones) go into mmengine's root ``MODELS`` registry once.
  mmdet's and mmseg's ``MODELS`` are children of it and look a type up in their parent when they do
  not hold it themselves, so ``dict(type='ESpikeFormer')`` builds under either default scope. A user
  module of the same name registered in mmdet or mmseg takes precedence in that scope.
* Subclasses of one toolbox's modules (SpikeFPN of mmdet's FPN, SpikeFPNHead of mmseg's FPNHead) go
  into that toolbox's ``MODELS``.
* Spiking neurons have their own registry, :data:`sdt_dense.models.neurons.NEURONS`.

Registration never uses ``force=True``: a name that is already taken raises instead of silently
replacing somebody's module.
"""
from __future__ import annotations

import importlib
from typing import Callable, Optional, Type

from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry

__all__ = ['ROOT_MODELS', 'model_registry', 'register_model']


def model_registry(scope: Optional[str] = None) -> Registry:
    """The ``MODELS`` registry of ``scope`` (``'mmdet'``, ``'mmseg'``), or the root for ``None``."""
    if scope is None:
        return ROOT_MODELS
    return importlib.import_module(f'{scope}.registry').MODELS


def register_model(scope: Optional[str] = None) -> Callable[[Type], Type]:
    """Class decorator: register ``cls`` once, into :func:`model_registry` of ``scope``."""

    def _register(cls: Type) -> Type:
        model_registry(scope).register_module(module=cls)
        return cls

    return _register

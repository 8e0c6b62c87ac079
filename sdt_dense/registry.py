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

__all__ = ['ROOT_MODELS', 'SCOPES', 'init_scope', 'model_registry', 'register_model']

#: the toolboxes a config can name as its ``default_scope``
SCOPES = ('mmdet', 'mmseg')


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


def init_scope(cfg):
    """Register the modules of the config's toolbox (``default_scope``) and of sdt-dense.

    Returns:
        str: 'mmdet' or 'mmseg'.
    """
    scope = cfg.get('default_scope', None)
    if scope not in SCOPES:
        raise ValueError(
            f'{cfg.filename}: default_scope must be one of {SCOPES}, got {scope!r} '
            '(inherit mmdet::_base_/default_runtime.py or mmseg::_base_/default_runtime.py)'
        )
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules, setup_cache_size_limit_of_dynamo

        setup_cache_size_limit_of_dynamo()
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)  # the Runner sets the scope from the config
    import sdt_dense  # noqa: F401  (registers the models, allow-lists checkpoint classes)

    return scope

"""Import E-SpikeFormer's backbones without mmcv, mmdet or mmseg.

``import sdt_dense`` registers every model, which needs the whole OpenMMLab stack including mmcv's
compiled ops. The backbones themselves need only torch, timm and mmengine (pure Python). On a GPU
machine where mmcv's CUDA ops cannot be built in time, :func:`import_backbones` makes
``sdt_dense`` and ``sdt_dense.models`` bare package objects (their ``__init__`` files are not run)
and then imports ``sdt_dense.models.backbones`` for real, so the backbone benchmarks run there.

Only for the benchmark scripts: the package keeps its one import path everywhere else.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bare_package(name: str, path: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [path]
    module.__file__ = os.path.join(path, '__init__.py')
    module.__package__ = name
    sys.modules[name] = module
    return module


def _stand_in(name: str, why: str) -> None:
    """Make ``import name`` succeed for a missing optional module that mmengine imports at module
    level but the backbones never call (opencv, used by mmengine's visualisation hooks); any use
    raises an ImportError naming it."""
    try:
        importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)

        def __getattr__(attr: str):
            if attr.startswith('__'):  # introspection (torch inspects modules' __file__ etc.)
                raise AttributeError(attr)
            raise ImportError(f'{name}.{attr}: {name} is not installed on this machine ({why})')

        module.__getattr__ = __getattr__
        sys.modules[name] = module


def import_backbones() -> types.ModuleType:
    """``sdt_dense.models.backbones``, imported without running ``sdt_dense/__init__.py``.

    Must be called before anything imports ``sdt_dense``. The bare ``sdt_dense.models`` gets the
    backbone classes as attributes, so ``from sdt_dense.models import ESpikeFormerClassifier``
    works as usual.
    """
    if 'sdt_dense' in sys.modules and hasattr(sys.modules['sdt_dense'], '__version__'):
        return importlib.import_module('sdt_dense.models.backbones')  # the full package is there
    _stand_in('cv2', 'the light import for backbone benchmarks does not need it')
    package = os.path.join(REPO_ROOT, 'sdt_dense')
    _bare_package('sdt_dense', package)
    models = _bare_package('sdt_dense.models', os.path.join(package, 'models'))
    backbones = importlib.import_module('sdt_dense.models.backbones')
    for name in backbones.__all__ if hasattr(backbones, '__all__') else dir(backbones):
        if not name.startswith('_'):
            setattr(models, name, getattr(backbones, name))
    return backbones

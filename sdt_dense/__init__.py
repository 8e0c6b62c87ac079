"""sdt-dense: Spike-Driven Transformer V3 (E-SpikeFormer) for dense prediction on OpenMMLab.

``import sdt_dense`` (or ``custom_imports=dict(imports=['sdt_dense'])`` in a config) registers every
model of the project into the mmdet and mmseg ``MODELS`` registries that are installed, and allow-lists
the classes that mmengine checkpoints pickle so that they load under torch's ``weights_only`` default.
"""

from . import (  # noqa: F401  (transforms, hooks)
    checkpoint,  # noqa: F401  (safe-loading allow-list, mmengine's local loader)
    datasets,
    deploy,
    engine,
    models,  # noqa: F401  (registers the models)
)
from .version import __version__

__all__ = ['__version__']

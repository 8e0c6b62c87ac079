"""Optimizer-wrapper constructors (registered into mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS``,
which mmdet's and mmseg's registries fall back to)."""

from .layer_decay import LargeLayerDecayOptimWrapperConstructor, find_layered_backbone

__all__ = ['LargeLayerDecayOptimWrapperConstructor', 'find_layered_backbone']

"""Dataset components: robust image loading (needs mmcv, like mmdet and mmseg themselves)."""
try:
    import mmcv  # noqa: F401
except ImportError:  # the core package (models, checkpoints) works without the toolboxes
    __all__ = []
else:
    from .transforms import ImageLoadError, SafeLoadImageFromFile, truncation_problem

    __all__ = ['ImageLoadError', 'SafeLoadImageFromFile', 'truncation_problem']

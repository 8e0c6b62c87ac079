"""Data transforms (registered in mmengine's root ``TRANSFORMS``: mmdet and mmseg pipelines find
them)."""
from .loading import ImageLoadError, SafeLoadImageFromFile, truncation_problem

__all__ = ['ImageLoadError', 'SafeLoadImageFromFile', 'truncation_problem']
from .pretrain import PackImageInputs, RandomResizedCropImage  # noqa: E402

__all__ += ['PackImageInputs', 'RandomResizedCropImage']
from .label_check import CheckSegLabel  # noqa: E402

__all__ += ['CheckSegLabel']

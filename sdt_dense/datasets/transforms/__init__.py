"""Data transforms (registered in mmengine's root ``TRANSFORMS``: mmdet and mmseg pipelines find
them)."""

from .label_check import CheckSegLabel
from .loading import ImageLoadError, SafeLoadImageFromFile, truncation_problem
from .pretrain import PackImageInputs, RandomResizedCropImage

__all__ = [
    'ImageLoadError',
    'SafeLoadImageFromFile',
    'truncation_problem',
    'PackImageInputs',
    'RandomResizedCropImage',
    'CheckSegLabel',
]

"""Dataset components: robust image loading (needs mmcv, like mmdet and mmseg themselves) and
clear errors for empty datasets."""

from . import events  # noqa: F401  (event cameras; registers its mmdet parts when installed)
from .annotation_check import annotation_errors, check_annotation_files, check_coco, load_json
from .empty_dataset import EmptyDatasetError, check_not_empty, empty_dataset_errors
from .image_folder import IMG_EXTENSIONS, ImageFolderDataset

__all__ = [
    'EmptyDatasetError',
    'check_not_empty',
    'empty_dataset_errors',
    'IMG_EXTENSIONS',
    'ImageFolderDataset',
    'annotation_errors',
    'check_annotation_files',
    'check_coco',
    'load_json',
]

try:
    import mmcv  # noqa: F401
except ImportError:  # the core package (models, checkpoints) works without the toolboxes
    pass
else:  # robust image loading needs mmcv, like mmdet and mmseg themselves
    from .transforms import ImageLoadError, SafeLoadImageFromFile, truncation_problem

    __all__ += ['ImageLoadError', 'SafeLoadImageFromFile', 'truncation_problem']

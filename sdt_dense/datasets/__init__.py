"""Dataset components: robust image loading (needs mmcv, like mmdet and mmseg themselves) and
clear errors for empty datasets."""
from .annotation_check import annotation_errors, check_annotation_files, check_coco, load_json
from .empty_dataset import EmptyDatasetError, check_not_empty, empty_dataset_errors

try:
    import mmcv  # noqa: F401
except ImportError:  # the core package (models, checkpoints) works without the toolboxes
    __all__ = ['EmptyDatasetError', 'check_not_empty', 'empty_dataset_errors']
else:
    from .transforms import ImageLoadError, SafeLoadImageFromFile, truncation_problem

    __all__ = ['EmptyDatasetError', 'check_not_empty', 'empty_dataset_errors', 'ImageLoadError',
               'SafeLoadImageFromFile', 'truncation_problem']

from .image_folder import IMG_EXTENSIONS, ImageFolderDataset  # noqa: E402

__all__ += ['IMG_EXTENSIONS', 'ImageFolderDataset', 'annotation_errors', 'check_annotation_files',
            'check_coco', 'load_json']
from . import events  # noqa: E402,F401  (event cameras; registers its mmdet parts when installed)

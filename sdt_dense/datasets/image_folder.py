"""ImageNet-style image folder (``<root>/<class>/<image>``) for self-supervised pretraining."""

from __future__ import annotations

import os
import os.path as osp
from typing import List, Sequence

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

#: File name endings read as images (compared case-insensitively: ImageNet uses ``.JPEG``).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images in class sub-folders, e.g. ImageNet's ``train/n01440764/*.JPEG``.

    Every image under ``data_root / data_prefix['img_path'] / <class>/`` (recursively, sorted)
    becomes one sample ``dict(img_path=..., gt_label=<index of the class folder>)``; classes are
    the sorted sub-folder names (``metainfo['classes']``). Masked-image pretraining ignores the
    labels. Registered in mmengine's root ``DATASETS`` (found from the mmdet and mmseg scopes).

    Args:
        data_root: dataset root.
        data_prefix: ``dict(img_path='train')``: the folder holding the class folders.
        extensions: file endings that count as images (case-insensitive).
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``,
            ``indices``, ``serialize_data``, ``lazy_init``, ...). ``ann_file`` is not used.

    Raises:
        FileNotFoundError: the image folder does not exist. (An existing folder without images
            gives an empty dataset, which training reports as such.)
    """

    def __init__(
        self,
        data_root: str = '',
        data_prefix: dict = dict(img_path='train'),
        extensions: Sequence[str] = IMG_EXTENSIONS,
        **kwargs,
    ) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(data_root=data_root, data_prefix=dict(data_prefix), **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img_path', '')
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'{type(self).__name__}: image folder not found: {root!r} '
                '(data_root + data_prefix["img_path"])'
            )
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        data_list = []
        for label, name in enumerate(classes):
            for folder, dirs, files in os.walk(osp.join(root, name), followlinks=True):
                dirs.sort()
                data_list += [
                    dict(img_path=osp.join(folder, f), gt_label=label)
                    for f in sorted(files)
                    if f.lower().endswith(self.extensions)
                ]
        self._metainfo['classes'] = tuple(classes)
        return data_list

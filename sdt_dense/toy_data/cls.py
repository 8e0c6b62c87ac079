"""Toy image-classification set in the ImageNet folder layout (for pretraining smoke runs).

Layout written under ``out``::

    train/<class>/toy_NNNNNN.JPEG      one shape per image, the folder is its class name
    val/<class>/toy_NNNNNN.JPEG
    meta.json                          class names, per-class counts and generation arguments

Read it with :class:`sdt_dense.datasets.ImageFolderDataset`
(``data_prefix=dict(img_path='train')``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

from PIL import Image

from .shapes import SHAPE_CLASSES, Progress, check_split_sizes, image_rng, render_scene

SPLITS = ('train', 'val')


def make_cls_dataset(
    out: str | Path,
    num_train: int = 200,
    num_val: int = 50,
    image_size: int = 64,
    num_classes: int = 5,
    seed: int = 0,
    jpeg_quality: int = 95,
    progress: bool = False,
) -> Dict:
    """Write the toy folder-layout classification set and return its metadata.

    Every image shows one shape (class drawn at random) on a textured background; every class
    folder is created, even if a small split draws no image of that class.

    Args:
        out: dataset root (created).
        num_train, num_val: number of images in ``train`` and ``val``.
        image_size: square image side in pixels.
        num_classes: number of shape classes (the first ``num_classes`` of ``SHAPE_CLASSES``).
        seed: all content is a function of ``seed`` (and the other arguments).
        jpeg_quality: JPEG quality of the images.
        progress: show a progress bar with an ETA on stdout.

    Returns:
        The metadata written to ``meta.json``: ``classes``, ``counts`` (per split and class).
    """
    check_split_sizes(num_train, num_val, image_size)
    out = Path(out)
    classes = list(SHAPE_CLASSES[:num_classes])
    counts: Dict[str, Dict[str, int]] = {}
    bar = Progress(num_train + num_val, progress)
    for split, count in zip(SPLITS, (num_train, num_val)):
        counts[split] = {name: 0 for name in classes}
        for name in classes:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            # One large shape: the image content is mostly the object, as in ImageNet.
            scene = render_scene(
                image_rng(seed, f'cls-{split}', index),
                image_size,
                image_size,
                num_classes,
                num_objects=(1, 1),
                size_range=(0.4, 0.8),
            )
            name = classes[scene.instances[0].label]
            counts[split][name] += 1
            Image.fromarray(scene.image).save(
                out / split / name / f'toy_{index:06d}.JPEG', format='JPEG', quality=jpeg_quality
            )
            bar.update()
    bar.close()
    meta = dict(
        task='cls', layout='imagenet-folder', classes=classes, counts=counts, image_size=image_size, seed=seed
    )
    (out / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
    return meta

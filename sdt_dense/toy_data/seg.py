"""Toy semantic segmentation dataset in the ADE20K directory layout.

Layout written under ``out``::

    images/{training,validation}/toy_NNNNNN.jpg        RGB scenes
    annotations/{training,validation}/toy_NNNNNN.png   uint8 labels: 0 = background (ignored, as in
                                                       ADE20K), k + 1 = SHAPE_CLASSES[k]
    meta.json                                          class names and generation arguments

Load it with mmseg's ``ADE20KDataset`` (``reduce_zero_label=True`` maps 0 to 255 = ignore and class
``k + 1`` to ``k``) and ``metainfo=dict(classes=<names from meta.json>)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image

from .shapes import SHAPE_CLASSES, Progress, check_split_sizes, image_rng, polygon_mask, render_scene

SPLITS: Tuple[str, str] = ('training', 'validation')


def make_seg_dataset(
    out: str | Path,
    num_train: int = 200,
    num_val: int = 50,
    image_size: int = 128,
    num_classes: int = 4,
    seed: int = 0,
    jpeg_quality: int = 95,
    progress: bool = False,
) -> Dict:
    """Write the toy ADE20K-layout dataset and return its metadata.

    Args:
        out: dataset root (created).
        num_train, num_val: number of images in ``training`` and ``validation``.
        image_size: square image side in pixels.
        num_classes: number of shape classes (the first ``num_classes`` of ``SHAPE_CLASSES``).
        seed: all content is a function of ``seed`` (and the other arguments).
        jpeg_quality: JPEG quality of the images.
        progress: show a progress bar with an ETA on stdout.

    Returns:
        The metadata written to ``meta.json``: ``classes`` (names of labels 1..K), ``counts``.
    """
    check_split_sizes(num_train, num_val, image_size)
    out = Path(out)
    counts = {'training': num_train, 'validation': num_val}
    bar = Progress(num_train + num_val, progress)
    for split, count in counts.items():
        img_dir = out / 'images' / split
        ann_dir = out / 'annotations' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            scene = render_scene(
                image_rng(seed, split, index), image_size, image_size, num_classes, num_objects=(1, 4)
            )
            label_map = np.zeros((image_size, image_size), dtype=np.uint8)
            for inst in scene.instances:
                label_map[polygon_mask(inst.polygon, image_size, image_size)] = inst.label + 1
            name = f'toy_{index:06d}'
            Image.fromarray(scene.image).save(img_dir / f'{name}.jpg', quality=jpeg_quality)
            Image.fromarray(label_map).save(ann_dir / f'{name}.png')
            bar.update()
    bar.close()
    meta = dict(
        task='seg',
        layout='ade20k',
        classes=list(SHAPE_CLASSES[:num_classes]),
        ignore_index_in_png=0,
        counts=counts,
        image_size=image_size,
        seed=seed,
    )
    (out / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
    return meta

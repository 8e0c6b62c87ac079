"""Toy COCO-format instance segmentation dataset (boxes + polygon masks).

Layout written under ``out`` (the COCO 2017 layout, so mmdet's COCO base configs only need
``data_root`` and ``metainfo`` changed)::

    train2017/toy_NNNNNN.jpg, val2017/toy_NNNNNN.jpg
    annotations/instances_train2017.json, annotations/instances_val2017.json

Category ids are ``1..K`` for ``SHAPE_CLASSES[:K]``. Every annotation has a one-polygon
``segmentation`` (the exact polygon that was painted), an ``[x, y, w, h]`` ``bbox`` tight around it,
``area`` from pycocotools' rasterisation of the polygon and ``iscrowd=0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .shapes import SHAPE_CLASSES, Progress, check_split_sizes, image_rng, render_scene

SPLITS: Tuple[str, str] = ('train2017', 'val2017')


def polygon_area(polygon: np.ndarray, height: int, width: int) -> float:
    """Area in pixels of a polygon as pycocotools rasterises it (used by COCOeval's area ranges)."""
    rles = mask_utils.frPyObjects([polygon.reshape(-1).tolist()], height, width)
    return float(mask_utils.area(mask_utils.merge(rles)))


def make_det_dataset(
    out: str | Path,
    num_train: int = 300,
    num_val: int = 50,
    image_size: int = 128,
    num_classes: int = 3,
    seed: int = 0,
    jpeg_quality: int = 95,
    progress: bool = False,
) -> Dict[str, Dict]:
    """Write the toy COCO dataset and return the two annotation dicts.

    Args:
        out: dataset root (created).
        num_train, num_val: number of images in ``train2017`` and ``val2017``.
        image_size: square image side in pixels.
        num_classes: number of shape classes (the first ``num_classes`` of ``SHAPE_CLASSES``).
        seed: all content is a function of ``seed`` (and the other arguments).
        jpeg_quality: JPEG quality of the images.
        progress: show a progress bar with an ETA on stdout.

    Returns:
        ``{'train2017': coco_dict, 'val2017': coco_dict}`` as written to ``annotations/``.
    """
    check_split_sizes(num_train, num_val, image_size)
    out = Path(out)
    (out / 'annotations').mkdir(parents=True, exist_ok=True)
    categories = [
        dict(id=k + 1, name=name, supercategory='shape') for k, name in enumerate(SHAPE_CLASSES[:num_classes])
    ]
    result = {}
    bar = Progress(num_train + num_val, progress)
    for split, count in zip(SPLITS, (num_train, num_val)):
        (out / split).mkdir(parents=True, exist_ok=True)
        images: List[Dict] = []
        annotations: List[Dict] = []
        for index in range(count):
            scene = render_scene(
                image_rng(seed, split, index), image_size, image_size, num_classes, num_objects=(1, 4)
            )
            file_name = f'toy_{index:06d}.jpg'
            Image.fromarray(scene.image).save(out / split / file_name, quality=jpeg_quality)
            image_id = index + 1
            bar.update()
            images.append(dict(id=image_id, file_name=file_name, height=image_size, width=image_size))
            for inst in scene.instances:
                x1, y1, x2, y2 = inst.bbox_xyxy
                # Area from the polygon exactly as stored (2 decimals), as COCOeval will see it.
                polygon = np.round(inst.polygon, 2)
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=inst.label + 1,
                        bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        area=polygon_area(polygon, image_size, image_size),
                        segmentation=[polygon.reshape(-1).tolist()],
                        iscrowd=0,
                    )
                )
        coco = dict(
            info=dict(description=f'sdt-dense toy shapes ({split}), seed {seed}'),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories,
        )
        (out / 'annotations' / f'instances_{split}.json').write_text(json.dumps(coco))
        result[split] = coco
    bar.close()
    return result

"""Chance level of a COCO-format box detector, drawn like the event-camera chance level.

The detector that ignores the image: for every evaluated image, ``per_image`` boxes whose width and
height are drawn from the training boxes, top-left corners uniform so that a box lies inside the
image, uniform random classes and scores
(:func:`sdt_dense.datasets.events.metric.random_box_detections`, the same draws as
``tools/analysis_tools/event_chance.py``), scored by pycocotools' COCOeval (mmdet's ``CocoMetric``
computes the same ``bbox_mAP``). Mean and (population) standard deviation over ``seeds`` draws.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Dict, List

import numpy as np


def coco_box_chance(
    train_ann: str | Path, val_ann: str | Path, per_image: int = 10, seeds: int = 5
) -> Dict[str, float]:
    """``{'coco/bbox_mAP': mean, 'coco/bbox_mAP_std': std, 'coco/bbox_mAP_50': ..., ...}`` of
    random boxes of training-set sizes on the images of ``val_ann`` (see the module docstring).

    Raises:
        ValueError: the training file has no boxes, or the evaluated images differ in size.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from ..datasets.events.metric import random_box_detections

    train = json.loads(Path(train_ann).read_text())
    sizes = np.array([a['bbox'][2:4] for a in train['annotations']], np.float64)
    if not len(sizes):
        raise ValueError(f'{train_ann}: no boxes to draw sizes from')
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(val_ann))
    images = [gt.imgs[i] for i in sorted(gt.getImgIds())]
    shapes = {(im['height'], im['width']) for im in images}
    if len(shapes) != 1:
        raise ValueError(f'{val_ann}: images of {len(shapes)} sizes; one size is expected')
    cat_ids = sorted(gt.getCatIds())
    runs: List[List[float]] = []
    for seed in range(seeds):
        dets = []
        draws = random_box_detections(images, sizes, next(iter(shapes)), len(cat_ids), per_image, seed)
        for image, (xywh, scores, labels) in zip(images, draws):
            dets += [
                dict(
                    image_id=image['id'],
                    category_id=cat_ids[int(c)],
                    bbox=[float(v) for v in box],
                    score=float(s),
                )
                for box, s, c in zip(xywh, scores, labels)
            ]
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        runs.append([max(float(ev.stats[i]), 0.0) for i in range(3)])
    values = np.array(runs)
    out: Dict[str, float] = {}
    for i, key in enumerate(('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75')):
        out[key] = float(values[:, i].mean())
        out[f'{key}_std'] = float(values[:, i].std())
    out.update(per_image=per_image, seeds=seeds)
    return out

"""Small procedurally generated datasets for smoke tests and the quickstart (no downloads).

``make_seg_dataset`` writes an ADE20K-layout semantic segmentation set, ``make_det_dataset`` a
COCO-format instance segmentation set; both draw the same shapes (:mod:`sdt_dense.toy_data.shapes`).
``make_cls_dataset`` writes ImageNet-style class folders, ``make_events_dataset`` the Prophesee Gen1
layout. Command line: ``python tools/misc/make_toy_data.py --task {det,seg,cls,events} --out DIR``.
"""

from .cls import make_cls_dataset
from .det import make_det_dataset
from .events import make_events_dataset
from .seg import make_seg_dataset
from .shapes import SHAPE_CLASSES, Scene, ShapeInstance, image_rng, polygon_mask, render_scene

__all__ = [
    'SHAPE_CLASSES',
    'Scene',
    'ShapeInstance',
    'image_rng',
    'polygon_mask',
    'render_scene',
    'make_cls_dataset',
    'make_det_dataset',
    'make_events_dataset',
    'make_seg_dataset',
]

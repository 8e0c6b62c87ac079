"""Small procedurally generated datasets for smoke tests and the quickstart (no downloads).

``make_seg_dataset`` writes an ADE20K-layout semantic segmentation set, ``make_det_dataset`` a
COCO-format instance segmentation set; both draw the same shapes (:mod:`sdt_dense.toy_data.shapes`).
Command line: ``python tools/misc/make_toy_data.py --task {det,seg} --out DIR``.
"""
from .det import make_det_dataset
from .seg import make_seg_dataset
from .shapes import SHAPE_CLASSES, Scene, ShapeInstance, image_rng, polygon_mask, render_scene

__all__ = ['SHAPE_CLASSES', 'Scene', 'ShapeInstance', 'image_rng', 'polygon_mask', 'render_scene',
           'make_det_dataset', 'make_seg_dataset']
from .cls import make_cls_dataset  # noqa: E402  (ImageNet-style folders: --task cls)

__all__ += ['make_cls_dataset']
from .events import make_events_dataset  # noqa: E402  (Prophesee Gen1 layout: --task events)

__all__ += ['make_events_dataset']

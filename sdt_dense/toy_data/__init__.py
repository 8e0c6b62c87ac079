"""Small procedurally generated datasets for smoke tests and the quickstart (no downloads).

``make_seg_dataset`` writes an ADE20K-layout semantic segmentation set, ``make_det_dataset`` a
COCO-format instance segmentation set; both draw the same shapes (:mod:`sdt_dense.toy_data.shapes`).
Command line: ``python tools/misc/make_toy_data.py --task {det,seg} --out DIR``.
"""
from .shapes import SHAPE_CLASSES, Scene, ShapeInstance, image_rng, polygon_mask, render_scene
from .det import make_det_dataset
from .seg import make_seg_dataset

__all__ = ['SHAPE_CLASSES', 'Scene', 'ShapeInstance', 'image_rng', 'polygon_mask', 'render_scene',
           'make_det_dataset', 'make_seg_dataset']

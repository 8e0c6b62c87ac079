"""Procedural scenes of filled shapes on textured backgrounds, shared by the toy datasets.

A scene is an RGB image with a few non-overlapping shapes. Every shape is drawn from its polygon, so
the polygon handed to the annotation writers is exactly what was painted (circles are 48-gons). Each
class has its own base hue (jittered per instance) and silhouette, so a small model separates the
classes within minutes on a CPU; backgrounds are low-saturation gratings plus noise so that the task
is not plain thresholding.

Everything is a pure function of a ``numpy.random.Generator``: the writers seed one generator per
image from ``(seed, split, index)``, which makes every file independent of generation order.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

#: Shape classes in label order; datasets use the first ``num_classes`` of them.
SHAPE_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star', 'cross')
#: Base hue (HSV, in [0, 1)) of each class, spread around the colour wheel.
_CLASS_HUES: Tuple[float, ...] = (0.0, 0.33, 0.62, 0.14, 0.80)


@dataclass
class ShapeInstance:
    """One painted shape.

    Attributes:
        label: index into :data:`SHAPE_CLASSES`.
        polygon: (N, 2) float array of (x, y) vertices in pixel coordinates, as drawn.
    """

    label: int
    polygon: np.ndarray

    @property
    def bbox_xyxy(self) -> Tuple[float, float, float, float]:
        """Tight box of the polygon, (x1, y1, x2, y2)."""
        x1, y1 = self.polygon.min(axis=0)
        x2, y2 = self.polygon.max(axis=0)
        return float(x1), float(y1), float(x2), float(y2)


@dataclass
class Scene:
    """A rendered image and the shapes on it.

    Attributes:
        image: (H, W, 3) uint8 RGB image.
        instances: shapes in drawing order (they do not overlap).
    """

    image: np.ndarray
    instances: List[ShapeInstance] = field(default_factory=list)


def check_split_sizes(num_train: int, num_val: int, image_size: int) -> None:
    """Clear errors for toy-dataset sizes that would write an unusable dataset."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'need at least one image per split, got num_train={num_train}, num_val={num_val}')
    if image_size < 32:
        raise ValueError(f'image_size must be >= 32 px, got {image_size}')


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Generator for one image, a pure function of ``(seed, split, index)``."""
    digest = hashlib.sha256(f'{seed}/{split}/{index}'.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], 'little'))


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-saturation texture: two random gratings, a colour gradient and pixel noise.

    Returns:
        (H, W, 3) float array in [0, 255].
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(70, 180, size=3)
    # Muted tint, so that saturated shapes stand out without being trivially thresholded.
    image = np.broadcast_to(base, (height, width, 3)).copy()
    for _ in range(2):
        theta = rng.uniform(0, np.pi)
        freq = rng.uniform(0.03, 0.25)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
        image += rng.uniform(10, 30) * wave[..., None] * rng.uniform(0.6, 1.0, size=3)
    gradient = (xx / max(width - 1, 1))[..., None] * rng.uniform(-30, 30, size=3)
    image += gradient + rng.normal(0, 8, size=(height, width, 3))
    return np.clip(image, 0, 255)


def shape_polygon(label: int, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Vertices of a class-``label`` shape of circumscribed diameter ``size``.

    Args:
        label: index into :data:`SHAPE_CLASSES`.
        cx, cy: centre in pixels.
        size: diameter of the circumscribed circle in pixels.
        angle: rotation in radians (ignored for circles).

    Returns:
        (N, 2) float array of (x, y) vertices.
    """
    name = SHAPE_CLASSES[label]
    r = size / 2
    if name == 'circle':
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        radii = np.full_like(t, r)
    elif name == 'square':
        t = np.arange(4) * np.pi / 2 + np.pi / 4
        radii = np.full(4, r)
    elif name == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        radii = np.full(3, r)
    elif name == 'star':
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    elif name == 'cross':
        # Plus sign: 12 vertices of two bars of half-width w.
        w = 0.35 * r
        pts = np.array(
            [
                (w, r),
                (w, w),
                (r, w),
                (r, -w),
                (w, -w),
                (w, -r),
                (-w, -r),
                (-w, -w),
                (-r, -w),
                (-r, w),
                (-w, w),
                (-w, r),
            ]
        )
        t = np.arctan2(pts[:, 1], pts[:, 0])
        radii = np.hypot(pts[:, 0], pts[:, 1])
    else:  # pragma: no cover - SHAPE_CLASSES and this switch are kept in sync
        raise ValueError(f'unknown shape class {name!r}')
    if name != 'circle':
        t = t + angle
    return np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], axis=1)


def class_colour(rng: np.random.Generator, label: int) -> np.ndarray:
    """Saturated RGB colour (3,) in [0, 255] around the class's base hue."""
    hue = (_CLASS_HUES[label] + rng.uniform(-0.04, 0.04)) % 1.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0))
    return np.array(rgb) * 255


def polygon_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon into an (H, W) bool mask (the same rasteriser paints the scene)."""
    canvas = Image.new('L', (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    num_classes: int,
    num_objects: Tuple[int, int] = (1, 4),
    size_range: Tuple[float, float] = (0.18, 0.45),
    max_tries: int = 50,
) -> Scene:
    """Paint a scene of non-overlapping shapes on a textured background.

    Args:
        rng: source of all randomness.
        height, width: image size in pixels.
        num_classes: use the first ``num_classes`` entries of :data:`SHAPE_CLASSES`.
        num_objects: inclusive (min, max) number of shapes to attempt.
        size_range: shape diameter range as a fraction of ``min(height, width)``.
        max_tries: placement attempts per shape before it is dropped (the minimum is still honoured
            because the first shape always fits).

    Returns:
        The :class:`Scene`; shapes lie fully inside the image and their boxes do not overlap.
    """
    if not 1 <= num_classes <= len(SHAPE_CLASSES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPE_CLASSES)}], got {num_classes}')
    lo, hi = num_objects
    if not 0 <= lo <= hi:
        raise ValueError(f'num_objects must be (min, max) with 0 <= min <= max, got {num_objects}')
    if not 0 < size_range[0] <= size_range[1] < 1:
        raise ValueError(f'size_range must satisfy 0 < min <= max < 1, got {size_range}')
    image = textured_background(rng, height, width)
    scene = Scene(image=image)
    boxes: List[Sequence[float]] = []
    short = min(height, width)
    for _ in range(int(rng.integers(lo, hi + 1))):
        for _ in range(max_tries):
            size = rng.uniform(*size_range) * short
            cx = rng.uniform(size / 2 + 1, width - size / 2 - 1)
            cy = rng.uniform(size / 2 + 1, height - size / 2 - 1)
            label = int(rng.integers(num_classes))
            poly = shape_polygon(label, cx, cy, size, rng.uniform(0, 2 * np.pi))
            inst = ShapeInstance(label, poly)
            x1, y1, x2, y2 = inst.bbox_xyxy
            # Keep a 2 px gap between boxes so that instance masks never touch.
            if all(x1 > b[2] + 2 or x2 < b[0] - 2 or y1 > b[3] + 2 or y2 < b[1] - 2 for b in boxes):
                boxes.append((x1, y1, x2, y2))
                scene.instances.append(inst)
                mask = polygon_mask(poly, height, width)
                shade = class_colour(rng, label)
                # Mild in-shape noise keeps the fill from being a single flat colour.
                fill = shade + rng.normal(0, 6, size=(int(mask.sum()), 3))
                scene.image[mask] = fill
                break
    scene.image = np.clip(scene.image, 0, 255).round().astype(np.uint8)
    return scene


class Progress:
    """Progress bar with an ETA over ``total`` images (mmengine's ``ProgressBar``) when
    ``enabled`` (the command line), silent otherwise (library calls, tests)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled and total > 0:
            import sys

            from mmengine.utils import ProgressBar

            # sys.stdout of now: mmengine's default is the one of its import time
            self._bar = ProgressBar(total, file=sys.stdout)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        """End the bar's line (it does not end it itself)."""
        if self._bar is not None:
            import sys

            sys.stdout.write('\n')
            sys.stdout.flush()

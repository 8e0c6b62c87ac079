"""Toy datasets: layout, determinism, and annotations that agree with the pixels."""

from __future__ import annotations

import colorsys
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdt_dense.toy_data import SHAPE_CLASSES, image_rng, make_det_dataset, make_seg_dataset, render_scene
from sdt_dense.toy_data.shapes import _CLASS_HUES
from sdt_testing import REPO  # noqa: E402


def _tree_digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def _mean_hue(pixels: np.ndarray) -> float:
    """Hue of the mean colour of (N, 3) uint8 RGB pixels."""
    r, g, b = pixels.reshape(-1, 3).mean(0) / 255
    return colorsys.rgb_to_hsv(r, g, b)[0]


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1 - d)


def test_scene_shapes_lie_inside_and_apart():
    scene = render_scene(image_rng(3, 'x', 0), 96, 80, num_classes=5, num_objects=(4, 4))
    assert scene.image.shape == (96, 80, 3) and scene.image.dtype == np.uint8
    assert len(scene.instances) >= 1
    for i, a in enumerate(scene.instances):
        x1, y1, x2, y2 = a.bbox_xyxy
        assert 0 <= x1 < x2 <= 80 and 0 <= y1 < y2 <= 96
        for b in scene.instances[i + 1 :]:
            bx1, by1, bx2, by2 = b.bbox_xyxy
            assert x2 < bx1 or bx2 < x1 or y2 < by1 or by2 < y1  # boxes never overlap


@pytest.mark.parametrize(
    'kwargs',
    [
        dict(num_classes=0),
        dict(num_classes=len(SHAPE_CLASSES) + 1),
        dict(num_objects=(3, 1)),
        dict(size_range=(0.5, 1.5)),
    ],
)
def test_scene_rejects_bad_arguments(kwargs):
    args = dict(num_classes=3)
    args.update(kwargs)
    with pytest.raises(ValueError):
        render_scene(image_rng(0, 'x', 0), 64, 64, **args)


def test_seg_dataset_layout_labels_and_pixels(tmp_path):
    meta = make_seg_dataset(tmp_path / 'ade', num_train=4, num_val=2, image_size=64, num_classes=3, seed=1)
    root = tmp_path / 'ade'
    assert meta['classes'] == list(SHAPE_CLASSES[:3])
    written = json.loads((root / 'meta.json').read_text())
    assert written['classes'] == ['circle', 'square', 'triangle']
    assert written['counts'] == {'training': 4, 'validation': 2}
    for split, n in (('training', 4), ('validation', 2)):
        imgs = sorted((root / 'images' / split).glob('*.jpg'))
        anns = sorted((root / 'annotations' / split).glob('*.png'))
        assert len(imgs) == len(anns) == n
        assert [p.stem for p in imgs] == [p.stem for p in anns]
    seen = set()
    for ann in (root / 'annotations').rglob('*.png'):
        label = np.asarray(Image.open(ann))
        image = np.asarray(Image.open(root / 'images' / ann.parent.name / f'{ann.stem}.jpg'))
        assert label.dtype == np.uint8 and label.shape == image.shape[:2] == (64, 64)
        assert set(np.unique(label)) <= {0, 1, 2, 3}
        assert (label == 0).mean() > 0.3  # background (ignored) dominates
        for k in set(np.unique(label)) - {0}:
            seen.add(int(k))
            # The label map is aligned with the painted shapes: their colour has the class hue.
            assert _hue_distance(_mean_hue(image[label == k]), _CLASS_HUES[k - 1]) < 0.08
    assert seen == {1, 2, 3}


def test_det_dataset_is_valid_coco_aligned_with_pixels(tmp_path):
    from pycocotools.coco import COCO

    make_det_dataset(tmp_path / 'coco', num_train=5, num_val=3, image_size=64, num_classes=3, seed=2)
    root = tmp_path / 'coco'
    for split, n in (('train2017', 5), ('val2017', 3)):
        coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES[:3])
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            image = np.asarray(Image.open(root / split / info['file_name']))
            assert image.shape == (info['height'], info['width'], 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert anns, 'every toy image has at least one object'
            union = np.zeros(image.shape[:2], dtype=int)
            for ann in anns:
                mask = coco.annToMask(ann).astype(bool)
                union += mask
                ys, xs = np.nonzero(mask)
                x, y, w, h = ann['bbox']
                # pycocotools' rasterisation of the polygon fits the box within a pixel
                assert xs.min() >= x - 1 and xs.max() <= x + w + 1
                assert ys.min() >= y - 1 and ys.max() <= y + h + 1
                assert ann['area'] == pytest.approx(mask.sum(), abs=1)
                assert ann['iscrowd'] == 0
                hue = _mean_hue(image[mask])
                assert _hue_distance(hue, _CLASS_HUES[ann['category_id'] - 1]) < 0.08
            assert union.max() == 1  # instance masks never overlap


def test_generation_is_deterministic_per_seed(tmp_path):
    for name in ('a', 'b'):
        make_seg_dataset(tmp_path / name, num_train=2, num_val=1, image_size=48, seed=7)
    make_seg_dataset(tmp_path / 'c', num_train=2, num_val=1, image_size=48, seed=8)
    a, b, c = (_tree_digest(tmp_path / n) for n in 'abc')
    assert a == b
    differing = [k for k in a if k != 'meta.json' and a[k] != c[k]]
    assert differing, 'another seed must change the data'


def test_cli_writes_both_tasks(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('make_toy_data', REPO / 'tools/misc/make_toy_data.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(
        [
            '--task',
            'det',
            '--out',
            str(tmp_path / 'd'),
            '--num-train',
            '2',
            '--num-val',
            '1',
            '--image-size',
            '48',
            '--seed',
            '1',
        ]
    )
    cli.main(
        [
            '--task',
            'seg',
            '--out',
            str(tmp_path / 's'),
            '--num-train',
            '2',
            '--num-val',
            '1',
            '--image-size',
            '48',
            '--num-classes',
            '2',
        ]
    )
    out = capsys.readouterr().out
    assert 'train2017: 2 images' in out and "classes ['circle', 'square']" in out
    assert (tmp_path / 'd/annotations/instances_val2017.json').is_file()
    assert len(list((tmp_path / 's/images/training').glob('*.jpg'))) == 2

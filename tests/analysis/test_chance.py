"""The COCO chance level (random boxes of training-set sizes, as the event-camera chance level)
against cases whose score is known by hand."""

import json

import pytest

from sdt_dense.analysis.chance import coco_box_chance


def _coco(path, boxes_per_image, size=(40, 60), categories=(1,)):
    h, w = size
    images = [dict(id=i + 1, height=h, width=w, file_name=f'{i}.jpg') for i in range(len(boxes_per_image))]
    anns = [
        dict(id=k + 1, image_id=i + 1, category_id=c, bbox=list(b), area=b[2] * b[3], iscrowd=0)
        for k, (i, (b, c)) in enumerate((i, bc) for i, bcs in enumerate(boxes_per_image) for bc in bcs)
    ]
    path.write_text(
        json.dumps(
            dict(images=images, annotations=anns, categories=[dict(id=c, name=str(c)) for c in categories])
        )
    )
    return path


def test_whole_image_boxes_are_found_by_chance(tmp_path):
    """Every box fills its image, so a random box of a training size is placed exactly on it:
    with one class and one box per image, AP = 1 at every threshold, in every draw."""
    ann = _coco(tmp_path / 'a.json', [[((0, 0, 60, 40), 1)]] * 5)
    out = coco_box_chance(ann, ann, per_image=1, seeds=3)
    assert out['coco/bbox_mAP'] == pytest.approx(1.0) and out['coco/bbox_mAP_std'] == 0
    assert out['coco/bbox_mAP_50'] == pytest.approx(1.0)


def test_small_objects_are_rarely_hit(tmp_path):
    ann = _coco(
        tmp_path / 'a.json',
        [[((i % 50, 3, 4, 4), 1), ((20, 30 - i % 20, 5, 5), 2)] for i in range(30)],
        size=(40, 60),
        categories=(1, 2),
    )
    out = coco_box_chance(ann, ann, per_image=10, seeds=5)
    assert 0 <= out['coco/bbox_mAP'] < 0.05 and out['seeds'] == 5 and out['per_image'] == 10


def test_bad_inputs_are_named(tmp_path):
    empty = _coco(tmp_path / 'e.json', [[]])
    ann = _coco(tmp_path / 'a.json', [[((0, 0, 4, 4), 1)]])
    with pytest.raises(ValueError, match='no boxes to draw sizes from'):
        coco_box_chance(empty, ann)
    mixed = json.loads(ann.read_text())
    mixed['images'].append(dict(id=9, height=10, width=10, file_name='x.jpg'))
    (tmp_path / 'm.json').write_text(json.dumps(mixed))
    with pytest.raises(ValueError, match='images of 2 sizes'):
        coco_box_chance(ann, tmp_path / 'm.json')

"""The Gen1 / 1 Mpx evaluation protocol: box filters and scored images against hand-computed
examples, presets, and the mAP keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdt_dense.datasets.events.metric import (  # noqa: E402
    PROTOCOLS,
    PropheseeDetMetric,
    box_filter_mask,
    coco_box_map,
    random_box_detections,
)

#            t (us)    w      h       gen1 (0.5 s, 30/10)            gen1 toolbox script
BOXES = [
    (600_000, 18.0, 24.0, True),  # diagonal exactly 30: kept  | side < 20: dropped
    (600_000, 18.0, 23.9, False),  # diagonal < 30                | dropped
    (600_000, 10.0, 40.0, True),  # side exactly 10: kept        | side < 20: dropped
    (600_000, 9.99, 40.0, False),  # side < 10                    | dropped
    (500_000, 50.0, 50.0, False),  # t = 0.5 s is skipped (t > skip is kept) | kept
    (500_001, 50.0, 50.0, True),  # kept                         | kept
    (100_000, 50.0, 50.0, False),
]  # skipped                      | skipped (t = 0.1 s)


def _mask(protocol, boxes=BOXES):
    t, w, h = (np.array([b[i] for b in boxes]) for i in range(3))
    return box_filter_mask(t, w, h, **PROTOCOLS[protocol]).tolist()


def test_gen1_filter_by_hand():
    assert _mask('gen1') == [b[3] for b in BOXES]
    assert _mask('gen1_toolbox_script') == [False, False, False, False, True, True, False]


def test_1mpx_filter_by_hand():
    boxes = [
        (600_000, 36.0, 48.0, True),  # diagonal exactly 60
        (600_000, 36.0, 47.9, False),
        (600_000, 20.0, 80.0, True),  # side exactly 20
        (600_000, 19.9, 80.0, False),
        (400_000, 80.0, 80.0, False),
    ]  # first 0.5 s
    assert _mask('1mpx', boxes) == [b[3] for b in boxes]
    # the toolbox script's values: side 10, skip 0.1 s
    assert _mask('1mpx_toolbox_script', boxes) == [True, False, True, True, True]


def _sample(t, gt, preds):
    """gt: [(xyxy, label)]; preds: [(xyxy, score, label)]."""
    return dict(
        label_t=t,
        img_id=f'rec@{t}',
        instances=[dict(bbox=list(b), bbox_label=lab, ignore_flag=0) for b, lab in gt],
        pred_instances=dict(
            bboxes=torch.tensor([p[0] for p in preds], dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([p[1] for p in preds]),
            labels=torch.tensor([p[2] for p in preds], dtype=torch.long),
        ),
    )


CAR = [10.0, 10.0, 50.0, 40.0]  # 40 x 30: diagonal 50, kept
TINY = [100.0, 100.0, 105.0, 105.0]  # 5 x 5: removed by the Gen1 filter
SAMPLES = [
    # t = 0.3 s: inside the skipped first 0.5 s, not scored (the missed car would cost recall)
    _sample(300_000, [(CAR, 0)], []),
    # t = 1 s: the car found (0.9), a tiny false car ranked above it (0.95), a pedestrian FP
    _sample(
        1_000_000,
        [(CAR, 0), ([0.0, 0.0, 8.0, 8.0], 1)],
        [(CAR, 0.9, 0), (TINY, 0.95, 0), ([200.0, 100.0, 230.0, 180.0], 0.3, 1)],
    ),
    # t = 1.2 s: its only box is tiny, so the timestamp is not scored at all (toolbox behaviour):
    # the confident false car there does not count
    _sample(1_200_000, [([0.0, 0.0, 8.0, 8.0], 0)], [([150.0, 50.0, 200.0, 90.0], 0.99, 0)]),
]


def _evaluate(metric):
    metric.dataset_meta = dict(classes=('car', 'pedestrian'))
    metric.process({}, SAMPLES)
    return metric.compute_metrics(metric.results)


def test_metric_filters_both_sides_by_hand():
    m = _evaluate(PropheseeDetMetric(protocol='gen1'))
    # one scored image (t = 1 s), one kept gt box (the car; the pedestrian GT is 8 x 8). The tiny
    # false car is filtered out, so the true car is the top detection: AP(car) = 1; pedestrian
    # has no ground truth and is left out of the mean.
    assert m['num_images'] == 1 and m['num_gt'] == 1
    assert m['mAP'] == pytest.approx(1.0) and m['mAP_50'] == pytest.approx(1.0)
    # without the size filter the tiny false car outranks the true one: precision 1/2 at the only
    # recall level, AP(car) = 0.5; the pedestrian gt (8 x 8) is kept and missed: AP(ped) = 0
    off = _evaluate(PropheseeDetMetric(protocol='gen1', min_box_diag=0, min_box_side=0))
    assert off['num_images'] == 2 and off['num_gt'] == 3  # t=1 s (2 boxes) and t=1.2 s
    # car: detections 0.99 (FP at 1.2 s), 0.95 (FP), 0.9 (TP) for 2 gt -> recall 1/2 at
    # precision 1/3: AP(car) = 1/3 * 51/101 (COCO's 101 recall points up to 0.5); ped: 0
    car = (1 / 3) * 51 / 101
    assert off['mAP_50'] == pytest.approx((car + 0.0) / 2, abs=1e-6)
    # with skip 0: the missed car at 0.3 s counts too
    early = _evaluate(PropheseeDetMetric(protocol='gen1', skip_ts_us=0))
    assert early['num_images'] == 2 and early['mAP_50'] == pytest.approx(51 / 101, abs=1e-6)


def test_metric_keys_and_presets():
    metric = PropheseeDetMetric(protocol='1mpx')
    assert (metric.skip_ts_us, metric.min_box_diag, metric.min_box_side) == (5e5, 60, 20)
    metric = PropheseeDetMetric(protocol='gen1_toolbox_script', min_box_side=12)
    assert (metric.skip_ts_us, metric.min_box_diag, metric.min_box_side) == (1e5, 30, 12)
    with pytest.raises(KeyError, match='unknown protocol'):
        PropheseeDetMetric(protocol='gen2')
    m = _evaluate(PropheseeDetMetric())
    assert {'mAP', 'mAP_50', 'mAP_75', 'num_images', 'num_gt'} <= set(m)
    assert PropheseeDetMetric.default_prefix == 'prophesee'


def test_no_detections_and_no_gt():
    gts = [(np.array([[0.0, 0.0, 40.0, 40.0]]), np.array([0]))]
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))]
    assert coco_box_map(gts, empty, 2)['mAP'] == 0.0
    assert coco_box_map([], [], 2)['mAP'] == -1.0  # undefined without ground truth


def test_random_boxes_are_near_zero():
    rng = np.random.default_rng(0)
    gts = [(np.c_[rng.uniform(0, 200, (3, 2)), np.full((3, 2), 40.0)], np.zeros(3, int)) for _ in range(20)]
    dets = random_box_detections(gts, np.full((5, 2), 40.0), (240, 304), 2, per_image=10)
    assert len(dets) == 20 and dets[0][0].shape == (10, 4)
    assert 0 <= coco_box_map(gts, dets, 2)['mAP'] < 0.05

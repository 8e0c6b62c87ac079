"""The published Gen1 / 1 Mpx detection evaluation, as an mmdet metric.

Protocol (Prophesee's automotive dataset toolbox, as used by RVT, SpikeYOLO and others):

1. **Box filter**, applied to ground truth and detections alike: keep a box when
   ``t > skip_ts_us``, ``w^2 + h^2 >= min_box_diag^2``, ``w >= min_box_side`` and
   ``h >= min_box_side`` (``t``: the labelled timestamp on the recording's clock, µs; ``w, h`` in
   sensor pixels).
2. **Images**: every labelled timestamp that still has a ground-truth box after the filter is one
   COCO image (the toolbox builds its images from the filtered ground-truth timestamps, so
   detections at timestamps left without ground truth are not scored).
3. **COCO box AP** with pycocotools' defaults (IoU 0.50:0.95, 100 detections per image, area
   ranges 32^2 / 96^2), areas ``w * h``.

Threshold values differ between the toolbox's sources (see ``docs/events.md``):

========================  ============  =====================  ======================
preset                    skip first    Gen1 diag / side (px)  1 Mpx diag / side (px)
========================  ============  =====================  ======================
``gen1`` / ``1mpx``       0.5 s         30 / 10                60 / 20
``*_toolbox_script``      0.1 s         30 / 20                60 / 10
========================  ============  =====================  ======================

The defaults are the papers' and the toolbox README's values (first row); every value is an
argument. Reported keys (prefix ``prophesee/``): ``mAP`` (AP@[.5:.95]), ``mAP_50``, ``mAP_75``,
``mAP_s``, ``mAP_m``, ``mAP_l``, plus ``num_images`` and ``num_gt`` after filtering.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

__all__ = ['PROTOCOLS', 'box_filter_mask', 'coco_box_map', 'PropheseeDetMetric', 'random_box_detections']

#: Filter presets; ``gen1`` / ``1mpx`` are the defaults (dataset papers, toolbox README).
PROTOCOLS: Dict[str, Dict[str, float]] = {
    'gen1': dict(skip_ts_us=500_000, min_box_diag=30, min_box_side=10),
    '1mpx': dict(skip_ts_us=500_000, min_box_diag=60, min_box_side=20),
    'gen1_toolbox_script': dict(skip_ts_us=100_000, min_box_diag=30, min_box_side=20),
    '1mpx_toolbox_script': dict(skip_ts_us=100_000, min_box_diag=60, min_box_side=10),
}
_STAT_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


def box_filter_mask(
    t: np.ndarray, w: np.ndarray, h: np.ndarray, skip_ts_us: float, min_box_diag: float, min_box_side: float
) -> np.ndarray:
    """Boolean mask of the boxes the protocol keeps (see the module docstring)."""
    t, w, h = (np.asarray(a, dtype=np.float64) for a in (t, w, h))
    return (
        (t > skip_ts_us)
        & (w * w + h * h >= float(min_box_diag) ** 2)
        & (w >= min_box_side)
        & (h >= min_box_side)
    )


def coco_box_map(
    gts: Sequence[Tuple[np.ndarray, np.ndarray]],
    dets: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
    num_classes: int,
    log: bool = False,
) -> Dict[str, float]:
    """COCO box AP of per-image ground truth and detections (pycocotools, default parameters).

    Args:
        gts: per image ``(boxes (N, 4) xywh, labels (N,))``.
        dets: per image ``(boxes (M, 4) xywh, scores (M,), labels (M,))``.
        num_classes: labels are ``0 .. num_classes - 1``.
        log: log pycocotools' summary table.

    Returns:
        ``mAP``, ``mAP_50``, ``mAP_75``, ``mAP_s``, ``mAP_m``, ``mAP_l`` (pycocotools gives -1 for
        a quantity without ground truth, e.g. no small boxes).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(gts) != len(dets):
        raise ValueError('gts and dets must list the same images')
    images, annotations, results = [], [], []
    for i, ((gb, gl), (db, ds, dl)) in enumerate(zip(gts, dets)):
        images.append(dict(id=i + 1))
        for b, lab in zip(np.asarray(gb, np.float64).reshape(-1, 4), gl):
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=int(lab) + 1,
                    bbox=[float(v) for v in b],
                    area=float(b[2] * b[3]),
                    iscrowd=0,
                )
            )
        for b, s, lab in zip(np.asarray(db, np.float64).reshape(-1, 4), ds, dl):
            results.append(
                dict(image_id=i + 1, category_id=int(lab) + 1, bbox=[float(v) for v in b], score=float(s))
            )
    if not annotations:
        return {k: -1.0 for k in _STAT_KEYS}
    if not results:  # pycocotools cannot load an empty result list; nothing detected = AP 0
        return {k: 0.0 for k in _STAT_KEYS}
    gt = COCO()
    gt.dataset = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=c + 1, name=str(c)) for c in range(num_classes)],
    )
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType='bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if log:
        print_log('\n' + buf.getvalue().split('DONE', 2)[-1].split('\n', 1)[-1], logger='current')
    return {k: float(v) for k, v in zip(_STAT_KEYS, ev.stats[:6])}


@METRICS.register_module()
class PropheseeDetMetric(BaseMetric):
    """Gen1 / 1 Mpx detection mAP (see the module docstring for the protocol).

    Args:
        protocol: a key of :data:`PROTOCOLS` giving the default thresholds.
        skip_ts_us, min_box_diag, min_box_side: override the preset's values (µs, px, px).
        collect_device, prefix: of mmengine's ``BaseMetric`` (default prefix ``prophesee``).

    Needs in each data sample: ``pred_instances`` (boxes in sensor pixels, i.e. predicted with
    ``rescale=True``), and the metainfo ``instances`` (ground truth, sensor pixels), ``label_t``
    (as :class:`~sdt_dense.datasets.events.transforms.PackEventDetInputs` packs them).
    """

    default_prefix: Optional[str] = 'prophesee'

    def __init__(
        self,
        protocol: str = 'gen1',
        skip_ts_us: Optional[float] = None,
        min_box_diag: Optional[float] = None,
        min_box_side: Optional[float] = None,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if protocol not in PROTOCOLS:
            raise KeyError(f'unknown protocol {protocol!r}; valid: {sorted(PROTOCOLS)}')
        cfg = dict(PROTOCOLS[protocol])
        for key, value in (
            ('skip_ts_us', skip_ts_us),
            ('min_box_diag', min_box_diag),
            ('min_box_side', min_box_side),
        ):
            if value is not None:
                cfg[key] = value
        self.protocol = protocol
        self.skip_ts_us = float(cfg['skip_ts_us'])
        self.min_box_diag = float(cfg['min_box_diag'])
        self.min_box_side = float(cfg['min_box_side'])

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            instances = sample.get('instances') or []
            gt_boxes = np.array([inst['bbox'] for inst in instances], np.float64).reshape(-1, 4)
            self.results.append(
                dict(
                    img_id=sample.get('img_id'),
                    label_t=int(sample['label_t']),
                    gt_bboxes=gt_boxes,
                    gt_labels=np.array([inst['bbox_label'] for inst in instances], np.int64),
                    bboxes=pred['bboxes'].detach().cpu().numpy().astype(np.float64),
                    scores=pred['scores'].detach().cpu().numpy().astype(np.float64),
                    labels=pred['labels'].detach().cpu().numpy().astype(np.int64),
                )
            )

    def filter_xyxy(self, t: float, boxes: np.ndarray) -> np.ndarray:
        """The protocol's mask for ``(N, 4)`` xyxy boxes labelled at ``t``."""
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        return box_filter_mask(
            np.full(len(boxes), t), w, h, self.skip_ts_us, self.min_box_diag, self.min_box_side
        )

    def filtered(self, results: List[dict]) -> Tuple[list, list]:
        """Filtered ``(gts, dets)`` in xywh, over the images the protocol scores."""
        gts, dets = [], []
        for r in results:
            g = self.filter_xyxy(r['label_t'], r['gt_bboxes'])
            if not g.any():
                continue
            d = self.filter_xyxy(r['label_t'], r['bboxes'])
            gts.append((_xywh(r['gt_bboxes'][g]), r['gt_labels'][g]))
            dets.append((_xywh(r['bboxes'][d]), r['scores'][d], r['labels'][d]))
        return gts, dets

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        classes = (self.dataset_meta or {}).get('classes')
        num_classes = (
            len(classes)
            if classes
            else 1 + max([int(r['gt_labels'].max()) for r in results if len(r['gt_labels'])] + [0])
        )
        gts, dets = self.filtered(results)
        print_log(
            f'Prophesee protocol {self.protocol!r}: skip t <= {self.skip_ts_us:g} us, '
            f'min diag {self.min_box_diag:g} px, min side {self.min_box_side:g} px: '
            f'{len(gts)} of {len(results)} labelled timestamps scored, '
            f'{sum(len(g[1]) for g in gts)} boxes',
            logger='current',
        )
        if not gts:
            print_log(
                'no ground-truth box survives the filter: mAP is undefined (-1)',
                logger='current',
                level=logging.WARNING,
            )
        stats = coco_box_map(gts, dets, num_classes, log=True)
        stats.update(num_images=len(gts), num_gt=int(sum(len(g[1]) for g in gts)))
        return stats


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    out = np.asarray(xyxy, np.float64).reshape(-1, 4).copy()
    out[:, 2:] -= out[:, :2]
    return out


def random_box_detections(
    gts: Sequence[Tuple[np.ndarray, np.ndarray]],
    box_sizes: np.ndarray,
    sensor_size: Tuple[int, int],
    num_classes: int,
    per_image: int = 10,
    seed: int = 0,
) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The chance-level detector: per image, ``per_image`` boxes with ``(w, h)`` drawn from
    ``box_sizes`` ``(K, 2)`` (e.g. the training boxes), top-left corners uniform such that the box
    lies inside the ``(H, W)`` sensor where it fits, uniform random classes and scores (xywh)."""
    rng = np.random.default_rng(seed)
    height, width = sensor_size
    out = []
    for _ in gts:
        wh = np.asarray(box_sizes, np.float64)[rng.integers(len(box_sizes), size=per_image)]
        x = rng.uniform(0, np.maximum(width - wh[:, 0], 0))
        y = rng.uniform(0, np.maximum(height - wh[:, 1], 0))
        out.append(
            (
                np.stack([x, y, wh[:, 0], wh[:, 1]], 1),
                rng.random(per_image),
                rng.integers(num_classes, size=per_image),
            )
        )
    return out

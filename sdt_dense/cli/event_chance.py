"""Chance level of an event-camera detection config (``tools/analysis_tools/event_chance.py``).

    python tools/analysis_tools/event_chance.py CONFIG [--split test] [--per-image 10] [--seeds 5]

Chance is the score of a detector that ignores the events: for every labelled timestamp of the
evaluated split, ``--per-image`` boxes whose width and height are drawn from the training split's
boxes, placed uniformly inside the sensor, with uniform random classes and scores. The boxes go
through the config's own metric (:class:`~sdt_dense.datasets.events.metric.PropheseeDetMetric`:
same filters, same COCO evaluation); mean and standard deviation over ``--seeds`` draws are
printed and returned.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Dict, List, Tuple

import numpy as np
from mmengine.config import Config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Chance-level mAP (random boxes of training-set sizes) of an event-camera '
        'detection config',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument('config')
    parser.add_argument(
        '--split', choices=('val', 'test'), default='test', help='evaluated dataloader of the config'
    )
    parser.add_argument('--per-image', type=int, default=10, help='random boxes per timestamp')
    parser.add_argument('--seeds', type=int, default=5, help='independent draws')
    parser.add_argument('--out', help='write the result as JSON to this file')
    return parser.parse_args(argv)


def _data_list(cfg: Config, loader: str) -> Tuple[List[dict], dict]:
    from mmdet.registry import DATASETS

    ds_cfg = copy.deepcopy(cfg[loader].dataset)
    ds_cfg['pipeline'] = []
    dataset = DATASETS.build(ds_cfg)
    dataset.full_init()
    return [dataset.get_data_info(i) for i in range(len(dataset))], dataset.metainfo


def chance_level(cfg: Config, split: str = 'test', per_image: int = 10, seeds: int = 5) -> Dict[str, float]:
    """Mean / std over ``seeds`` of the metric's keys for random boxes (see module docstring)."""
    import torch
    from mmdet.registry import METRICS

    from ..datasets.events.metric import random_box_detections

    train, _ = _data_list(cfg, 'train_dataloader')
    infos, meta = _data_list(cfg, f'{split}_dataloader')
    sizes = np.array(
        [[b['bbox'][2] - b['bbox'][0], b['bbox'][3] - b['bbox'][1]] for d in train for b in d['instances']],
        np.float64,
    )
    if not len(sizes):
        raise ValueError('the training split has no boxes to draw sizes from')
    evaluator = cfg[f'{split}_evaluator']
    num_classes = len(meta['classes'])
    runs = []
    for seed in range(seeds):
        metric = METRICS.build(copy.deepcopy(evaluator))
        metric.dataset_meta = meta
        dets = random_box_detections(infos, sizes, infos[0]['sensor_size'], num_classes, per_image, seed)
        samples = []
        for info, (xywh, scores, labels) in zip(infos, dets):
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
            samples.append(
                dict(
                    label_t=info['label_t'],
                    img_id=info['img_id'],
                    instances=info['instances'],
                    pred_instances=dict(
                        bboxes=torch.from_numpy(xyxy).float(),
                        scores=torch.from_numpy(scores).float(),
                        labels=torch.from_numpy(labels),
                    ),
                )
            )
        metric.process({}, samples)
        runs.append(metric.compute_metrics(metric.results))
    out = {}
    for key in runs[0]:
        values = np.array([r[key] for r in runs], np.float64)
        out[key] = float(values.mean())
        out[f'{key}_std'] = float(values.std())
    out.update(per_image=per_image, seeds=seeds, split=split)
    return out


def main(argv=None) -> Dict[str, float]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    from ..registry import init_scope

    init_scope(cfg)
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    result = chance_level(cfg, args.split, args.per_image, args.seeds)
    print(
        f'chance ({args.per_image} random boxes per timestamp of training-set sizes, '
        f'{args.seeds} draws, {args.split} split): mAP {result["mAP"]:.4f} '
        f'+- {result["mAP_std"]:.4f}, mAP_50 {result["mAP_50"]:.4f} '
        f'+- {result["mAP_50_std"]:.4f}'
    )
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result

"""Pictures of spikes: per-stage firing-rate maps of one image, and the spike-count distribution
of every layer (``tools/analysis_tools/spike_maps.py``).

    python tools/analysis_tools/spike_maps.py CONFIG [CHECKPOINT] IMAGE --out DIR

The image is normalised and padded by the config's data preprocessor, at its own size (or
resized so that its longer side is ``--max-side``), and the model's backbone and neck run on it
(``extract_feat``, integer mode: the counts equal the spike-driven form's). Writes to ``--out``:

* ``<stage>.png`` for every backbone stage (``backbone.stages.0.png``, ...): the image, the mean
  integer count over channels at each position (colour scale ``0..D``; the binary firing rate is
  this divided by ``D``) and the fraction of channels that fire at all, overlaid on the image;
* ``firing_distribution.png``: per layer (every neuron of the backbone and the neck), the
  fractions of elements with count ``0..D`` and the binary firing rate;
* ``spike_maps.json``: the mean of each map, and per-neuron statistics.

The definitions are in :mod:`sdt_dense.analysis.spike_maps` and ``docs/energy.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from ..registry import init_scope
from .measure_energy import build_model, load_weights

#: data preprocessors of image configs (the event configs take (B, T, C, H, W) event tensors)
IMAGE_PREPROCESSORS = ('DetDataPreprocessor', 'SegDataPreProcessor')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-stage firing-rate maps of one image and the per-layer spike-count '
        'distribution of an sdt-dense model',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument('config', help='mmdet or mmseg config file (image input)')
    parser.add_argument(
        'paths',
        nargs='+',
        metavar='[CHECKPOINT] IMAGE',
        help='optional model checkpoint (loaded strictly; without it the weights are random), then the image',
    )
    parser.add_argument('--out', required=True, help='output directory of the PNGs and JSON')
    parser.add_argument(
        '--max-side',
        type=int,
        default=None,
        help='resize the image (keeping its aspect ratio) so that its longer side '
        'is this many pixels; default: its own size',
    )
    parser.add_argument('--alpha', type=float, default=0.6, help='opacity of the maps')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (as tools/train.py)',
    )
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error(f'expected [CHECKPOINT] IMAGE, got {len(args.paths)} paths: {args.paths}')
    args.checkpoint, args.image = args.paths if len(args.paths) == 2 else (None, args.paths[0])
    if args.max_side is not None and args.max_side < 8:
        parser.error(f'--max-side must be >= 8, got {args.max_side}')
    if not 0 <= args.alpha <= 1:
        parser.error(f'--alpha must be in [0, 1], got {args.alpha}')
    return args


def load_image(path: str, max_side=None) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR image (mmcv's order, as the data pipelines load it)."""
    import mmcv

    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    img = mmcv.imread(path, channel_order='bgr')
    if img is None:
        raise ValueError(f'{path}: not an image mmcv can read')
    if max_side is not None:
        img = mmcv.imrescale(img, (max_side, max_side))
    return img


def preprocess(model: torch.nn.Module, img_bgr: np.ndarray) -> torch.Tensor:
    """The network input ``(1, 3, H_pad, W_pad)``: the config's data preprocessor (BGR to RGB,
    mean/std, padding to its size divisor) applied to the image."""
    tensor = torch.from_numpy(np.ascontiguousarray(img_bgr.transpose(2, 0, 1)))
    data = model.data_preprocessor(dict(inputs=[tensor], data_samples=None), False)
    return data['inputs']


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    pre = cfg.model.get('data_preprocessor', {}).get('type')
    if pre not in IMAGE_PREPROCESSORS:
        raise ValueError(
            f'{args.config}: spike maps need an image config (data preprocessor '
            f'{" or ".join(IMAGE_PREPROCESSORS)}), got {pre!r}'
        )
    scope = init_scope(cfg)
    from sdt_dense.analysis.spike_maps import SpikeMapRecorder, plot_firing_distribution, plot_stage_map

    img = load_image(args.image, args.max_side)  # before the model: a bad path fails fast
    model = build_model(cfg, scope, backbone_only=False)
    if args.checkpoint:
        load_weights(model, args.checkpoint, backbone_only=False)
    else:
        print_log(
            'no checkpoint given: the weights are random, so the maps show an untrained network',
            logger='current',
            level=30,
        )
    model.to(args.device).eval()

    inputs = preprocess(model, img).to(args.device)
    with torch.no_grad(), SpikeMapRecorder(model, include=('backbone.',)) as rec:
        model.extract_feat(inputs)
    maps = rec.stage_maps()
    rows = rec.rows()

    os.makedirs(args.out, exist_ok=True)
    rgb = img[..., ::-1]
    name = osp.splitext(osp.basename(args.config))[0]
    written = {}
    # the stage PNGs, then the distribution figure; sys.stdout of now (mmengine binds import time)
    progress = ProgressBar(len(maps) + 1, file=sys.stdout)
    for stage, stage_map in maps.items():
        path = osp.join(args.out, f'{stage}.png')
        size = plot_stage_map(
            rgb,
            stage_map,
            path,
            padded_hw=tuple(inputs.shape[-2:]),
            title=f'{name}: {stage}',
            alpha=args.alpha,
        )
        written[stage] = dict(path=path, png_size=list(size), **stage_map.summary())
        progress.update()
    plot_firing_distribution(rows, osp.join(args.out, 'firing_distribution.png'), title=name)
    progress.update()
    sys.stdout.write('\n')

    summary = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        image=args.image,
        image_size=list(img.shape[:2]),
        input_size=list(inputs.shape[-2:]),
        stages=written,
        neurons=[r.to_dict() for r in rows],
    )
    with open(osp.join(args.out, 'spike_maps.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print_log(
        f'{name}: {len(written)} stage maps of {args.image} '
        f'({img.shape[0]}x{img.shape[1]}) and firing_distribution.png written to '
        f'{args.out}; mean binary rate per stage: '
        + ', '.join(f'{s} {v["binary_rate"]:.3f}' for s, v in written.items()),
        logger='current',
    )
    return written

"""Firing rates, synaptic operations and energy of an sdt-dense model
(``tools/analysis_tools/energy.py``).

    # detector / segmentor over N images of the config's test set (batch size 1)
    python tools/analysis_tools/energy.py CONFIG [CHECKPOINT] [--num-images N] [--out DIR]
    # the bare backbone of the config on a (B, 3, H, W) input, no dataset
    python tools/analysis_tools/energy.py CONFIG [CHECKPOINT] --shape H W [--input random|constant]

The model runs spike-driven (SFA neurons emit binary slices; results equal integer mode), with
every RepConv of the Large family fused into one spike-fed conv first (its inference form; keep
the two maps with ``--no-fuse-rep-conv``). Every SFA neuron and every synaptic layer is measured;
the energy convention (45 nm, E_MAC = 4.6 pJ, E_AC = 0.9 pJ; first layer on pixels as MACs,
spike-input layers as ACs) is documented in
``docs/energy.md`` and :mod:`sdt_dense.analysis.energy`. Writes ``energy.json``, ``energy.md`` and
``firing_rates.png`` to ``--out`` (default ``<work_dir>``, i.e. ``./work_dirs/<config name>``; in
``--shape`` mode ``<work_dir>/backbone_<H>x<W>``).
"""

from __future__ import annotations

import argparse
import collections
import copy
import os.path as osp
import sys
from typing import Dict, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import nn

from ..checkpoint import load_pretrained
from ..registry import init_scope


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Firing rates, synaptic operations and energy of an sdt-dense model',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument('config', help='mmdet or mmseg config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='model checkpoint (loaded strictly); without it the weights are '
        'random and the numbers describe nothing but the architecture',
    )
    parser.add_argument(
        '--num-images',
        type=int,
        default=100,
        help='images to run (dataset mode: the first N of the test set, fewer if '
        'the set is smaller; --shape mode: random/constant inputs)',
    )
    parser.add_argument('--out', help='output directory for energy.json / .md / firing_rates.png')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='measure the bare backbone on (batch, in_channels, H, W) inputs instead of running the test set',
    )
    parser.add_argument(
        '--input',
        choices=('random', 'constant'),
        default='random',
        help='--shape mode input: standard-normal noise (like normalised pixels, '
        'seeded) or a constant --input-value',
    )
    parser.add_argument('--input-value', type=float, default=0.5, help='value of --input constant')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='--shape mode batch size (numbers are per image either way)'
    )
    parser.add_argument('--e-mac', type=float, default=4.6, help='energy per MAC in pJ')
    parser.add_argument('--e-ac', type=float, default=0.9, help='energy per AC in pJ')
    parser.add_argument(
        '--sop',
        choices=('estimate', 'exact'),
        default='estimate',
        help='SOP count of the headline energy: the paper convention (mean input '
        'count x dense MACs) or the accumulates counted in spike-driven mode; '
        'both are always reported',
    )
    parser.add_argument(
        '--no-fuse-rep-conv',
        action='store_true',
        help='keep every RepConv (Large family) as two maps: its second map then '
        'reads real values and is charged as MACs. Default: fused into one '
        'spike-fed conv, the inference form (sdt_dense.deploy.fuse_rep_conv)',
    )
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--num-workers', type=int, default=None, help="dataloader workers (default: the config's)"
    )
    parser.add_argument('--seed', type=int, default=0, help='seed of --input random')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (as tools/train.py)',
    )
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1, got {args.num_images}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.shape is not None and min(args.shape) < 1:
        parser.error(f'--shape needs positive H W, got {args.shape}')
    if args.shape is None and (args.batch_size != 1 or args.input != 'random'):
        parser.error(
            '--batch-size and --input apply to --shape mode only (the test set runs with batch size 1)'
        )
    return args


def build_model(cfg: Config, scope: str, backbone_only: bool) -> nn.Module:
    """Build ``cfg.model`` (or its backbone) from the toolbox registry of ``scope``."""
    from mmengine.registry import init_default_scope

    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if backbone_only:
        if 'backbone' not in model_cfg:
            raise KeyError(f'{cfg.filename}: model has no backbone to measure with --shape')
        model_cfg = model_cfg['backbone']
    return MODELS.build(model_cfg)


def load_weights(model: nn.Module, checkpoint: str, backbone_only: bool) -> None:
    """Strict loading: a full-model checkpoint into the model; in ``--shape`` mode, the
    ``backbone.*`` part of a detector/segmentor checkpoint (or a released classification file)."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    if backbone_only:
        load_pretrained(model, checkpoint)  # strict; released layouts, 'backbone.' prefix
        return
    from mmengine.runner import load_checkpoint

    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='current')


def count_params(model: nn.Module) -> Dict[str, int]:
    params = dict(params=sum(p.numel() for p in model.parameters()))
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, nn.Module):
        params['backbone_params'] = sum(p.numel() for p in backbone.parameters())
    return params


def describe_sizes(sizes: Dict[Tuple[int, int], int]) -> str:
    """``{(800, 1216): 3, ...}`` -> ``'800x1216'`` or ``'mean 790x1180 (5 sizes)'``."""
    if not sizes:
        return 'unknown'
    if len(sizes) == 1:
        ((h, w),) = sizes
        return f'{h}x{w}'
    n = sum(sizes.values())
    mh = sum(h * c for (h, _), c in sizes.items()) / n
    mw = sum(w * c for (_, w), c in sizes.items()) / n
    return f'mean {mh:.0f}x{mw:.0f} ({len(sizes)} sizes)'


class InputSizeRecorder:
    """Records the spatial size of the batch tensor each forward pass receives (after the data
    preprocessor: resized and padded, i.e. what the network computes on)."""

    def __init__(self, model: nn.Module) -> None:
        self.sizes: Dict[Tuple[int, int], int] = collections.Counter()
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:
        x = kwargs.get('inputs', args[0] if args else None)
        if isinstance(x, torch.Tensor) and x.dim() >= 3:
            # (B, C, H, W) images or (B, T, C, H, W) event tensors
            self.sizes[tuple(x.shape[-2:])] += x.shape[0] if x.dim() in (4, 5) else 1

    def remove(self) -> None:
        self._handle.remove()


def run_dataset(model: nn.Module, cfg: Config, args: argparse.Namespace, meter) -> int:
    """Run ``model.test_step`` over the first ``--num-images`` test images, batch size 1."""
    from mmengine.runner import Runner

    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg['batch_size'] = 1
    if args.num_workers is not None:
        loader_cfg['num_workers'] = args.num_workers
    if not loader_cfg.get('num_workers', 0):
        loader_cfg['persistent_workers'] = False
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    total = min(args.num_images, len(loader.dataset))
    if total < args.num_images:
        print_log(f'the test set has {total} images; measuring all of them', logger='current')
    progress, seen = ProgressBar(total, file=sys.stdout), 0  # stdout of now, not of import
    for data in loader:
        model.test_step(data)
        n = len(data['inputs'])
        meter.step(n)
        seen += n
        progress.update(n)
        if seen >= total:
            break
    sys.stdout.write('\n')
    return seen


def run_shape(model: nn.Module, args: argparse.Namespace, in_channels: int, meter) -> int:
    """Run the bare backbone on ``--num-images`` inputs of ``--shape``, ``--batch-size`` at a
    time."""
    gen = torch.Generator().manual_seed(args.seed)
    device = next(model.parameters()).device
    total, seen = args.num_images, 0
    progress = ProgressBar(total, file=sys.stdout)
    with torch.no_grad():
        while seen < total:
            b = min(args.batch_size, total - seen)
            shape = (b, in_channels, *args.shape)
            x = (
                torch.randn(shape, generator=gen)
                if args.input == 'random'
                else torch.full(shape, args.input_value)
            )
            model(x.to(device))
            meter.step(b)
            seen += b
            progress.update(b)
    sys.stdout.write('\n')
    return seen


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = init_scope(cfg)  # also imports sdt_dense (registration, safe checkpoint loading)
    from sdt_dense.analysis import EnergyConstants, EnergyMeter, plot_firing_rates, write_report

    backbone_only = args.shape is not None
    model = build_model(cfg, scope, backbone_only)
    if args.checkpoint:
        load_weights(model, args.checkpoint, backbone_only)
    else:
        print_log(
            'no checkpoint given: the weights are random, so the firing rates and energy '
            'describe an untrained network',
            logger='current',
            level=30,
        )
    model.to(args.device).eval()
    params = count_params(model)  # of the model as trained (fusing merges RepConv weights)
    rep_convs = 0
    if not args.no_fuse_rep_conv:  # the inference form: one accumulate-only layer per RepConv
        from sdt_dense.deploy import fuse_rep_conv
        from sdt_dense.models.layers import RepConv

        rep_convs = sum(isinstance(m, RepConv) for m in model.modules())
        fuse_rep_conv(model)

    stem = osp.splitext(osp.basename(args.config))[0]
    work_dir = cfg.get('work_dir', None) or osp.join('./work_dirs', stem)
    if backbone_only:
        out = args.out or osp.join(work_dir, f'backbone_{args.shape[0]}x{args.shape[1]}')
    else:
        out = args.out or work_dir
    constants = EnergyConstants(e_mac_pj=args.e_mac, e_ac_pj=args.e_ac)

    sizes = InputSizeRecorder(model)
    try:
        with EnergyMeter(model) as meter:
            if backbone_only:
                in_channels = cfg.model.backbone.get('in_channels', 3)
                num_images = run_shape(model, args, in_channels, meter)
            else:
                num_images = run_dataset(model, cfg, args, meter)
    finally:
        sizes.remove()

    meta = dict(
        model=stem + (' (backbone)' if backbone_only else ''),
        task=('backbone' if backbone_only else {'mmdet': 'det', 'mmseg': 'seg'}[scope]),
        config=args.config,
        checkpoint=args.checkpoint,
        dataset=(None if backbone_only else cfg.test_dataloader.dataset.get('type')),
        input=(
            (
                'constant %g' % args.input_value
                if args.input == 'constant'
                else 'random normal (seed %d)' % args.seed
            )
            if backbone_only
            else 'test set'
        ),
        input_size=describe_sizes(sizes.sizes),
        input_sizes={f'{h}x{w}': n for (h, w), n in sorted(sizes.sizes.items())},
        rep_convs_fused=rep_convs,
        **params,
    )
    report = meter.report(constants, args.sop, meta)
    write_report(report, out)
    plot_firing_rates(report.neurons, osp.join(out, 'firing_rates.png'), title=meta['model'])

    t = report.totals()
    print_log(
        f'{meta["model"]}: {num_images} images at {meta["input_size"]}: '
        f'{t["total_energy_mj"]:.4g} mJ/image (SOP {args.sop}; estimate '
        f'{t["total_energy_mj_estimate"]:.4g}, exact {t["total_energy_mj_exact"]:.4g}), '
        f'{t["mac_ops"] / 1e9:.4g} G MACs + {t["ac_ops"] / 1e9:.4g} G ACs, dense '
        f'{t["dense_macs"] / 1e9:.4g} G MACs, mean firing rate {t["mean_firing_rate"]:.4f} '
        f'(binary {t["mean_binary_firing_rate"]:.4f}); written to {out}',
        logger='current',
    )
    return report.to_dict()

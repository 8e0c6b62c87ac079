"""Write a small procedurally generated dataset (no download needed).

    python tools/misc/make_toy_data.py --task det --out data/toy_coco   # COCO instances
    python tools/misc/make_toy_data.py --task seg --out data/toy_ade    # ADE20K-layout semantic seg
    python tools/misc/make_toy_data.py --task cls --out data/toy_cls    # ImageNet-style folders
    python tools/misc/make_toy_data.py --task events --out data/toy_events  # Prophesee Gen1 layout

The output is a pure function of the arguments (``--seed``). See ``sdt_dense/toy_data``. A progress
bar with an ETA counts the images (recordings) written. The arguments that define the data set are
written last, to ``<out>/toy_data_manifest.json``; with ``--reuse`` a folder whose manifest equals
the requested arguments is kept as it is (and one with another manifest is rewritten).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..toy_data import make_det_dataset, make_seg_dataset
from ..toy_data.cls import make_cls_dataset
from ..toy_data.events import make_events_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--task',
        choices=('det', 'seg', 'cls', 'events'),
        required=True,
        help='det: COCO instance segmentation; seg: ADE20K-layout semantic seg; '
        'cls: ImageNet-style class folders (train/<class>/*.JPEG), one shape '
        'per image; events: Prophesee Gen1 layout (.dat events + _bbox.npy '
        'boxes per recording), counts are recordings',
    )
    parser.add_argument('--out', required=True, help='dataset root to write')
    parser.add_argument(
        '--num-train', type=int, default=None, help='training images (default: det 300, seg 200, cls 200)'
    )
    parser.add_argument(
        '--num-val', type=int, default=None, help='validation images (default 50; events: 4 recordings)'
    )
    parser.add_argument('--num-test', type=int, default=4, help='events: test recordings')
    parser.add_argument(
        '--duration', type=float, default=2.0, help='events: seconds per recording (labels every 0.1 s)'
    )
    parser.add_argument('--image-size', type=int, default=128, help='square image side (px)')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=None,
        help='shape classes (default: det 3, seg 4, cls 5; at most 5)',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--reuse',
        action='store_true',
        help=f'keep --out as it is when its {MANIFEST} equals these arguments; '
        'rewrite it when the manifest differs; refuse a non-empty folder without one',
    )
    return parser.parse_args(argv)


#: what make_toy_data.py writes last into the data set folder: the arguments that define the data
MANIFEST = 'toy_data_manifest.json'


def manifest(args: argparse.Namespace) -> dict:
    """The arguments that define the written data set (defaults resolved)."""
    keys = ['task', 'seed', 'num_train', 'num_val', 'image_size', 'num_classes']
    if args.task == 'events':
        keys = ['task', 'seed', 'num_train', 'num_val', 'num_test', 'duration']
    return dict(format=1, **{k: getattr(args, k) for k in keys})


def reuse_or_clear(out: str, wanted: dict) -> bool:
    """``True`` if ``out`` already holds the data set ``wanted``; otherwise clear a folder written
    by this tool for other arguments (its manifest says so) and return ``False``.

    Raises:
        SystemExit: ``out`` is a non-empty folder without a manifest (not ours to delete).
    """
    root = Path(out)
    path = root / MANIFEST
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except ValueError:
            found = None
        if found == wanted:
            return True
        print(f'{out}: toy data written with other arguments ({found} != {wanted}): rewriting it')
        shutil.rmtree(root)
    elif root.is_dir() and any(root.iterdir()):
        raise SystemExit(
            f'{out}: not empty and has no {MANIFEST} (not written by this tool, or '
            'interrupted): remove it or choose another --out'
        )
    return False


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.num_val is None:
        args.num_val = 4 if args.task == 'events' else 50
    defaults = dict(det=(300, 3), seg=(200, 4), cls=(200, 5), events=(24, None))[args.task]
    args.num_train = args.num_train or defaults[0]
    args.num_classes = args.num_classes or defaults[1]
    wanted = manifest(args)
    if args.reuse and reuse_or_clear(args.out, wanted):
        print(f'{args.out}: toy data with these arguments already there ({MANIFEST}): reused')
        return
    if args.task == 'det':
        result = make_det_dataset(
            args.out,
            num_train=args.num_train or 300,
            num_val=args.num_val,
            image_size=args.image_size,
            num_classes=args.num_classes or 3,
            seed=args.seed,
            progress=True,
        )
        summary = ', '.join(
            f'{split}: {len(coco["images"])} images / {len(coco["annotations"])} instances'
            for split, coco in result.items()
        )
    elif args.task == 'cls':
        meta = make_cls_dataset(
            args.out,
            num_train=args.num_train or 200,
            num_val=args.num_val,
            image_size=args.image_size,
            num_classes=args.num_classes or 5,
            seed=args.seed,
            progress=True,
        )
        summary = f'classes {meta["classes"]}, ' + ', '.join(
            f'{split}: {sum(n.values())} images' for split, n in meta['counts'].items()
        )
    elif args.task == 'events':
        counts = make_events_dataset(
            args.out,
            num_train=args.num_train or 24,
            num_val=args.num_val,
            num_test=args.num_test,
            duration_us=int(round(args.duration * 1e6)),
            seed=args.seed,
            progress=True,
        )
        summary = 'classes car, pedestrian, ' + ', '.join(
            f'{split}: {c["recordings"]} recordings / {c["labelled_timestamps"]} labelled '
            f'timestamps / {c["boxes"]} boxes'
            for split, c in counts.items()
        )
    else:
        meta = make_seg_dataset(
            args.out,
            num_train=args.num_train or 200,
            num_val=args.num_val,
            image_size=args.image_size,
            num_classes=args.num_classes or 4,
            seed=args.seed,
            progress=True,
        )
        summary = f'classes {meta["classes"]}, ' + ', '.join(
            f'{split}: {n} images' for split, n in meta['counts'].items()
        )
    (Path(args.out) / MANIFEST).write_text(json.dumps(wanted, indent=1) + '\n')
    print(f'wrote {args.task} toy dataset to {args.out} ({summary})')

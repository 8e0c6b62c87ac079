"""Write a small procedurally generated dataset (no download needed).

    python tools/misc/make_toy_data.py --task det --out data/toy_coco   # COCO instances
    python tools/misc/make_toy_data.py --task seg --out data/toy_ade    # ADE20K-layout semantic seg
    python tools/misc/make_toy_data.py --task cls --out data/toy_cls    # ImageNet-style folders
    python tools/misc/make_toy_data.py --task events --out data/toy_events  # Prophesee Gen1 layout

The output is a pure function of the arguments (``--seed``). See ``sdt_dense/toy_data``. A progress
bar with an ETA counts the images (recordings) written.
"""
from __future__ import annotations

import argparse

from ..toy_data import make_det_dataset, make_seg_dataset
from ..toy_data.cls import make_cls_dataset
from ..toy_data.events import make_events_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=('det', 'seg', 'cls', 'events'), required=True,
                        help='det: COCO instance segmentation; seg: ADE20K-layout semantic seg; '
                        'cls: ImageNet-style class folders (train/<class>/*.JPEG), one shape '
                        'per image; events: Prophesee Gen1 layout (.dat events + _bbox.npy '
                        'boxes per recording), counts are recordings')
    parser.add_argument('--out', required=True, help='dataset root to write')
    parser.add_argument('--num-train', type=int, default=None,
                        help='training images (default: det 300, seg 200, cls 200)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='validation images (default 50; events: 4 recordings)')
    parser.add_argument('--num-test', type=int, default=4, help='events: test recordings')
    parser.add_argument('--duration', type=float, default=2.0,
                        help='events: seconds per recording (labels every 0.1 s)')
    parser.add_argument('--image-size', type=int, default=128, help='square image side (px)')
    parser.add_argument('--num-classes', type=int, default=None,
                        help='shape classes (default: det 3, seg 4, cls 5; at most 5)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.num_val is None:
        args.num_val = 4 if args.task == 'events' else 50
    if args.task == 'det':
        result = make_det_dataset(args.out, num_train=args.num_train or 300, num_val=args.num_val,
                                  image_size=args.image_size, num_classes=args.num_classes or 3,
                                  seed=args.seed, progress=True)
        summary = ', '.join(f'{split}: {len(coco["images"])} images / '
                            f'{len(coco["annotations"])} instances'
                            for split, coco in result.items())
    elif args.task == 'cls':
        meta = make_cls_dataset(args.out, num_train=args.num_train or 200, num_val=args.num_val,
                                image_size=args.image_size, num_classes=args.num_classes or 5,
                                seed=args.seed, progress=True)
        summary = f'classes {meta["classes"]}, ' + ', '.join(
            f'{split}: {sum(n.values())} images' for split, n in meta['counts'].items())
    elif args.task == 'events':
        counts = make_events_dataset(args.out, num_train=args.num_train or 24,
                                     num_val=args.num_val, num_test=args.num_test,
                                     duration_us=int(round(args.duration * 1e6)), seed=args.seed,
                                     progress=True)
        summary = 'classes car, pedestrian, ' + ', '.join(
            f'{split}: {c["recordings"]} recordings / {c["labelled_timestamps"]} labelled '
            f'timestamps / {c["boxes"]} boxes' for split, c in counts.items())
    else:
        meta = make_seg_dataset(args.out, num_train=args.num_train or 200, num_val=args.num_val,
                                image_size=args.image_size, num_classes=args.num_classes or 4,
                                seed=args.seed, progress=True)
        summary = f'classes {meta["classes"]}, ' + ', '.join(
            f'{split}: {n} images' for split, n in meta['counts'].items())
    print(f'wrote {args.task} toy dataset to {args.out} ({summary})')


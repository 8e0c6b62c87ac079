"""Single-image demo (``demo/image_demo.py``).

    python demo/image_demo.py IMG CONFIG [--weights CKPT] [--out-dir DIR] [--spike-driven] \\
        [--device cpu|cuda]

The image runs through :func:`sdt_dense.apis.build_inferencer` (task from the config, weights
loaded strictly); the usual visualisation is written to ``DIR/vis/<image name>``.

``--spike-driven`` also runs the model spike-driven (every SFA neuron emits binary spike slices,
:func:`sdt_dense.deploy.spike_driven`), compares its predictions with the integer model's and
prints the comparison; the exit status is 1 when they differ. Both runs of the comparison use
float64: in float32 the two summation orders differ by ~1e-7, enough to move an SFA input across
a rounding boundary somewhere in a large image and change a spike count.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

from ..apis.inference import build_inferencer, compare_predictions, float64, predict, summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detection or segmentation of one image with an sdt-dense config',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='mmdet or mmseg config file of this project')
    parser.add_argument('--weights', help='checkpoint (loaded strictly); without it the weights are random')
    parser.add_argument(
        '--out-dir', default='outputs', help='where the visualisation goes (DIR/vis/<image name>)'
    )
    parser.add_argument(
        '--spike-driven',
        action='store_true',
        help='also run the binary-spike model and compare its predictions with '
        "the integer model's (exit status 1 if they differ)",
    )
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.img):
        raise FileNotFoundError(f'image not found: {args.img}')
    inferencer, task = build_inferencer(args.config, args.weights, args.device)
    sample = predict(inferencer, task, args.img, args.out_dir)
    print(f'integer model: {summary(task, sample)}')
    print(f'visualisation: {osp.join(args.out_dir, "vis", osp.basename(args.img))}')
    if not args.spike_driven:
        return 0
    from ..deploy import is_spike_driven, spike_driven
    from ..models.neurons import SFANeuron

    with float64(inferencer.model, task):
        integer = predict(inferencer, task, args.img)
        with spike_driven(inferencer.model):  # raises when the model has no SFA neuron
            # never "EQUAL" by comparing the integer model with itself: every neuron is switched
            converted = sum(isinstance(m, SFANeuron) for m in inferencer.model.modules())
            if not (converted and is_spike_driven(inferencer.model)):
                raise RuntimeError(
                    '--spike-driven: the model was not switched to spike-driven inference; nothing to compare'
                )
            spiking = predict(inferencer, task, args.img)
    print(f'spike-driven model: {summary(task, spiking)}')
    print(f'  ({converted} SFA neurons switched to binary spike slices)')
    cmp = compare_predictions(task, integer, spiking)
    details = ', '.join(f'{k}={v}' for k, v in cmp.items() if k != 'equal')
    if cmp['equal']:
        print(f"spike-driven predictions EQUAL the integer model's (float64; {details})")
        return 0
    print(f"spike-driven predictions DIFFER from the integer model's (float64; {details})")
    return 1


if __name__ == '__main__':
    sys.exit(main())

"""Convert a released E-SpikeFormer classification checkpoint to a plain sdt-dense weights file.

    python tools/model_converters/official2sdt.py SRC.pth DST.pth [--arch 19M]

The source (dict with ``model``, ``epoch``, ``scaler``, ``args``) is read safely (weights-only,
allow-listing ``argparse.Namespace``). The destination holds only ``{'state_dict': ...}`` with the
names of :class:`sdt_dense.models.ESpikeFormerClassifier` (``backbone.*``, ``head.*``), loads with
plain ``torch.load(weights_only=True)`` and is accepted by the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=DST)``. With ``--arch`` the result is verified by
loading it strictly into the classifier of that size.
"""

import argparse
import os
import sys

from ..checkpoint import BASE_FORMAT, extract_state_dict, safe_load, save_weights
from ..models.backbones import ESpikeFormerClassifier


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='output weights file')
    parser.add_argument(
        '--arch', default=None, help="verify against this size ('5M', '10M', '19M' or 't') by a strict load"
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        sys.exit('refusing to overwrite the source checkpoint; choose another DST')
    state_dict = BASE_FORMAT.to_classifier(extract_state_dict(safe_load(args.src)))
    if args.arch:
        model = ESpikeFormerClassifier(args.arch)
        model.load_state_dict(state_dict, strict=True)
    save_weights(state_dict, args.dst)  # atomic: never a half-written DST
    print(f'wrote {len(state_dict)} tensors to {args.dst}')

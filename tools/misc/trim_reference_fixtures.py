#!/usr/bin/env python
"""Write the trimmed copies of the reference data that the tests read.

Reads the untrimmed reference data (``--src``, required: a folder with ``e_spikeformer_t_*`` and
``large/``, as written by the authors' code) and writes ``tests/data/base`` and ``tests/data/large``
(under ``--dst``); regenerating gives the same tensors. ``tools/misc/make_reference_fixtures.py``
rebuilds the float64 outputs from the authors' repository and trims them with this script's
functions. What is trimmed and why is described in ``tests/data/README.md`` and
``tests/data/large/README.md``; in short:

* Base: the released-layout checkpoint is copied byte for byte; in the float64 expected outputs the
  input is stored in float32 (it was made from a float32 input, so the cast back is exact) and the
  input gradient is trimmed like the large tensors below.

* ``large_small_official_format.pth`` is copied byte for byte (the released layout, with its
  ``argparse.Namespace``, is what the safe loader is tested on).
* the D = 8 checkpoint differs from it only in BatchNorm tensors and ``args.model``: only those
  are kept (``large_small_d8_delta.pt``); the test rebuilds the full file in the same layout. This
  script checks that the rebuilt checkpoint equals the original.
* expected outputs stay float64; the ``neurons`` statistics are dropped; tensors of more than
  ``FULL_LIMIT`` elements are replaced by a spatial corner crop (compared element-wise) plus
  ``K`` fixed projections of the whole tensor (a global check), see :func:`projection_weights`.
* the state-dict key list keeps only the two classifiers.

Usage: ``python tools/misc/trim_reference_fixtures.py --src DIR [--dst DIR]``
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any, Dict

import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[2]
FULL_LIMIT = 60_000  # elements; larger tensors are cropped (0.48 MB in float64)
CROP_ELEMENTS = 32_768
K = 4
# Distinct odd multipliers of the integer hash behind the projection weights.
_MULTIPLIERS = (2654435761, 2246822519, 3266489917, 668265263)
_PRIME = 2147483647


def projection_weights(n: int, k: int = K) -> Tensor:
    """``(k, n)`` float64 weights in ``[-1, 1)`` from an integer hash of the element index
    (exact integer arithmetic: the same on every machine and torch version)."""
    idx = torch.arange(n, dtype=torch.int64)
    rows = [((idx * _MULTIPLIERS[j] + 40503 * (j + 1)) % _PRIME).double() / _PRIME * 2 - 1 for j in range(k)]
    return torch.stack(rows)


def trim_tensor(t: Tensor) -> Any:
    """A tensor as is if small, else ``dict(crop, crop_size, shape, projections)``."""
    if t.numel() <= FULL_LIMIT:
        return t.clone()
    lead = math.prod(t.shape[:-2])
    size = min(t.shape[-1], t.shape[-2], int(math.sqrt(CROP_ELEMENTS / lead)))
    return dict(
        crop=t[..., :size, :size].clone(),
        crop_size=size,
        shape=tuple(t.shape),
        projections=projection_weights(t.numel()) @ t.flatten(),
    )


def trim_expected(src: Dict[str, Any], keep_input: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = dict(
        format=f'trimmed: {src["format"]}',
        dtype=src['dtype'],
        D=src['D'],
        config=dict(src['config']),
        projection_check=projection_weights(7),
    )
    if keep_input:
        out['input'] = src['input'].clone()
    out['eval'] = {}
    for name, t in src['eval'].items():
        # The last block's output is stored once (the same tensor object under both names).
        if name == 'stage3' and 'block3_1' in out['eval'] and torch.equal(t, src['eval']['block3_1']):
            out['eval'][name] = out['eval']['block3_1']
        else:
            out['eval'][name] = trim_tensor(t)
    # train: logits, loss weights and the input gradient (the stage3 tap is not read by the tests)
    out['train'] = {name: trim_tensor(t) for name, t in src['train'].items() if name != 'stage3'}
    return out


def _load_checkpoint(path: Path) -> Dict[str, Any]:
    torch.serialization.add_safe_globals([argparse.Namespace])
    return torch.load(path, map_location='cpu', weights_only=True)


def rebuild_d8(base: Dict[str, Any], delta: Dict[str, Any]) -> Dict[str, Any]:
    """The D = 8 checkpoint from the D = 4 one and the delta (what the tests do)."""
    ckpt = dict(base)
    ckpt['model'] = {k: delta['model'].get(k, v) for k, v in base['model'].items()}
    ckpt['args'] = argparse.Namespace(**{**vars(base['args']), **delta['args']})
    return ckpt


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def write_base(src: Path, dst: Path) -> None:
    """``tests/data/base``: the Base family's ``t`` checkpoint and its float64 outputs."""
    dst.mkdir(parents=True, exist_ok=True)
    name = 'e_spikeformer_t_official_format.pth'
    shutil.copyfile(src / name, dst / name)
    e = torch.load(src / 'e_spikeformer_t_expected_f64.pt', weights_only=True)
    if not torch.equal(e['input'].float().double(), e['input']):
        raise RuntimeError('the float64 input is not float32-representable; store it whole')
    out = dict(
        dtype=e['dtype'],
        input_float32=e['input'].float(),
        projection_check=projection_weights(7),
        eval={k: v.clone() for k, v in e['eval'].items()},
        train={k: trim_tensor(v) for k, v in e['train'].items()},
    )
    torch.save(out, dst / 'e_spikeformer_t_expected_f64.pt')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--src', type=Path, required=True, help='folder of the untrimmed reference data (no default)'
    )
    parser.add_argument('--dst', type=Path, default=REPO / 'tests/data')
    args = parser.parse_args()
    write_base(args.src, args.dst / 'base')
    src, dst = args.src / 'large', args.dst / 'large'
    dst.mkdir(parents=True, exist_ok=True)

    name = 'large_small_official_format.pth'
    shutil.copyfile(src / name, dst / name)
    base = _load_checkpoint(src / 'large_small_official_format.pth')
    d8 = _load_checkpoint(src / 'large_small_d8_official_format.pth')
    delta = dict(
        format='D=8 checkpoint = large_small_official_format.pth with these tensors and args',
        model={k: v.clone() for k, v in d8['model'].items() if not torch.equal(v, base['model'][k])},
        args={k: v for k, v in vars(d8['args']).items() if vars(base['args']).get(k) != v},
    )
    rebuilt = rebuild_d8(base, delta)
    if not (
        _equal(rebuilt['model'], d8['model'])
        and rebuilt['args'] == d8['args']
        and all(_equal(rebuilt[k], d8[k]) for k in ('optimizer', 'epoch', 'scaler'))
        and list(rebuilt) == list(d8)
    ):
        raise RuntimeError('the rebuilt D=8 checkpoint differs from the original')
    torch.save(delta, dst / 'large_small_d8_delta.pt')

    e4 = torch.load(src / 'large_small_expected.pt', weights_only=True)
    e8 = torch.load(src / 'large_small_d8_expected.pt', weights_only=True)
    if not torch.equal(e4['input'], e8['input']):
        raise RuntimeError('the two fixtures no longer share their input; keep both inputs')
    torch.save(trim_expected(e4, keep_input=True), dst / 'large_small_expected_f64.pt')
    torch.save(trim_expected(e8, keep_input=False), dst / 'large_small_d8_expected_f64.pt')

    keys = json.loads((src / 'official_state_dict_keys_large.json').read_text())
    fields = ('factory', 'choice', 'embed_dim', 'depths', 'num_heads', 'params', 'kd_only_keys', 'state_dict')
    trimmed = {'_notes': keys['_notes']}
    trimmed.update(
        {name: {f: keys[name][f] for f in fields} for name in ('spikformer12_512', 'spikformer12_768')}
    )
    (dst / 'official_state_dict_keys_large.json').write_text(json.dumps(trimmed) + '\n')
    for path in sorted(dst.iterdir()):
        print(f'{path.stat().st_size / 2**20:8.2f} MiB  {path}')


if __name__ == '__main__':
    main()

"""The markdown summary of a ``benchmarks/gpu/check.sh`` output folder (printed on stdout)."""

from __future__ import annotations

import glob
import json
import os
import sys


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def backbone_rows(out: str) -> list:
    rows = []
    for path in sorted(glob.glob(os.path.join(out, 'A_train_cost_*.json'))):
        r = _load(path)
        s = r['settings']
        prec = 'bf16' if s.get('amp') else 'fp32'
        bs = s['batch_size']
        for neuron in ('sfa', 'lif'):
            step = r[f'{neuron}_step_s']
            rows.append(
                f'| {s["arch"]} | {s["img_size"]} | {bs} | {prec} | {neuron.upper()} | '
                f'{step * 1e3:.1f} | {bs / step:.1f} | {r[f"{neuron}_peak_mb"]:.0f} | '
                f'{r[f"{neuron}_saved_mb"]:.0f} |'
            )
        rows.append(
            f'| {s["arch"]} | {s["img_size"]} | {bs} | {prec} | **SFA / LIF** | '
            f'**{r["speedup"]:.2f}x faster** | | **{r["memory_ratio"]:.2f}x** | '
            f'**{r["saved_ratio"]:.2f}x** |'
        )
    return rows


def main(out: str) -> None:
    env = _load(os.path.join(out, 'env.json'))
    print('# GPU check\n')
    print(
        f'{env.get("gpu") or "no GPU (dry run)"}, torch {env["torch"]} (CUDA {env["cuda"]}), '
        f'Python {env["python"]}\n'
    )
    print('| arch | px | batch | precision | neuron | step ms | images/s | peak MB | saved MB |')
    print('|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(backbone_rows(out)) or '| (part A produced no result) |||||||||')
    for part in ('B_seg_toy_train', 'C_detector_cost'):
        rc_file = os.path.join(out, f'{part}.rc')
        if not os.path.exists(rc_file):
            print(f'\n{part}: skipped (needs mmcv ops, opencv and matplotlib; see env.json)')
            continue
        with open(rc_file) as f:
            rc = f.read().strip()
        print(f'\n{part}: {"done" if rc == "0" else f"FAILED (exit {rc})"}')
    det = os.path.join(out, 'C_detector_cost.json')
    if os.path.exists(det):
        print('\n| Mask R-CNN | train step ms | inference ms | peak MB |\n|---|---|---|---|')
        for d in _load(det)['detectors'].values():
            print(
                f'| {d["description"]} | {d["train_step_s"] * 1e3:.0f} | {d["infer_s"] * 1e3:.0f} | '
                f'{d["peak_mb"]:.0f} |'
            )


if __name__ == '__main__':
    main(sys.argv[1])

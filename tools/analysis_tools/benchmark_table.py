#!/usr/bin/env python
"""Paper-style results table from work directories.

    python tools/analysis_tools/benchmark_table.py WORK_DIR [WORK_DIR ...] [--out PREFIX]
        [--published auto|all|none]

Each WORK_DIR contributes one **measured** row from what the project's tools wrote there:

* ``energy.json`` (``tools/analysis_tools/energy.py``): params, dense FLOPs (counted as MACs) at
  the input size it ran at, energy per image, mean firing rate;
* ``metrics.json`` (``tools/test.py``, a flat dict of mmengine metric names): ``coco/bbox_mAP``,
  ``coco/segm_mAP`` (mmdet writes fractions; shown in %), ``mIoU`` (mmseg writes %),
  ``accuracy/top1``.

**Reference** rows, never mixed with measured ones, follow in a separate table: the E-SpikeFormer
paper's own numbers (``source`` starts with ``published``) and numbers others reported (``source``
is ``reported by <who>``). Writes ``PREFIX.md`` and ``PREFIX.csv`` (default
``./work_dirs/benchmark_table``) and prints the markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

COLUMNS = [
    'model',
    'task',
    'source',
    'params_m',
    'input_size',
    'gmacs',
    'energy_mj',
    'sop',
    'firing_rate',
    'bbox_map',
    'segm_map',
    'miou',
    'top1',
    'images',
    'note',
]
HEADERS = {
    'model': 'Model',
    'task': 'Task',
    'source': 'Source',
    'params_m': 'Params (M)',
    'input_size': 'Input',
    'gmacs': 'FLOPs (G MACs)',
    'energy_mj': 'Energy (mJ/img)',
    'sop': 'SOPs',
    'firing_rate': 'Firing rate',
    'bbox_map': 'box mAP',
    'segm_map': 'mask mAP',
    'miou': 'mIoU',
    'top1': 'Top-1',
    'images': 'Images',
    'note': 'Note',
}

# mmengine metric name -> (column, factor to percent)
METRICS = {
    'coco/bbox_mAP': ('bbox_map', 100.0),
    'coco/segm_mAP': ('segm_map', 100.0),
    'mIoU': ('miou', 1.0),
    'accuracy/top1': ('top1', 1.0),
}

_FIGURE = "approx., read off the paper's accuracy-vs-power figure (ImageNet, 224 px)"
_ABSTRACT = 'top-1 from the abstract; energy ' + _FIGURE
_PAPER = 'published (E-SpikeFormer paper)'
#: Numbers published in the E-SpikeFormer paper. Never mixed with measured rows.
PUBLISHED: List[Dict[str, object]] = [
    dict(
        model='E-SpikeFormer (smallest point)',
        task='cls',
        source=_PAPER,
        input_size='224x224',
        energy_mj=1.8,
        top1=75.3,
        note=_FIGURE,
    ),
    dict(
        model='E-SpikeFormer 10M',
        task='cls',
        source=_PAPER,
        params_m=10.0,
        input_size='224x224',
        energy_mj=3.1,
        top1=78.5,
        note=_ABSTRACT,
    ),
    dict(
        model='E-SpikeFormer 19M',
        task='cls',
        source=_PAPER,
        params_m=19.0,
        input_size='224x224',
        energy_mj=6.0,
        top1=79.8,
        note=_ABSTRACT,
    ),
    dict(
        model='Meta-SpikeFormer',
        task='cls',
        source=_PAPER,
        input_size='224x224',
        energy_mj=16.7,
        top1=74.1,
        note=_FIGURE,
    ),
    dict(
        model='Meta-SpikeFormer',
        task='cls',
        source=_PAPER,
        input_size='224x224',
        energy_mj=52.4,
        top1=80.0,
        note=_FIGURE,
    ),
    dict(
        model='Spikformer',
        task='cls',
        source=_PAPER,
        input_size='224x224',
        energy_mj=21.5,
        top1=74.8,
        note=_FIGURE,
    ),
    dict(
        model='Semantic FPN + E-SpikeFormer 19M',
        task='seg',
        source='reported by a third-party reproduction',
        input_size='512x512',
        miou=38.2,
        note="ADE20K, authors' recipe (40.2 with a different optimizer)",
    ),
    dict(
        model='SpikeYOLO',
        task='det',
        source='reported by the SpikeYOLO paper',
        bbox_map=48.9,
        note='COCO, YOLO-style detector; mAP@[.5:.95] (66.2 mAP@50)',
    ),
    dict(
        model='EMS-YOLO',
        task='det',
        source='reported by the EMS-YOLO paper',
        bbox_map=30.1,
        note='COCO, approx.; mAP@[.5:.95] (about 50.1 mAP@50)',
    ),
]
# Tasks of published rows shown next to measured rows of a task ('--published auto').
_RELATED = {'det': ('det',), 'seg': ('seg',), 'backbone': ('cls',), 'cls': ('cls',)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build the paper-style results table from work directories',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        'work_dirs', nargs='+', metavar='WORK_DIR', help='directories holding energy.json and/or metrics.json'
    )
    parser.add_argument(
        '--out',
        default=osp.join('work_dirs', 'benchmark_table'),
        help='output prefix: writes PREFIX.md and PREFIX.csv',
    )
    parser.add_argument(
        '--published',
        choices=('auto', 'all', 'none'),
        default='auto',
        help="published reference rows: those of the measured rows' tasks (auto), all, or none",
    )
    return parser.parse_args(argv)


def _read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path} is not valid JSON: {e}') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path} must hold a JSON object, got {type(data).__name__}')
    return data


def measured_row(work_dir: str) -> Dict[str, object]:
    """One table row from ``<work_dir>/energy.json`` and ``<work_dir>/metrics.json``.

    Raises:
        FileNotFoundError: the directory has neither file.
    """
    energy = _read_json(osp.join(work_dir, 'energy.json'))
    metrics = _read_json(osp.join(work_dir, 'metrics.json'))
    if energy is None and metrics is None:
        raise FileNotFoundError(
            f'{work_dir}: neither energy.json (tools/analysis_tools/energy.py) '
            'nor metrics.json (tools/test.py) found'
        )
    row: Dict[str, object] = dict(model=osp.basename(osp.normpath(work_dir)), source='measured')
    notes = []
    if energy is not None:
        row.update(
            model=energy.get('model', row['model']),
            task=energy.get('task'),
            params_m=energy['params'] / 1e6 if 'params' in energy else None,
            input_size=energy.get('input_size'),
            gmacs=energy['dense_macs'] / 1e9,
            energy_mj=energy['total_energy_mj'],
            sop=energy.get('headline_sop'),
            firing_rate=energy.get('mean_firing_rate'),
            images=energy.get('num_images'),
        )
        c = energy.get('constants', {})
        if c and (c.get('e_mac_pj'), c.get('e_ac_pj')) != (4.6, 0.9):
            notes.append(f'E_MAC={c.get("e_mac_pj")} pJ, E_AC={c.get("e_ac_pj")} pJ')
    if metrics is not None:
        for key, (col, factor) in METRICS.items():
            if key in metrics and metrics[key] is not None:
                row[col] = float(metrics[key]) * factor
        if row.get('task') is None:
            row['task'] = (
                'det' if any(k.startswith('coco/') for k in metrics) else 'seg' if 'mIoU' in metrics else None
            )
    else:
        notes.append('no metrics.json')
    if energy is None:
        notes.append('no energy.json')
    row['note'] = '; '.join(notes)
    return row


def published_rows(tasks: Sequence[str], mode: str) -> List[Dict[str, object]]:
    if mode == 'none':
        return []
    if mode == 'all':
        return [dict(r) for r in PUBLISHED]
    wanted = {t for task in tasks for t in _RELATED.get(task, ())}
    return [dict(r) for r in PUBLISHED if r['task'] in wanted]


def _fmt(col: str, value: object) -> str:
    if value is None or value == '':
        return '-'
    if isinstance(value, float):
        if col in ('params_m', 'bbox_map', 'segm_map', 'miou', 'top1'):
            return f'{value:.1f}'
        if col == 'firing_rate':
            return f'{value:.3f}'
        return f'{value:.4g}'
    return str(value)


def to_markdown(measured: List[dict], published: List[dict]) -> str:
    def table(rows: List[dict], with_source: bool = False) -> List[str]:
        cols = [
            c
            for c in COLUMNS
            if (c != 'source' or with_source) and any(r.get(c) not in (None, '') for r in rows)
        ]
        lines = [
            '| ' + ' | '.join(HEADERS[c] for c in cols) + ' |',
            '|'
            + '|'.join('---' if c in ('model', 'task', 'input_size', 'sop', 'note') else '---:' for c in cols)
            + '|',
        ]
        lines += ['| ' + ' | '.join(_fmt(c, r.get(c)) for c in cols) + ' |' for r in rows]
        return lines

    lines = [
        '## Measured (this repository)',
        '',
        'FLOPs are dense multiply-accumulates per image at the stated input size (the '
        'padded network input); energy per image with E_MAC = 4.6 pJ, E_AC = 0.9 pJ '
        '(45 nm) unless noted; "SOPs" says whether the energy uses the paper-convention SOP '
        'estimate or the exact spike-driven count; firing rate = mean integer spike count '
        'per neuron output; mAP in % (mmdet bbox/segm mAP@[.5:.95]).',
        '',
    ]
    lines += table(measured) if measured else ['(none)']
    if published:
        lines += ['', '## Published, and reported by others (not measured here)', '']
        lines += table(published, with_source=True)
    return '\n'.join(lines) + '\n'


def write_csv(path: str, rows: List[dict]) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: ('' if r.get(c) is None else r.get(c)) for c in COLUMNS})


def main(argv=None) -> str:
    args = parse_args(argv)
    measured = [measured_row(d) for d in args.work_dirs]
    published = published_rows([r.get('task') for r in measured], args.published)
    markdown = to_markdown(measured, published)
    directory = osp.dirname(osp.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    with open(args.out + '.md', 'w') as f:
        f.write(markdown)
    write_csv(args.out + '.csv', measured + published)
    print(markdown)
    print(f'written {args.out}.md and {args.out}.csv')
    return markdown


if __name__ == '__main__':
    main()

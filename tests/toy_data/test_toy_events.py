"""The toy event-camera dataset: the Gen1 file layout, readable by our readers, events that look
like a DVS (both polarities, sorted, inside the sensor), boxes at the label times; deterministic."""

from __future__ import annotations

import numpy as np

from sdt_dense.datasets.events.io import read_boxes, read_dat, read_dat_header
from sdt_dense.toy_data.events import GEN1_BOX_DTYPE, make_events_dataset, simulate_recording
from sdt_dense.toy_data.shapes import image_rng


def test_toy_events_layout_and_content(tmp_path):
    counts = make_events_dataset(
        tmp_path, num_train=1, num_val=1, num_test=1, duration_us=300_000, label_interval_us=100_000
    )
    assert set(counts) == {'train', 'val', 'test'}
    for split in counts:
        files = sorted(p.name for p in (tmp_path / split).iterdir())
        assert files == ['toy_0000_bbox.npy', 'toy_0000_td.dat']
    header = read_dat_header(tmp_path / 'train' / 'toy_0000_td.dat')
    assert (header.width, header.height) == (304, 240)
    ev = read_dat(tmp_path / 'train' / 'toy_0000_td.dat')
    assert len(ev) == counts['train']['events'] > 1000
    assert (np.diff(ev['t']) >= 0).all() and ev['t'].max() < 300_000
    assert ev['x'].max() < 304 and ev['y'].max() < 240
    assert 0.2 < ev['p'].mean() < 0.8  # ON and OFF events
    raw = np.load(tmp_path / 'train' / 'toy_0000_bbox.npy')
    assert raw.dtype == GEN1_BOX_DTYPE and raw.dtype.itemsize == 33  # the Gen1 packed layout
    boxes = read_boxes(tmp_path / 'train' / 'toy_0000_bbox.npy')
    assert sorted(set(boxes['t'].tolist())) == [100_000, 200_000, 300_000]
    assert set(boxes['class_id'].tolist()) <= {0, 1}
    assert (boxes['x'] >= 0).all() and (boxes['x'] + boxes['w'] <= 304 + 1e-3).all()
    # most events of a labelled window lie in or next to a box (objects make them, noise is thin)
    t = 200_000
    win = ev[(ev['t'] > t - 50_000) & (ev['t'] <= t)]
    near = np.zeros(len(win), bool)
    for b in boxes[boxes['t'] == t]:
        near |= (
            (win['x'] >= b['x'] - 10)
            & (win['x'] <= b['x'] + b['w'] + 10)
            & (win['y'] >= b['y'] - 10)
            & (win['y'] <= b['y'] + b['h'] + 10)
        )
    assert near.mean() > 0.7


def test_toy_events_deterministic():
    a = simulate_recording(image_rng(3, 'events/val', 1), duration_us=200_000)
    b = simulate_recording(image_rng(3, 'events/val', 1), duration_us=200_000)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])

"""The toy writer's implementation of RVT's preprocessing rules, against hand-computed values."""

from __future__ import annotations

import numpy as np

from sdt_dense.toy_data.events import GEN1_BOX_DTYPE
from sdt_dense.toy_data.rvt import rvt_filter_labels, rvt_frames_and_windows


def test_frames_and_window_ends_by_hand():
    # labels every 100 ms with jitter; 50 ms is before the 100 ms alignment, 350 ms is half an
    # interval after 301 ms (rejected), 500.5 ms is two intervals after 301 ms within 2 ms
    ts = np.array([50_000, 100_000, 200_000, 301_000, 350_000, 500_500])
    frames, ends, idx = rvt_frames_and_windows(ts, 100_000)
    assert frames.tolist() == [100_000, 200_000, 301_000, 500_500]
    # no window before the first frame (only (0, 50 ms] would be: dropped); 2 windows per
    # interval between frames (integer linspace), 4 over the double interval
    assert ends.tolist() == [100_000, 150_000, 200_000, 250_500, 301_000, 350_875, 400_750, 450_625, 500_500]
    assert idx.tolist() == [0, 2, 4, 8]
    assert np.array_equal(ends[idx], frames)
    # a first frame at 300 ms: windows ending at 100 and 150 .. 250 ms come before it
    frames, ends, idx = rvt_frames_and_windows(np.array([300_000]), 100_000)
    assert ends.tolist() == [100_000, 150_000, 200_000, 250_000, 300_000] and idx.tolist() == [4]


def test_label_filters_by_hand():
    boxes = np.zeros(5, GEN1_BOX_DTYPE)
    #              ts       x     y    w    h   class
    rows = [
        (100_000, -10.0, 10.0, 40.0, 30.0, 0),  # cropped to x 0 .. 30: kept (diag 42.4)
        (100_000, 10.0, 10.0, 20.0, 20.0, 1),  # diagonal 28.3 < 30: dropped (Gen1)
        (100_000, 10.0, 10.0, 40.0, 9.0, 0),  # side 9 < 10: dropped
        (200_000, 0.0, 0.0, 290.0, 50.0, 0),  # wider than 0.9 * 304 = 273: train only
        (200_000, 300.0, 230.0, 20.0, 20.0, 1),
    ]  # cropped to 3 x 9: dropped
    for i, (t, x, y, w, h, c) in enumerate(rows):
        boxes[i] = (t, x, y, w, h, c, 1.0, i)
    train = rvt_filter_labels(boxes, 'gen1', 'train')
    assert train['track_id'].tolist() == [0]
    assert (train['x'][0], train['w'][0]) == (0.0, 30.0)
    assert rvt_filter_labels(boxes, 'gen1', 'val')['track_id'].tolist() == [0, 3]
    # 1 Mpx: classes 0..2 and sides >= 5 only (the 20 x 20 box is kept)
    gen4 = boxes.copy()
    gen4['class_id'][2] = 5
    assert rvt_filter_labels(gen4, 'gen4', 'val')['track_id'].tolist() == [0, 1, 3, 4]

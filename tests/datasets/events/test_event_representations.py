"""Each event representation against a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from sdt_dense.datasets.events.io import EVENT_DTYPE
from sdt_dense.datasets.events.representations import (
    last_polarity_frames,
    normalize_counts,
    polarity_histogram,
    stacked_histogram,
    time_bins,
)

# A 2 x 3 frame, window [100, 200) split into 2 bins of 50 us: [100, 150) and [150, 200).
#      t    x  y  p
EVENTS = np.array(
    [
        (100, 0, 0, 1),  # bin 0, ON  at (y0, x0)
        (120, 0, 0, 1),  # bin 0, ON  at (y0, x0) again
        (149, 2, 1, 0),  # bin 0, OFF at (y1, x2)
        (150, 0, 0, 0),  # bin 1 (on the edge: the later bin), OFF at (y0, x0)
        (180, 1, 1, 1),  # bin 1, ON  at (y1, x1)
        (199, 1, 1, 0),  # bin 1, OFF at (y1, x1), after the ON one
    ],
    EVENT_DTYPE,
)
H, W, T0, T1 = 2, 3, 100, 200


def test_time_bins():
    assert time_bins(EVENTS['t'], T0, T1, 2).tolist() == [0, 0, 0, 1, 1, 1]
    assert time_bins(EVENTS['t'], T0, T1, 4).tolist() == [0, 0, 1, 2, 3, 3]
    # 'events': the bins span the events themselves, [100, 199] -> 100 us per bin over 2 bins
    assert time_bins(EVENTS['t'], 0, 1000, 2, bin_range='events').tolist() == [0, 0, 0, 1, 1, 1]


def test_polarity_histogram_by_hand():
    h = polarity_histogram(EVENTS, 2, H, W, T0, T1)
    assert h.shape == (2, 2, H, W) and h.dtype == np.float32  # (T, C=OFF/ON, H, W)
    expected = np.zeros((2, 2, H, W), np.float32)
    expected[0, 1, 0, 0] = 2  # bin 0 ON at (0, 0) twice
    expected[0, 0, 1, 2] = 1  # bin 0 OFF at (1, 2)
    expected[1, 0, 0, 0] = 1  # bin 1 OFF at (0, 0)
    expected[1, 1, 1, 1] = 1  # bin 1 ON at (1, 1)
    expected[1, 0, 1, 1] = 1  # bin 1 OFF at (1, 1)
    np.testing.assert_array_equal(h, expected)
    np.testing.assert_array_equal(
        polarity_histogram(EVENTS, 2, H, W, T0, T1, 'binary'), (expected > 0).astype(np.float32)
    )
    np.testing.assert_allclose(polarity_histogram(EVENTS, 2, H, W, T0, T1, 'log'), np.log1p(expected))
    one = polarity_histogram(EVENTS, 1, H, W, T0, T1)
    np.testing.assert_array_equal(one[0], expected.sum(0))  # T = 1: all events in one frame


def test_last_polarity_by_hand():
    f = last_polarity_frames(EVENTS, 2, H, W, T0, T1)
    assert f.shape == (2, 1, H, W)
    expected = np.zeros((2, 1, H, W), np.float32)
    expected[0, 0, 0, 0] = 1  # last event of bin 0 at (0, 0): ON
    expected[0, 0, 1, 2] = -1  # OFF
    expected[1, 0, 0, 0] = -1  # OFF
    expected[1, 0, 1, 1] = -1  # ON at t=180 then OFF at t=199: the last one wins
    np.testing.assert_array_equal(f, expected)
    # SpikeYOLO's uint8 frames (OFF 0, none 127, ON 255) as values
    spikeyolo = last_polarity_frames(EVENTS, 2, H, W, T0, T1, values=(0 - 127, 255 - 127))
    assert sorted(np.unique(spikeyolo).tolist()) == [-127, 0, 128]


def test_stacked_histogram_by_hand():
    s = stacked_histogram(EVENTS, 2, H, W, T0, T1, count_cutoff=1, normalize='cutoff')
    # one step, channels [OFF bin0, OFF bin1, ON bin0, ON bin1] (RVT's polarity-major order)
    assert s.shape == (1, 4, H, W)
    expected = np.zeros((4, H, W), np.float32)
    expected[0, 1, 2] = 1
    expected[1, 0, 0] = 1
    expected[1, 1, 1] = 1
    expected[2, 0, 0] = 1  # 2 ON events clipped at the cutoff 1
    expected[3, 1, 1] = 1
    np.testing.assert_array_equal(s[0], expected)
    raw = stacked_histogram(EVENTS, 2, H, W, T0, T1, normalize='none')
    assert raw[0, 2, 0, 0] == 2
    unit = stacked_histogram(EVENTS, 2, H, W, T0, T1, count_cutoff=4, normalize='cutoff_unit')
    assert unit[0, 2, 0, 0] == 0.5
    # 4 bins as 2 steps of 2 bins: step k holds bins 2k, 2k+1, polarity-major
    steps = stacked_histogram(EVENTS, 4, H, W, T0, T1, normalize='none', num_steps=2)
    assert steps.shape == (2, 4, H, W)
    counts = polarity_histogram(EVENTS, 4, H, W, T0, T1)  # (4, 2, H, W)
    for k in range(2):
        np.testing.assert_array_equal(
            steps[k], counts[2 * k : 2 * k + 2].transpose(1, 0, 2, 3).reshape(4, H, W)
        )


def test_errors():
    with pytest.raises(ValueError, match='outside'):
        polarity_histogram(EVENTS, 2, 1, W, T0, T1)
    with pytest.raises(ValueError, match='multiple'):
        stacked_histogram(EVENTS, 3, H, W, T0, T1, num_steps=2)
    with pytest.raises(ValueError, match='count_cutoff'):
        normalize_counts(np.ones(2), 'cutoff')
    empty = polarity_histogram(EVENTS[:0], 3, H, W, T0, T1)
    assert empty.shape == (3, 2, H, W) and not empty.any()

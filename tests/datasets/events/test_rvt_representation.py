"""RVT's stacked histogram (``bin_range='rvt'``, :func:`rvt_stacked_histogram`), pinned on the
edge cases by hand, and its float32 arithmetic / downsampling checked against torch's own ops."""

from __future__ import annotations

import numpy as np
import pytest

from sdt_dense.datasets.events.io import EVENT_DTYPE
from sdt_dense.datasets.events.representations import rvt_stacked_histogram, stacked_histogram, time_bins


def _events(rows) -> np.ndarray:
    return np.array([tuple(r) for r in rows], EVENT_DTYPE)


def test_rvt_bins_on_edges_by_hand():
    # t0 = 1000, t1 = 1100: span 100 us, 10 bins of 10 us; events exactly on every edge
    t = np.arange(1000, 1101, 10)
    # RVT: (t - t0) / span * 10 = k on edge k -> bin k; the last event (t1) is clamped to bin 9
    assert time_bins(t, 0, 0, 10, 'rvt').tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    # the 'events' rule divides by span + 1 = 101: floor(100 k / 101) = k - 1 for k >= 1
    assert time_bins(t, 0, 0, 10, 'events').tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    # one event below each edge stays in the earlier bin
    assert time_bins(np.array([1000, 1009, 1019, 1099, 1100]), 0, 0, 10, 'rvt').tolist() == [0, 0, 1, 9, 9]
    # a single event (span 0 -> 1) and equal timestamps: bin 0
    assert time_bins(np.array([5]), 0, 0, 10, 'rvt').tolist() == [0]
    assert time_bins(np.array([5, 5, 5]), 0, 0, 10, 'rvt').tolist() == [0, 0, 0]


def test_rvt_bins_are_float32_arithmetic():
    # span 51_992_750 us (> 2**24: not exact in float32), an event exactly on edge 4 (0.4 span).
    # float32(51992750) = 51992752 (spacing 4, tie to even), so 20797100 / 51992752 < 0.4 and
    # RVT's float32 division puts the event in bin 3, where integer arithmetic says 4.
    t = np.array([0, 20_797_100, 51_992_750])
    assert 20_797_100 * 10 // 51_992_750 == 4
    assert np.float32(51_992_750) == 51_992_752
    assert time_bins(t, 0, 0, 10, 'rvt').tolist() == [0, 3, 9]


def test_rvt_bins_need_sorted_stream():
    with pytest.raises(ValueError, match='time-sorted'):
        time_bins(np.array([10, 5]), 0, 0, 2, 'rvt')


def test_rvt_histogram_channels_by_hand():
    # 2 x 3 frame, 2 bins over the events' span [0, 100]: bin 0 = t < 50, bin 1 = t >= 50
    ev = _events(
        [
            (0, 0, 0, 1),  # bin 0, ON  (0, 0) -> channel 1 * 2 + 0 = 2
            (10, 2, 1, 0),  # bin 0, OFF (1, 2) -> channel 0
            (50, 1, 0, 0),  # on the edge: bin 1, OFF (0, 1) -> channel 1
            (60, 1, 0, 1),  # bin 1, ON  (0, 1) -> channel 3
            (100, 1, 0, 1),
        ]
    )  # last event: bin 1, ON (0, 1) -> channel 3
    h = rvt_stacked_histogram(ev, 2, 2, 3, count_cutoff=10)
    expected = np.zeros((4, 2, 3), np.int64)
    expected[2, 0, 0] = 1
    expected[0, 1, 2] = 1
    expected[1, 0, 1] = 1
    expected[3, 0, 1] = 2
    np.testing.assert_array_equal(h, expected)
    # the same through stacked_histogram's 'rvt' mode (float32 (1, 4, H, W))
    s = stacked_histogram(ev, 2, 2, 3, 0, 0, count_cutoff=10, bin_range='rvt')
    np.testing.assert_array_equal(s, expected[None].astype(np.float32))


def test_rvt_histogram_more_than_255_in_a_cell():
    ev = np.zeros(300, EVENT_DTYPE)
    ev['t'] = np.arange(300)
    ev['x'], ev['y'], ev['p'] = 2, 1, 1
    ev['t'][-1] = 10_000  # stretch the span so that the 299 others share bin 0
    h = rvt_stacked_histogram(ev, 10, 2, 3, count_cutoff=None)
    # 299 events in (ON, bin 0, y 1, x 2): cutoff None = 255 (RVT's uint8 counter would wrap
    # to 299 - 256 = 43); the last event in bin 9
    assert h[10, 1, 2] == 255 and h[19, 1, 2] == 1 and h.sum() == 256
    # 260 events with cutoff 10: 10 (RVT's uint8 wrap gives 260 - 256 = 4 < 10, so 4)
    h10 = rvt_stacked_histogram(ev[:260], 1, 2, 3, count_cutoff=10)
    assert h10[1, 1, 2] == 10 and h10.sum() == 10
    # a cutoff above 255 is capped at 255 as RVT caps it
    assert rvt_stacked_histogram(ev, 1, 2, 3, count_cutoff=1000)[1, 1, 2] == 255
    # uint8_wrap restores RVT's defect: 299 -> 43 (cutoff None), 260 -> 4 (cutoff 10)
    assert rvt_stacked_histogram(ev, 10, 2, 3, None, uint8_wrap=True)[10, 1, 2] == 43
    assert rvt_stacked_histogram(ev[:260], 1, 2, 3, 10, uint8_wrap=True)[1, 1, 2] == 4
    odd = ev[:260].copy()
    odd['x'] = 3  # (y 1, x 3) survives the downsampling as (0, 1)
    assert rvt_stacked_histogram(odd, 1, 4, 6, 10, True)[1, 0, 1] == 10
    assert rvt_stacked_histogram(odd, 1, 4, 6, 10, True, uint8_wrap=True)[1, 0, 1] == 4


def test_rvt_downsample_by_2_samples_odd_pixels():
    # 4 x 6 frame -> 2 x 3: output (i, j) is input (2i + 1, 2j + 1); other pixels vanish
    ev = _events(
        [
            (0, 1, 1, 1),  # kept -> (0, 0)
            (1, 0, 0, 1),  # even pixel: dropped
            (2, 5, 3, 1),  # kept -> (1, 2)
            (3, 5, 3, 1),  # again -> 2
            (4, 4, 3, 0),  # x even: dropped
            (5, 3, 1, 0),
        ]
    )  # kept -> (0, 1), OFF
    h = rvt_stacked_histogram(ev, 1, 4, 6, count_cutoff=10, downsample_by_2=True)
    expected = np.zeros((2, 2, 3), np.int64)
    expected[1, 0, 0] = 1
    expected[1, 1, 2] = 2
    expected[0, 0, 1] = 1
    np.testing.assert_array_equal(h, expected)


def test_rvt_empty_window():
    h = rvt_stacked_histogram(np.zeros(0, EVENT_DTYPE), 10, 4, 6, downsample_by_2=True)
    assert h.shape == (20, 2, 3) and not h.any()


def _torch_reference(
    ev: np.ndarray, bins: int, height: int, width: int, cutoff: int, downsample: bool
) -> np.ndarray:
    """The documented rule evaluated with torch's own tensor ops (true division of integer
    tensors, floor, index accumulation, nearest-exact interpolation)."""
    import torch

    t = torch.from_numpy(ev['t'].astype(np.int64))
    norm = (t - t[0]) / max(int(t[-1] - t[0]), 1)  # int / int -> float32
    b = torch.clamp(torch.floor(norm * bins), max=bins - 1).long()
    idx = (
        torch.from_numpy(ev['x'].astype(np.int64))
        + width * torch.from_numpy(ev['y'].astype(np.int64))
        + height * width * b
        + bins * height * width * torch.from_numpy(ev['p'].astype(np.int64))
    )
    rep = torch.zeros(2 * bins * height * width, dtype=torch.int64)
    rep.index_put_((idx,), torch.ones_like(idx), accumulate=True)
    rep = torch.clamp(rep, 0, cutoff).reshape(1, 2 * bins, height, width)
    if downsample:
        rep = torch.nn.functional.interpolate(
            rep.to(torch.uint8), scale_factor=0.5, mode='nearest-exact'
        ).long()
    return rep[0].numpy()


@pytest.mark.parametrize('downsample', [False, True])
def test_rvt_histogram_equals_torch_arithmetic(downsample):
    rng = np.random.default_rng(0)
    height, width, n = 12, 16, 4000
    ev = np.zeros(n, EVENT_DTYPE)
    ev['t'] = np.sort(rng.integers(0, 50_001, n))
    ev['t'][::7] = (ev['t'][::7] // 5000) * 5000  # many events exactly on bin edges
    ev['t'] = np.sort(ev['t'])
    ev['x'], ev['y'], ev['p'] = (rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))
    ours = rvt_stacked_histogram(ev, 10, height, width, 10, downsample)
    np.testing.assert_array_equal(ours, _torch_reference(ev, 10, height, width, 10, downsample))
    # the float32 edge case of test_rvt_bins_are_float32_arithmetic, through torch
    big = _events([(0, 0, 0, 0), (20_797_100, 1, 0, 0), (51_992_750, 2, 0, 0)])
    np.testing.assert_array_equal(
        rvt_stacked_histogram(big, 10, 2, 4, 10, downsample), _torch_reference(big, 10, 2, 4, 10, downsample)
    )


def test_rvt_window_includes_its_start(tmp_path):
    """``window_rule='rvt'``: events with ``T - dt <= t <= T`` (the default rule excludes
    ``T - dt``); through the dataset, the loader and :class:`EventRVTStackedHistogram`."""
    import mmdet  # noqa: F401  (a requirement: fail, never skip)
    from mmengine.registry import init_default_scope

    from sdt_dense.datasets.events.dataset import Gen1Dataset

    init_default_scope('mmdet')  # the transforms live in mmdet's registry (conftest restores)
    from sdt_dense.datasets.events.io import write_dat
    from sdt_dense.toy_data.events import GEN1_BOX_DTYPE

    T, dt = 100_000, 50_000
    split = tmp_path / 'train'
    split.mkdir()
    ev = _events(
        [
            (T - dt - 1, 0, 0, 1),  # before the window
            (T - dt, 1, 0, 1),  # the window's start: in for RVT only
            (T - 20_000, 2, 0, 0),
            (T, 3, 0, 1),  # the labelled timestamp: in for both rules
            (T + 1, 4, 0, 1),
        ]
    )  # after
    write_dat(str(split / 'rec_td.dat'), ev, 304, 240)
    np.save(split / 'rec_bbox.npy', np.array([(T, 10, 10, 40, 40, 0, 1.0, 0)], GEN1_BOX_DTYPE))
    pipeline = [
        dict(type='LoadPropheseeEvents', margin_us=0),
        dict(type='EventRVTStackedHistogram', num_bins=10),
    ]
    rvt = Gen1Dataset(
        data_root=str(tmp_path), split='train', window_us=dt, window_rule='rvt', pipeline=pipeline
    )
    default = Gen1Dataset(data_root=str(tmp_path), split='train', window_us=dt, pipeline=pipeline)
    img = rvt[0]['img']
    assert img.shape == (1, 20, 240, 304)
    # span T - (T - dt) = 50 ms over 10 bins of 5 ms: t = T - dt -> bin 0 (ON, x 1),
    # T - 20 ms -> bin 6 (OFF, x 2), T -> last bin 9 (ON, x 3)
    expected = np.zeros((20, 240, 304), np.float32)
    expected[10, 0, 1] = expected[6, 0, 2] = expected[19, 0, 3] = 1
    np.testing.assert_array_equal(img[0], expected)
    # the default rule drops T - dt: the span starts at T - 20 ms (bin 0 OFF, then bin 9 ON)
    img = default[0]['img']
    expected = np.zeros((20, 240, 304), np.float32)
    expected[0, 0, 2] = expected[19, 0, 3] = 1
    np.testing.assert_array_equal(img[0], expected)

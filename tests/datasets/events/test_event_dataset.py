"""Gen1Dataset and the event pipeline: samples = event windows before labelled timestamps with their
boxes; bad recordings raise or are skipped; out-of-range / out-of-order events are counted (metainfo
and a log line); augmentations by hand (flip keeps polarity, crop / zoom clip boxes, downsample)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, TRANSFORMS  # noqa: E402
from mmdet.structures.bbox import HorizontalBoxes  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import sdt_dense  # noqa: E402,F401  (registers the dataset and transforms)
from sdt_dense.datasets.events.io import (  # noqa: E402
    EVENT_DTYPE,
    EventFileError,
    TruncatedEventFileError,
    read_boxes,
    read_dat,
    write_dat,
)
from sdt_dense.toy_data.events import make_events_dataset  # noqa: E402

PIPELINE = [
    dict(type='LoadPropheseeEvents'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='EventHistogram', num_bins=2),
    dict(type='PackEventDetInputs'),
]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')  # the pipeline's transforms live in mmdet's registry (conftest
    # restores the scope after each test)


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_events')
    make_events_dataset(root, num_train=1, num_val=1, num_test=1, duration_us=300_000)
    return root


def _dataset(root, split='train', pipeline=PIPELINE, **kwargs):
    return DATASETS.build(
        dict(type='Gen1Dataset', data_root=str(root), split=split, pipeline=pipeline, **kwargs)
    )


def test_samples_are_windows_before_labels(toy_root):
    ds = _dataset(toy_root)
    assert len(ds) == 3 and ds.metainfo['classes'] == ('car', 'pedestrian')
    info = ds.get_data_info(1)
    assert info['label_t'] == 200_000 and info['event_window'] == (150_001, 200_001)
    assert info['img_id'] == 'toy_0000@200000' and info['sensor_size'] == (240, 304)
    boxes = read_boxes(toy_root / 'train' / 'toy_0000_bbox.npy')
    at_t = boxes[boxes['t'] == 200_000]
    np.testing.assert_allclose(
        [i['bbox'] for i in info['instances']],
        [[b['x'], b['y'], b['x'] + b['w'], b['y'] + b['h']] for b in at_t],
        rtol=1e-6,
    )
    sample = ds[1]
    x = sample['inputs']
    assert x.shape == (2, 2, 240, 304) and x.dtype == torch.float32  # (T, C, H, W)
    ev = read_dat(toy_root / 'train' / 'toy_0000_td.dat')
    in_window = (ev['t'] > 150_000) & (ev['t'] <= 200_000)
    assert x.sum() == in_window.sum()  # every event of the window, once
    meta = sample['data_samples'].metainfo
    assert meta['label_t'] == 200_000 and meta['event_stats']['num_events'] == in_window.sum()
    assert meta['event_stats']['out_of_bounds'] == meta['event_stats']['out_of_order'] == 0
    assert len(sample['data_samples'].gt_instances) == len(at_t)


def _copy_recording(root, split, dst, name):
    for suffix in ('_td.dat', '_bbox.npy'):
        shutil.copy(root / split / f'toy_0000{suffix}', dst / f'{name}{suffix}')


def test_bad_recordings_raise_or_are_skipped(toy_root, tmp_path):
    split = tmp_path / 'train'
    split.mkdir()
    _copy_recording(toy_root, 'train', split, 'a_good')
    _copy_recording(toy_root, 'train', split, 'b_truncated')
    data = (split / 'b_truncated_td.dat').read_bytes()
    (split / 'b_truncated_td.dat').write_bytes(data[:-5])
    _copy_recording(toy_root, 'train', split, 'c_empty')
    (split / 'c_empty_td.dat').write_bytes(b'')
    _copy_recording(toy_root, 'train', split, 'd_garbage')
    (split / 'd_garbage_td.dat').write_bytes(b'GIF89a' + bytes(100))
    _copy_recording(toy_root, 'train', split, 'e_badboxes')
    (split / 'e_badboxes_bbox.npy').write_bytes(b'garbage')
    _copy_recording(toy_root, 'train', split, 'f_noevents')
    (split / 'f_noevents_td.dat').unlink()
    with pytest.raises(TruncatedEventFileError, match='b_truncated_td.dat'):
        _dataset(tmp_path)
    ds = _dataset(tmp_path, skip_bad_files=True)
    assert len(ds) == 3
    assert {ds.get_data_info(i)['recording'] for i in range(len(ds))} == {'a_good'}
    skipped = dict((p.split('/')[-1], why) for p, why in ds.skipped_files)
    assert set(skipped) == {
        'b_truncated_td.dat',
        'c_empty_td.dat',
        'd_garbage_td.dat',
        'e_badboxes_bbox.npy',
        'f_noevents_td.dat',
    }
    assert 'truncated' in skipped['b_truncated_td.dat']
    assert 'empty' in skipped['c_empty_td.dat']
    assert 'event size' in skipped['d_garbage_td.dat']
    assert 'not a .npy file' in skipped['e_badboxes_bbox.npy']
    assert 'event file missing' in skipped['f_noevents_td.dat']


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_out_of_range_and_out_of_order_events_counted(tmp_path):
    split = tmp_path / 'val'
    split.mkdir()
    # window of the label at t = 100000: (50000, 100000]
    ev = np.array(
        [
            (60_000, 10, 10, 1),
            (70_000, 400, 10, 1),
            (65_000, 11, 10, 0),
            (80_000, 12, 250, 0),
            (90_000, 13, 11, 1),
            (99_000, 14, 12, 0),
            (120_000, 0, 0, 1),
        ],
        EVENT_DTYPE,
    )
    write_dat(split / 'rec_td.dat', ev, 304, 240)
    boxes = np.array(
        [(100_000, 5.0, 5.0, 40.0, 30.0, 0, 1.0, 1)],
        dtype=[
            ('ts', '<u8'),
            ('x', '<f4'),
            ('y', '<f4'),
            ('w', '<f4'),
            ('h', '<f4'),
            ('class_id', 'u1'),
            ('confidence', '<f4'),
            ('track_id', '<u4'),
        ],
    )
    np.save(split / 'rec_bbox.npy', boxes)
    ds = _dataset(tmp_path, split='val', test_mode=True)
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        sample = ds[0]
    finally:
        logger.removeHandler(handler)
    stats = sample['data_samples'].metainfo['event_stats']
    # x = 400 and y = 250 lie outside 304 x 240 and are dropped first; the rest is in order
    assert (stats['out_of_bounds'], stats['out_of_order'], stats['num_events']) == (2, 0, 4)
    assert sample['inputs'].sum() == 4  # 60000, 65000, 90000, 99000
    # bring 70000 inside the sensor: 70000 -> 65000 is now a descent, sorted and counted
    ev2 = ev.copy()
    ev2['x'][1] = 20
    write_dat(split / 'rec_td.dat', ev2, 304, 240)
    logger.addHandler(handler)
    try:  # a new dataset (its loader warns once per recording)
        stats = _dataset(tmp_path, split='val', test_mode=True)[0]['data_samples'].metainfo['event_stats']
    finally:
        logger.removeHandler(handler)
    assert (stats['out_of_bounds'], stats['out_of_order'], stats['num_events']) == (1, 1, 5)
    assert any(
        'rec_td.dat' in m and 'dropped 2 event(s) outside' in m and 'sorted 0 event(s)' in m
        for m in handler.messages
    )
    assert any(
        'dropped 1 event(s)' in m and 'sorted 1 event(s) out of time order' in m for m in handler.messages
    )


# ---------------------------------------------------------------------------------------------
# Augmentations, by hand


def _results(events, boxes, shape=(240, 304)):
    return dict(
        events=np.array(events, EVENT_DTYPE),
        img_shape=shape,
        scale_factor=(1.0, 1.0),
        event_window=(0, 100),
        gt_bboxes=HorizontalBoxes(torch.tensor(boxes)),
        gt_bboxes_labels=np.arange(len(boxes)),
        gt_ignore_flags=np.zeros(len(boxes), bool),
    )


def test_flip_keeps_polarity_and_mirrors_boxes():
    flip = TRANSFORMS.build(dict(type='EventRandomFlip', prob=1.0))
    r = flip(_results([(1, 0, 5, 1), (2, 303, 7, 0), (3, 100, 8, 1)], [[5.0, 6.0, 40.0, 30.0]]))
    assert r['events']['x'].tolist() == [303, 0, 203]  # x -> 303 - x
    assert r['events']['p'].tolist() == [1, 0, 1] and r['events']['y'].tolist() == [5, 7, 8]
    assert r['gt_bboxes'].tensor.tolist() == [[264.0, 6.0, 299.0, 30.0]]  # x -> 304 - x
    assert r['flip'] and r['flip_direction'] == 'horizontal'
    # on the dense array the same (a pixel column x goes to 303 - x)
    dense = TRANSFORMS.build(dict(type='EventHistogram', num_bins=1))(
        _results([(1, 0, 5, 1)], [[5.0, 6.0, 40.0, 30.0]])
    )
    dense = flip(dense)
    assert dense['img'][0, 1, 5, 303] == 1 and dense['img'].sum() == 1


def test_crop_clips_boxes_and_shifts_events():
    np.random.seed(0)
    crop = TRANSFORMS.build(dict(type='EventRandomCrop', crop_ratio=(0.5, 0.5)))
    r = _results(
        [(1, x, y, 1) for x in range(0, 304, 8) for y in range(0, 240, 8)],
        [[0.0, 0.0, 304.0, 240.0], [0.0, 0.0, 1.0, 1.0], [0.0, 100.0, 304.0, 140.0]],
    )
    r = crop(r)
    assert r['img_shape'] == (120, 152)
    ev = r['events']
    assert ev['x'].max() < 152 and ev['y'].max() < 120 and len(ev) == 19 * 15
    # the full-frame box becomes the crop; the 1 px box is smaller than min_box_size (2) even
    # uncropped and is dropped with its label; the third (across the middle) is clipped
    boxes = r['gt_bboxes'].tensor
    assert boxes[0].tolist() == [0.0, 0.0, 152.0, 120.0]
    assert r['gt_bboxes_labels'].tolist() == [0, 2]
    assert boxes[:, 0::2].max() <= 152 and boxes[:, 1::2].max() <= 120 and boxes.min() >= 0


def test_downsample_scales_events_boxes_and_scale_factor():
    down = TRANSFORMS.build(dict(type='EventDownsample', factor=2))
    r = down(_results([(1, 303, 239, 1), (2, 4, 5, 0)], [[10.0, 20.0, 50.0, 60.0]]))
    assert r['img_shape'] == (120, 152) and r['scale_factor'] == (0.5, 0.5)
    assert r['events']['x'].tolist() == [151, 2] and r['events']['y'].tolist() == [119, 2]
    assert r['gt_bboxes'].tensor.tolist() == [[5.0, 10.0, 25.0, 30.0]]


@pytest.mark.parametrize('seed', range(6))
def test_zoom_moves_boxes_with_the_content(seed):
    np.random.seed(seed)
    zoom = TRANSFORMS.build(
        dict(type='EventRandomZoom', prob=1.0, zoom_in=(1.5, 1.5), zoom_out=(1.5, 1.5), min_box_size=0)
    )
    # one event in the middle of a box
    r = TRANSFORMS.build(dict(type='EventHistogram', num_bins=1))(
        _results([(1, 150, 120, 1)], [[140.0, 110.0, 161.0, 131.0]])
    )
    r = zoom(r)
    assert r['img'].shape == (1, 2, 240, 304)
    ys, xs = np.nonzero(r['img'][0, 1])
    ((x1, y1, x2, y2),) = r['gt_bboxes'].tensor.tolist()
    assert len(xs) >= 1
    assert ((xs >= x1 - 1) & (xs <= x2) & (ys >= y1 - 1) & (ys <= y2)).all()
    assert (x2 - x1) == pytest.approx(21 * (1.5 if x2 - x1 > 21 else 1 / 1.5), rel=0.05)


def test_bad_window_file_raises_at_load(tmp_path):
    load = TRANSFORMS.build(dict(type='LoadPropheseeEvents'))
    with pytest.raises(EventFileError, match='missing_td.dat'):
        load(dict(img_path=str(tmp_path / 'missing_td.dat'), event_window=(0, 10), sensor_size=(240, 304)))

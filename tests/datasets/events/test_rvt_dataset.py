"""RVT's preprocessed layout: reader, named errors, dataset samples and boxes, the loading
transform and RVT's evaluation, against hand-computed values on tiny files written here."""

from __future__ import annotations

import os
import sys

import h5py  # noqa: E402,F401  (test requirements: fail, never skip)
import hdf5plugin  # noqa: E402,F401
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from sdt_dense.datasets.events.metric import PropheseeDetMetric, coco_box_map
from sdt_dense.datasets.events.rvt_dataset import RVTGen1Dataset, RVTOneMpxDataset, rvt_frame_boxes
from sdt_dense.datasets.events.rvt_io import (
    InconsistentRVTFileError,
    MissingRVTFileError,
    RVTLayoutError,
    TruncatedRVTFileError,
    import_h5py,
    read_rvt_histograms,
    read_rvt_sequence,
    write_rvt_sequence,
)
from sdt_dense.datasets.events.rvt_transforms import LoadRVTHistogram
from sdt_dense.toy_data.rvt import RVT_LABEL_DTYPE


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')  # the pipeline's transforms live in mmdet's registry (conftest
    # restores the scope after each test)


REPR_TS = np.array([50_000, 100_000, 150_000, 200_000, 250_000, 300_000], np.int64)


def _labels(rows) -> np.ndarray:
    out = np.zeros(len(rows), RVT_LABEL_DTYPE)
    for i, (t, x, y, w, h, c) in enumerate(rows):
        out[i] = (t, x, y, w, h, c, i, 1.0)
    return out


def _hists(n: int, height: int, width: int) -> np.ndarray:
    """uint8 (n, 20, H, W), zero but at pixel (5, 7): histogram i, channel c holds 10 i + c % 10."""
    h = np.zeros((n, 20, height, width), np.uint8)
    for i in range(n):
        h[i, :, 5, 7] = 10 * i + np.arange(20) % 10
    return h


GEN1_LABELS = _labels(
    [
        (100_000, -5, 10, 50, 40, 0),  # frame 0: clamped to x 0 .. 45
        (200_000, 300, 200, 20, 60, 1),  # frame 1: clamped to x1 303, y1 239
        (200_000, 10, 10, 30, 30, 0),
        (300_000, 100, 100, 0, 20, 0),  # frame 2: flat -> no instance
    ]
)


def _gen1_root(tmp_path, frame_repr=(1, 3, 5), compression='blosc'):
    seq = tmp_path / 'gen1' / 'train' / 'seq_a'
    write_rvt_sequence(
        str(seq), _hists(6, 240, 304), GEN1_LABELS, np.array(frame_repr), REPR_TS, compression=compression
    )
    return tmp_path / 'gen1', seq


def test_reader_by_hand(tmp_path):
    _, seq = _gen1_root(tmp_path)
    s = read_rvt_sequence(str(seq))
    assert s.num_reprs == 6 and s.repr_shape == (20, 240, 304)
    assert s.frame_timestamps_us.tolist() == [100_000, 200_000, 300_000]
    assert s.objframe_idx_2_label_idx.tolist() == [0, 1, 3]
    assert s.frame_boxes(1)['class_id'].tolist() == [1, 0]
    h = read_rvt_histograms(s.h5_path, 2, 4)
    assert h.dtype == np.uint8 and h.shape == (2, 20, 240, 304)
    assert h[1, 13, 5, 7] == 33 and int(h.sum()) == sum(20 * 10 * i + 90 for i in (2, 3))
    with h5py.File(s.h5_path) as f:  # RVT's filter: Blosc (HDF5 filter 32001), one chunk each
        assert '32001' in f['data']._filters and f['data'].chunks == (1, 20, 240, 304)


def test_boxes_as_rvt_loads_them():
    xyxy, cls = rvt_frame_boxes(GEN1_LABELS, (240, 304), downsampled=False)
    np.testing.assert_array_equal(xyxy, [[0, 10, 45, 50], [300, 200, 303, 239], [10, 10, 40, 40]])
    assert cls.tolist() == [0, 1, 0]
    # 1 Mpx: clamped to 1279 / 719, halved, clamped to 639 / 359 -> 1278 / 718 in sensor pixels
    big = _labels([(1, 1270, 700, 30, 30, 2), (1, 10.5, 20, 11, 7, 0)])
    xyxy, _ = rvt_frame_boxes(big, (720, 1280), downsampled=True)
    np.testing.assert_array_equal(xyxy, [[1270, 700, 1278, 718], [10.5, 20, 21.5, 27]])


def test_dataset_single_step(tmp_path):
    root, _ = _gen1_root(tmp_path)
    ds = RVTGen1Dataset(data_root=str(root), split='train', pipeline=[], lazy_init=False)
    assert len(ds) == 3
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [d['repr_range'] for d in infos] == [(1, 2), (3, 4), (5, 6)]
    assert [d['label_t'] for d in infos] == [100_000, 200_000, 300_000]
    assert infos[0]['img_id'] == 'seq_a@100000'
    assert [i['bbox'] for i in infos[1]['instances']] == [[300, 200, 303, 239], [10, 10, 40, 40]]
    assert [i['bbox_label'] for i in infos[1]['instances']] == [1, 0]
    assert infos[2]['instances'] == []
    # training drops frames without boxes on request
    ds = RVTGen1Dataset(
        data_root=str(root), split='train', pipeline=[], filter_cfg=dict(filter_empty_gt=True)
    )
    assert len(ds) == 2


def test_dataset_history_and_loader(tmp_path):
    root, _ = _gen1_root(tmp_path)
    train = RVTGen1Dataset(data_root=str(root), split='train', num_steps=3, pipeline=[])
    assert len(train) == 2 and train.num_dropped_frames == 1  # frame 0 has 2 < 3 histograms
    assert [train.get_data_info(i)['repr_range'] for i in range(2)] == [(1, 4), (3, 6)]
    test = RVTGen1Dataset(
        data_root=str(root),
        split='train',
        num_steps=3,
        test_mode=True,
        pipeline=[dict(type='LoadRVTHistogram')],
    )
    assert len(test) == 3
    sample = test[0]  # frame 0: histograms -1 (padded), 0, 1
    img = sample['img']
    assert img.shape == (3, 20, 240, 304) and img.dtype == np.uint8  # float32 when packed
    assert not img[0].any()
    assert img[1, 12, 5, 7] == 2 and img[2, 12, 5, 7] == 12 and img[2].sum() == 20 * 10 + 90
    assert sample['img_shape'] == (240, 304) and sample['scale_factor'] == (1.0, 1.0)
    np.testing.assert_array_equal(sample['gt_bboxes'].numpy(), [[0, 10, 45, 50]])


def _mpx_root(tmp_path):
    seq = tmp_path / 'gen4' / 'val' / 'seq_b'
    labels = _labels(
        [
            (100_000, 1270, 700, 30, 30, 2),
            (100_000, 400, 300, 100, 60, 0),
            (100_000, 10, 10, 50, 50, 1),
            (200_000, 0, 0, 64, 64, 0),
        ]
    )
    write_rvt_sequence(str(seq), _hists(4, 360, 640), labels, np.array([1, 3]), REPR_TS[:4], downsampled=True)
    return tmp_path / 'gen4'


def test_one_mpx_dataset_and_loader(tmp_path):
    root = _mpx_root(tmp_path)
    ds = RVTOneMpxDataset(
        data_root=str(root),
        split='val',
        test_mode=True,
        pipeline=[dict(type='LoadRVTHistogram'), dict(type='PackEventDetInputs')],
    )
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert [i['bbox'] for i in info['instances']] == [
        [1270, 700, 1278, 718],
        [400, 300, 500, 360],
        [10, 10, 60, 60],
    ]
    assert [i['bbox_label'] for i in info['instances']] == [2, 0, 1]
    packed = ds[0]
    assert tuple(packed['inputs'].shape) == (1, 20, 360, 640)
    assert packed['inputs'].dtype == torch.float32 and packed['inputs'][0, 13, 5, 7] == 13
    meta = packed['data_samples'].metainfo
    assert meta['scale_factor'] == (0.5, 0.5) and meta['ori_shape'] == (720, 1280)
    np.testing.assert_array_equal(
        packed['data_samples'].gt_instances.bboxes.numpy(),
        [[635, 350, 639, 359], [200, 150, 250, 180], [5, 5, 30, 30]],
    )


def test_rvt_protocol_equals_half_resolution_scoring(tmp_path):
    """Scoring in sensor pixels with the published thresholds (our metric) equals RVT's scoring
    at half resolution with halved thresholds, for AP@[.5:.95] and AP@50."""
    rng = np.random.default_rng(0)
    metric = PropheseeDetMetric(protocol='1mpx')
    metric.dataset_meta = dict(classes=('pedestrian', 'two wheeler', 'car'))
    results, half_gts, half_dets = [], [], []
    for t in (400_000, 600_000, 700_000, 800_000):
        gt = np.concatenate([rng.uniform(0, 600, (6, 2)), rng.uniform(0, 600, (6, 2))], 1)
        gt[:, 2:] = gt[:, :2] + rng.uniform(8, 200, (6, 2))
        det = gt + rng.normal(0, 6, gt.shape)
        gl, dl = rng.integers(0, 3, 6), rng.integers(0, 3, 6)
        ds = rng.random(6)
        results.append(dict(label_t=t, gt_bboxes=gt, gt_labels=gl, bboxes=det, scores=ds, labels=dl))
        # RVT: boxes halved, filter diag 30 / side 10 at half resolution, skip 0.5 s
        for boxes, out, extra in ((gt, half_gts, (gl,)), (det, half_dets, (ds, dl))):
            half = boxes / 2
            w, h = half[:, 2] - half[:, 0], half[:, 3] - half[:, 1]
            keep = (t > 500_000) & (w * w + h * h >= 30**2) & (w >= 10) & (h >= 10)
            xywh = np.concatenate([half[:, :2], half[:, 2:] - half[:, :2]], 1)[keep]
            out.append((xywh,) + tuple(e[keep] for e in extra))
    ours = metric.compute_metrics(results)
    scored = [i for i, g in enumerate(half_gts) if len(g[0])]
    rvt = coco_box_map([half_gts[i] for i in scored], [half_dets[i] for i in scored], 3)
    assert ours['num_images'] == len(scored) == 3  # t = 400 ms is skipped
    assert ours['mAP'] == pytest.approx(rvt['mAP'], abs=1e-12)
    assert ours['mAP_50'] == pytest.approx(rvt['mAP_50'], abs=1e-12)
    assert 0 < ours['mAP'] < ours['mAP_50'] <= 1


def test_metric_by_hand_on_a_loaded_sample(tmp_path):
    """One scored frame, one ground-truth box; a detection of IoU 0.62 is a hit at IoU 0.50,
    0.55, 0.60 only: AP@[.5:.95] = 3 / 10, AP@50 = 1."""
    import torch

    root = _mpx_root(tmp_path)
    ds = RVTOneMpxDataset(
        data_root=str(root),
        split='val',
        test_mode=True,
        pipeline=[dict(type='LoadRVTHistogram'), dict(type='PackEventDetInputs')],
    )
    metric = PropheseeDetMetric(protocol='1mpx')
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        ds_sample = ds[i]['data_samples']
        # IoU with the 64 x 64 box: 0.62 -> a hit at IoU 0.50, 0.55, 0.60 only
        pred = dict(
            bboxes=torch.tensor([[0.0, 0.0, 64.0, 64.0 * 0.62]], dtype=torch.float64),
            scores=torch.tensor([0.9]),
            labels=torch.tensor([0]),
        )
        sample = dict(ds_sample.metainfo, pred_instances=pred)
        # frame 0 (t = 100 ms) is skipped by the protocol; frame 1 (200 ms) is moved past 0.5 s
        sample['label_t'] = 600_000 if i == 1 else sample['label_t']
        samples.append(sample)
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['num_images'] == 1 and out['num_gt'] == 1  # the 64 x 64 box at "600 ms"
    assert out['mAP_50'] == pytest.approx(1.0)
    assert out['mAP'] == pytest.approx(0.3)


def test_missing_and_truncated_files(tmp_path):
    root, seq = _gen1_root(tmp_path)
    h5 = seq / 'event_representations_v2' / 'stacked_histogram_dt=50_nbins=10' / 'event_representations.h5'
    with pytest.raises(MissingRVTFileError, match='event_representations_ds2_nearest.h5'):
        read_rvt_sequence(str(seq), downsampled=True)
    data = h5.read_bytes()
    h5.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedRVTFileError, match='event_representations.h5'):
        read_rvt_sequence(str(seq))
    os.remove(seq / 'labels_v2' / 'timestamps_us.npy')
    with pytest.raises(MissingRVTFileError, match='timestamps_us.npy'):
        RVTGen1Dataset(data_root=str(root), split='train', pipeline=[])
    with pytest.raises(MissingRVTFileError, match='split folder'):
        RVTGen1Dataset(data_root=str(root), split='test', pipeline=[])
    assert issubclass(MissingRVTFileError, RVTLayoutError)


def test_inconsistent_files(tmp_path):
    _, seq = _gen1_root(tmp_path / 'a', frame_repr=(1, 3, 9))
    with pytest.raises(InconsistentRVTFileError, match='frame 2 points to histogram 9, past the 6'):
        read_rvt_sequence(str(seq))
    _, seq = _gen1_root(tmp_path / 'b', frame_repr=(1, 2, 5))
    with pytest.raises(InconsistentRVTFileError, match='frame 1 at 200000 us maps to histogram 2'):
        read_rvt_sequence(str(seq))
    # Gen1-sized histograms read as 1 Mpx
    root, seq = _gen1_root(tmp_path / 'c')
    os.rename(seq.parent, seq.parent.parent / 'val')
    h5dir = root / 'val' / 'seq_a' / 'event_representations_v2' / 'stacked_histogram_dt=50_nbins=10'
    os.rename(h5dir / 'event_representations.h5', h5dir / 'event_representations_ds2_nearest.h5')
    with pytest.raises(Exception, match='expects 360 x 640'):
        RVTOneMpxDataset(data_root=str(root), split='val', pipeline=[])


def test_missing_packages_are_named(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hdf5plugin', None)
    with pytest.raises(ImportError, match='hdf5plugin is missing'):
        import_h5py()
    monkeypatch.setitem(sys.modules, 'h5py', None)
    with pytest.raises(ImportError, match='h5py is missing'):
        import_h5py()


def test_loader_pads_and_splits(tmp_path):
    root, _ = _gen1_root(tmp_path, compression='gzip')  # any HDF5 filter reads the same
    t = LoadRVTHistogram(normalize='cutoff_unit', count_cutoff=10)
    out = t(
        dict(
            img_path=read_rvt_sequence(str(root / 'train' / 'seq_a')).h5_path,
            repr_range=(-1, 1),
            sensor_size=(240, 304),
            instances=[],
        )
    )
    assert out['img'].shape == (2, 20, 240, 304)
    assert not out['img'][0].any() and out['img'][1, 3, 5, 7] == pytest.approx(0.3)
    assert out['gt_bboxes'].numpy().shape == (0, 4)

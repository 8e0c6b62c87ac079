"""RVT's preprocessed Gen1 / 1 Mpx release as mmdet datasets.

Layout: ``data_root/{train,val,test}/<sequence>/...`` as documented in
:mod:`~sdt_dense.datasets.events.rvt_io` (RVT's split folders are the splits; RVT trains on
``train``, validates on ``val`` and reports ``test``).

One sample per labelled frame: the histogram at the frame's index ``r``
(``objframe_idx_2_repr_idx``), or with ``num_steps = k`` the ``k`` histograms ``r - k + 1 .. r``
as ``k`` real timesteps (oldest first) for the multi-step backbone. A frame whose history starts
before the first histogram is dropped in training (as RVT's random-access loader does) and padded
with empty histograms in test mode (so every labelled frame is scored, as RVT's streaming
evaluation does); ``pad_history`` overrides this.

Boxes are RVT's: ``labels.npz`` is already filtered by RVT's preprocessing; at load time RVT
clamps each box to ``[0, W - 1] x [0, H - 1]`` of the sensor and, for 1 Mpx, halves it and clamps
again to the half-resolution frame. The instances here are exactly those boxes, expressed in
sensor pixels (half-resolution boxes times 2), so that the metric scores in sensor pixels with
the published thresholds; see ``docs/events.md`` for why this equals RVT's half-resolution scoring
for mAP and mAP@50.
"""

from __future__ import annotations

import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from .dataset import _PALETTE, GEN1_CLASSES, MPX_CLASSES
from .io import EventFileError
from .rvt_io import RVT_REPR_NAME, MissingRVTFileError, read_rvt_sequence

__all__ = ['RVTDataset', 'RVTGen1Dataset', 'RVTOneMpxDataset', 'rvt_frame_boxes']


def rvt_frame_boxes(
    boxes: np.ndarray, sensor_size: Tuple[int, int], downsampled: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """RVT's load-time box processing, in sensor pixels.

    Args:
        boxes: structured boxes (``x, y, w, h, class_id``) of one frame, sensor pixels.
        sensor_size: ``(H, W)`` of the sensor.
        downsampled: RVT halves 1 Mpx boxes (clamped to the half-resolution frame).

    Returns:
        ``(xyxy (N, 4) float64, class_id (N,) int64)``: float32 arithmetic as RVT, flat boxes
        (``w <= 0`` or ``h <= 0`` after clamping) dropped; coordinates in sensor pixels.
    """
    height, width = sensor_size
    f32 = np.float32
    x, y = boxes['x'].astype(f32), boxes['y'].astype(f32)
    w, h = boxes['w'].astype(f32), boxes['h'].astype(f32)
    x0, y0 = np.clip(x, 0, f32(width - 1)), np.clip(y, 0, f32(height - 1))
    x1, y1 = np.clip(x + w, 0, f32(width - 1)), np.clip(y + h, 0, f32(height - 1))
    if downsampled:
        half = f32(0.5)
        x1 = np.minimum(x1 * half, f32(width * 0.5 - 1)) / half
        y1 = np.minimum(y1 * half, f32(height * 0.5 - 1)) / half
    keep = (x1 - x0 > 0) & (y1 - y0 > 0)
    xyxy = np.stack([x0, y0, x1, y1], 1)[keep].astype(np.float64)
    return xyxy, boxes['class_id'][keep].astype(np.int64)


@DATASETS.register_module()
class RVTDataset(BaseDetDataset):
    """RVT's preprocessed stacked histograms with their labels (see the module docstring).

    Args:
        split: folder under ``data_root`` (``'train'``, ``'val'``, ``'test'``).
        num_steps: ``k`` histograms (50 ms each) per sample, as ``k`` real timesteps.
        pad_history: pad a history that starts before the first histogram with empty histograms
            (``None``: in test mode only; otherwise such frames are dropped).
        repr_name: the representation folder.
        downsampled: read ``event_representations_ds2_nearest.h5`` (1 Mpx at half resolution);
            ``None``: the class default.
        class_ids: label class id of each class name (default: the position in
            :attr:`ALL_CLASSES`).
        **kwargs: ``data_root``, ``metainfo``, ``pipeline``, ``test_mode``, ``filter_cfg`` ... of
            mmdet's ``BaseDetDataset``.

    Each data info: ``img_path`` (the HDF5 file), ``img_id`` (``'<sequence>@<t>'``),
    ``recording``, ``label_t``, ``repr_idx`` (the labelled histogram), ``repr_range``
    ``(start, stop)`` (may start below 0: padded), ``sensor_size``, ``repr_shape`` ``(C, H, W)``,
    ``height``, ``width`` (sensor) and ``instances`` (sensor pixels).
    """

    METAINFO = dict(classes=(), palette=None)
    ALL_CLASSES: Optional[Tuple[str, ...]] = None
    SENSOR_SIZE: Tuple[int, int] = (0, 0)
    DOWNSAMPLED = False

    def __init__(
        self,
        split: str = 'train',
        num_steps: int = 1,
        pad_history: Optional[bool] = None,
        repr_name: str = RVT_REPR_NAME,
        downsampled: Optional[bool] = None,
        class_ids: Optional[Sequence[int]] = None,
        **kwargs,
    ) -> None:
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        kwargs.setdefault('data_prefix', dict(img_path=split))
        self.split = split
        self.num_steps = int(num_steps)
        self._pad_history = pad_history
        self.repr_name = repr_name
        self.downsampled = self.DOWNSAMPLED if downsampled is None else bool(downsampled)
        self._class_ids = None if class_ids is None else [int(c) for c in class_ids]
        #: labelled frames dropped because their history starts before the first histogram
        self.num_dropped_frames = 0
        super().__init__(**kwargs)

    @property
    def class_ids(self) -> List[int]:
        classes = self.metainfo['classes']
        if self._class_ids is not None:
            return self._class_ids
        if self.ALL_CLASSES is not None:
            return [self.ALL_CLASSES.index(c) for c in classes]
        return list(range(len(classes)))

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img_path', '')
        if not osp.isdir(folder):
            raise MissingRVTFileError(
                folder,
                f'{type(self).__name__}: split folder missing '
                f'(data_root {self.data_root!r}, split {self.split!r})',
            )
        pad = self.test_mode if self._pad_history is None else self._pad_history
        id_to_label = {cid: i for i, cid in enumerate(self.class_ids)}
        sequences = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
        if not sequences:
            raise MissingRVTFileError(folder, 'no sequence folders')
        k = self.num_steps
        data_list: List[dict] = []
        for name in sequences:
            seq = read_rvt_sequence(osp.join(folder, name), self.repr_name, self.downsampled)
            channels, h, w = seq.repr_shape
            expected = (
                (self.SENSOR_SIZE[0] // 2, self.SENSOR_SIZE[1] // 2)
                if self.downsampled
                else tuple(self.SENSOR_SIZE)
            )
            if (h, w) != expected:
                raise EventFileError(
                    seq.h5_path,
                    f'histograms are {h} x {w}, {type(self).__name__} expects {expected[0]} x {expected[1]}',
                )
            for frame, (t, r) in enumerate(zip(seq.frame_timestamps_us, seq.objframe_idx_2_repr_idx)):
                start = int(r) - k + 1
                if start < 0 and not pad:
                    self.num_dropped_frames += 1
                    continue
                xyxy, cls = rvt_frame_boxes(seq.frame_boxes(frame), self.SENSOR_SIZE, self.downsampled)
                instances = [
                    dict(bbox=[float(v) for v in b], bbox_label=id_to_label[int(c)], ignore_flag=0)
                    for b, c in zip(xyxy, cls)
                    if int(c) in id_to_label
                ]
                data_list.append(
                    dict(
                        img_path=seq.h5_path,
                        img_id=f'{name}@{int(t)}',
                        recording=name,
                        label_t=int(t),
                        repr_idx=int(r),
                        repr_range=(start, int(r) + 1),
                        sensor_size=tuple(self.SENSOR_SIZE),
                        repr_shape=(channels, h, w),
                        height=self.SENSOR_SIZE[0],
                        width=self.SENSOR_SIZE[1],
                        instances=instances,
                    )
                )
        return data_list

    def filter_data(self) -> List[dict]:
        """``filter_cfg=dict(filter_empty_gt=True)`` drops frames without boxes (training)."""
        if self.test_mode or not self.filter_cfg or not self.filter_cfg.get('filter_empty_gt'):
            return self.data_list
        return [d for d in self.data_list if d['instances']]

    def get_cat_ids(self, idx: int) -> List[int]:
        return [inst['bbox_label'] for inst in self.get_data_info(idx)['instances']]


@DATASETS.register_module()
class RVTGen1Dataset(RVTDataset):
    """RVT's Gen1 release (304 x 240, full resolution): ``car`` (0), ``pedestrian`` (1)."""

    METAINFO = dict(classes=GEN1_CLASSES, palette=_PALETTE[:2])
    ALL_CLASSES = GEN1_CLASSES
    SENSOR_SIZE = (240, 304)
    DOWNSAMPLED = False


@DATASETS.register_module()
class RVTOneMpxDataset(RVTDataset):
    """RVT's 1 Mpx release (1280 x 720 sensor, histograms 640 x 360): pedestrian (0), two
    wheeler (1), car (2): RVT's preprocessing keeps only these three classes."""

    METAINFO = dict(classes=MPX_CLASSES[:3], palette=_PALETTE[:3])
    ALL_CLASSES = MPX_CLASSES
    SENSOR_SIZE = (720, 1280)
    DOWNSAMPLED = True

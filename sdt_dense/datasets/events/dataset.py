"""Prophesee automotive detection datasets (Gen1, 1 Mpx) for mmdet.

Layout (the published one)::

    data_root/
        train/  <recording>_td.dat  <recording>_bbox.npy   (or <recording>_td.npy events)
        val/    ...
        test/   ...

One sample per labelled timestamp ``t`` of a recording: the events of the window
``[t + 1 - window_us, t + 1)`` (i.e. ``t - window_us < t_event <= t``) and the boxes labelled at
``t``. Boxes keep the file's coordinates (not clipped to the sensor, as the published evaluation);
boxes of classes outside ``class_ids`` and boxes with ``w <= 0`` or ``h <= 0`` are dropped.

Files are validated when the dataset is built (header, size, box fields; events are not read):
a missing, empty, truncated or malformed file raises :class:`~.io.EventFileError` naming it, or,
with ``skip_bad_files=True``, the recording is skipped with a warning naming the file and problem.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .io import EventFileError, check_event_file, read_boxes

__all__ = ['PropheseeDataset', 'Gen1Dataset', 'OneMpxDataset', 'GEN1_CLASSES', 'MPX_CLASSES']

#: Gen1 class ids 0, 1.
GEN1_CLASSES: Tuple[str, ...] = ('car', 'pedestrian')
#: 1 Mpx class ids 0..6 (published evaluations use the first three).
MPX_CLASSES: Tuple[str, ...] = (
    'pedestrian',
    'two wheeler',
    'car',
    'truck',
    'bus',
    'traffic sign',
    'traffic light',
)
_PALETTE = [
    (220, 20, 60),
    (0, 128, 255),
    (0, 200, 0),
    (255, 160, 0),
    (160, 0, 255),
    (0, 200, 200),
    (255, 255, 0),
]
EVENT_SUFFIXES = ('_td.dat', '_td.npy')


@DATASETS.register_module()
class PropheseeDataset(BaseDetDataset):
    """Event windows before labelled timestamps, with the boxes at those timestamps.

    Args:
        split: folder under ``data_root`` (``'train'``, ``'val'``, ``'test'``); ignored when
            ``data_prefix=dict(img_path=...)`` is given.
        window_us: window length before each labelled timestamp (µs).
        sensor_size: ``(H, W)`` when the event files' headers do not say (``.npy`` events); the
            header's Height / Width win otherwise.
        class_ids: file class ids kept, in label order (label ``i`` = ``class_ids[i]``); default:
            the position of each ``metainfo['classes']`` name in :attr:`ALL_CLASSES` (subclasses),
            else ``0 .. len(classes) - 1``.
        skip_bad_files: skip (with a warning) recordings with a bad event or box file instead of
            raising :class:`~sdt_dense.datasets.events.io.EventFileError`.
        min_label_time_us: labelled timestamps before this are not samples (0: all).
        min_box_size: ``(min_diag, min_side)`` in sensor pixels: smaller boxes are dropped from the
            training targets (``None``: keep all). Evaluation filters separately (the metric).
        window_rule: ``'half_open'`` (default): events with ``t - window_us < t_event <= t``;
            ``'rvt'``: RVT's ``t - window_us <= t_event <= t`` (both ends included), for
            :class:`~sdt_dense.datasets.events.rvt_transforms.EventRVTStackedHistogram`.
        **kwargs: ``data_root``, ``metainfo``, ``pipeline``, ``test_mode``, ``filter_cfg``
            (``filter_empty_gt``) ... of mmdet's ``BaseDetDataset``.

    Each data info: ``img_path`` (event file), ``img_id`` (``'<recording>@<t>'``), ``recording``,
    ``label_t``, ``event_window``, ``sensor_size``, ``height``, ``width`` and ``instances``
    (``bbox`` ``[x1, y1, x2, y2]``, ``bbox_label``, ``ignore_flag``).
    """

    METAINFO = dict(classes=(), palette=None)
    #: every class name of the files, indexed by file class id (``None``: use class_ids)
    ALL_CLASSES: Optional[Tuple[str, ...]] = None
    #: ``(H, W)`` of the sensor
    SENSOR_SIZE: Optional[Tuple[int, int]] = None

    def __init__(
        self,
        split: str = 'train',
        window_us: int = 50_000,
        sensor_size: Optional[Sequence[int]] = None,
        class_ids: Optional[Sequence[int]] = None,
        skip_bad_files: bool = False,
        min_label_time_us: int = 0,
        min_box_size: Optional[Tuple[float, float]] = None,
        window_rule: str = 'half_open',
        **kwargs,
    ) -> None:
        if window_us <= 0:
            raise ValueError(f'window_us must be positive, got {window_us}')
        if window_rule not in ('half_open', 'rvt'):
            raise ValueError(f"window_rule must be 'half_open' or 'rvt', got {window_rule!r}")
        self.window_rule = window_rule
        kwargs.setdefault('data_prefix', dict(img_path=split))
        self.split = split
        self.window_us = int(window_us)
        size = sensor_size if sensor_size is not None else self.SENSOR_SIZE
        self.sensor_size = tuple(int(v) for v in size) if size is not None else None
        self._class_ids = None if class_ids is None else [int(c) for c in class_ids]
        self.skip_bad_files = skip_bad_files
        self.min_label_time_us = int(min_label_time_us)
        self.min_box_size = min_box_size
        #: ``[(file, problem)]`` of the recordings skipped by ``skip_bad_files``
        self.skipped_files: List[Tuple[str, str]] = []
        super().__init__(**kwargs)

    @property
    def class_ids(self) -> List[int]:
        """File class id of each label."""
        classes = self.metainfo['classes']
        if self._class_ids is not None:
            if len(self._class_ids) != len(classes):
                raise ValueError(f'class_ids {self._class_ids} and classes {classes} differ in length')
            return self._class_ids
        if self.ALL_CLASSES is not None:
            unknown = [c for c in classes if c not in self.ALL_CLASSES]
            if unknown:
                raise ValueError(
                    f'classes {unknown} are not {type(self).__name__} classes '
                    f'{self.ALL_CLASSES}; give class_ids'
                )
            return [self.ALL_CLASSES.index(c) for c in classes]
        return list(range(len(classes)))

    def _bad_file(self, error: EventFileError) -> None:
        if not self.skip_bad_files:
            raise error
        self.skipped_files.append((error.path, error.problem))
        print_log(f'skipping recording: {error}', logger='current', level=logging.WARNING)

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img_path', '')
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'{type(self).__name__}: no folder {folder!r} (data_root '
                f'{self.data_root!r}, split {self.split!r})'
            )
        if not self.metainfo.get('classes'):
            raise ValueError(f'{type(self).__name__}: metainfo has no classes')
        id_to_label = {cid: i for i, cid in enumerate(self.class_ids)}
        box_files = sorted(f for f in os.listdir(folder) if f.endswith('_bbox.npy'))
        data_list: List[dict] = []
        dropped = 0
        for box_file in box_files:
            recording = box_file[: -len('_bbox.npy')]
            event_path = next(
                (
                    osp.join(folder, recording + s)
                    for s in EVENT_SUFFIXES
                    if osp.isfile(osp.join(folder, recording + s))
                ),
                None,
            )
            try:
                if event_path is None:
                    raise EventFileError(
                        osp.join(folder, recording + EVENT_SUFFIXES[0]),
                        f'event file missing (no _td.dat or _td.npy next to {box_file})',
                    )
                header = check_event_file(event_path)
                boxes = read_boxes(osp.join(folder, box_file))
            except EventFileError as e:
                self._bad_file(e)
                continue
            if header.height is not None:
                size = (header.height, header.width)
            elif self.sensor_size is not None:
                size = self.sensor_size
            else:
                raise ValueError(f'{event_path}: no sensor size in the file; give sensor_size')
            # every labelled timestamp is a sample, even if all its boxes are dropped below
            all_times = np.unique(boxes['t'])
            keep = np.isin(boxes['class_id'], list(id_to_label))
            valid = (boxes['w'] > 0) & (boxes['h'] > 0)
            dropped += int((keep & ~valid).sum())
            boxes = boxes[keep & valid]
            if self.min_box_size is not None:
                min_diag, min_side = self.min_box_size
                w, h = boxes['w'], boxes['h']
                boxes = boxes[(w * w + h * h >= min_diag**2) & (w >= min_side) & (h >= min_side)]
            for t in all_times[all_times >= self.min_label_time_us]:
                sel = boxes[boxes['t'] == t]
                instances = [
                    dict(
                        bbox=[float(b['x']), float(b['y']), float(b['x'] + b['w']), float(b['y'] + b['h'])],
                        bbox_label=id_to_label[int(b['class_id'])],
                        ignore_flag=0,
                    )
                    for b in sel
                ]
                data_list.append(
                    dict(
                        img_path=event_path,
                        img_id=f'{recording}@{int(t)}',
                        recording=recording,
                        label_t=int(t),
                        event_window=(int(t) + 1 - self.window_us - (self.window_rule == 'rvt'), int(t) + 1),
                        sensor_size=size,
                        height=size[0],
                        width=size[1],
                        instances=instances,
                    )
                )
        if dropped:
            print_log(
                f'{type(self).__name__}({folder}): dropped {dropped} box(es) with zero or '
                'negative width/height',
                logger='current',
                level=logging.WARNING,
            )
        return data_list

    def filter_data(self) -> List[dict]:
        """``filter_cfg=dict(filter_empty_gt=True)`` drops timestamps without boxes (training)."""
        if self.test_mode or not self.filter_cfg or not self.filter_cfg.get('filter_empty_gt'):
            return self.data_list
        return [d for d in self.data_list if d['instances']]

    def get_cat_ids(self, idx: int) -> List[int]:
        return [inst['bbox_label'] for inst in self.get_data_info(idx)['instances']]


@DATASETS.register_module()
class Gen1Dataset(PropheseeDataset):
    """Prophesee Gen1 automotive detection (304 x 240): ``car`` (id 0), ``pedestrian`` (id 1)."""

    METAINFO = dict(classes=GEN1_CLASSES, palette=_PALETTE[:2])
    ALL_CLASSES = GEN1_CLASSES
    SENSOR_SIZE = (240, 304)


@DATASETS.register_module()
class OneMpxDataset(PropheseeDataset):
    """Prophesee 1 Mpx (Gen4) automotive detection (1280 x 720). Seven file classes
    (:data:`MPX_CLASSES`); by default the first three (pedestrian, two wheeler, car) are used, as
    in the published evaluations; other boxes are dropped. Give ``metainfo=dict(classes=...)``
    with names of :data:`MPX_CLASSES` for another selection."""

    METAINFO = dict(classes=MPX_CLASSES[:3], palette=_PALETTE[:3])
    ALL_CLASSES = MPX_CLASSES
    SENSOR_SIZE = (720, 1280)

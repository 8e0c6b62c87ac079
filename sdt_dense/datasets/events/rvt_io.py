"""RVT's preprocessed Gen1 / 1 Mpx release: reader, writer and named errors (numpy + h5py).

RVT (Gehrig & Scaramuzza, CVPR 2023) distributes Gen1 and 1 Mpx as precomputed stacked
histograms. Layout of one split (``train``, ``val`` or ``test``)::

    <split>/<sequence>/
        labels_v2/
            labels.npz                 'labels': structured boxes (t, x, y, w, h, class_id, ...),
                                       sorted by t, already filtered by RVT's preprocessing;
                                       'objframe_idx_2_label_idx': (F,) int64, first box of each
                                       labelled frame
            timestamps_us.npy          (F,) int64, the labelled frames' timestamps
        event_representations_v2/
            stacked_histogram_dt=50_nbins=10/
                event_representations.h5               Gen1 (dataset 'data', (N, 20, 240, 304))
                event_representations_ds2_nearest.h5   1 Mpx (dataset 'data', (N, 20, 360, 640))
                objframe_idx_2_repr_idx.npy            (F,) int64: frame f's histogram index
                timestamps_us.npy                      (N,) int64: end time T of each window

Histogram ``i`` counts the events with ``T_i - 50 ms <= t <= T_i`` (see
:func:`~sdt_dense.datasets.events.representations.rvt_stacked_histogram`), uint8, one HDF5 chunk
per histogram, compressed with the Blosc filter (HDF5 filter id 32001, zstd, level 1, byte
shuffle). Reading Blosc needs ``h5py`` and ``hdf5plugin`` (the optional ``rvt`` extra):
``hdf5plugin`` registers the filter with the HDF5 library that h5py ships, so nothing needs
compiling.

Every problem raises an :class:`RVTLayoutError` (an
:class:`~sdt_dense.datasets.events.io.EventFileError`) naming the file: a missing file
(:class:`MissingRVTFileError`), an unreadable or cut HDF5 file (:class:`TruncatedRVTFileError`),
or files that disagree (:class:`InconsistentRVTFileError`, e.g. labels pointing past the
histograms).
"""

from __future__ import annotations

import os.path as osp
import zipfile
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .io import EventFileError

__all__ = [
    'RVT_REPR_NAME',
    'RVT_H5_KEY',
    'RVTLayoutError',
    'MissingRVTFileError',
    'TruncatedRVTFileError',
    'InconsistentRVTFileError',
    'RVTSequence',
    'import_h5py',
    'read_rvt_sequence',
    'read_rvt_histograms',
    'write_rvt_sequence',
    'rvt_h5_name',
    'RVT_LABEL_FIELDS',
]

#: The representation folder of RVT's release (50 ms windows, 10 bins).
RVT_REPR_NAME = 'stacked_histogram_dt=50_nbins=10'
#: The HDF5 dataset holding the histograms.
RVT_H5_KEY = 'data'
#: Label fields every ``labels.npz`` must have.
RVT_LABEL_FIELDS = ('t', 'x', 'y', 'w', 'h', 'class_id')


class RVTLayoutError(EventFileError):
    """A file of RVT's preprocessed layout is missing, unreadable or inconsistent."""


class MissingRVTFileError(RVTLayoutError):
    """A file or folder the layout requires does not exist."""


class TruncatedRVTFileError(RVTLayoutError):
    """A file cannot be read to its end (a cut HDF5 or ``.npy``/``.npz`` file)."""


class InconsistentRVTFileError(RVTLayoutError):
    """The files of a sequence disagree (lengths, indices past the histograms, shapes)."""


def import_h5py():
    """``h5py`` with the Blosc filter registered (imports ``hdf5plugin``).

    Raises:
        ImportError: naming the missing package and the extra that installs both.
    """
    try:
        import h5py
    except ImportError as e:
        raise ImportError(
            "RVT's preprocessed files are HDF5: install h5py and hdf5plugin "
            "(pip install 'sdt-dense[rvt]'); h5py is missing"
        ) from e
    try:
        import hdf5plugin  # noqa: F401  (registers the Blosc filter, id 32001)
    except ImportError as e:
        raise ImportError(
            "RVT's histograms are Blosc-compressed (HDF5 filter 32001): install "
            "hdf5plugin (pip install 'sdt-dense[rvt]'); hdf5plugin is missing"
        ) from e
    return h5py


def rvt_h5_name(downsampled: bool) -> str:
    """File name of the histograms: ``event_representations[_ds2_nearest].h5``."""
    return f'event_representations{"_ds2_nearest" if downsampled else ""}.h5'


@dataclass
class RVTSequence:
    """One validated sequence of RVT's layout (metadata only; histograms stay on disk).

    Attributes:
        path: the sequence folder.
        h5_path: the histogram file.
        num_reprs: ``N``, histograms in the file.
        repr_shape: ``(C, H, W)`` of one histogram (``C = 2 * bins``).
        labels: structured boxes, sorted by ``t``.
        objframe_idx_2_label_idx: ``(F,)`` first box of each labelled frame.
        frame_timestamps_us: ``(F,)`` timestamp of each labelled frame.
        objframe_idx_2_repr_idx: ``(F,)`` histogram index of each labelled frame.
        repr_timestamps_us: ``(N,)`` window end of each histogram.
    """

    path: str
    h5_path: str
    num_reprs: int
    repr_shape: Tuple[int, int, int]
    labels: np.ndarray
    objframe_idx_2_label_idx: np.ndarray
    frame_timestamps_us: np.ndarray
    objframe_idx_2_repr_idx: np.ndarray
    repr_timestamps_us: np.ndarray

    def frame_boxes(self, frame: int) -> np.ndarray:
        """The boxes of labelled frame ``frame`` (structured, all with the same ``t``)."""
        start = int(self.objframe_idx_2_label_idx[frame])
        stop = (
            int(self.objframe_idx_2_label_idx[frame + 1])
            if frame + 1 < len(self.objframe_idx_2_label_idx)
            else len(self.labels)
        )
        return self.labels[start:stop]


def _require(path: str, what: str) -> str:
    if not osp.exists(path):
        raise MissingRVTFileError(path, f'{what} missing (RVT layout: see docs/events.md)')
    return path


def _load_npy(path: str, what: str) -> np.ndarray:
    _require(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise TruncatedRVTFileError(path, f'{what} unreadable ({e})') from e


def read_rvt_sequence(path: str, repr_name: str = RVT_REPR_NAME, downsampled: bool = False) -> RVTSequence:
    """Read and cross-check the metadata of one sequence folder (see the module docstring).

    Raises:
        MissingRVTFileError, TruncatedRVTFileError, InconsistentRVTFileError: naming the file.
    """
    if not osp.isdir(path):
        raise MissingRVTFileError(path, 'sequence folder missing')
    labels_dir = osp.join(path, 'labels_v2')
    repr_dir = osp.join(path, 'event_representations_v2', repr_name)
    _require(labels_dir, 'labels_v2 folder')
    _require(repr_dir, f'representation folder event_representations_v2/{repr_name}')
    labels_path = osp.join(labels_dir, 'labels.npz')
    _require(labels_path, 'labels.npz')
    try:
        with np.load(labels_path, allow_pickle=False) as data:
            missing = [k for k in ('labels', 'objframe_idx_2_label_idx') if k not in data.files]
            if missing:
                raise InconsistentRVTFileError(
                    labels_path, f'no array(s) {missing} (has {sorted(data.files)})'
                )
            labels = data['labels']
            frame_start = data['objframe_idx_2_label_idx'].astype(np.int64)
    except RVTLayoutError:
        raise
    except (ValueError, EOFError, OSError, KeyError, zipfile.BadZipFile) as e:
        raise TruncatedRVTFileError(labels_path, f'labels.npz unreadable ({e})') from e
    if labels.dtype.names is None or any(f not in labels.dtype.names for f in RVT_LABEL_FIELDS):
        raise InconsistentRVTFileError(
            labels_path, f'labels lack fields {RVT_LABEL_FIELDS} (dtype {labels.dtype})'
        )
    frame_ts = _load_npy(osp.join(labels_dir, 'timestamps_us.npy'), 'labels_v2/timestamps_us.npy').astype(
        np.int64
    )
    frame_repr = _load_npy(
        osp.join(repr_dir, 'objframe_idx_2_repr_idx.npy'), 'objframe_idx_2_repr_idx.npy'
    ).astype(np.int64)
    repr_ts = _load_npy(osp.join(repr_dir, 'timestamps_us.npy'), 'representation timestamps_us.npy').astype(
        np.int64
    )
    num_frames = len(frame_start)
    if not (len(frame_ts) == len(frame_repr) == num_frames):
        raise InconsistentRVTFileError(
            path,
            f'{num_frames} labelled frames in labels.npz, '
            f'{len(frame_ts)} in labels_v2/timestamps_us.npy, '
            f'{len(frame_repr)} in objframe_idx_2_repr_idx.npy',
        )
    if num_frames and (
        frame_start[0] != 0 or np.any(np.diff(frame_start) <= 0) or frame_start[-1] >= len(labels)
    ):
        raise InconsistentRVTFileError(
            labels_path,
            f'objframe_idx_2_label_idx must start at 0 and increase strictly below {len(labels)} boxes',
        )
    h5_path = _require(
        osp.join(repr_dir, rvt_h5_name(downsampled)), f'histogram file {rvt_h5_name(downsampled)}'
    )
    h5py = import_h5py()
    try:
        with h5py.File(h5_path, 'r') as f:
            if RVT_H5_KEY not in f:
                raise InconsistentRVTFileError(h5_path, f'no dataset {RVT_H5_KEY!r} (has {sorted(f.keys())})')
            dset = f[RVT_H5_KEY]
            shape, dtype = dset.shape, dset.dtype
            if len(shape) == 4 and shape[0]:
                dset[shape[0] - 1]  # decompress the last chunk: a cut file fails here
    except RVTLayoutError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise TruncatedRVTFileError(h5_path, f'HDF5 file unreadable ({e})') from e
    if len(shape) != 4 or dtype != np.uint8:
        raise InconsistentRVTFileError(
            h5_path, f'expected uint8 histograms (N, C, H, W), got {dtype} {shape}'
        )
    num_reprs = int(shape[0])
    if len(repr_ts) != num_reprs:
        raise InconsistentRVTFileError(
            h5_path, f'{num_reprs} histograms but {len(repr_ts)} representation timestamps'
        )
    if num_frames:
        bad = np.nonzero((frame_repr < 0) | (frame_repr >= num_reprs))[0]
        if len(bad):
            raise InconsistentRVTFileError(
                osp.join(repr_dir, 'objframe_idx_2_repr_idx.npy'),
                f'labelled frame {int(bad[0])} points to histogram {int(frame_repr[bad[0]])}, '
                f'past the {num_reprs} histograms of {osp.basename(h5_path)}',
            )
        if not np.array_equal(repr_ts[frame_repr], frame_ts):
            i = int(np.nonzero(repr_ts[frame_repr] != frame_ts)[0][0])
            raise InconsistentRVTFileError(
                path,
                f'labelled frame {i} at {int(frame_ts[i])} us maps to histogram '
                f'{int(frame_repr[i])} ending at {int(repr_ts[frame_repr[i]])} us',
            )
        box_ts = labels['t'].astype(np.int64)[frame_start]
        if not np.array_equal(box_ts, frame_ts):
            i = int(np.nonzero(box_ts != frame_ts)[0][0])
            raise InconsistentRVTFileError(
                labels_path, f'frame {i}: boxes at {int(box_ts[i])} us, frame timestamp {int(frame_ts[i])} us'
            )
    return RVTSequence(
        path=path,
        h5_path=h5_path,
        num_reprs=num_reprs,
        repr_shape=tuple(int(v) for v in shape[1:]),
        labels=labels,
        objframe_idx_2_label_idx=frame_start,
        frame_timestamps_us=frame_ts,
        objframe_idx_2_repr_idx=frame_repr,
        repr_timestamps_us=repr_ts,
    )


def read_rvt_histograms(h5_path: str, start: int, stop: int) -> np.ndarray:
    """Histograms ``[start, stop)`` of an RVT file, uint8 ``(stop - start, C, H, W)``.

    Raises:
        InconsistentRVTFileError: the range is not inside the file.
        TruncatedRVTFileError: a chunk cannot be read or decompressed.
    """
    h5py = import_h5py()
    try:
        with h5py.File(h5_path, 'r') as f:
            dset = f[RVT_H5_KEY]
            if not 0 <= start < stop <= dset.shape[0]:
                raise InconsistentRVTFileError(
                    h5_path, f'histograms [{start}, {stop}) outside the {dset.shape[0]} in the file'
                )
            return dset[start:stop]
    except RVTLayoutError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise TruncatedRVTFileError(h5_path, f'histograms [{start}, {stop}) unreadable ({e})') from e


def write_rvt_sequence(
    path: str,
    histograms: np.ndarray,
    labels: np.ndarray,
    frame_repr_idx: np.ndarray,
    repr_timestamps_us: np.ndarray,
    downsampled: bool = False,
    repr_name: str = RVT_REPR_NAME,
    compression: Optional[str] = 'blosc',
) -> None:
    """Write one sequence in RVT's layout (our own writer, for tests and toy data).

    Args:
        path: the sequence folder (created).
        histograms: uint8 ``(N, C, H, W)``.
        labels: structured boxes with at least :data:`RVT_LABEL_FIELDS`, sorted by ``t``; every
            distinct ``t`` is one labelled frame.
        frame_repr_idx: ``(F,)`` histogram index of each labelled frame (``F`` distinct ``t``).
        repr_timestamps_us: ``(N,)`` window ends.
        downsampled: name the file ``*_ds2_nearest.h5`` (1 Mpx).
        compression: ``'blosc'`` (RVT's Blosc zstd level 1, byte shuffle; needs hdf5plugin),
            ``'gzip'`` or ``None``.
    """
    import os

    h5py = import_h5py()
    histograms = np.asarray(histograms)
    if histograms.dtype != np.uint8 or histograms.ndim != 4:
        raise ValueError(f'histograms must be uint8 (N, C, H, W), got {histograms.dtype} {histograms.shape}')
    t = labels['t'].astype(np.int64)
    if np.any(np.diff(t) < 0):
        raise ValueError('labels must be sorted by t')
    frame_ts, frame_start = np.unique(t, return_index=True)
    labels_dir = osp.join(path, 'labels_v2')
    repr_dir = osp.join(path, 'event_representations_v2', repr_name)
    os.makedirs(labels_dir, exist_ok=True)
    os.makedirs(repr_dir, exist_ok=True)
    np.savez(
        osp.join(labels_dir, 'labels.npz'),
        labels=labels,
        objframe_idx_2_label_idx=frame_start.astype(np.int64),
    )
    np.save(osp.join(labels_dir, 'timestamps_us.npy'), frame_ts.astype(np.int64))
    np.save(osp.join(repr_dir, 'objframe_idx_2_repr_idx.npy'), np.asarray(frame_repr_idx, np.int64))
    np.save(osp.join(repr_dir, 'timestamps_us.npy'), np.asarray(repr_timestamps_us, np.int64))
    if compression == 'blosc':
        import hdf5plugin

        opts = dict(hdf5plugin.Blosc(cname='zstd', clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
    elif compression in ('gzip', None):
        opts = dict(compression=compression)
    else:
        raise ValueError(f"compression must be 'blosc', 'gzip' or None, got {compression!r}")
    with h5py.File(osp.join(repr_dir, rvt_h5_name(downsampled)), 'w') as f:
        f.create_dataset(
            RVT_H5_KEY,
            data=histograms,
            chunks=(1,) + histograms.shape[1:],
            maxshape=(None,) + histograms.shape[1:],
            **opts,
        )

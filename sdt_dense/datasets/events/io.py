"""Readers of Prophesee automotive detection files (Gen1, 1 Mpx), numpy only.

Event files (``*_td.dat``)::

    % <text header line>\\n      zero or more lines starting with '%' (Height / Width: sensor)
    <ev_type: u1> <ev_size: u1>  0 (Event2D / CD) and 8
    N records of 8 bytes, little-endian:
        u4  t      microseconds, non-decreasing
        u4  word   x = bits 0-13, y = bits 14-27, polarity = bit 28 (1 = ON), bits 29-31 unused

Events may also come as ``.npy`` structured arrays with the fields ``t, x, y, p`` (any integer
types). Box files (``*_bbox.npy``) are structured arrays in one of two published layouts (Gen1:
``ts`` / ``confidence``, packed; 1 Mpx: ``t`` / ``class_confidence``, padded to 40 bytes); both are
returned in :data:`BOX_DTYPE`.

Every problem with a file raises an :class:`EventFileError` subclass whose message names the file.
Nothing here depends on Prophesee's own toolbox (its readers break under numpy 2).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = [
    'EVENT_DTYPE',
    'BOX_DTYPE',
    'EventFileError',
    'TruncatedEventFileError',
    'EmptyEventFileError',
    'BadHeaderError',
    'BoxFileError',
    'DatHeader',
    'read_dat_header',
    'read_dat',
    'read_event_window',
    'write_dat',
    'read_boxes',
    'sanitize_events',
    'SanitizeStats',
    'check_event_file',
    'event_time_range',
]

#: Events as returned by every reader. ``t`` is int64 (µs) so that differences never wrap.
EVENT_DTYPE = np.dtype([('t', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', 'u1')])
#: Boxes as returned by :func:`read_boxes`: top-left corner, width and height in pixels.
BOX_DTYPE = np.dtype(
    [
        ('t', '<i8'),
        ('x', '<f4'),
        ('y', '<f4'),
        ('w', '<f4'),
        ('h', '<f4'),
        ('class_id', '<u4'),
        ('track_id', '<u4'),
        ('class_confidence', '<f4'),
    ]
)
# On-disk record of a .dat file.
_DAT_RECORD = np.dtype([('t', '<u4'), ('word', '<u4')])
_DAT_EVENT_SIZE = 8
# Event types seen in Prophesee files: 0 = Event2D (the Gen1 / 1 Mpx datasets), 12 = EventCD
# (newer Metavision exports, same 8-byte layout).
_DAT_EVENT_TYPES = (0, 12)
_COORD_MASK = 0x3FFF  # 14 bits
_MAX_HEADER_BYTES = 1 << 16


class EventFileError(ValueError):
    """A Prophesee event or box file cannot be used; the message names the file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')


class TruncatedEventFileError(EventFileError):
    """The file ends inside a record (``offset``: the byte where the partial record starts)."""

    def __init__(self, path: str, problem: str, offset: int) -> None:
        self.offset = int(offset)
        super().__init__(path, problem)


class EmptyEventFileError(EventFileError):
    """The file holds no event (zero bytes, or a header and no record)."""


class BadHeaderError(EventFileError):
    """The header is not a Prophesee ``.dat`` header (wrong event type or size, bad text)."""


class BoxFileError(EventFileError):
    """A ``*_bbox.npy`` file is unreadable or lacks the box fields."""


@dataclass(frozen=True)
class DatHeader:
    """What the header of a ``.dat`` file says.

    Attributes:
        path: the file.
        lines: the ``%`` header lines (decoded latin-1, without ``%`` and newline).
        width, height: sensor size from the ``Width`` / ``Height`` lines (``None`` if absent).
        ev_type, ev_size: the two bytes after the text header.
        data_offset: byte offset of the first record.
        num_events: complete records in the file.
        trailing_bytes: bytes after the last complete record (non-zero = truncated).
    """

    path: str
    lines: Tuple[str, ...]
    width: Optional[int]
    height: Optional[int]
    ev_type: int
    ev_size: int
    data_offset: int
    num_events: int
    trailing_bytes: int
    fields: Dict[str, str] = field(default_factory=dict)


def read_dat_header(path: str) -> DatHeader:
    """Parse the header of a ``.dat`` event file without reading its events.

    Raises:
        EmptyEventFileError: a zero-byte file.
        BadHeaderError: unterminated or oversized text header, missing type/size bytes, an event
            size other than 8 or an unknown event type.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
        f = open(path, 'rb')
    except OSError as e:
        raise EventFileError(path, f'cannot open: {e.strerror or e}') from e
    if size == 0:
        f.close()
        raise EmptyEventFileError(path, 'empty file (0 bytes)')
    lines = []
    with f:
        while True:
            start = f.tell()
            if f.read(1) != b'%':
                f.seek(start)
                break
            raw = f.readline(_MAX_HEADER_BYTES)
            if not raw.endswith(b'\n'):
                raise BadHeaderError(
                    path,
                    f'header line at byte {start} is not terminated by a '
                    'newline (not a Prophesee .dat file?)',
                )
            lines.append(raw[:-1].decode('latin-1').strip())
            if f.tell() > _MAX_HEADER_BYTES:
                raise BadHeaderError(path, f'text header longer than {_MAX_HEADER_BYTES} bytes')
        type_size = f.read(2)
        data_offset = f.tell()
    if len(type_size) < 2:
        raise BadHeaderError(path, f'the file ends at byte {size} before the event type and size bytes')
    ev_type, ev_size = type_size[0], type_size[1]
    if ev_size != _DAT_EVENT_SIZE:
        raise BadHeaderError(
            path,
            f'event size {ev_size} at byte {data_offset - 1}, expected '
            f'{_DAT_EVENT_SIZE} (garbage or a non-Prophesee header?)',
        )
    if ev_type not in _DAT_EVENT_TYPES:
        raise BadHeaderError(
            path,
            f'event type {ev_type} at byte {data_offset - 2}, expected one '
            f'of {_DAT_EVENT_TYPES} (Event2D / CD)',
        )
    fields = {}
    for line in lines:
        m = re.match(r'([A-Za-z_]+)\s+(.*)$', line)
        if m:
            fields[m.group(1).lower()] = m.group(2).strip()
    width, height = _int_field(path, fields, 'width'), _int_field(path, fields, 'height')
    payload = size - data_offset
    return DatHeader(
        path=path,
        lines=tuple(lines),
        width=width,
        height=height,
        ev_type=ev_type,
        ev_size=ev_size,
        data_offset=data_offset,
        num_events=payload // _DAT_EVENT_SIZE,
        trailing_bytes=payload % _DAT_EVENT_SIZE,
        fields=fields,
    )


def _int_field(path: str, fields: Dict[str, str], key: str) -> Optional[int]:
    if key not in fields:
        return None
    try:
        value = int(fields[key].split()[0])
    except (ValueError, IndexError):
        raise BadHeaderError(path, f'header line "{key} {fields[key]}" is not an integer')
    if value <= 0:
        raise BadHeaderError(path, f'header says {key} {value}')
    return value


def check_event_file(path: str, allow_truncated: bool = False) -> DatHeader:
    """Validate an event file cheaply (header and size only) and return its header.

    ``.npy`` files are opened memory-mapped and their fields checked; their "header" has
    ``data_offset`` 0 and no sensor size.

    Raises:
        EventFileError (or a subclass): the file is empty, truncated or not an event file.
    """
    path = str(path)
    if path.endswith('.npy'):
        events = _open_npy_events(path)
        return DatHeader(
            path=path,
            lines=(),
            width=None,
            height=None,
            ev_type=0,
            ev_size=0,
            data_offset=0,
            num_events=len(events),
            trailing_bytes=0,
        )
    header = read_dat_header(path)
    if header.trailing_bytes and not allow_truncated:
        raise _truncated(header)
    if header.num_events == 0:
        raise EmptyEventFileError(path, f'no events after the {header.data_offset}-byte header')
    return header


def _truncated(header: DatHeader) -> TruncatedEventFileError:
    offset = header.data_offset + header.num_events * _DAT_EVENT_SIZE
    return TruncatedEventFileError(
        header.path,
        f'truncated: {header.trailing_bytes} trailing byte(s) of a partial '
        f'{_DAT_EVENT_SIZE}-byte record at byte offset {offset} (after {header.num_events} '
        'complete events)',
        offset,
    )


def _decode(records: np.ndarray) -> np.ndarray:
    """On-disk records -> :data:`EVENT_DTYPE`."""
    out = np.empty(len(records), EVENT_DTYPE)
    word = records['word']
    out['t'] = records['t']
    out['x'] = word & _COORD_MASK
    out['y'] = (word >> 14) & _COORD_MASK
    out['p'] = (word >> 28) & 1
    return out


def _dat_records(path: str, allow_truncated: bool) -> Tuple[DatHeader, np.ndarray]:
    header = check_event_file(path, allow_truncated)
    records = np.memmap(path, _DAT_RECORD, mode='r', offset=header.data_offset, shape=(header.num_events,))
    return header, records


def read_dat(path: str, allow_truncated: bool = False) -> np.ndarray:
    """All events of a ``.dat`` file, :data:`EVENT_DTYPE` ``(N,)``, in file order.

    Args:
        allow_truncated: return the complete records of a file cut mid-record instead of raising
            (the partial record is never decoded).

    Raises:
        EventFileError (subclasses): see :func:`read_dat_header` and :func:`check_event_file`.
    """
    _, records = _dat_records(path, allow_truncated)
    return _decode(np.asarray(records))


def _check_npy_magic(path: str, error: type) -> None:
    """A clear error for a file that is not ``.npy`` at all (numpy would blame pickles)."""
    try:
        with open(path, 'rb') as f:
            magic = f.read(6)
    except OSError as e:
        raise error(path, f'cannot open: {e.strerror or e}') from e
    if magic != b'\x93NUMPY':
        raise error(
            path,
            'not a .npy file (no NUMPY magic at the start; '
            f'{"empty file" if not magic else "garbage or another format"})',
        )


def _open_npy_events(path: str) -> np.ndarray:
    _check_npy_magic(path, EventFileError)
    try:
        events = np.load(path, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise EventFileError(path, f'not a readable .npy array ({e})') from e
    names = events.dtype.names or ()
    missing = [k for k in ('t', 'x', 'y', 'p') if k not in names]
    if events.ndim != 1 or missing:
        raise EventFileError(
            path,
            f'expected a 1-d structured array with fields t, x, y, p; got '
            f'shape {events.shape}, fields {names} (missing {missing})',
        )
    if len(events) == 0:
        raise EmptyEventFileError(path, 'no events')
    return events


def _npy_to_events(events: np.ndarray) -> np.ndarray:
    out = np.empty(len(events), EVENT_DTYPE)
    for k in ('t', 'x', 'y'):
        out[k] = events[k]
    out['p'] = np.asarray(events['p']) > 0  # polarity -1/0 -> OFF (0), 1 -> ON (1)
    return out


def event_time_range(path: str) -> Tuple[int, int]:
    """First and last timestamp of an event file (µs)."""
    if str(path).endswith('.npy'):
        t = _open_npy_events(str(path))['t']
    else:
        t = _dat_records(str(path), allow_truncated=False)[1]['t']
    return int(t[0]), int(t[-1])


def read_event_window(path: str, t_start: int, t_end: int, margin: int = 0) -> np.ndarray:
    """Events with ``t_start <= t < t_end`` (µs) of a ``.dat`` or ``.npy`` file.

    The file is memory-mapped and the window found by binary search on the timestamps, so only the
    window is read. Files are sorted by time by specification; events out of order can only be
    found inside the part read, which is the window widened by ``margin`` µs on each side: the
    returned events are re-selected by time after :func:`sanitize_events` has sorted them.

    Returns:
        :data:`EVENT_DTYPE` ``(N,)`` in file order (not yet sanitised).
    """
    path = str(path)
    if path.endswith('.npy'):
        raw = _open_npy_events(path)
    else:
        raw = _dat_records(path, allow_truncated=False)[1]
    t = raw['t']
    lo, hi = _bisect_left(t, t_start - margin), _bisect_left(t, t_end + margin)
    chunk = np.asarray(raw[lo:hi])
    return _npy_to_events(chunk) if path.endswith('.npy') else _decode(chunk)


def _bisect_left(t: np.ndarray, value: int) -> int:
    """First index with ``t[i] >= value`` of a sorted (memory-mapped, strided) column.

    A loop of ``log2(N)`` element reads: ``np.searchsorted`` would first copy the whole strided
    column out of the file."""
    lo, hi = 0, len(t)
    while lo < hi:
        mid = (lo + hi) // 2
        if int(t[mid]) < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass
class SanitizeStats:
    """What :func:`sanitize_events` changed (counts of events)."""

    out_of_bounds: int = 0
    out_of_order: int = 0
    bad_polarity: int = 0

    def as_dict(self) -> Dict[str, int]:
        return dict(
            out_of_bounds=self.out_of_bounds, out_of_order=self.out_of_order, bad_polarity=self.bad_polarity
        )

    def __bool__(self) -> bool:
        return bool(self.out_of_bounds or self.out_of_order or self.bad_polarity)


def sanitize_events(events: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, SanitizeStats]:
    """Drop events outside the ``width x height`` sensor and sort by time (stable).

    Returns:
        the cleaned events and a :class:`SanitizeStats`: ``out_of_bounds`` events dropped;
        ``out_of_order`` = events whose timestamp is smaller than the one before them (each such
        descent is counted once; the array is then sorted stably).
    """
    stats = SanitizeStats()
    inside = (events['x'] < width) & (events['y'] < height)
    stats.out_of_bounds = int(len(events) - inside.sum())
    if stats.out_of_bounds:
        events = events[inside]
    t = events['t']
    descents = int((t[1:] < t[:-1]).sum()) if len(t) > 1 else 0
    if descents:
        stats.out_of_order = descents
        events = events[np.argsort(t, kind='stable')]
    return events, stats


def write_dat(
    path: str,
    events: np.ndarray,
    width: int,
    height: int,
    header_lines: Optional[Tuple[str, ...]] = None,
    ev_type: int = 0,
) -> None:
    """Write events (fields ``t, x, y, p``) as a Prophesee ``.dat`` file (the inverse of
    :func:`read_dat`). ``header_lines`` replace the default ``%`` lines (Date is never written,
    so the output is a pure function of the input)."""
    if len(events) and (events['x'].max() > _COORD_MASK or events['y'].max() > _COORD_MASK):
        raise ValueError('x and y must fit in 14 bits')
    if len(events) and (events['t'].min() < 0 or events['t'].max() >= 1 << 32):
        raise ValueError('timestamps must fit in an unsigned 32-bit integer (µs)')
    lines = (
        header_lines
        if header_lines is not None
        else ('Data file containing Event2D events.', 'Version 2', f'Height {height}', f'Width {width}')
    )
    records = np.empty(len(events), _DAT_RECORD)
    records['t'] = events['t']
    p = (np.asarray(events['p']) > 0).astype(np.uint32)
    records['word'] = events['x'].astype(np.uint32) | (events['y'].astype(np.uint32) << 14) | (p << 28)
    with open(path, 'wb') as f:
        for line in lines:
            f.write(f'% {line}\n'.encode('latin-1'))
        f.write(bytes([ev_type, _DAT_EVENT_SIZE]))
        f.write(records.tobytes())


# ---------------------------------------------------------------------------------------------
# Boxes

_BOX_RENAMES = {'ts': 't', 'confidence': 'class_confidence'}


def read_boxes(path: str) -> np.ndarray:
    """Boxes of a ``*_bbox.npy`` file in :data:`BOX_DTYPE`, sorted by time (stable).

    Accepts the Gen1 layout (``ts u8, x, y, w, h f4, class_id u1, confidence f4, track_id u4``,
    packed) and the 1 Mpx one (``t i8, ..., class_id u4, track_id u4, class_confidence f4``,
    40-byte aligned records), or either with the other's field names. ``np.load`` handles the
    padding; missing ``track_id`` / ``class_confidence`` default to 0 / 1.

    Raises:
        BoxFileError: unreadable file, not a 1-d structured array, or missing t/x/y/w/h/class_id.
    """
    path = str(path)
    _check_npy_magic(path, BoxFileError)
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise BoxFileError(path, f'not a readable .npy array ({e})') from e
    names = raw.dtype.names
    if names is None or raw.ndim != 1:
        raise BoxFileError(
            path, f'expected a 1-d structured array of boxes, got dtype {raw.dtype} shape {raw.shape}'
        )
    renamed = {_BOX_RENAMES.get(n, n): n for n in names}
    missing = [k for k in ('t', 'x', 'y', 'w', 'h', 'class_id') if k not in renamed]
    if missing:
        raise BoxFileError(path, f'box fields {missing} missing (fields: {names})')
    out = np.zeros(len(raw), BOX_DTYPE)
    for k in BOX_DTYPE.names:
        if k in renamed:
            out[k] = raw[renamed[k]]
    if 'class_confidence' not in renamed:
        out['class_confidence'] = 1
    for k in ('x', 'y', 'w', 'h'):
        if not np.isfinite(out[k]).all():
            raise BoxFileError(path, f'non-finite box {k}')
    return out[np.argsort(out['t'], kind='stable')]

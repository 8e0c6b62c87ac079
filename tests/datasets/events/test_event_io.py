"""Prophesee readers against hand-written tiny files (tests/data/events/, see its README) and bad
files: truncated, empty, garbage header, out-of-range and out-of-order events."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sdt_dense.datasets.events.io import (
    BOX_DTYPE,
    EVENT_DTYPE,
    BadHeaderError,
    BoxFileError,
    EmptyEventFileError,
    EventFileError,
    TruncatedEventFileError,
    check_event_file,
    read_boxes,
    read_dat,
    read_dat_header,
    read_event_window,
    sanitize_events,
    write_dat,
)
from sdt_testing import TEST_DATA

DATA = TEST_DATA / 'events'
TINY_DAT = DATA / 'tiny_td.dat'
# what tiny_td.dat holds (t, x, y, p), written by hand from the bit layout; the 5th record also
# sets the unused bits 29-31, which must be ignored
TINY_EVENTS = [
    (0, 0, 0, 0),
    (10, 303, 239, 1),
    (10, 5, 7, 1),
    (25, 100, 200, 0),
    (49_999, 1, 2, 1),
    (50_000, 302, 0, 0),
]
HEADER = b'% Data file containing Event2D events.\n% Version 2\n% Height 240\n% Width 304\n'


def test_dat_bytes_are_the_documented_layout():
    raw = TINY_DAT.read_bytes()
    assert raw.startswith(HEADER)
    assert raw[len(HEADER) : len(HEADER) + 2] == bytes([0, 8])  # Event2D, 8 bytes per event
    # record 2: t = 10, x = 303, y = 239, p = 1 -> 303 | 239 << 14 | 1 << 28 = 272351535
    assert struct.unpack_from('<II', raw, len(HEADER) + 2 + 8) == (10, 272351535)


def test_read_dat_header():
    h = read_dat_header(TINY_DAT)
    assert (h.width, h.height, h.ev_type, h.ev_size) == (304, 240, 0, 8)
    assert h.data_offset == len(HEADER) + 2 and h.num_events == 6 and h.trailing_bytes == 0
    assert h.lines[1] == 'Version 2'


def test_read_dat_decodes_every_field():
    ev = read_dat(TINY_DAT)
    assert ev.dtype == EVENT_DTYPE
    assert [tuple(int(v) for v in e) for e in ev] == TINY_EVENTS


def test_read_event_window_is_half_open_and_reads_npy():
    ev = read_event_window(TINY_DAT, 10, 50_000)
    assert ev['t'].tolist() == [10, 10, 25, 49_999]
    assert read_event_window(TINY_DAT, 50_001, 60_000).size == 0
    npy = read_event_window(DATA / 'tiny_events.npy', 0, 100)
    assert npy.dtype == EVENT_DTYPE
    # polarity stored as -1 / 1 in that file: -1 is OFF (0)
    assert [tuple(int(v) for v in e) for e in npy] == [(5, 1, 1, 1), (6, 2, 1, 0), (9, 3, 0, 1)]


def test_write_dat_round_trip(tmp_path):
    ev = read_dat(TINY_DAT)
    out = tmp_path / 'copy_td.dat'
    write_dat(out, ev, 304, 240)
    a, b = out.read_bytes(), TINY_DAT.read_bytes()
    assert len(a) == len(b) and a[: len(HEADER) + 2] == b[: len(HEADER) + 2]
    # byte for byte except the unused bits 29-31 of the 5th record (top byte of its word)
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    assert diff == [len(HEADER) + 2 + 4 * 8 + 7]
    np.testing.assert_array_equal(read_dat(out), ev)


def test_gen1_and_1mpx_box_layouts():
    g1 = read_boxes(DATA / 'tiny_gen1_bbox.npy')
    raw = np.load(DATA / 'tiny_gen1_bbox.npy')
    assert raw.dtype.itemsize == 33 and raw.dtype.names[0] == 'ts'  # packed Gen1 layout
    assert g1.dtype == BOX_DTYPE
    assert g1['t'].tolist() == [40_000, 50_000, 50_000]  # sorted by time (stable)
    assert g1['track_id'].tolist() == [9, 7, 8]
    np.testing.assert_allclose(g1['class_confidence'], [0.5, 0.9, 1.0])
    np.testing.assert_allclose(g1[2][['x', 'y', 'w', 'h']].tolist(), [100.5, 50.0, 12.0, 26.0])
    mpx = read_boxes(DATA / 'tiny_1mpx_bbox.npy')
    assert np.load(DATA / 'tiny_1mpx_bbox.npy').dtype.itemsize == 40  # aligned 1 Mpx layout
    assert mpx['class_id'].tolist() == [2, 6] and mpx['track_id'].tolist() == [3, 4]
    np.testing.assert_allclose(mpx['class_confidence'], [1.0, 0.75])
    np.testing.assert_allclose(mpx[1][['x', 'y', 'w', 'h']].tolist(), [10.0, 700.0, 20.0, 15.0])


# ---------------------------------------------------------------------------------------------
# Bad files: named errors that name the file


def test_truncated_dat(tmp_path):
    bad = tmp_path / 'cut_td.dat'
    bad.write_bytes(TINY_DAT.read_bytes()[:-3])  # 5 of the 8 bytes of the last record
    with pytest.raises(TruncatedEventFileError, match='cut_td.dat') as info:
        read_dat(bad)
    assert info.value.offset == len(HEADER) + 2 + 5 * 8
    assert 'byte offset' in str(info.value) and '5 complete events' in str(info.value)
    # opt-in: the complete records only, never a partial one
    assert read_dat(bad, allow_truncated=True)['t'].tolist() == [0, 10, 10, 25, 49_999]


@pytest.mark.parametrize(
    'content, error, match',
    [
        (b'', EmptyEventFileError, 'empty file'),
        (HEADER + bytes([0, 8]), EmptyEventFileError, 'no events'),
        (HEADER, BadHeaderError, 'before the event type and size'),
        (b'\x89PNG\r\n\x1a\n' + bytes(64), BadHeaderError, 'event size'),
        (HEADER + bytes([7, 8]) + bytes(8), BadHeaderError, 'event type 7'),
        (b'% Height 240\n% Width 304', BadHeaderError, 'not terminated'),
        (b'% Height two\n' + bytes([0, 8]) + bytes(8), BadHeaderError, 'not an integer'),
    ],
)
def test_bad_dat_files(tmp_path, content, error, match):
    bad = tmp_path / 'bad_td.dat'
    bad.write_bytes(content)
    with pytest.raises(error, match=match) as info:
        check_event_file(bad)
    assert isinstance(info.value, EventFileError) and str(bad) in str(info.value)


def test_missing_file_and_bad_box_files(tmp_path):
    with pytest.raises(EventFileError, match='nope_td.dat'):
        read_dat(tmp_path / 'nope_td.dat')
    garbage = tmp_path / 'g_bbox.npy'
    garbage.write_bytes(b'not numpy at all')
    with pytest.raises(BoxFileError, match='g_bbox.npy: not a .npy file'):
        read_boxes(garbage)
    plain = tmp_path / 'p_bbox.npy'
    np.save(plain, np.zeros((3, 4)))
    with pytest.raises(BoxFileError, match='structured'):
        read_boxes(plain)
    fields = tmp_path / 'f_bbox.npy'
    np.save(fields, np.zeros(2, [('t', '<i8'), ('x', '<f4')]))
    with pytest.raises(BoxFileError, match=r"\['y', 'w', 'h', 'class_id'\]"):
        read_boxes(fields)
    events = tmp_path / 'e_td.npy'
    np.save(events, np.zeros(2, [('t', '<i8'), ('x', '<u2')]))
    with pytest.raises(EventFileError, match='missing'):
        check_event_file(events)


def test_sanitize_counts_out_of_range_and_out_of_order(tmp_path):
    ev = np.array(
        [(5, 1, 1, 1), (3, 2, 2, 0), (4, 304, 0, 1), (6, 0, 240, 0), (7, 3, 3, 1), (2, 303, 239, 0)],
        EVENT_DTYPE,
    )
    path = tmp_path / 'messy_td.dat'
    write_dat(path, ev, 304, 240)
    clean, stats = sanitize_events(read_dat(path), 304, 240)
    assert stats.out_of_bounds == 2  # x = 304 and y = 240 are outside 304 x 240
    assert stats.out_of_order == 2  # 5 -> 3 and 7 -> 2
    assert clean['t'].tolist() == [2, 3, 5, 7]
    assert clean['x'].tolist() == [303, 2, 1, 3]
    _, none = sanitize_events(read_dat(TINY_DAT), 304, 240)
    assert not none

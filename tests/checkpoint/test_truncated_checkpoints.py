"""A checkpoint cut short anywhere (inside a zip local header, inside a record's bytes, at or
inside the central directory, inside the end record) is a BrokenCheckpointError naming the file,
never torch's bare error (e.g. ``OSError: [Errno 22] Invalid argument`` for the first 50,000 bytes
of a large file)."""

import argparse
import zipfile
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from sdt_dense.checkpoint import BrokenCheckpointError, safe_load
from sdt_testing import REPO

BASE_CKPT = REPO / 'tests' / 'data' / 'base' / 'e_spikeformer_t_official_format.pth'


def _structural_offsets(data: bytes, path: Path) -> List[int]:
    """Byte offsets around every structure of the zip archive: each local header (start, middle,
    end), each record's data (start, middle, end), the central directory and the end record."""
    offsets = set()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    for info in infos:
        start = info.header_offset
        name_len = len(info.filename.encode())
        data_start = start + 30 + name_len + len(info.extra)  # fixed local header is 30 bytes
        # the local extra field may differ from the central one: find the data by the next record
        offsets.update(
            {
                start,
                start + 1,
                start + 15,
                start + 29,
                start + 30 + name_len // 2,
                data_start,
                data_start + info.compress_size // 2,
                data_start + info.compress_size - 1,
            }
        )
    central = data.rfind(b'PK\x01\x02', 0)
    first_central = data.find(b'PK\x01\x02')
    end_record = data.rfind(b'PK\x05\x06')
    offsets.update(
        {
            first_central,
            first_central + 1,
            first_central + 23,
            (first_central + central) // 2,
            central + 10,
            end_record,
            end_record + 4,
            end_record + 11,
            len(data) - 1,
        }
    )
    return sorted(o for o in offsets if 0 < o < len(data))


@pytest.fixture(scope='module')
def small_checkpoint(tmp_path_factory) -> Path:
    """A small zip checkpoint of several records, with what our real files hold (tensors of
    several dtypes, numpy arrays, an ``argparse.Namespace``)."""
    path = tmp_path_factory.mktemp('trunc') / 'small.pth'
    gen = torch.Generator().manual_seed(0)
    torch.save(
        dict(
            model={f'layer{i}.weight': torch.randn(16, 8 + i, generator=gen) for i in range(6)}
            | {'count': torch.arange(7)},
            meta=dict(iter=3, hist=np.arange(5.0)),
            args=argparse.Namespace(model='t', lr=1e-3),
        ),
        path,
    )
    return path


def _assert_broken(src: bytes, cut: int, tmp_path: Path) -> None:
    path = tmp_path / f'cut_{cut}.pth'
    path.write_bytes(src[:cut])
    with pytest.raises(BrokenCheckpointError) as err:
        safe_load(path, step='unit test')
    assert err.value.path == str(path) and str(path) in str(err.value), cut
    assert f'{cut} bytes' in str(err.value) and '(read by unit test)' in str(err.value), cut
    assert err.value.problem.startswith('truncated checkpoint'), (cut, err.value.problem)


def test_control_the_small_checkpoint_loads(small_checkpoint):
    obj = safe_load(small_checkpoint)
    assert obj['args'].model == 't' and torch.equal(obj['model']['count'], torch.arange(7))


def test_truncated_anywhere_is_a_broken_checkpoint(small_checkpoint, tmp_path):
    data = small_checkpoint.read_bytes()
    cuts = set(_structural_offsets(data, small_checkpoint))
    cuts.update(range(1, len(data), max(1, len(data) // 150)))  # and ~150 evenly spread cuts
    assert len(cuts) > 150
    for cut in sorted(cuts):
        _assert_broken(data, cut, tmp_path)


@pytest.mark.parametrize('cut', [50_000, 1_000_000], ids=['first-50000-bytes', 'first-1MB'])
def test_large_released_checkpoint_truncated(tmp_path, cut):
    """The case reported for tools/test.py (the first 50,000 bytes of a multi-MB checkpoint: torch
    alone raises ``OSError: [Errno 22] Invalid argument``), and a longer cut."""
    data = BASE_CKPT.read_bytes()
    assert len(data) > 10_000_000
    _assert_broken(data, cut, tmp_path)


@pytest.mark.slow
def test_large_checkpoint_truncated_at_its_structures(tmp_path):
    """The released-layout file (11 MB, about 200 records): cuts spread over its records' headers
    and data, and every cut in its central directory and end record (the small file above has
    the fine-grained cuts)."""
    data = BASE_CKPT.read_bytes()
    offsets = _structural_offsets(data, BASE_CKPT)
    directory = data.find(b'PK\x01\x02')
    picked = [o for o in offsets if o < directory][::400] + [o for o in offsets if o >= directory]
    assert len(picked) >= 15
    for cut in sorted(set(picked)):
        _assert_broken(data, cut, tmp_path)

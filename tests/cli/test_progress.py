"""Progress with an ETA for long loops: toy data generation, the energy tool, the benchmarks."""

from __future__ import annotations

import importlib.util
import re

import pytest

from sdt_dense.cli.make_toy_data import main as make_toy_data_main
from sdt_dense.toy_data import make_det_dataset
from sdt_testing import REPO

# mmengine's ProgressBar: "[>>>>] 3/3, 40.1 task/s, elapsed: 0s, ETA:     0s"
# (it writes to the sys.stdout of import time, so the tests capture the file descriptor: capfd)
BAR = re.compile(r'(\d+)/(\d+), [\d.]+ task/s, elapsed: \d+s, ETA: +\d+s')


def _bar_counts(text: str):
    return [(int(a), int(b)) for a, b in BAR.findall(text)]


def test_toy_data_cli_shows_progress_and_library_is_quiet(tmp_path, capfd):
    make_toy_data_main(
        [
            '--task',
            'seg',
            '--out',
            str(tmp_path / 's'),
            '--num-train',
            '2',
            '--num-val',
            '1',
            '--image-size',
            '32',
        ]
    )
    out = capfd.readouterr().out
    assert _bar_counts(out)[-1] == (3, 3)  # one step per image written, train + val
    assert 'wrote seg toy dataset' in out
    make_det_dataset(tmp_path / 'd', num_train=2, num_val=1, image_size=32)
    assert capfd.readouterr().out == ''


@pytest.mark.slow  # simulates three event recordings
def test_events_cli_counts_recordings(tmp_path, capfd):
    make_toy_data_main(
        [
            '--task',
            'events',
            '--out',
            str(tmp_path / 'e'),
            '--num-train',
            '1',
            '--num-val',
            '1',
            '--num-test',
            '1',
            '--duration',
            '0.3',
        ]
    )
    assert _bar_counts(capfd.readouterr().out)[-1] == (3, 3)


@pytest.mark.slow
def test_energy_tool_shows_progress(tmp_path, capfd):
    from sdt_dense.cli.measure_energy import main

    main(
        [
            'configs/toy/fpn_e-spikeformer-t_toy.py',
            '--shape',
            '32',
            '32',
            '--num-images',
            '3',
            '--out',
            str(tmp_path),
        ]
    )
    assert _bar_counts(capfd.readouterr().out)[-1] == (3, 3)


def _benchmarks_common():
    spec = importlib.util.spec_from_file_location('bench_common', REPO / 'benchmarks/_common.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_print_an_eta(monkeypatch, capfd):
    common = _benchmarks_common()
    assert common.progress_suffix(2, 8, 90.0) == ' [2/8, elapsed 0:01:30, ETA 0:04:30]'
    assert common.progress_suffix(0, 8, 0.0) == ' [0/8, elapsed 0:00:00, ETA ?]'
    clock = iter(range(0, 1000, 10))  # every call of the clock advances 10 s
    monkeypatch.setattr(common.time, 'monotonic', lambda: next(clock))
    monkeypatch.setattr(common, 'run_worker', lambda script, config, argv: dict(step_s=[0.1], peak_mb=1.0))
    runs = common.alternating_runs('x.py', ['a', 'b'], rounds=2, argv=[])
    assert [len(v) for v in runs.values()] == [2, 2]
    lines = capfd.readouterr().out.splitlines()
    # start at 0 s, then the k-th run ends at 10 k s: ETA = 10 s per run x runs left
    assert [line[line.index(' [') :] for line in lines] == [
        ' [1/4, elapsed 0:00:10, ETA 0:00:30]',
        ' [2/4, elapsed 0:00:20, ETA 0:00:20]',
        ' [3/4, elapsed 0:00:30, ETA 0:00:10]',
        ' [4/4, elapsed 0:00:40, ETA 0:00:00]',
    ]

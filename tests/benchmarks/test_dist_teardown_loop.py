"""benchmarks/dist_teardown_loop.py: counts clean 2-process train/test pairs and keeps the output of
a failed command."""

import json
import subprocess

import pytest

from sdt_testing import PYTHON, REPO

SCRIPT = REPO / 'benchmarks' / 'dist_teardown_loop.py'


def _loop(tmp_path, *args) -> dict:
    out = tmp_path / 'loop.json'
    subprocess.run(
        [PYTHON, SCRIPT, '--runs', '1', '--out', out, '--log-dir', tmp_path / 'logs', *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return json.loads(out.read_text())


@pytest.mark.slow
def test_one_clean_pair_is_counted(tmp_path):
    result = _loop(tmp_path)
    assert (result['runs'], result['clean'], result['sigabrt'], result['other_failures']) == (1, 1, 0, 0)
    assert len(result['train_s']) == len(result['test_s']) == 1 and not result['failures']


@pytest.mark.slow
def test_a_failed_command_is_counted_and_its_output_kept(tmp_path):
    result = _loop(tmp_path, '--timeout', '1')  # training cannot finish in 1 s
    assert (result['runs'], result['clean'], result['other_failures']) == (1, 0, 1)
    (failure,) = result['failures']
    assert failure['command'] == 'train' and failure['returncode'] == 'timeout'
    assert 'timed out' in open(failure['log']).read()
    assert result['test_s'] == []  # no checkpoint to test after a failed training

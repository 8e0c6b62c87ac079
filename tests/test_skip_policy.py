"""A skipped test fails the run unless its reason is allow-listed (tests/skip_allowlist.txt):
checked on throw-away test files run by a pytest subprocess with the policy plugin."""

import os
import subprocess
import sys
import textwrap

import pytest

from sdt_testing import REPO
from sdt_testing.skip_policy import ALLOWLIST, read_allowlist

TESTS = textwrap.dedent("""\
    import pytest

    def test_passes():
        assert 1 + 1 == 2

    @pytest.mark.skip(reason='needs a frobnicator')
    def test_skipped():
        pass

    @pytest.mark.xfail(reason='known', strict=True)
    def test_expected_failure():
        assert False
    """)


def _run(tmp_path, allowlist: str, body: str = TESTS):
    (tmp_path / 'test_sample.py').write_text(body)
    (tmp_path / 'allow.txt').write_text(allowlist)
    env = dict(os.environ, PYTHONPATH=str(REPO / 'tests'), SDT_SKIP_ALLOWLIST=str(tmp_path / 'allow.txt'))
    return subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            '-q',
            '-p',
            'sdt_testing.skip_policy',
            '-p',
            'no:cacheprovider',
            '-p',
            'no:randomly',
            'test_sample.py',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_unlisted_skip_fails_and_listed_skip_passes(tmp_path):
    proc = _run(tmp_path, '# nothing accepted\n')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'skipped without an allow-listed reason' in proc.stdout
    assert 'test_sample.py::test_skipped: needs a frobnicator' in proc.stdout
    proc = _run(tmp_path, 'frobnicator  # a test of the policy\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a module-level importorskip (a missing requirement) is a collection skip: also a failure
    proc = _run(
        tmp_path,
        'frobnicator  # a test of the policy\n',
        "import pytest\npytest.importorskip('no_such_module_sdt')\n\ndef test_x():\n    pass\n",
    )
    assert proc.returncode == 1 and "could not import 'no_such_module_sdt'" in proc.stdout, (
        proc.stdout + proc.stderr
    )


def test_allowlist_entries_need_a_reason(tmp_path):
    path = tmp_path / 'allow.txt'
    path.write_text('# comment\n\nneeds CUDA  # no GPU in CI\n')
    assert [p.pattern for p in read_allowlist(path)] == ['needs CUDA']
    path.write_text('needs CUDA\n')
    with pytest.raises(ValueError, match='needs "  # why"'):
        read_allowlist(path)


def test_the_repository_allowlist_parses():
    read_allowlist(ALLOWLIST)

"""The pure parts of tools/misc/make_reference_fixtures.py (the real run needs a checkout of the
authors' repository and SpikingJelly 0.0.0.0.14: a documented command, tests/data/README.md):
argument and checkout errors, the one-line fixes, and the --check comparison on synthetic pairs."""

import importlib.util
import math
import subprocess

import pytest
import torch

from sdt_testing import REPO

_spec = importlib.util.spec_from_file_location(
    'make_reference_fixtures', REPO / 'tools' / 'misc' / 'make_reference_fixtures.py'
)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_authors_repo_is_required(capsys):
    with pytest.raises(SystemExit):
        gen.parse_args([])
    assert '--authors-repo' in capsys.readouterr().err


def _fake_checkout(root):
    for sub in (gen.BASE_DIR + '/models.py', gen.LARGE_DIR + '/spikformer.py', gen.LARGE_DIR + '/MAE_SDT.py'):
        (root / sub).parent.mkdir(parents=True, exist_ok=True)
        (root / sub).write_text('# stand-in\n')


def test_checkout_without_the_authors_files_is_refused(tmp_path):
    with pytest.raises(SystemExit, match='SDT_V3/Classification/Model_Base/models.py not found'):
        gen.check_authors_repo(tmp_path)


def test_checkout_at_another_commit_is_refused(tmp_path):
    _fake_checkout(tmp_path)
    with pytest.raises(
        SystemExit, match=f'at commit unknown, the fixtures were made at {gen.AUTHORS_COMMIT}'
    ):
        gen.check_authors_repo(tmp_path)
    assert gen.check_authors_repo(tmp_path, any_commit=True) == 'unknown'
    git = ['git', '-C', str(tmp_path)]
    subprocess.run(git + ['init', '-q'], check=True)
    subprocess.run(git + ['add', '.'], check=True)
    subprocess.run(git + ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x'], check=True)
    head = subprocess.run(
        git + ['rev-parse', 'HEAD'], check=True, capture_output=True, text=True
    ).stdout.strip()
    with pytest.raises(SystemExit, match=f'at commit {head}'):
        gen.check_authors_repo(tmp_path)


def test_fixes_apply_exactly_once():
    src = 'def f(x):\n        # T, B, C, N = x.shape\n        return B\nT=4\n'
    fixed = gen.apply_fixes('\n' + src, [gen.MS_BLOCK_FIX, gen.D8_CONSTANT], 'spikformer.py')
    assert '        T, B, C, N = x.shape\n' in fixed and '# T, B' not in fixed
    assert fixed.endswith('\nT=8\n')
    with pytest.raises(SystemExit, match='occurs 0 times'):
        gen.apply_fixes('nothing to fix', [gen.MS_BLOCK_FIX], 'spikformer.py')
    with pytest.raises(SystemExit, match='occurs 2 times'):
        gen.apply_fixes('\nT=4\n\nT=4\n', [gen.D8_CONSTANT], 'spikformer.py')


def test_check_comparison_reports_the_max_difference():
    want = dict(
        dtype='float64',
        eval=dict(a=torch.zeros(3, dtype=torch.float64), b=torch.arange(4)),
        train=dict(g=dict(crop=torch.ones(2, 2, dtype=torch.float64), crop_size=2)),
    )
    same = gen.max_differences(want, want)
    assert set(same) == {'dtype', 'eval.a', 'eval.b', 'train.g.crop', 'train.g.crop_size'}
    assert max(same.values()) == 0.0
    got = dict(
        dtype='float64',
        eval=dict(a=torch.tensor([0.0, -2.5e-12, 1e-13], dtype=torch.float64), b=torch.arange(4)),
        train=dict(g=dict(crop=torch.ones(2, 2, dtype=torch.float64), crop_size=2)),
    )
    diffs = gen.max_differences(got, want)
    assert diffs['eval.a'] == pytest.approx(2.5e-12) and diffs['train.g.crop'] == 0.0
    assert gen.report('x.pt', diffs, atol=1e-11) and not gen.report('x.pt', diffs, atol=0.0)
    assert gen.parse_args(['--authors-repo', 'a']).atol == 1e-9


@pytest.mark.parametrize('change', ['missing key', 'extra key', 'shape', 'dtype', 'integer', 'value'])
def test_check_comparison_flags_structural_changes(change):
    want = dict(eval=dict(a=torch.zeros(3, dtype=torch.float64), n=torch.arange(3)), D=4)
    got = dict(eval=dict(a=torch.zeros(3, dtype=torch.float64), n=torch.arange(3)), D=4)
    if change == 'missing key':
        del got['eval']['n']
    elif change == 'extra key':
        got['eval']['m'] = torch.zeros(1)
    elif change == 'shape':
        got['eval']['a'] = torch.zeros(4, dtype=torch.float64)
    elif change == 'dtype':
        got['eval']['a'] = torch.zeros(3, dtype=torch.float32)
    elif change == 'integer':
        got['eval']['n'] = torch.tensor([0, 1, 3])
    else:
        got['D'] = 8
    assert math.isinf(max(gen.max_differences(got, want).values()))

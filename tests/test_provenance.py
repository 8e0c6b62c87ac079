"""Nothing in the repository names documents or places outside it: no notes kept elsewhere, no
sibling folders, no home or temporary directories, no machine paths in benchmark results, no
remarks about how a session was run. Scans every tracked text file (``git ls-files``)."""

import json
import re
import subprocess
from pathlib import Path
from typing import Iterator, List, Tuple

from sdt_testing import REPO

# Built from pieces, so that this file does not match itself.
_SIB = '..' + '/shared'
FORBIDDEN = [
    ('notes kept outside the repository', re.compile('paper' + '_facts', re.I)),
    ('a sibling folder of the repository', re.compile(re.escape(_SIB))),
    (
        'the reference folders outside the repository',
        re.compile(r'(?<![\w-])' + 'shared' + r'/(reference|docs|tools)\b'),
    ),
    ('a task tracker outside the repository', re.compile(r'\bthe ' + r'issue\b', re.I)),
    ('where data were made outside the repository', re.compile('steer' + r'ing (side|session)', re.I)),
    ('a remark about machine lending', re.compile(r'\bnot ' + r'drawn\b', re.I)),
    ('an absolute home, temporary or work path', re.compile(r'(?<![\w.~-])/(root|home|tmp|work)/')),
]
BINARY_SUFFIXES = {'.pth', '.pt', '.png', '.jpg', '.npy', '.dat', '.npz', '.pkl'}


def tracked_files() -> List[Path]:
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, check=True, capture_output=True)
    files = [REPO / name for name in out.stdout.decode().split('\0') if name]
    assert len(files) > 100, 'git ls-files listed almost nothing'
    return [f for f in files if f.suffix not in BINARY_SUFFIXES and f.is_file()]


def hits(text: str) -> Iterator[Tuple[int, str, str]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORBIDDEN:
            if pattern.search(line):
                yield lineno, what, line.strip()[:120]


def test_patterns_catch_what_they_are_for():
    """Control: each pattern finds its own example (so the scan below can fail)."""
    examples = [
        'see paper' + '_facts.md',  # built from parts: the file itself must not hold the words
        'default ' + _SIB + '/reference',
        'in shared/docs/',
        'as the issue asks',
        'made on the steering side',
        'GPU not drawn',
        'cd /' + 'root/x',
        'out=/' + 'tmp/a.json',
        '"/home/u/x"',
    ]
    for example in examples:
        assert list(hits(example)), example
    clean = 'python tools/train.py configs/toy/x.py --work-dir work_dirs/toy  # tissue, shared/ ok'
    assert list(hits(clean)) == []


def test_tracked_files_name_nothing_outside_the_repository():
    found = []
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding='utf-8')
        except UnicodeDecodeError:
            continue
        found += [f'{path.relative_to(REPO)}:{n}: {what}: {line}' for n, what, line in hits(text)]
    assert found == [], '\n'.join(found)


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)
    elif isinstance(obj, str):
        yield obj


def test_benchmark_results_hold_no_machine_paths():
    """Result JSON names files relative to the repository: no absolute path, no climb out of it."""
    results = sorted((REPO / 'benchmarks' / 'results').glob('*.json'))
    assert results
    bad = []
    for path in results:
        for s in _strings(json.loads(path.read_text())):
            if re.search(r'(^|[\s=:@(\'"])/[A-Za-z]', s) or '../..' in s:
                bad.append(f'{path.name}: {s[:120]}')
    assert bad == [], '\n'.join(bad)

"""Pytest hooks: a skipped test fails the session unless its reason is allow-listed.

A missing requirement (mmcv's compiled ops, a toolbox, the stock tools) must fail CI, not turn a
test into a silent pass. ``tests/skip_allowlist.txt`` holds the accepted reasons (one regular
expression a line, ``# why`` after it); every other skip is listed at the end of the run and
makes the exit status 1. Loaded by ``tests/conftest.py``; usable alone as ``-p
sdt_testing.skip_policy`` (the allow-list path can be given with ``SDT_SKIP_ALLOWLIST``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Pattern, Tuple

ALLOWLIST = Path(__file__).resolve().parents[1] / 'skip_allowlist.txt'
_unlisted: List[Tuple[str, str]] = []


def read_allowlist(path: Path) -> List[Pattern]:
    """The patterns of an allow-list file; each needs a ``# why`` comment."""
    patterns = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        pattern, sep, why = line.partition('  # ')
        if not sep or not why.strip():
            raise ValueError(f'{path}:{lineno}: an allow-listed skip needs "  # why": {line!r}')
        patterns.append(re.compile(pattern.strip()))
    return patterns


def skip_reason(report) -> Optional[str]:
    """The reason of a skipped test or collector report (``None`` if it did not skip)."""
    if not report.skipped or hasattr(report, 'wasxfail'):
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = longrepr[2]
    else:
        reason = str(longrepr)
    return reason[len('Skipped: ') :] if reason.startswith('Skipped: ') else reason


def _allowlist() -> List[Pattern]:
    return read_allowlist(Path(os.environ.get('SDT_SKIP_ALLOWLIST', ALLOWLIST)))


def _check(report) -> None:
    reason = skip_reason(report)
    if reason is not None and not any(p.search(reason) for p in _allowlist()):
        _unlisted.append((report.nodeid, reason))


def pytest_runtest_logreport(report) -> None:
    _check(report)


def pytest_collectreport(report) -> None:
    _check(report)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _unlisted and session.exitstatus in (0, 5):  # passed, or "no tests" after a module skip
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _unlisted:
        terminalreporter.section('skipped without an allow-listed reason (a failure)', red=True)
        for nodeid, reason in _unlisted:
            terminalreporter.line(f'{nodeid}: {reason}')
        terminalreporter.line(f'(accepted reasons: {ALLOWLIST.relative_to(ALLOWLIST.parents[1])})')

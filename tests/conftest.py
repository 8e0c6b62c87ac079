"""Shared pytest set-up for sdt-dense.

* Small, deterministic CPU runs: torch uses at most 2 threads (override with SDT_TEST_THREADS).
* ``repo_root`` / ``reference_dir`` fixtures. The reference data lives next to the repository
  (``<repo>/../shared/reference``); tests that need it are skipped, with the reason, when it is absent.
"""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO_ROOT.parent / 'shared' / 'reference'

torch.set_num_threads(int(os.environ.get('SDT_TEST_THREADS', '2')))
torch.manual_seed(0)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository root (the directory holding setup.py)."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def reference_dir() -> Path:
    """``<repo>/../shared/reference``; skips the test when it does not exist."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f'reference data not found: {REFERENCE_DIR} (shared/ is absent from this checkout)')
    return REFERENCE_DIR

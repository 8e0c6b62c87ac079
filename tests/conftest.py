"""Shared pytest set-up for sdt-dense.

* Small, deterministic CPU runs: torch uses 1 thread by default (override with SDT_TEST_THREADS): on 2 shared cores, 2 threads made small backward convs 10-100x slower.
* Test isolation: mmengine's global "current default scope" (set by every Runner, by
  ``register_all_modules`` and by ``init_default_scope``) is restored after each test, so a test that
  builds a Runner cannot make a later ``MODELS.build`` look in the wrong registry.
* ``repo_root`` / ``reference_dir`` fixtures. The reference data lives next to the repository
  (``<repo>/../shared/reference``); tests that need it are skipped, with the reason, when it is absent.
"""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO_ROOT.parent / 'shared' / 'reference'

torch.set_num_threads(int(os.environ.get('SDT_TEST_THREADS', '1')))
torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    try:
        from mmengine.registry import DefaultScope
    except ImportError:  # pragma: no cover - mmengine not installed
        yield
        return
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


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

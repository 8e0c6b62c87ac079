"""Shared pytest set-up for sdt-dense.

* Small, deterministic CPU runs: torch uses 1 thread by default (override with
  SDT_TEST_THREADS): on 2 shared cores, 2 threads made small backward convs 10-100x slower.
* Test isolation: mmengine's global "current default scope" (set by every Runner, by
  ``register_all_modules`` and by ``init_default_scope``) is restored after each test, so a test that
  builds a Runner cannot make a later ``MODELS.build`` look in the wrong registry.
* The reference data the tests read is in ``tests/data`` (see its README); shared helpers are in
  ``tests/sdt_testing``.
* No silent passes: a skipped test fails the run unless its reason is in
  ``tests/skip_allowlist.txt`` (:mod:`sdt_testing.skip_policy`).
"""

import os

import pytest
import torch

from sdt_testing.skip_policy import (  # noqa: F401  (pytest hooks)
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

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

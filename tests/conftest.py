"""Shared test setup.

The unit tests use tiny models, for which torch's thread pool costs more than it saves (and
on a 2-core machine shared with other work it oversubscribes the cores): every test starts on
one thread, or on ``OMP_NUM_THREADS`` threads when that is set (``make unit1`` runs the suite
again with 1, so that a result that depends on the thread count shows; subprocesses started by
a test get torch's own choice unless it is set). A test or a library call that changes the
count (``--threads``, ``PigeonConfig.threads``) does not leak it into the next test. Figures
use the non-interactive Agg backend.
"""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

#: Threads of every test: OMP_NUM_THREADS when set, else 1.
TEST_THREADS = int(os.environ.get("OMP_NUM_THREADS") or 1)


@pytest.fixture(autouse=True)
def _test_threads():  # type: ignore[no-untyped-def]
    previous = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(previous)

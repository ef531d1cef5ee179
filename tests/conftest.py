"""Shared test setup.

The unit tests use tiny models, for which torch's thread pool costs more than it saves (and
on a 2-core machine shared with other work it oversubscribes the cores): run them on one
thread. Figures use the non-interactive Agg backend.
"""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

"""Shared test setup.

The unit tests use tiny models, for which torch's thread pool costs more than it saves (and
on a 2-core machine shared with other work it oversubscribes the cores): every test starts on
one thread, or on ``OMP_NUM_THREADS`` threads when that is set (``make unit1`` runs the suite
again with 1, so that a result that depends on the thread count shows; subprocesses started by
a test get torch's own choice unless it is set). A test or a library call that changes the
count (``--threads``, ``PigeonConfig.threads``) does not leak it into the next test. Figures
use the non-interactive Agg backend. The tiny settings below are the tests' shared model, world
and pairs (``from conftest import ...``).
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


# -- the tiny settings the tests share ------------------------------------------------------------
# A model of a few thousand weights on 32x32 images (stride 8: a 4x4 grid) and the shortest clip the
# CPU sound network takes, and a synthetic world sized for it, keep every training to seconds.

#: Changes to ``ModelConfig.cpu`` that make the tiny model.
TINY_MODEL = dict(visual_width=4, visual_dim=8, visual_stride=8, sound_width=0.0625, sound_dim=8, sound_hidden=8,
                  visual_hidden=8)
#: Changes to ``WorldConfig`` that make the tiny world (32x32 images, half-second clips).
TINY_WORLD = dict(image_size=32, clip_seconds=0.5)
SIZE = 32
GRID = (4, 4)
#: The shortest clip of the "short" sound network (``min_samples_for("short")``, checked in test_models).
CLIP = 9_326


def tiny_model_config(**changes: object):  # type: ignore[no-untyped-def]
    """``ModelConfig.cpu`` with :data:`TINY_MODEL`, 32x32 images and :data:`CLIP` samples."""
    from soundloc.models import ModelConfig

    return ModelConfig.cpu(**{**TINY_MODEL, "image_size": SIZE, "clip_samples": CLIP, **changes})


def tiny_model(seed: int = 0, **changes: object) -> torch.nn.Module:
    """The tiny model, its weights drawn after ``torch.manual_seed(seed)``."""
    from soundloc.models import build_model

    torch.manual_seed(seed)
    return build_model(tiny_model_config(**changes))


def tone_pairs(n: int, labelled: set[int] | frozenset[int] | None = None, seed: int = 1) -> list:
    """``n`` pairs, each its own flat colour and its own pure tone (150 (i + 1) Hz: trivially
    learnable); pair ``i`` has a ground truth on one cell of the 4x4 grid when ``i in labelled``
    (default: every pair)."""
    import math

    from soundloc.data import Sample

    g = torch.Generator().manual_seed(seed)
    t = torch.arange(CLIP) / 22050
    out = []
    for i in range(n):
        gt = torch.zeros(GRID)
        gt[i % 4, (i // 4) % 4] = 1.0
        image = torch.rand(3, 1, 1, generator=g).expand(3, SIZE, SIZE).clone()
        out.append(Sample(id=f"s{i}", image=image, waveform=0.5 * torch.sin(2 * math.pi * 150 * (i + 1) * t),
                          gt_attention=gt if labelled is None or i in labelled else None))
    return out


def tiny_run(**train: object) -> dict:
    """A run's config as a file holds it: the tiny model on a tiny world of 120 scenes."""
    return {"model": dict(TINY_MODEL), "data": {"world": dict(TINY_WORLD), "n_scenes": 120, "n_test": 30},
            "labelled": 12, "val_size": 12,
            "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, "checkpoint_every": 1, **train}}

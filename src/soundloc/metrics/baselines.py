"""Baselines printed beside every model's numbers.

The cIoU metric is weak: a prediction that keeps the whole image scores about 60 % cIoU@0.5
on the Flickr-SoundNet test pairs because their boxes are large. A reader must see that, so
:func:`baseline_scores` always reports three references under the same protocol:

- **whole image**: ``A`` = every pixel, so ``cIoU = Σg / (Σg + |{g = 0}|)``. Under the median
  rule a constant map would keep no pixel, so this baseline is defined by its kept set, not
  by a map.
- **centre prior**: an isotropic 2-D Gaussian centred in the frame, ``exp(-r² / 2σ²)`` with
  ``σ = size / 4`` by default (56 px at 224), through the same resize-normalise-threshold path
  as a model's map. Under the median rule any centred, radially decreasing prior keeps the
  same central disc of half the frame's area, so σ only matters for fixed thresholds.
- **random**: uniform values on the model's grid (20×20 by default, the grid of the authors'
  320×320 frames) through the same path; mean ± sample standard deviation of success rate
  and AUC over seeded repeats, like the paper's "Random" row of Table 1.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from soundloc.metrics.prediction import _predict, predicted_set
from soundloc.metrics.protocol import Protocol, get_protocol
from soundloc.metrics.scores import _as_gt_batch, _ciou_flat, _row_sums, ciou_from_set, success_and_auc

#: Default σ of the centre prior as a fraction of the frame side.
CENTRE_SIGMA_FRACTION = 0.25


@dataclass
class BaselineScore:
    """Success rate and AUC of one baseline (``*_std`` are 0 for deterministic baselines)."""

    name: str
    success: float
    auc: float
    success_std: float = 0.0
    auc_std: float = 0.0
    repeats: int = 1
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def whole_image_set(size: int = 224, batch: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """The whole-image prediction: every pixel kept, bool ``[size, size]`` (or ``[batch, ...]``)."""
    shape = (size, size) if batch is None else (batch, size, size)
    return torch.ones(shape, dtype=torch.bool, device=device)


def centre_prior(size: int = 224, sigma: float | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Centred Gaussian ``exp(-r² / 2σ²)`` on pixel centres, float32 ``[size, size]``.

    ``r`` is the distance of pixel centre ``(i + 0.5, j + 0.5)`` from the frame's centre
    ``(size/2, size/2)``; ``σ`` defaults to ``size / 4``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    sigma = size * CENTRE_SIGMA_FRACTION if sigma is None else float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    c = torch.arange(size, dtype=torch.float64, device=device) + 0.5 - size / 2
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    return torch.exp(-r2 / (2 * sigma**2)).to(torch.float32)


def random_maps(
    batch: int, grid: tuple[int, int] = (20, 20), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform [0, 1) maps ``[batch, *grid]`` drawn on the CPU (reproducible across devices)."""
    if len(grid) != 2 or any((not isinstance(g, int)) or g <= 0 for g in grid):
        raise ValueError(f"grid must be a pair of positive ints, got {grid!r}")
    return torch.rand(batch, *grid, generator=generator, dtype=torch.float32)


def random_baseline(
    gt: Any,
    protocol: Protocol | str | None = None,
    *,
    seed: int = 0,
    repeats: int = 10,
    grid: tuple[int, int] = (20, 20),
) -> tuple[BaselineScore, torch.Tensor]:
    """Score ``repeats`` draws of uniform random maps against consensus maps ``gt [B, S, S]``.

    Returns the summary and the per-repeat ``[repeats, 2]`` (success, AUC). Repeat ``r`` uses
    maps drawn from ``torch.Generator().manual_seed(seed)`` in order, so a seed fixes them all.
    """
    p = get_protocol(protocol)
    g, _ = _as_gt_batch(gt)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    gen = torch.Generator().manual_seed(seed)
    per = torch.zeros(repeats, 2, dtype=torch.float64)
    gf = g.reshape(g.shape[0], -1)
    g_zero, g_sum = (gf == 0).to(gf.dtype), _row_sums(gf)
    for r in range(repeats):
        maps = random_maps(g.shape[0], tuple(grid), gen).to(g.device)
        kept = _predict(maps, tuple(g.shape[-2:]), p, p.threshold)
        scores = _ciou_flat(kept.reshape(kept.shape[0], -1), gf, g_zero, g_sum)
        per[r, 0], per[r, 1] = success_and_auc(scores, p)
    std = per.std(dim=0, correction=1) if repeats > 1 else torch.zeros(2, dtype=torch.float64)
    summary = BaselineScore(
        name="random",
        success=float(per[:, 0].mean()),
        auc=float(per[:, 1].mean()),
        success_std=float(std[0]),
        auc_std=float(std[1]),
        repeats=repeats,
        description=f"uniform values on a {grid[0]}x{grid[1]} grid, {repeats} draws from seed {seed} (mean ± sample std)",
    )
    return summary, per


def baseline_scores(
    gt: Any,
    protocol: Protocol | str | None = None,
    *,
    seed: int = 0,
    repeats: int = 10,
    grid: tuple[int, int] = (20, 20),
    centre_sigma: float | None = None,
) -> dict[str, BaselineScore]:
    """Whole image, centre prior and random baselines against consensus maps ``gt [B, S, S]``."""
    p = get_protocol(protocol)
    g, _ = _as_gt_batch(gt)
    size = int(g.shape[-1])
    if g.shape[-1] != g.shape[-2]:
        raise ValueError(f"gt must be square, got {tuple(g.shape[-2:])}")
    whole = ciou_from_set(whole_image_set(size, device=g.device), g)
    w_s, w_a = success_and_auc(whole.reshape(-1), p)
    sigma = size * CENTRE_SIGMA_FRACTION if centre_sigma is None else float(centre_sigma)
    prior = centre_prior(size, sigma, device=g.device)
    centre = ciou_from_set(predicted_set(prior, size, p), g)
    c_s, c_a = success_and_auc(centre.reshape(-1), p)
    rnd, _ = random_baseline(g, p, seed=seed, repeats=repeats, grid=grid)
    return {
        "whole image": BaselineScore("whole image", w_s, w_a, description="every pixel kept"),
        "centre prior": BaselineScore(
            "centre prior", c_s, c_a, description=f"centred Gaussian, sigma = {sigma:g} px, thresholded like a model's map"
        ),
        "random": rnd,
    }


__all__ = ["BaselineScore", "CENTRE_SIGMA_FRACTION", "baseline_scores", "centre_prior", "random_baseline",
           "random_maps", "whole_image_set"]

"""Tests over seeds: is a paired effect positive, negative, or as good as absent?

A finding of the book is a difference measured seed by seed (the same world, split and initial
weights on both sides of the comparison), so the tests here are paired tests on the per-seed
differences ``d_1 .. d_n``:

- :func:`paired_t_test`: ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom,
  two-sided p-value from Student's t distribution;
- :func:`sign_test`: the exact two-sided binomial test of the number of positive differences
  (zeros dropped), which assumes nothing about the differences' distribution;
- :func:`tost`: two one-sided t tests against ``-delta`` and ``+delta`` (equivalence testing):
  when both reject, the effect lies within ``(-delta, delta)``, the smallest effect of interest,
  and a null can be stated as a null rather than as a failure to find something.

:func:`conclude` combines them into one word by a rule fixed in advance. The t distribution's
CDF is computed from the regularised incomplete beta function (:func:`incomplete_beta`, a
continued fraction evaluated by the modified Lentz method), so the library needs no SciPy.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)`` for ``x`` in [0, 1], ``a, b > 0``.

    Evaluated by its continued fraction (converges fast for ``x < (a + 1) / (a + b + 2)``; the
    symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` covers the rest), to about 1e-14.
    """
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be positive, got {a}, {b}")
    if x in (0.0, 1.0):
        return x
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - incomplete_beta(1.0 - x, b, a)
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * f / a


def t_sf(t: float, df: float) -> float:
    """``P(T > t)`` for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5)  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """The ``q``-quantile of Student's t with ``df`` degrees of freedom (``0 < q < 1``), by
    bisection on :func:`t_sf` (as precise as it: about 1e-7 in t)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 1.0 - t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its two-sided ``level`` confidence
    interval ``mean ± t_{(1+level)/2, n-1} sd / sqrt(n)``."""
    d = _diffs(values)
    half = t_ppf(0.5 + level / 2.0, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def _diffs(diffs: Sequence[float]) -> np.ndarray:
    d = np.asarray(list(diffs), dtype=float)
    if d.ndim != 1 or d.size < 2 or not np.all(np.isfinite(d)):
        raise ValueError(f"need at least two finite paired differences, got {list(diffs)!r}")
    return d


def _t_statistic(d: np.ndarray, shift: float = 0.0) -> float:
    sd = float(d.std(ddof=1))
    diff = float(d.mean()) - shift
    if sd == 0.0:
        return math.copysign(math.inf, diff) if diff else 0.0
    return diff / (sd / math.sqrt(d.size))


def paired_t_test(diffs: Sequence[float]) -> dict[str, float]:
    """Two-sided one-sample t test of ``mean(d) = 0``: ``{"mean", "sd", "n", "t", "df", "p"}``."""
    d = _diffs(diffs)
    t = _t_statistic(d)
    df = d.size - 1
    p = 1.0 if t == 0.0 else min(1.0, 2.0 * t_sf(abs(t), df))
    return {"mean": float(d.mean()), "sd": float(d.std(ddof=1)), "n": int(d.size), "t": t, "df": df, "p": p}


def sign_test(diffs: Sequence[float]) -> dict[str, float]:
    """Exact two-sided sign test: ``n_positive`` of ``n`` non-zero differences against
    Binomial(n, 1/2); ``p = min(1, 2 P(X <= min(k, n - k)))``."""
    d = _diffs(diffs)
    nz = d[d != 0.0]
    n, k = int(nz.size), int((nz > 0).sum())
    if n == 0:
        return {"n": 0, "n_positive": 0, "p": 1.0}
    low = min(k, n - k)
    p = min(1.0, 2.0 * sum(math.comb(n, j) for j in range(low + 1)) / 2.0 ** n)
    return {"n": n, "n_positive": k, "p": p}


def tost(diffs: Sequence[float], delta: float) -> dict[str, float]:
    """Two one-sided t tests of equivalence within ``(-delta, delta)``: ``p_lower`` tests
    ``mean <= -delta`` against ``mean > -delta``, ``p_upper`` tests ``mean >= delta`` against
    ``mean < delta``; ``p = max`` of the two (equivalence is shown when ``p < alpha``)."""
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta}")
    d = _diffs(diffs)
    df = d.size - 1
    p_lower = t_sf(_t_statistic(d, -delta), df)
    p_upper = 1.0 - t_sf(_t_statistic(d, delta), df)
    return {"delta": float(delta), "p_lower": p_lower, "p_upper": p_upper, "p": max(p_lower, p_upper)}


def conclude(diffs: Sequence[float], delta: float, alpha: float = 0.05) -> dict[str, Any]:
    """One word for a paired effect, by a rule fixed before the data:

    - ``"positive"`` / ``"negative"``: the two-sided paired t test rejects at ``alpha`` and the
      mean difference has that sign;
    - ``"null"``: the t test does not reject and the equivalence test (:func:`tost`, bounds
      ``±delta``) does, at ``alpha``;
    - ``"inconclusive"``: neither.

    Returns the word with every test's statistic and p-value (the sign test is reported beside
    the t test, as a check that does not assume normal differences).
    """
    t, s, e = paired_t_test(diffs), sign_test(diffs), tost(diffs, delta)
    if t["p"] < alpha:
        word = "positive" if t["mean"] > 0 else "negative"
    elif e["p"] < alpha:
        word = "null"
    else:
        word = "inconclusive"
    return {"conclusion": word, "alpha": alpha, "t_test": t, "sign_test": s, "tost": e,
            "diffs": [float(x) for x in diffs]}


__all__ = ["conclude", "incomplete_beta", "mean_ci", "paired_t_test", "sign_test", "t_ppf", "t_sf", "tost"]

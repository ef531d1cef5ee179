"""A few runs' values summarised: the mean and sample standard deviation over seeds, and the one
format of a mean and its spread in every table of the library."""
from __future__ import annotations

from typing import Any

import numpy as np


def mean_std(values: Any) -> tuple[float, float | None]:
    """Mean and *sample* standard deviation (``ddof = 1``) of a few runs' values, e.g. over
    seeds; the deviation is ``None`` for a single value. Every "mean ± std" of the library and
    the book uses this one estimator."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("mean_std: no values")
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def format_pair(mean: float, std: float | None, digits: int = 3, single: str = "", signed: bool = False) -> str:
    """``"m ± s"`` with ``digits`` decimals, or ``"m"`` + ``single`` where ``std`` is ``None``
    (one run); ``signed`` writes the mean's sign (a change). The one format of a mean and its
    spread in every table of the library."""
    m = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return m + single if std is None else f"{m} ± {std:.{digits}f}"


def format_mean_std(values: Any, digits: int = 3) -> str:
    """``"m ± s"`` with ``digits`` decimals (:func:`mean_std`), or ``"m (one run)"``."""
    return format_pair(*mean_std(values), digits=digits, single=" (one run)")


__all__ = ["format_mean_std", "format_pair", "mean_std"]

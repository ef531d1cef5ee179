"""Progress bars on long loops that never change what the loop computes."""
from __future__ import annotations

from typing import Any


def progress_bar(iterable: Any, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm progress bar over ``iterable``, or ``iterable`` itself when not ``enabled``.

    The bar is given an *iterator* of ``iterable`` and its length, so building it never starts
    a second pass: ``tqdm.auto``'s bar calls ``iter()`` on what it wraps when it is created, and
    each ``iter()`` of a shuffling DataLoader draws from its generator, so wrapping the loader
    itself made the batch order (and every number after it) depend on whether progress was shown.
    """
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    if "total" not in kwargs and hasattr(iterable, "__len__"):
        kwargs["total"] = len(iterable)
    return tqdm(iter(iterable), **kwargs)


__all__ = ["progress_bar"]

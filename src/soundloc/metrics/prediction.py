"""From a localization map to the predicted set ``A`` of the evaluation.

Senocak et al. (CVPR 2018, Sec. 5) binarise the attention map, ``A(τ) = {i | α_i > τ}``, after
bringing it to the image's resolution. The protocol later work reports on (LVS) does:

1. resize the map to 224×224 bilinearly with half-pixel centres and no antialiasing
   (OpenCV ``INTER_LINEAR``; here :func:`torch.nn.functional.interpolate`);
2. min-max normalise it to [0, 1] (a constant map is left as it is);
3. keep the pixels strictly above the value at 0-based position ``⌊N/2⌋`` of the sorted,
   flattened map (``N = 224·224``): "the top half" (or above a fixed τ).

Everything is batched: ``[B, H, W]`` maps are processed at once, on their own device.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from soundloc.metrics.protocol import Protocol, Threshold, get_protocol


def as_heatmap_batch(heatmap: Any, name: str = "heatmap") -> tuple[torch.Tensor, bool]:
    """Validate a heatmap and return it as a float ``[B, H, W]`` tensor (+ whether it was 2-D).

    Accepts a torch tensor or a NumPy array, ``[H, W]`` or ``[B, H, W]``, of a real floating or
    integer dtype; float64 stays float64, every other dtype becomes float32.

    Raises:
        TypeError: not an array, or a bool/complex dtype.
        ValueError: wrong number of dimensions, an empty spatial size, NaN or inf values
            (the message names ``name`` and the offending sample).
    """
    if isinstance(heatmap, np.ndarray):
        heatmap = torch.from_numpy(heatmap)
    if not isinstance(heatmap, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(heatmap).__name__}")
    if heatmap.dtype == torch.bool or heatmap.is_complex():
        raise TypeError(f"{name} must have a real floating or integer dtype, got {heatmap.dtype}")
    if heatmap.ndim not in (2, 3):
        raise ValueError(f"{name} must be [H, W] or [B, H, W], got shape {tuple(heatmap.shape)}")
    single = heatmap.ndim == 2
    x = heatmap.unsqueeze(0) if single else heatmap
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"{name} has an empty spatial size: shape {tuple(heatmap.shape)}")
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    finite = torch.isfinite(x).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()[:5].tolist()
        raise ValueError(f"{name} contains NaN or inf values (sample(s) {bad})")
    return x, single


def _target(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, tuple)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be a positive int or a pair of positive ints, got {size!r}")
    return size


def _resize(x: torch.Tensor, target: tuple[int, int], p: Protocol) -> torch.Tensor:
    if tuple(x.shape[-2:]) == target:
        return x
    if x.shape[0] == 0:
        return x.new_zeros(0, *target)
    return F.interpolate(
        x.unsqueeze(1), size=target, mode=p.resize, align_corners=p.align_corners, antialias=False
    ).squeeze(1)


def resize_maps(
    heatmap: Any, size: int | tuple[int, int] | None = None, protocol: Protocol | str | None = None
) -> torch.Tensor:
    """Resize ``[H, W]`` or ``[B, H, W]`` maps to ``size`` (default ``protocol.size``).

    Uses the protocol's interpolation without antialiasing. Bilinear with
    ``align_corners=False`` samples the source at ``(dst + 0.5) * H / size - 0.5`` (clamped at
    the border), like OpenCV's ``INTER_LINEAR``. A map already at ``size`` is returned as is
    (every mode is the identity there).
    """
    p = get_protocol(protocol)
    x, single = as_heatmap_batch(heatmap)
    out = _resize(x, _target(p.size if size is None else size), p)
    return out[0] if single else out


def normalise_maps(x: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of ``[B, H, W]`` to [0, 1]; a constant map is left as it is."""
    if x.shape[0] == 0:
        return x
    flat = x.reshape(x.shape[0], -1)
    lo, hi = torch.aminmax(flat, dim=1)
    rng = hi - lo
    const = rng == 0
    # For a constant map subtract 0 and divide by 1, which leaves it exactly as it is.
    lo = torch.where(const, torch.zeros_like(lo), lo)
    rng = torch.where(const, torch.ones_like(rng), rng)
    return ((flat - lo[:, None]) / rng[:, None]).reshape(x.shape)


def kth_smallest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Value at 0-based position ``k`` of each row of ``[B, N]`` once sorted ascending: ``[B]``.

    NumPy's introselect on the CPU (a few times faster than :func:`torch.kthvalue` there),
    :func:`torch.kthvalue` elsewhere; both return the exact order statistic.
    """
    if flat.shape[0] == 0:
        return flat.new_zeros(0)
    if not 0 <= k < flat.shape[1]:
        raise ValueError(f"k = {k} outside [0, {flat.shape[1]})")
    if flat.device.type == "cpu":
        arr = flat.detach().contiguous().numpy()
        return torch.from_numpy(np.ascontiguousarray(np.partition(arr, k, axis=1)[:, k]))
    return flat.kthvalue(k + 1, dim=1).values  # kthvalue's k is 1-based


def threshold_values(x: torch.Tensor, threshold: Threshold = "median") -> torch.Tensor:
    """Per-map threshold ``[B]`` of ``[B, H, W]`` maps: the value at sorted position ``⌊N/2⌋``
    (0-based, ``N = H·W``) for ``"median"``, else the fixed τ."""
    flat = x.reshape(x.shape[0], -1)
    if threshold == "median":
        return kth_smallest(flat, flat.shape[1] // 2)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be 'median' or a float in [0, 1], got {threshold!r}")
    return flat.new_full((flat.shape[0],), float(threshold))


def predicted_set(
    heatmap: Any,
    size: int | tuple[int, int] | None = None,
    protocol: Protocol | str | None = None,
    *,
    threshold: Threshold | None = None,
) -> torch.Tensor:
    """The set ``A`` of kept pixels as a bool mask, ``[size, size]`` or ``[B, size, size]``.

    Resize (:func:`resize_maps`), min-max normalise (:func:`normalise_maps`), then keep the
    pixels ``> thr`` (or ``>=`` with ``protocol.inclusive``), ``thr`` from
    :func:`threshold_values`; with ``protocol.keep_max`` the pixels at the maximum are kept too.

    Under the median rule the normalisation is skipped: it is a monotone map of the values,
    so the value at sorted position ``⌊N/2⌋`` and the pixels above it are the same before and
    after it (skipping it also avoids float rounding merging nearly equal values into ties).

    Args:
        heatmap: ``[H, W]`` or ``[B, H, W]`` map of any resolution (higher = more likely the
            sound source); tensor or array; no NaN/inf.
        size: evaluation frame (default ``protocol.size``); an int or ``(height, width)``.
        protocol: the evaluation protocol (LVS by default).
        threshold: overrides ``protocol.threshold`` (``"median"`` or τ in [0, 1]).
    """
    p = get_protocol(protocol)
    x, single = as_heatmap_batch(heatmap)
    keep = _predict(x, _target(p.size if size is None else size), p, p.threshold if threshold is None else threshold)
    return keep[0] if single else keep


def _predict(x: torch.Tensor, target: tuple[int, int], p: Protocol, rule: Threshold) -> torch.Tensor:
    """:func:`predicted_set` of an already validated float ``[B, H, W]`` batch."""
    m = _resize(x, target, p)
    if rule != "median":
        m = normalise_maps(m)
    thr = threshold_values(m, rule).to(m.device).view(-1, 1, 1)
    keep = m >= thr if p.inclusive else m > thr
    if p.keep_max and m.shape[0] > 0:
        keep |= m == m.reshape(m.shape[0], -1).amax(dim=1).view(-1, 1, 1)
    return keep


__all__ = ["normalise_maps", "predicted_set", "resize_maps", "threshold_values"]

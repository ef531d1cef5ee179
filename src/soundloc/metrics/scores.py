"""Scores: consensus IoU, success rate and AUC, and per-annotator IoU (the paper's Table 3).

Senocak et al. (CVPR 2018, Sec. 5, "Evaluation metrics"):

- consensus IoU of a predicted set ``A`` against the consensus map ``g``:
  ``cIoU = Σ_{i∈A} g_i / (Σ_i g_i + |A \\ G|)``, ``G = {i | g_i > 0}``;
- "cIoU" in the tables is the success rate, the fraction of pairs with ``cIoU >= 0.5``;
- "AUC" is the area under the success rate as a function of the cIoU threshold
  ``t ∈ {0, 0.05, …, 1}`` (21 points, trapezoidal rule, so the x-range is [0, 1]);
- Table 3 scores against each annotator separately: the IoU of ``A`` with annotator ``j``'s
  box map, summarised by the same success rate and AUC.

A zero denominator (an empty ground truth and nothing predicted) gives cIoU 0, not NaN.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from soundloc.metrics.groundtruth import AnnotationLike, Box, annotator_boxes
from soundloc.metrics.prediction import _predict, as_heatmap_batch
from soundloc.metrics.protocol import Protocol, Threshold, get_protocol


def _as_mask_batch(mask: Any, name: str) -> tuple[torch.Tensor, bool]:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(mask).__name__}")
    if mask.ndim not in (2, 3):
        raise ValueError(f"{name} must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must be a bool mask (or 0/1 integers), got dtype {mask.dtype}")
        mask = mask != 0
    return (mask.unsqueeze(0), True) if mask.ndim == 2 else (mask, False)


def _as_gt_batch(gt: Any, name: str = "gt_map") -> tuple[torch.Tensor, bool]:
    if isinstance(gt, np.ndarray):
        gt = torch.from_numpy(gt)
    if not isinstance(gt, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(gt).__name__}")
    if gt.dtype == torch.bool:
        gt = gt.float()
    if gt.is_complex():
        raise TypeError(f"{name} must be real, got {gt.dtype}")
    if gt.ndim not in (2, 3):
        raise ValueError(f"{name} must be [H, W] or [B, H, W], got shape {tuple(gt.shape)}")
    if gt.shape[-1] == 0 or gt.shape[-2] == 0:
        raise ValueError(f"{name} has an empty spatial size: shape {tuple(gt.shape)}")
    gt = gt.to(torch.float64 if gt.dtype == torch.float64 else torch.float32)
    if gt.numel():
        lo, hi = torch.aminmax(gt)  # NaN fails both comparisons, inf fails the second
        if not (bool(lo >= 0) and bool(hi <= 1)):
            raise ValueError(f"{name} must hold finite values in [0, 1] (found min {float(lo)}, max {float(hi)})")
    return (gt.unsqueeze(0), True) if gt.ndim == 2 else (gt, False)


def _pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"{names[0]} is {tuple(a.shape[-2:])} but {names[1]} is {tuple(b.shape[-2:])}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(f"batch sizes differ: {names[0]} has {a.shape[0]}, {names[1]} has {b.shape[0]}")
    if a.device != b.device:
        b = b.to(a.device)
    return a, b


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of ``[Ba, N]`` and ``[Bb, N]`` (``Ba == Bb`` or one of them 1)."""
    if a.shape[0] == b.shape[0]:
        return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).reshape(-1)
    if b.shape[0] == 1:
        return a @ b[0]
    return b @ a[0]


def _row_sums(gf: torch.Tensor) -> torch.Tensor:
    """``Σ g`` per row as float64 (summed in the map's dtype: exact for the 0 / 0.5 / 1 maps of
    consensus 2, since every partial sum is a multiple of 0.5 below 2**24)."""
    return gf.sum(dim=1).to(torch.float64)


def _ciou_flat(a: torch.Tensor, g: torch.Tensor, g_zero: torch.Tensor, g_sum: torch.Tensor) -> torch.Tensor:
    """cIoU of bool sets ``a [Ba, N]`` against maps ``g [Bg, N]``; ``g_zero = (g == 0)`` as floats,
    ``g_sum = Σ g`` (float64). Sums of 0 / 0.5 / 1 values are exact in float32."""
    af = a.to(g.dtype)
    inter = _rowdot(af, g).to(torch.float64)
    outside = _rowdot(af, g_zero).to(torch.float64)
    denom = g_sum + outside
    ok = denom > 0
    return torch.where(ok, inter / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(denom))


def ciou_from_set(pred_set: Any, gt_map: Any) -> torch.Tensor:
    """cIoU of a predicted set against a consensus map: ``Σ_A g / (Σ g + |A \\ G|)``.

    Args:
        pred_set: kept pixels, bool ``[H, W]`` or ``[B, H, W]`` (e.g. from
            :func:`~soundloc.metrics.prediction.predicted_set`, or a baseline's set).
        gt_map: consensus map with values in [0, 1], same spatial size, ``[H, W]`` (shared by
            every sample) or ``[B, H, W]``.

    Returns:
        float64 cIoU per sample ``[B]`` (0-d for 2-D inputs). Zero denominator -> 0.
    """
    a, single_a = _as_mask_batch(pred_set, "pred_set")
    g, single_g = _as_gt_batch(gt_map)
    a, g = _pair(a, g, ("pred_set", "gt_map"))
    gf = g.reshape(g.shape[0], -1)
    out = _ciou_flat(a.reshape(a.shape[0], -1), gf, (gf == 0).to(gf.dtype), _row_sums(gf))
    return out[0] if (single_a and single_g) else out


def iou_from_set(pred_set: Any, box_map: Any) -> torch.Tensor:
    """Plain IoU ``|A ∩ B| / |A ∪ B|`` of a predicted set with a binary map (0 when both empty)."""
    a, single_a = _as_mask_batch(pred_set, "pred_set")
    b, single_b = _as_mask_batch(box_map, "box_map")
    a, b = _pair(a, b, ("pred_set", "box_map"))
    af = a.reshape(a.shape[0], -1).to(torch.float32)
    bf = b.reshape(b.shape[0], -1).to(torch.float32)
    inter = _rowdot(af, bf).to(torch.float64)  # integer counts < 2**24: exact in float32
    union = af.sum(dim=1).to(torch.float64) + bf.sum(dim=1).to(torch.float64) - inter
    out = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))
    return out[0] if (single_a and single_b) else out


def ciou(
    heatmap: Any,
    gt_map: Any,
    threshold: Threshold | None = None,
    *,
    protocol: Protocol | str | None = None,
) -> torch.Tensor:
    """Per-sample consensus IoU of localization maps (Sec. 5 of the paper, LVS protocol).

    The heatmap (any resolution, ``[H, W]`` or ``[B, H, W]``) is resized to the ground truth's
    size, min-max normalised and binarised (:func:`~soundloc.metrics.prediction.predicted_set`;
    ``threshold`` overrides the protocol's: ``"median"`` or a fixed τ in [0, 1]); then
    :func:`ciou_from_set`.

    Returns:
        float64 ``[B]`` (0-d when both inputs are 2-D), on the heatmap's device.
    """
    p = get_protocol(protocol)
    x, single_x = as_heatmap_batch(heatmap)
    g, single_g = _as_gt_batch(gt_map)
    if x.shape[0] != g.shape[0] and 1 not in (x.shape[0], g.shape[0]):
        raise ValueError(f"batch sizes differ: heatmap has {x.shape[0]}, gt_map has {g.shape[0]}")
    mask = _predict(x, tuple(g.shape[-2:]), p, p.threshold if threshold is None else threshold)
    gf = g.to(x.device).reshape(g.shape[0], -1)
    out = _ciou_flat(mask.reshape(mask.shape[0], -1), gf, (gf == 0).to(gf.dtype), _row_sums(gf))
    return out[0] if (single_x and single_g) else out


def _as_scores(scores: Any, name: str = "cious") -> torch.Tensor:
    if isinstance(scores, torch.Tensor):
        s = scores.detach().to(torch.float64)
    else:
        try:
            s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a 1-D sequence of numbers") from None
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(s.shape)}")
    if s.numel() == 0:
        raise ValueError(f"{name} is empty: nothing to score")
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return s


def success_rate(cious: Any, threshold: float = 0.5, inclusive: bool = True) -> float:
    """Fraction of samples with ``cIoU >= threshold`` (``>`` when ``inclusive`` is False)."""
    s = _as_scores(cious)
    hit = s >= threshold if inclusive else s > threshold
    return float(hit.to(torch.float64).mean())


def success_curve(cious: Any, protocol: Protocol | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Success rate at each threshold of ``protocol.auc_thresholds()``: ``(thresholds, rates)``, float64."""
    p = get_protocol(protocol)
    s = _as_scores(cious).cpu()
    t = torch.tensor(p.auc_thresholds(), dtype=torch.float64)
    hit = s[None, :] >= t[:, None] if p.success_inclusive else s[None, :] > t[:, None]
    return t, hit.to(torch.float64).mean(dim=1)


def success_and_auc(cious: Any, protocol: Protocol | str | None = None) -> tuple[float, float]:
    """``(success rate at protocol.success_threshold, AUC)`` of per-sample cIoUs.

    The AUC is the trapezoidal area under :func:`success_curve` (x from 0 to 1; 21 points by
    default). Success uses ``>=`` under LVS and ``>`` with ``success_inclusive=False``, both
    for the rate and for every point of the curve.
    """
    p = get_protocol(protocol)
    t, rates = success_curve(cious, p)
    sr = success_rate(cious, float(p.success_threshold), p.success_inclusive)
    return sr, float(torch.trapezoid(rates, t))


@dataclass
class AnnotatorScores:
    """Per-annotator scores (the paper's Table 3).

    Attributes:
        iou: ``[B, A]`` float64 IoU of each sample's predicted set with annotator ``j``'s box
            map (NaN where a sample has fewer annotators).
        success: per annotator, the fraction of its samples with IoU at the success threshold.
        auc: per annotator, the AUC of its IoUs.
        count: per annotator, how many samples it annotated.
    """

    iou: torch.Tensor
    success: list[float]
    auc: list[float]
    count: list[int]

    @property
    def mean_success(self) -> float:
        return float(np.mean(self.success)) if self.success else math.nan

    @property
    def mean_auc(self) -> float:
        return float(np.mean(self.auc)) if self.auc else math.nan


def annotator_ious(pred_set: Any, annotations: Sequence[AnnotationLike], size: int | None = None) -> torch.Tensor:
    """IoU of each sample's set with each annotator's box map: ``[B, A_max]``, NaN where missing.

    Annotator ``j``'s map is the union of their boxes scaled to the frame (see
    :func:`~soundloc.metrics.groundtruth.annotator_maps`).
    """
    a, _ = _as_mask_batch(pred_set, "pred_set")
    if a.shape[0] != len(annotations):
        raise ValueError(f"{a.shape[0]} predicted sets for {len(annotations)} annotations")
    size = int(a.shape[-1]) if size is None else size
    if a.shape[-1] != a.shape[-2] or a.shape[-1] != size:
        raise ValueError(f"pred_set must be [B, {size}, {size}], got {tuple(a.shape)}")
    scaled = [annotator_boxes(ann, size) for ann in annotations]
    a_max = max((len(s) for s in scaled), default=0)
    out = torch.full((len(annotations), a_max), math.nan, dtype=torch.float64)
    if a_max == 0:
        return out
    b = a.shape[0]
    # Summed-area table of each set: the count of kept pixels inside a box is 4 look-ups.
    sat = torch.zeros(b, size + 1, size + 1, dtype=torch.float32, device=a.device)
    sat[:, 1:, 1:] = a.to(torch.float32).cumsum(dim=1).cumsum(dim=2)  # counts < 2**24: exact
    sat = sat.cpu()
    a_count = sat[:, size, size].to(torch.float64)
    single: list[tuple[int, int, Box]] = []
    a_np: np.ndarray | None = None
    for i, anns in enumerate(scaled):
        for j, boxes in enumerate(anns):
            if len(boxes) == 1:
                single.append((i, j, boxes[0]))
                continue
            # no box, or several: the union's map (rare)
            if a_np is None:
                a_np = a.cpu().numpy()
            m = np.zeros((size, size), dtype=bool)
            for x1, y1, x2, y2 in boxes:
                m[y1:y2, x1:x2] = True
            inter = float(np.count_nonzero(a_np[i] & m))
            union = float(a_count[i]) + float(np.count_nonzero(m)) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    if single:
        idx = torch.tensor([[i, j, *box] for i, j, box in single], dtype=torch.long)
        i, j, x1, y1, x2, y2 = idx.unbind(dim=1)
        inter = (sat[i, y2, x2] - sat[i, y1, x2] - sat[i, y2, x1] + sat[i, y1, x1]).to(torch.float64)
        area = ((x2 - x1) * (y2 - y1)).to(torch.float64)
        union = a_count[i] + area - inter
        out[i, j] = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))
    return out


def per_annotator_scores(
    pred_set: Any, annotations: Sequence[AnnotationLike], protocol: Protocol | str | None = None
) -> AnnotatorScores:
    """Table 3 of the paper: IoU with each annotator separately, as success rate and AUC.

    Annotator ``j`` is the ``j``-th annotator listed in each annotation; samples with fewer
    annotators do not count for the missing ones.
    """
    p = get_protocol(protocol)
    iou = annotator_ious(pred_set, annotations, p.size)
    success, auc, count = [], [], []
    for j in range(iou.shape[1]):
        col = iou[:, j]
        col = col[~torch.isnan(col)]
        s, a = success_and_auc(col, p)
        success.append(s)
        auc.append(a)
        count.append(int(col.numel()))
    return AnnotatorScores(iou=iou, success=success, auc=auc, count=count)


__all__ = ["AnnotatorScores", "annotator_ious", "ciou", "ciou_from_set", "iou_from_set", "per_annotator_scores",
           "success_and_auc", "success_curve", "success_rate"]

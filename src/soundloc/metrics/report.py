"""One call that scores a set of heatmaps the way the paper's tables do, and prints it.

:func:`evaluate` gives the success rate at cIoU 0.5 and the AUC (Table 1 of Senocak et al.,
CVPR 2018), the per-annotator IoU / AUC (Table 3) and the baselines (whole image, centre
prior, random; see :mod:`soundloc.metrics.baselines`); :func:`format_table` prints them
side by side. The CLI (``soundloc evaluate``) and the book use these two.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from soundloc.metrics.baselines import BaselineScore, baseline_scores
from soundloc.metrics.groundtruth import AnnotationLike, gt_maps
from soundloc.metrics.prediction import _predict, as_heatmap_batch
from soundloc.metrics.protocol import PRESETS, Protocol, get_protocol
from soundloc.metrics.scores import AnnotatorScores, ciou_from_set, per_annotator_scores, success_and_auc, success_curve
from soundloc.utils.files import json_safe


def protocol_name(protocol: Protocol) -> str:
    """The preset name of ``protocol`` (``"custom"`` if it matches none)."""
    for name, preset in PRESETS.items():
        if preset == protocol:
            return name
    return "custom"


@dataclass
class EvaluationResult:
    """Everything :func:`evaluate` measured.

    Attributes:
        protocol: the protocol used.
        ids: sample ids (``None`` when not given).
        ciou: per-sample cIoU, float64 ``[B]`` on the CPU.
        success: fraction of samples at the success threshold (the tables' "cIoU").
        auc: area under the success-rate curve.
        curve: ``(thresholds, success rates)`` of the AUC, float64 ``[P]`` each.
        annotators: per-annotator IoU scores (Table 3), or ``None`` without annotations.
        baselines: name -> :class:`BaselineScore` (empty when not asked for).
        name: label of the model's row in the table.
    """

    protocol: Protocol
    ids: list[str] | None
    ciou: torch.Tensor
    success: float
    auc: float
    curve: tuple[torch.Tensor, torch.Tensor]
    annotators: AnnotatorScores | None
    baselines: dict[str, BaselineScore] = field(default_factory=dict)
    name: str = "model"

    @property
    def n(self) -> int:
        return int(self.ciou.numel())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats, lists, strings)."""
        out: dict[str, Any] = {
            "name": self.name,
            "protocol": {"name": protocol_name(self.protocol), **dataclasses.asdict(self.protocol)},
            "protocol_description": self.protocol.describe(),
            "n": self.n,
            "success": self.success,
            "auc": self.auc,
            "curve": {"thresholds": self.curve[0].tolist(), "success": self.curve[1].tolist()},
            "ids": self.ids,
            "ciou": self.ciou.tolist(),
        }
        if self.annotators is not None:
            a = self.annotators
            out["per_annotator"] = {
                "success": a.success,
                "auc": a.auc,
                "count": a.count,
                "mean_success": a.mean_success,
                "mean_auc": a.mean_auc,
                "iou": a.iou.tolist(),
            }
        out["baselines"] = {k: v.to_dict() for k, v in self.baselines.items()}
        return json_safe(out)


def _predicted_sets(heatmaps: Any, p: Protocol, device: torch.device | str | None) -> torch.Tensor:
    """Kept-pixel sets ``[B, S, S]`` of a batch tensor/array or a sequence of 2-D maps."""
    if isinstance(heatmaps, (torch.Tensor, np.ndarray)):
        x, single = as_heatmap_batch(heatmaps, "heatmaps")
        if single:
            raise ValueError(f"heatmaps must be [B, H, W] (or a list of [H, W] maps), got shape {tuple(x.shape[1:])}")
        return _predict(x.to(device) if device is not None else x, (p.size, p.size), p, p.threshold)
    if not isinstance(heatmaps, Sequence) or isinstance(heatmaps, (str, bytes)):
        raise TypeError(f"heatmaps must be a tensor [B, H, W] or a sequence of [H, W] maps, got {type(heatmaps).__name__}")
    maps = []
    for i, h in enumerate(heatmaps):
        x, single = as_heatmap_batch(h, f"heatmaps[{i}]")
        if not single:
            raise ValueError(f"heatmaps[{i}] must be [H, W], got shape {tuple(x.shape)}")
        maps.append(x[0].to(device) if device is not None else x[0])
    if not maps:
        return torch.zeros(0, p.size, p.size, dtype=torch.bool)
    out = torch.empty(len(maps), p.size, p.size, dtype=torch.bool, device=maps[0].device)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(maps):
        by_shape.setdefault(tuple(m.shape), []).append(i)
    for idx in by_shape.values():  # one batched pass per resolution
        out[idx] = _predict(torch.stack([maps[i] for i in idx]), (p.size, p.size), p, p.threshold)
    return out


def _in_order(heatmaps: Any, annotations: Any, ids: Sequence[str] | None) -> tuple[Any, list[Any], Any]:
    """``(heatmaps, annotations, ids)`` with mappings id -> value turned into lists in the order
    of ``ids`` (default: the heatmaps' keys); ``ValueError`` listing ids without a value."""
    if isinstance(heatmaps, Mapping):
        if not isinstance(annotations, Mapping):
            raise TypeError("heatmaps is a mapping id -> map, so annotations must be a mapping id -> annotation")
        ids = list(heatmaps.keys()) if ids is None else list(ids)
        missing_h = [i for i in ids if i not in heatmaps]
        missing_a = [i for i in ids if i not in annotations]
        if missing_h or missing_a:
            parts = []
            if missing_h:
                parts.append(f"{len(missing_h)} id(s) without heatmap, e.g. {missing_h[:5]}")
            if missing_a:
                parts.append(f"{len(missing_a)} id(s) without annotation, e.g. {missing_a[:5]}")
            raise ValueError("; ".join(parts))
        return [heatmaps[i] for i in ids], [annotations[i] for i in ids], ids
    if isinstance(annotations, Mapping):
        if ids is None:
            raise TypeError("annotations is a mapping: pass ids (the order of the heatmaps)")
        missing_a = [i for i in ids if i not in annotations]
        if missing_a:
            raise ValueError(f"{len(missing_a)} id(s) without annotation, e.g. {missing_a[:5]}")
        return heatmaps, [annotations[i] for i in ids], ids
    return heatmaps, list(annotations), ids


def _warn_empty(gt: torch.Tensor, ids: Sequence[str] | None) -> None:
    """Warn about the samples whose consensus map is empty (their cIoU is 0)."""
    empty = (gt.reshape(gt.shape[0], -1).amax(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        which = [ids[i] for i in empty[:5]] if ids is not None else empty[:5]
        warnings.warn(f"{len(empty)} sample(s) have an empty consensus map (no box inside the frame), so their "
                      f"cIoU is 0: {which}", stacklevel=3)


def evaluate(
    heatmaps: Any,
    annotations: Sequence[AnnotationLike] | Mapping[str, AnnotationLike],
    protocol: Protocol | str | None = None,
    baselines: bool = True,
    seed: int = 0,
    *,
    ids: Sequence[str] | None = None,
    random_repeats: int = 10,
    random_grid: tuple[int, int] = (20, 20),
    centre_sigma: float | None = None,
    per_annotator: bool = True,
    device: torch.device | str | None = None,
    name: str = "model",
) -> EvaluationResult:
    """Score heatmaps against annotations: cIoU per sample, success rate, AUC, Table 3, baselines.

    Args:
        heatmaps: ``[B, H, W]`` tensor/array, a sequence of ``[H, W]`` maps (resolutions may
            differ), or a mapping id -> map (then ``annotations`` must be a mapping too and
            ``ids`` defaults to the heatmaps' keys).
        annotations: one :class:`~soundloc.data.types.Annotation` per heatmap, in order, or a
            mapping id -> annotation.
        protocol: a :class:`Protocol` or preset name (LVS by default).
        baselines: also score the whole image, the centre prior and random maps.
        seed: seed of the random baseline (same seed -> same numbers).
        ids: the samples' ids (selects and orders them when the inputs are mappings).
        random_repeats: draws of the random baseline.
        random_grid: grid of the random maps (the model's grid; 20×20 for 320×320 frames).
        centre_sigma: σ of the centre prior in pixels (default ``size / 4``).
        per_annotator: compute Table 3 (IoU with each annotator).
        device: where to compute (default: the heatmaps' device).
        name: label of the model's row.

    Raises:
        ValueError: counts differ, ids missing from a mapping (listing some), bad maps/boxes.
    """
    p = get_protocol(protocol)
    heatmaps, annotations, ids = _in_order(heatmaps, annotations, ids)
    sets = _predicted_sets(heatmaps, p, device)
    if sets.shape[0] != len(annotations):
        raise ValueError(f"{sets.shape[0]} heatmaps but {len(annotations)} annotations")
    if ids is not None and len(ids) != len(annotations):
        raise ValueError(f"{len(ids)} ids for {len(annotations)} annotations")
    if not annotations:
        raise ValueError("nothing to evaluate: no heatmaps")
    gt = gt_maps(annotations, p, device=sets.device)
    _warn_empty(gt, ids)
    scores = ciou_from_set(sets, gt).cpu()
    success, auc = success_and_auc(scores, p)
    base = baseline_scores(gt, p, seed=seed, repeats=random_repeats, grid=tuple(random_grid),
                           centre_sigma=centre_sigma) if baselines else {}
    return EvaluationResult(protocol=p, ids=list(ids) if ids is not None else None, ciou=scores, success=success,
                            auc=auc, curve=success_curve(scores, p), baselines=base, name=name,
                            annotators=per_annotator_scores(sets, annotations, p) if per_annotator else None)


def _pct(v: float, std: float | None = None) -> str:
    return f"{100 * v:5.1f}" if std is None else f"{100 * v:5.1f} ± {100 * std:.1f}"


def format_table(result: EvaluationResult) -> str:
    """The result as a text table: model row, baseline rows, then per-annotator scores (Table 3)."""
    p = result.protocol
    lines = [
        f"protocol: {protocol_name(p)} ({p.describe()})",
        f"pairs: {result.n}",
        "",
    ]
    rows: list[tuple[str, str, str]] = [(result.name, _pct(result.success), _pct(result.auc))]
    for b in result.baselines.values():
        label = f"{b.name} [baseline]"
        if b.repeats > 1:
            rows.append((label, _pct(b.success, b.success_std), _pct(b.auc, b.auc_std)))
        else:
            rows.append((label, _pct(b.success), _pct(b.auc)))
    succ_label = f"cIoU{'>=' if p.success_inclusive else '>'}{p.success_threshold:g} (%)"
    w0 = max(len(r[0]) for r in rows + [("", "", "")])
    w1 = max(len(succ_label), *(len(r[1]) for r in rows))
    w2 = max(len("AUC (%)"), *(len(r[2]) for r in rows))
    lines.append(f"{'':<{w0}}  {succ_label:>{w1}}  {'AUC (%)':>{w2}}")
    for r in rows:
        lines.append(f"{r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]:>{w2}}")
    for b in result.baselines.values():
        if b.description:
            lines.append(f"  {b.name}: {b.description}")
    a = result.annotators
    if a is not None and a.success:
        lines += ["", "per annotator (IoU with one annotator's boxes; the paper's Table 3):"]
        arows = [(f"annotator {j + 1} (n={a.count[j]})", _pct(a.success[j]), _pct(a.auc[j])) for j in range(len(a.success))]
        arows.append(("average", _pct(a.mean_success), _pct(a.mean_auc)))
        iou_label = f"IoU{'>=' if p.success_inclusive else '>'}{p.success_threshold:g} (%)"
        v0 = max(len(r[0]) for r in arows)
        v1 = max(len(iou_label), *(len(r[1]) for r in arows))
        lines.append(f"{'':<{v0}}  {iou_label:>{v1}}  {'AUC (%)':>7}")
        for r in arows:
            lines.append(f"{r[0]:<{v0}}  {r[1]:>{v1}}  {r[2]:>7}")
    return "\n".join(lines)


__all__ = ["EvaluationResult", "evaluate", "format_table", "protocol_name"]

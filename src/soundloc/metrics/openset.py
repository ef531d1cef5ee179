"""The extended (open-set) protocol: does a model say "nothing here" when the frame does not
show the sound's source?

The benchmark of Senocak et al. (CVPR 2018) pairs every test frame with its own sound, whose
source is in view, so a model that always points somewhere is never caught. Mo and Morgado ("A
Closer Look at Weakly-Supervised Audio-Visual Source Localization", NeurIPS 2022, SLAVC) extend
the Flickr-SoundNet and VGG-SS test sets: every test frame is also paired with a
*non-sounding* clip, a sound whose source the frame does not show (250 extra pairs for
Flickr-SoundNet, 5,158 for VGG-SS). A model gives every pair a map and a **confidence**, one
number saying how sure it is that the frame shows the sound's source (which number is a choice:
:data:`MAP_CONFIDENCES`, or one the model computes), and the pairs are scored as detections at
a confidence threshold ``t``:

- a *sounding* pair with confidence ``>= t`` is a true positive when its map localizes the
  source (cIoU ``>= 0.5``), a false positive when it does not;
- a *non-sounding* pair with confidence ``>= t`` is a false positive;
- a sounding pair below ``t`` is a false negative (a non-sounding one below ``t`` counts nowhere);
- precision ``= TP / (TP + FP)`` (1 when nothing is detected), recall ``= TP / (TP + FN)`` (1
  when ``TP + FN = 0``). These are the counts of SLAVC's evaluation code
  (``EvaluatorFull.calc_precision_recall``): a detected but mislocalized sounding pair is a false
  positive only, not also a false negative, so the recall at the lowest threshold is 1.

Sweeping ``t`` gives a precision-recall curve. :func:`average_precision` is the area under its
interpolated form and :func:`max_f1` the best ``2PR / (P + R)`` along it (:class:`OpenSetProtocol`
says over which thresholds). The **precision** on the sounding pairs alone, every one detected,
is their success rate (fraction with cIoU ``>= 0.5``); :func:`precision_by_size` splits it by the
size of the ground truth (:data:`SIZE_BINS`).

A baseline that cannot tell the two kinds of pair apart (the whole image, the centre prior: one
confidence for every pair) detects all or nothing: its AP is the precision of detecting every
pair, ``TP / (N_sounding + N_non_sounding)`` (:func:`open_set_baselines`).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from soundloc.metrics.baselines import CENTRE_SIGMA_FRACTION, centre_prior, random_maps, whole_image_set
from soundloc.metrics.prediction import _predict, predicted_set
from soundloc.metrics.protocol import Protocol, get_protocol
from soundloc.metrics.scores import _as_gt_batch, ciou_from_set

#: Side of the frame in which :data:`SIZE_BINS` are given (the evaluation frame of LVS and SLAVC).
SIZE_FRAME = 224

#: Object-size bins of the sounding pairs: ``name -> [low, high)`` in pixels of the 224×224
#: evaluation frame, of the ground-truth map's sum ``Σ g``. From SLAVC's evaluation code
#: (``EvaluatorFull.min_sizes`` / ``max_sizes``): COCO's small / medium / large limits (32² and
#: 96² pixels) and a fourth bin, "huge", from 144² pixels (41 % of the frame).
SIZE_BINS: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 144.0**2),
    "huge": (144.0**2, math.inf),
}

#: Confidences computed from a map alone: ``"peak"`` (its largest value) and ``"top_quarter"``
#: (the mean of its largest quarter of values, ``ceil(n / 4)`` of ``n``: SLAVC's choice, which it
#: applies to the raw audio-visual similarity map).
MAP_CONFIDENCES: tuple[str, ...] = ("peak", "top_quarter")

Curve = Literal["every", "slavc-code"]


@dataclass(frozen=True)
class OpenSetProtocol:
    """The choices of the extended protocol.

    Attributes:
        success_threshold: cIoU a sounding pair's map needs to count as localized (0.5).
        success_inclusive: localized is ``cIoU >= success_threshold`` (SLAVC) rather than ``>``.
        curve: which thresholds make the precision-recall curve. ``"every"``: every distinct
            confidence, from the highest down; ``AP = Σ_k (R_k - R_{k-1}) · max_{j>=k} P_j`` with
            ``R_0 = 0`` (the area under the interpolated curve), max-F1 over the same points.
            ``"slavc-code"``: what SLAVC's published code computes, for comparison with its
            numbers: the sorted confidences without the highest, every ``s``-th from the top
            (``s = max(1, N // 200)``), ``AP = Σ_i max_{j>=i} P_j · (R_{i+1} - R_i)`` over
            consecutive points (no segment from recall 0), and max-F1 over every
            ``max(1, N // 10)``-th confidence in ascending order.
    """

    success_threshold: float = 0.5
    success_inclusive: bool = True
    curve: Curve = "every"

    def __post_init__(self) -> None:
        t = self.success_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"OpenSetProtocol.success_threshold must be in [0, 1], got {t!r}")
        if not isinstance(self.success_inclusive, bool):
            raise ValueError(f"OpenSetProtocol.success_inclusive must be a bool, got {self.success_inclusive!r}")
        if self.curve not in ("every", "slavc-code"):
            raise ValueError(f"OpenSetProtocol.curve must be 'every' or 'slavc-code', got {self.curve!r}")

    def localized(self, cious: Any) -> np.ndarray:
        """Which cIoUs count as localized."""
        c = np.asarray(cious, dtype=np.float64)
        return c >= self.success_threshold if self.success_inclusive else c > self.success_threshold

    def describe(self) -> str:
        op = ">=" if self.success_inclusive else ">"
        curve = ("every confidence as a threshold" if self.curve == "every"
                 else "the thresholds of SLAVC's code (every N//200-th; F1 at every N//10-th)")
        return f"localized: cIoU {op} {self.success_threshold:g}; curve over {curve}"


#: Named choices: ``"slavc"`` (the default: SLAVC's counts, every threshold) and ``"slavc-code"``.
OPEN_SET_PRESETS: dict[str, OpenSetProtocol] = {
    "slavc": OpenSetProtocol(),
    "slavc-code": OpenSetProtocol(curve="slavc-code"),
}


def get_open_set_protocol(protocol: OpenSetProtocol | str | None = None) -> OpenSetProtocol:
    """Resolve ``None`` (``"slavc"``), a preset name or an :class:`OpenSetProtocol`."""
    if protocol is None:
        return OPEN_SET_PRESETS["slavc"]
    if isinstance(protocol, OpenSetProtocol):
        return protocol
    if isinstance(protocol, str) and protocol in OPEN_SET_PRESETS:
        return OPEN_SET_PRESETS[protocol]
    raise ValueError(f"unknown open-set protocol {protocol!r}; presets: {sorted(OPEN_SET_PRESETS)}")


def _numbers(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A flat NumPy array of ``x`` (tensor on any device, array or sequence)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy() if dtype is np.float64 else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape(-1)


def _detections(confidence: Any, sounding: Any, localized: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf, snd, loc = _numbers(confidence), _numbers(sounding, bool), _numbers(localized, bool)
    if not (conf.shape == snd.shape == loc.shape):
        raise ValueError(f"confidence, sounding and localized differ in length: {conf.size}, {snd.size}, {loc.size}")
    if conf.size == 0:
        raise ValueError("no pairs to score")
    if not np.isfinite(conf).all():
        raise ValueError("confidence contains NaN or inf")
    if (loc & ~snd).any():
        raise ValueError("a non-sounding pair cannot be localized (localized must be False where sounding is)")
    return conf, snd, loc


def pr_at(conf: np.ndarray, snd: np.ndarray, loc: np.ndarray, t: float) -> tuple[float, float]:
    """Precision and recall at threshold ``t`` of checked arrays (confidence, sounding,
    localized): the counts of the module docstring."""
    det = conf >= t
    tp = int((det & snd & loc).sum())
    fp = int((det & ~(snd & loc)).sum())
    fn = int((~det & snd).sum())
    precision = 1.0 if tp + fp == 0 else tp / (tp + fp)
    recall = 1.0 if tp + fn == 0 else tp / (tp + fn)
    return precision, recall


def precision_recall(confidence: Any, sounding: Any, localized: Any, threshold: float) -> tuple[float, float]:
    """Precision and recall of the pairs detected at ``threshold`` (confidence ``>= threshold``),
    counted as in the module docstring. ``sounding`` and ``localized`` are bools per pair
    (``localized`` only where ``sounding``)."""
    return pr_at(*_detections(confidence, sounding, localized), float(threshold))


def pr_curve(confidence: Any, sounding: Any, localized: Any,
             protocol: OpenSetProtocol | str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, precision, recall)`` along the curve of ``protocol`` (float64 arrays,
    thresholds from the highest down; for ``"slavc-code"`` the thresholds of its AP)."""
    p = get_open_set_protocol(protocol)
    conf, snd, loc = _detections(confidence, sounding, localized)
    if p.curve == "every":
        thresholds = np.unique(conf)[::-1]
    else:
        step = max(1, conf.size // 200)
        thresholds = np.sort(conf)[:-1][::-step]
    pr = np.array([pr_at(conf, snd, loc, float(t)) for t in thresholds], dtype=np.float64).reshape(-1, 2)
    return thresholds.astype(np.float64), pr[:, 0], pr[:, 1]


def average_precision(confidence: Any, sounding: Any, localized: Any,
                      protocol: OpenSetProtocol | str | None = None) -> float:
    """Area under the interpolated precision-recall curve (see :class:`OpenSetProtocol`)."""
    p = get_open_set_protocol(protocol)
    _, precision, recall = pr_curve(confidence, sounding, localized, p)
    if precision.size == 0:
        return 0.0
    interpolated = np.maximum.accumulate(precision[::-1])[::-1]  # max over this and every lower threshold
    if p.curve == "every":
        gains = np.diff(np.concatenate([[0.0], recall]))
        return float((gains * interpolated).sum())
    return float((interpolated[:-1] * np.diff(recall)).sum())


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def max_f1(confidence: Any, sounding: Any, localized: Any, protocol: OpenSetProtocol | str | None = None) -> float:
    """The largest ``2PR / (P + R)`` over the thresholds of ``protocol``."""
    p = get_open_set_protocol(protocol)
    conf, snd, loc = _detections(confidence, sounding, localized)
    if p.curve == "every":
        thresholds = np.unique(conf)
    else:
        thresholds = np.sort(conf)[:: max(1, conf.size // 10)]
    return max(_f1(*pr_at(conf, snd, loc, float(t))) for t in thresholds)


def ground_truth_areas(gt: Any) -> np.ndarray:
    """``Σ g`` of each consensus map ``[B, S, S]``, in pixels of the 224×224 frame of
    :data:`SIZE_BINS` (times ``(224 / S)²`` for another evaluation size)."""
    g, _ = _as_gt_batch(gt)
    size = int(g.shape[-1])
    sums = g.reshape(g.shape[0], -1).double().sum(dim=1).cpu().numpy()
    return sums * (SIZE_FRAME / size) ** 2


def size_bin(area: float) -> str:
    """The :data:`SIZE_BINS` name of a ground-truth area (pixels of the 224 frame)."""
    if not (isinstance(area, (int, float, np.floating, np.integer)) and math.isfinite(area) and area >= 0):
        raise ValueError(f"area must be a finite number >= 0, got {area!r}")
    for name, (lo, hi) in SIZE_BINS.items():
        if lo <= area < hi:
            return name
    raise AssertionError("unreachable: the bins cover [0, inf)")


def precision_by_size(localized: Any, areas: Any) -> dict[str, dict[str, Any]]:
    """``{bin: {"precision": fraction localized or None, "n": pairs}}`` of the sounding pairs
    (every bin of :data:`SIZE_BINS`, ``None`` where a bin is empty)."""
    loc, area = _numbers(localized, bool), _numbers(areas)
    if loc.shape != area.shape:
        raise ValueError(f"localized and areas differ in length: {loc.size}, {area.size}")
    names = [size_bin(float(a)) for a in area]
    out: dict[str, dict[str, Any]] = {}
    for name in SIZE_BINS:
        idx = [k for k, b in enumerate(names) if b == name]
        out[name] = {"precision": float(loc[idx].mean()) if idx else None, "n": len(idx)}
    return out


def map_confidence(maps: Any, kind: str = "peak") -> torch.Tensor:
    """One confidence per map ``[B, H, W]`` (float64 ``[B]``): ``"peak"`` (the largest value) or
    ``"top_quarter"`` (the mean of the ``ceil(n / 4)`` largest of its ``n`` values)."""
    if kind not in MAP_CONFIDENCES:
        raise ValueError(f"confidence must be one of {MAP_CONFIDENCES}, got {kind!r}")
    x = torch.as_tensor(maps)
    if x.dim() != 3:
        raise ValueError(f"maps must be [B, H, W], got shape {tuple(x.shape)}")
    flat = x.reshape(x.shape[0], -1).double()
    if kind == "peak":
        return flat.amax(dim=1)
    k = -(-flat.shape[1] // 4)
    return flat.topk(k, dim=1).values.mean(dim=1)


@dataclass
class OpenSetScores:
    """The extended protocol's scores of one model (or baseline) on one set.

    Attributes:
        name: the row's label.
        confidence: which confidence ranked the pairs.
        n_sounding, n_non_sounding: pairs of each kind.
        ap, max_f1: average precision and max-F1 over all pairs.
        ap_blind: the AP of the same localizations under a confidence that cannot tell the
            pairs apart (one value for every pair): with ``"every"``, the localized sounding
            pairs' share of all pairs. An AP near it says the confidence ranks no better than
            chance; the gap above it is what the confidence adds.
        precision: fraction of the sounding pairs localized (every pair detected).
        by_size: :func:`precision_by_size` of the sounding pairs.
        ap_std, max_f1_std, precision_std: sample standard deviations over ``repeats`` draws
            (random baseline), else 0.
    """

    name: str
    confidence: str
    n_sounding: int
    n_non_sounding: int
    ap: float
    max_f1: float
    precision: float
    ap_blind: float = 0.0
    by_size: dict[str, dict[str, Any]] = field(default_factory=dict)
    ap_std: float = 0.0
    max_f1_std: float = 0.0
    precision_std: float = 0.0
    repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def open_set_scores(
    confidence_sounding: Any,
    cious: Any,
    areas: Any,
    confidence_non_sounding: Any,
    protocol: OpenSetProtocol | str | None = None,
    *,
    name: str = "model",
    confidence: str = "peak",
) -> OpenSetScores:
    """AP, max-F1, precision and precision by size from the sounding pairs' confidences, cIoUs
    and ground-truth areas (:func:`ground_truth_areas`) and the non-sounding pairs' confidences."""
    p = get_open_set_protocol(protocol)
    c_s, c_n, ci = _numbers(confidence_sounding), _numbers(confidence_non_sounding), _numbers(cious)
    if c_s.size != ci.size:
        raise ValueError(f"{c_s.size} sounding confidences for {ci.size} cIoUs")
    if c_s.size == 0:
        raise ValueError("no sounding pairs")
    loc_s = p.localized(ci)
    conf = np.concatenate([c_s, c_n])
    snd = np.concatenate([np.ones(c_s.size, bool), np.zeros(c_n.size, bool)])
    loc = np.concatenate([loc_s, np.zeros(c_n.size, bool)])
    return OpenSetScores(
        name=name, confidence=confidence, n_sounding=int(c_s.size), n_non_sounding=int(c_n.size),
        ap=average_precision(conf, snd, loc, p), max_f1=max_f1(conf, snd, loc, p),
        precision=float(loc_s.mean()), ap_blind=average_precision(np.zeros(conf.size), snd, loc, p),
        by_size=precision_by_size(loc_s, areas),
    )


def _summary(name: str, confidence: str, draws: Sequence[OpenSetScores]) -> OpenSetScores:
    ap = np.array([d.ap for d in draws])
    f1 = np.array([d.max_f1 for d in draws])
    pr = np.array([d.precision for d in draws])
    std = (lambda a: float(a.std(ddof=1)) if a.size > 1 else 0.0)
    by_size = {}
    for b in SIZE_BINS:
        vals = [d.by_size[b]["precision"] for d in draws if d.by_size[b]["precision"] is not None]
        by_size[b] = {"precision": float(np.mean(vals)) if vals else None, "n": draws[0].by_size[b]["n"]}
    return OpenSetScores(name=name, confidence=confidence, n_sounding=draws[0].n_sounding,
                         n_non_sounding=draws[0].n_non_sounding, ap=float(ap.mean()), max_f1=float(f1.mean()),
                         precision=float(pr.mean()), ap_blind=float(np.mean([d.ap_blind for d in draws])),
                         by_size=by_size, ap_std=std(ap), max_f1_std=std(f1),
                         precision_std=std(pr), repeats=len(draws))


def open_set_baselines(
    gt_sounding: Any,
    n_non_sounding: int,
    protocol: Protocol | str | None = None,
    open_protocol: OpenSetProtocol | str | None = None,
    *,
    seed: int = 0,
    repeats: int = 10,
    grid: tuple[int, int] = (20, 20),
    centre_sigma: float | None = None,
    confidence: str = "peak",
) -> dict[str, OpenSetScores]:
    """The extended protocol's scores of the whole image, the centre prior and random maps.

    The whole image and the centre prior give every pair the same map, hence one confidence (1
    for the whole image, the prior's :func:`map_confidence`): they detect every pair or none.
    Random: uniform maps on ``grid`` for every pair (sounding ones first, then the
    non-sounding ones, drawn from ``torch.Generator().manual_seed(seed)``), each scored through
    the same resize-normalise-threshold path as a model's and ranked by its own
    :func:`map_confidence`: a random ranking. Mean ± sample std over ``repeats`` draws.
    ``gt_sounding`` ``[B, S, S]``: the sounding pairs' consensus maps under ``protocol``.
    """
    p = get_protocol(protocol)
    op = get_open_set_protocol(open_protocol)
    g, _ = _as_gt_batch(gt_sounding)
    n_s, size = int(g.shape[0]), int(g.shape[-1])
    if isinstance(n_non_sounding, bool) or not isinstance(n_non_sounding, int) or n_non_sounding < 0:
        raise ValueError(f"n_non_sounding must be an int >= 0, got {n_non_sounding!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    areas = ground_truth_areas(g)
    out: dict[str, OpenSetScores] = {}
    whole = ciou_from_set(whole_image_set(size, device=g.device), g).cpu()
    out["whole image"] = open_set_scores(torch.ones(n_s), whole, areas, torch.ones(n_non_sounding), op,
                                         name="whole image", confidence="constant")
    sigma = size * CENTRE_SIGMA_FRACTION if centre_sigma is None else float(centre_sigma)
    prior = centre_prior(size, sigma, device=g.device)
    centre = ciou_from_set(predicted_set(prior, size, p), g).cpu()
    c = float(map_confidence(prior[None], confidence)[0])
    out["centre prior"] = open_set_scores(torch.full((n_s,), c), centre, areas, torch.full((n_non_sounding,), c), op,
                                          name="centre prior", confidence="constant")
    gen = torch.Generator().manual_seed(int(seed))
    draws = []
    for _ in range(repeats):
        maps = random_maps(n_s + n_non_sounding, tuple(grid), gen)
        conf = map_confidence(maps, confidence)
        kept = _predict(maps[:n_s].to(g.device), (size, size), p, p.threshold)
        cious = ciou_from_set(kept, g).cpu()
        draws.append(open_set_scores(conf[:n_s], cious, areas, conf[n_s:], op, name="random", confidence=confidence))
    out["random"] = _summary("random", confidence, draws)
    return out


__all__ = [
    "MAP_CONFIDENCES", "OPEN_SET_PRESETS", "OpenSetProtocol", "OpenSetScores", "SIZE_BINS", "SIZE_FRAME",
    "average_precision", "get_open_set_protocol", "pr_at", "ground_truth_areas", "map_confidence", "max_f1",
    "open_set_baselines", "open_set_scores", "pr_curve", "precision_by_size", "precision_recall", "size_bin",
]

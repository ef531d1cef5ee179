"""Losses of Senocak et al. (CVPR 2018): the unsupervised triplet loss L_U (the paper's
unsupervised learning, Sec. 3.2), the supervised attention loss L_S and the semi-supervised total
``L = L_U + λ L_S`` (its semi-supervised learning, Sec. 3.3). This module is the one place where
the objective is computed: the trainer gathers a batch's features and calls :func:`scheme_loss`.

Slide equations:

- ``d+ = ||f_v − f_s+||_2``, ``d− = ||f_v − f_s−||_2`` (f_s+ the pair's own sound feature,
  f_s− another sample's);
- ``[D+, D−] = softmax([d+, d−])``;
- ``L_U = ||[D+, D−] − [0, 1]||² = D+² + (D− − 1)²`` (since ``D− = 1 − D+`` this is ``2 D+²``);
- ``L_S = −Σ_i α_GT,i log α_i`` (cross-entropy between the ground-truth mask, normalised to a
  distribution over the grid, and the predicted attention);
- ``L = L_U + λ L_S`` with ``λ = 1`` where a sample has an annotation and ``0`` otherwise.

Negatives: :func:`sample_negatives` pairs each row of a batch with a *different* row chosen
uniformly at random (seedable with a ``torch.Generator``); the authors draw a random other sample
of the whole dataset, which within a shuffled batch is the same distribution up to the pool.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from soundloc.constants import SCHEMES, AttentionReduction, Scheme

Reduction = Literal["mean", "sum", "none"]


def _check_float(x: object, name: str, dim: int | tuple[int, ...]) -> torch.Tensor:
    dims = (dim,) if isinstance(dim, int) else dim
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimensions, got shape {tuple(x.shape)}")
    return x


def _reduce(per_row: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_row.mean()
    if reduction == "sum":
        return per_row.sum()
    if reduction == "none":
        return per_row
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def triplet_distances(
    f_v: torch.Tensor, f_pos: torch.Tensor, f_neg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``d+ = ||f_v − f_pos||_2`` and ``d− = ||f_v − f_neg||_2`` per row, each ``[B]``."""
    f_v = _check_float(f_v, "f_v", 2)
    f_pos = _check_float(f_pos, "f_pos", 2)
    f_neg = _check_float(f_neg, "f_neg", 2)
    if f_pos.shape != f_v.shape:
        raise ValueError(f"f_pos must have the shape of f_v {tuple(f_v.shape)}, got {tuple(f_pos.shape)}")
    if f_neg.shape != f_v.shape:
        raise ValueError(f"f_neg must have the shape of f_v {tuple(f_v.shape)}, got {tuple(f_neg.shape)}")
    d_pos = torch.linalg.vector_norm(f_v - f_pos, dim=1)
    d_neg = torch.linalg.vector_norm(f_v - f_neg, dim=1)
    return d_pos, d_neg


def unsupervised_loss(
    f_v: torch.Tensor, f_pos: torch.Tensor, f_neg: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """The paper's unsupervised triplet loss L_U (Sec. 3.2).

    ``[D+, D−] = softmax([d+, d−])``, ``L_U = D+² + (D− − 1)²`` per row, averaged over the batch
    (``reduction="mean"``). Ranges from 0 (``d+ ≪ d−``) through 0.5 (``d+ = d−``) to 2
    (``d+ ≫ d−``). The authors' code takes the mean over the two squared entries instead of
    their sum, i.e. half of this value (same gradients up to a factor 2).

    ``f_v``, ``f_pos``, ``f_neg``: ``[B, D]`` floats (visual embedding, own sound feature,
    another sample's sound feature).
    """
    d_pos, d_neg = triplet_distances(f_v, f_pos, f_neg)
    probs = torch.softmax(torch.stack([d_pos, d_neg], dim=1), dim=1)
    per_row = probs[:, 0] ** 2 + (probs[:, 1] - 1.0) ** 2
    return _reduce(per_row, reduction)


def normalize_gt(gt_attention: torch.Tensor, has_gt: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks ``[B, M]`` normalised to sum 1 on labelled rows, zeros elsewhere.

    A labelled row whose mask is empty or has negative values raises ``ValueError``.
    """
    if (gt_attention < 0).any():
        raise ValueError("gt_attention must be non-negative")
    sums = gt_attention.sum(dim=1)
    if bool(((sums <= 0) & has_gt).any()):
        rows = torch.nonzero((sums <= 0) & has_gt).flatten().tolist()
        raise ValueError(f"gt_attention is empty (sums to 0) on labelled rows {rows}")
    safe = torch.where(has_gt, sums, torch.ones_like(sums)).clamp_min(torch.finfo(sums.dtype).tiny)
    return torch.where(has_gt[:, None], gt_attention / safe[:, None], torch.zeros_like(gt_attention))


def _check_attention_inputs(logits: torch.Tensor, gt_attention: torch.Tensor,
                            has_gt: torch.Tensor | None) -> torch.Tensor:
    """``ValueError``/``TypeError`` unless ``logits`` and ``gt_attention`` are float maps of one
    shape and ``has_gt`` ``[B]`` bools (``None``: all); returns ``has_gt`` as bools on the device."""
    _check_float(logits, "logits", (2, 3))
    _check_float(gt_attention, "gt_attention", (2, 3))
    if gt_attention.shape != logits.shape:
        raise ValueError(
            f"gt_attention must have the shape of logits {tuple(logits.shape)}, got {tuple(gt_attention.shape)}"
        )
    b = logits.shape[0]
    if has_gt is None:
        has_gt = torch.ones(b, dtype=torch.bool, device=logits.device)
    if not isinstance(has_gt, torch.Tensor):
        raise TypeError(f"has_gt must be a torch.Tensor of bools, got {type(has_gt).__name__}")
    if has_gt.shape != (b,):
        raise ValueError(f"has_gt must have shape [{b}], got {tuple(has_gt.shape)}")
    return has_gt.to(device=logits.device, dtype=torch.bool)


def attention_loss(
    logits: torch.Tensor,
    gt_attention: torch.Tensor,
    has_gt: torch.Tensor | None = None,
    reduction: Literal["batch_mean", "labelled_mean", "sum", "none"] = "batch_mean",
    from_logits: bool = True,
) -> torch.Tensor:
    """The paper's supervised loss ``L_S = −Σ_i α_GT,i log α_i`` (Sec. 3.3).

    Args:
        logits: ``[B, H', W']`` (or ``[B, M]``) pre-softmax scores ``a_i / τ`` (the model output's
            ``logits``); ``log α`` is computed as ``log_softmax`` over the flattened grid, which
            is exact and stable. With ``from_logits=False`` pass the attention ``α`` instead
            (it is then clamped at the smallest positive float before the log).
        gt_attention: ``[B, H', W']`` non-negative masks on the same grid (e.g. the annotators'
            boxes downsampled); each labelled row is normalised to sum 1 here.
        has_gt: ``[B]`` bool, True where a ground truth exists (λ = 1); rows with False may
            hold anything (e.g. zeros) and contribute neither loss nor gradient. ``None`` = all.
        reduction: ``"batch_mean"`` (default, the paper's) divides the sum over labelled rows
            by the batch size: the per-sample ``λ(α_GT) L_S`` averaged over the whole batch;
            ``"labelled_mean"`` averages over the labelled rows (0 when none); ``"sum"``;
            ``"none"`` gives ``[B]`` with zeros on unlabelled rows.
    """
    has_gt = _check_attention_inputs(logits, gt_attention, has_gt)
    b = logits.shape[0]
    flat_logits = logits.reshape(b, -1)
    gt = normalize_gt(gt_attention.reshape(b, -1).to(flat_logits.dtype), has_gt)
    if from_logits:
        log_alpha = torch.log_softmax(flat_logits, dim=1)
    else:
        log_alpha = torch.log(flat_logits.clamp_min(torch.finfo(flat_logits.dtype).tiny))
    # gt is exactly 0 on unlabelled rows, and log_alpha is finite, so those rows give 0 and
    # zero gradient; torch.where keeps them exactly 0 even if log_alpha were -inf somewhere.
    per_cell = torch.where(gt > 0, gt * log_alpha, torch.zeros_like(log_alpha))
    per_row = -per_cell.sum(dim=1)
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    if reduction == "batch_mean":
        return per_row.sum() / b
    if reduction == "labelled_mean":
        n = has_gt.sum()
        return per_row.sum() / n.clamp_min(1).to(per_row.dtype)
    raise ValueError(f"reduction must be 'labelled_mean', 'batch_mean', 'sum' or 'none', got {reduction!r}")


@dataclass
class LossTerms:
    """The parts of a scheme's objective: ``total = l_u + λ l_s`` (scalar tensors); a term the
    scheme does not use, or ``l_s`` on a batch without any annotated pair, is ``None``."""

    total: torch.Tensor
    l_u: torch.Tensor | None
    l_s: torch.Tensor | None


@dataclass(frozen=True)
class BatchShare:
    """What one part of a larger batch weighs in the larger batch's objective.

    With data parallelism each process holds a part of the global batch
    (:mod:`soundloc.train.distributed`) and computes its terms over its part; each term is
    multiplied by its weight here, so that the mean over the processes of the weighted terms is
    the term of the global batch. ``labelled_anywhere``: some part of the global batch has an
    annotated pair, so L_S enters every part's objective (as an exact zero where the part has
    none), and every process computes gradients for the same parameters.
    """

    l_u: float = 1.0
    l_s: float = 1.0
    labelled_anywhere: bool = False


def semi_supervised_loss(
    f_v: torch.Tensor,
    f_pos: torch.Tensor,
    f_neg: torch.Tensor,
    logits: torch.Tensor,
    gt_attention: torch.Tensor,
    has_gt: torch.Tensor,
    lam: float = 1.0,
    attention_reduction: AttentionReduction = "batch_mean",
) -> LossTerms:
    """``L = L_U + λ L_S`` (Sec. 3.3): L_U over every row, L_S over the rows with ``has_gt``.

    ``lam`` is the λ applied to labelled rows (the paper uses 1); unlabelled rows always have
    λ = 0. ``l_s`` is reduced as in :func:`attention_loss` (``attention_reduction``). The same
    as :func:`scheme_loss` for the ``"semi_supervised"`` scheme on a batch with annotations.
    """
    return scheme_loss("semi_supervised", f_v, f_pos, f_neg, logits, gt_attention, has_gt, lam=lam,
                       attention_reduction=attention_reduction, labelled=True)


def objective(l_u: torch.Tensor | None, l_s: torch.Tensor | None, lam: float) -> torch.Tensor:
    """The paper's semi-supervised objective ``L = L_U + λ L_S`` (Sec. 3.3) from its terms; a
    scheme without one of them has the other alone (the supervised scheme: ``L_S``)."""
    if l_s is None:
        assert l_u is not None
        return l_u
    if l_u is None:
        return l_s
    return l_u + lam * l_s


def scheme_loss(
    scheme: Scheme,
    f_v: torch.Tensor,
    f_pos: torch.Tensor,
    f_neg: torch.Tensor | None,
    logits: torch.Tensor,
    gt_attention: torch.Tensor | None,
    has_gt: torch.Tensor,
    lam: float = 1.0,
    attention_reduction: AttentionReduction = "batch_mean",
    labelled: bool | None = None,
    share: BatchShare | None = None,
) -> LossTerms:
    """The objective of one of the paper's learning schemes (Table 1) on a batch.

    - ``"unsupervised"``: :func:`unsupervised_loss` of ``f_v`` with its own sound ``f_pos`` and
      another pair's ``f_neg`` (e.g. ``f_s[sample_negatives(B)]``);
    - ``"supervised"``: :func:`attention_loss` on the annotated rows;
    - ``"semi_supervised"``: both, combined by :func:`objective` (``L_U + λ L_S``).

    A batch without any annotated row gives ``l_s = None`` (and only L_U, or a zero total
    without gradient for the supervised scheme). ``labelled`` says whether some row has a
    ground truth when the caller knows it already (a count made on the host): reading
    ``has_gt`` back from a GPU would make the host wait for the device at every step.
    ``share`` weighs the terms of a part of a larger batch (:class:`BatchShare`).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if not isinstance(lam, (int, float)) or lam < 0:
        raise ValueError(f"lam must be a non-negative number, got {lam!r}")
    labelled = gt_attention is not None and (bool(has_gt.any()) if labelled is None else labelled)
    l_u = l_s = None
    if scheme != "supervised":
        if f_neg is None:
            raise ValueError(f"the {scheme} scheme needs negatives (another row's sound feature per row)")
        l_u = unsupervised_loss(f_v, f_pos, f_neg)
        l_u = l_u if share is None else l_u * share.l_u
    if scheme != "unsupervised" and labelled:
        assert gt_attention is not None
        if logits.shape != gt_attention.shape:
            raise ValueError(f"the dataset's gt_attention grid {tuple(gt_attention.shape[1:])} differs from the "
                             f"model's attention grid {tuple(logits.shape[1:])}: build the dataset with grid="
                             f"{tuple(logits.shape[1:])}")
        l_s = attention_loss(logits, gt_attention, has_gt, reduction=attention_reduction)
        l_s = l_s if share is None else l_s * share.l_s
    elif scheme != "unsupervised" and share is not None and share.labelled_anywhere:
        l_s = logits.sum() * 0.0  # annotated pairs elsewhere only: a zero that keeps the graph whole
    if l_u is None and l_s is None:
        return LossTerms(total=f_v.new_zeros(()), l_u=None, l_s=None)
    return LossTerms(total=objective(l_u, l_s, lam), l_u=l_u, l_s=l_s)


def sample_negatives(batch_size: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """For each row ``i`` of a batch, the index of a negative: uniform over the other rows.

    Draws ``r ~ U{0, ..., B−2}`` and maps it to ``r + (r >= i)``, which skips ``i``. Seed with a
    ``torch.Generator`` (CPU) for reproducible negatives. ``batch_size < 2`` raises ``ValueError``.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 2:
        raise ValueError(
            f"batch_size must be at least 2 to draw a negative from another row, got {batch_size}"
        )
    r = torch.randint(0, batch_size - 1, (batch_size,), generator=generator)
    idx = r + (r >= torch.arange(batch_size)).long()
    return idx if device is None else idx.to(device)


def shuffle_negatives(f_s: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``f_s[sample_negatives(B)]``: each row's negative sound feature from another row."""
    f_s = _check_float(f_s, "f_s", 2)
    idx = sample_negatives(f_s.shape[0], generator=generator, device=f_s.device)
    return f_s[idx]


__all__ = [
    "AttentionReduction",
    "BatchShare",
    "LossTerms",
    "attention_loss",
    "normalize_gt",
    "objective",
    "sample_negatives",
    "scheme_loss",
    "semi_supervised_loss",
    "shuffle_negatives",
    "triplet_distances",
    "unsupervised_loss",
]

"""Cross-modal retrieval scores: rank a gallery for each query and count the hits.

Pure tensor functions on a similarity matrix ``[Q, G]`` (``Q`` queries, ``G`` gallery items;
higher is more similar) and a boolean matrix ``positives`` of the same shape saying which
gallery items are correct answers for each query (one per row for instance retrieval, several
for class retrieval). The book uses them for sound-to-image retrieval with the embeddings of
Senocak et al. (CVPR 2018); :func:`soundloc.experiments.beyond.retrieval` builds the matrices
from a model.

- :func:`first_positive_rank` - the 1-based rank of each query's best-ranked positive;
- :func:`recall_at_k` - the fraction of queries with a positive in their top ``K``;
- :func:`median_rank` - the median of those ranks;
- :func:`chance_recall_at_k` - what a random ranking gives (exact, hypergeometric);
- :func:`retrieval_scores` - all of them in one :class:`RetrievalScores`.

Ties count against the query: a positive's rank is one plus the number of *negatives* scoring at
least as high as it, so a constant similarity matrix gets the worst ranks, never the best.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

#: the K of the usual retrieval tables
DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


def _check(similarity: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(similarity, torch.Tensor) or similarity.dim() != 2:
        raise ValueError(f"similarity must be a [Q, G] tensor, got {getattr(similarity, 'shape', type(similarity))}")
    positives = torch.as_tensor(positives, device=similarity.device)
    if positives.shape != similarity.shape:
        raise ValueError(f"positives has shape {tuple(positives.shape)}, similarity {tuple(similarity.shape)}")
    if positives.dtype != torch.bool:
        raise ValueError(f"positives must be a bool tensor, got {positives.dtype}")
    if similarity.shape[0] == 0 or similarity.shape[1] == 0:
        raise ValueError("similarity is empty")
    if torch.isnan(similarity).any():
        raise ValueError("similarity contains NaN")
    missing = ~positives.any(dim=1)
    if missing.any():
        raise ValueError(f"{int(missing.sum())} queries have no positive in the gallery (e.g. query {int(missing.nonzero()[0])})")
    return similarity.double(), positives


def first_positive_rank(similarity: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """``[Q]`` long: the 1-based rank of each query's best-scoring positive.

    ``rank = 1 + #{negatives j : similarity[q, j] >= best positive's score}`` (ties count
    against the query; other positives never push a positive down).
    """
    sim, pos = _check(similarity, positives)
    best = sim.masked_fill(~pos, -math.inf).amax(dim=1, keepdim=True)
    ahead = (sim >= best) & ~pos
    return 1 + ahead.sum(dim=1)


def _core_recall(ranks: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    return {int(k): float((ranks <= k).double().mean()) for k in ks}


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks!r}")
    return ks


def recall_at_k(similarity: torch.Tensor, positives: torch.Tensor,
                ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """``{K: fraction of queries with a positive among their K best-scoring gallery items}``."""
    return _core_recall(first_positive_rank(similarity, positives), _check_ks(ks))


def median_rank(similarity: torch.Tensor, positives: torch.Tensor) -> float:
    """The median of :func:`first_positive_rank` (the mean of the two middle ranks for an even
    number of queries)."""
    return float(first_positive_rank(similarity, positives).double().quantile(0.5))


def chance_recall_at_k(positives: torch.Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """Expected recall@K of a random ranking: for a query with ``p`` positives among ``G`` items,
    ``1 - C(G - p, K) / C(G, K)`` (the chance that ``K`` items drawn without replacement miss
    every positive), averaged over the queries."""
    pos = torch.as_tensor(positives)
    if pos.dim() != 2 or pos.dtype != torch.bool:
        raise ValueError("positives must be a [Q, G] bool tensor")
    ks = _check_ks(ks)
    g = pos.shape[1]
    counts = pos.sum(dim=1).tolist()
    out = {}
    for k in ks:
        kk = min(k, g)
        out[int(k)] = sum(1.0 - math.comb(g - p, kk) / math.comb(g, kk) for p in counts) / len(counts)
    return out


@dataclass
class RetrievalScores:
    """What :func:`retrieval_scores` measured.

    Attributes:
        ranks: ``[Q]`` 1-based rank of each query's best positive.
        recall: ``{K: recall@K}``.
        median_rank: median of ``ranks``.
        chance: ``{K: recall@K of a random ranking}`` for the same positives.
        gallery: number of gallery items ``G``.
    """

    ranks: torch.Tensor
    recall: dict[int, float]
    median_rank: float
    chance: dict[int, float] = field(default_factory=dict)
    gallery: int = 0


def retrieval_scores(similarity: torch.Tensor, positives: torch.Tensor,
                     ks: Sequence[int] = DEFAULT_KS) -> RetrievalScores:
    """Ranks, recall@K, median rank and chance recall@K in one call."""
    ks = _check_ks(ks)
    ranks = first_positive_rank(similarity, positives)
    return RetrievalScores(
        ranks=ranks, recall=_core_recall(ranks, ks), median_rank=float(ranks.double().quantile(0.5)),
        chance=chance_recall_at_k(positives.cpu(), ks), gallery=int(similarity.shape[1]),
    )


__all__ = ["DEFAULT_KS", "RetrievalScores", "chance_recall_at_k", "first_positive_rank", "median_rank",
           "recall_at_k", "retrieval_scores"]

"""Beyond localization: what a trained :class:`~soundloc.models.SoundLocalizer` does with sounds
it was not built for.

- :func:`retrieval` - sound-to-image retrieval with the learned embeddings: every sound of a
  small gallery is a query, every image a candidate; the score of a pair is the paper's
  ``-d+`` (:func:`pair_scores`). Scored with :mod:`soundloc.metrics.retrieval`.
- :func:`negative_audio_test` - the same images with their sound replaced by silence, white
  noise, another class's sound, or (a control) another clip of the same class: how much the
  attention map and its peak move (:func:`map_change`) and what becomes of cIoU@0.5 and AUC, as
  "A Critical Assessment of Visual Sound Source Localization Models Including Negative Audio"
  (2024) asks of every model.

Both read the whole dataset into memory: meant for galleries and test sets of a few hundred
pairs, as the book uses them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from soundloc.data import collate
from soundloc.data.types import Annotation
from soundloc.metrics import evaluate
from soundloc.metrics.retrieval import DEFAULT_KS, RetrievalScores, retrieval_scores
from soundloc.models import SoundLocalizer
from soundloc.utils import pipe_table

#: replacement sounds of :func:`negative_audio_test`; ``same_class`` is the control (a sound the
#: map *should* follow as it follows the pair's own)
NEGATIVE_KINDS: tuple[str, ...] = ("silence", "noise", "other_class", "same_class")


@dataclass
class Pairs:
    """A whole dataset in memory (:func:`read_pairs`): ``images`` ``[N, 3, H, W]``,
    ``waveforms`` ``[N, T]``, ``labels`` ``[N]`` (the ``label`` extra) or ``None``."""

    ids: list[str]
    images: torch.Tensor
    waveforms: torch.Tensor
    labels: torch.Tensor | None
    annotations: list[Annotation | None]


def read_pairs(dataset: Any, batch_size: int = 64) -> Pairs:
    """Read every pair of ``dataset`` in order (small datasets: it all stays in memory)."""
    if dataset is None or len(dataset) == 0:
        raise ValueError("dataset is empty")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    ids, images, waves, labels, anns = [], [], [], [], []
    has_labels = True
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        ids.extend(batch.ids)
        images.append(batch.image)
        waves.append(batch.waveform)
        anns.extend(batch.annotations)
        if "label" in batch.extras:
            labels.append(batch.extras["label"])
        else:
            has_labels = False
    return Pairs(ids, torch.cat(images), torch.cat(waves),
                  torch.cat(labels) if has_labels else None, anns)


def _batched(fn: Any, x: torch.Tensor, batch_size: int, dev: torch.device) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch_size].to(dev)) for i in range(0, x.shape[0], batch_size)])


# -- retrieval -----------------------------------------------------------------------------------
SCORES: tuple[str, ...] = ("distance", "cosine")


def pair_scores(model: SoundLocalizer, visual_features: torch.Tensor, sound_features: torch.Tensor,
                score: str = "distance") -> torch.Tensor:
    """``[S, I]``: the score of sound ``s`` against image ``i``.

    ``f_v`` depends on the sound through the attention, so each sound attends over every image
    in turn and the image's embedding is compared with that sound's feature. ``"distance"``:
    ``-||f_v(i | s) - f_s(s)||``, the paper's distance ``d+`` (small for a matching pair)
    negated so that higher is better; ``"cosine"``: ``cos(f_v(i | s), f_s(s))``, which ignores
    the embeddings' lengths. ``visual_features`` ``[I, D, h, w]`` from ``model.encode_image``;
    ``sound_features`` ``[S, d]`` from ``model.encode_sound``.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    n_images = visual_features.shape[0]
    rows = []
    for f_s in sound_features:
        f_s = f_s.expand(n_images, -1)
        f_v = model.localize(visual_features, f_s).f_v
        if score == "distance":
            rows.append(-(f_v - f_s).norm(dim=1))
        else:
            rows.append(torch.nn.functional.cosine_similarity(f_v, f_s, dim=1))
    return torch.stack(rows)


@dataclass
class Retrieval:
    """Sound-to-image retrieval on one gallery (what :func:`retrieval` returns).

    Attributes:
        ids: the pairs' ids; sound ``q`` and image ``q`` come from pair ``ids[q]``.
        similarity: ``[N sounds, N images]`` scores of :func:`pair_scores` (CPU, float32).
        labels: ``[N]`` class of each pair (the synthetic world's ``label``), or ``None``.
    """

    ids: list[str]
    similarity: torch.Tensor
    labels: torch.Tensor | None = None

    def positives(self, by: str = "instance") -> torch.Tensor:
        """``[N, N]`` bool: the right images for each sound: its own (``"instance"``) or every
        image of its class (``"class"``, needs labels)."""
        n = len(self.ids)
        if by == "instance":
            return torch.eye(n, dtype=torch.bool)
        if by == "class":
            if self.labels is None:
                raise ValueError("class retrieval needs labels (the dataset's samples have no 'label' extra)")
            return self.labels[:, None] == self.labels[None, :]
        raise ValueError(f"by must be 'instance' or 'class', got {by!r}")

    def scores(self, by: str = "instance", ks: Sequence[int] = DEFAULT_KS,
               direction: str = "sound_to_image") -> RetrievalScores:
        """Recall@K, median rank and chance (see :func:`~soundloc.metrics.retrieval.retrieval_scores`);
        ``direction="image_to_sound"`` ranks the sounds for each image instead (the transposed
        matrix: the direction the triplet loss trains, one image against two sounds)."""
        if direction not in ("sound_to_image", "image_to_sound"):
            raise ValueError(f"direction must be 'sound_to_image' or 'image_to_sound', got {direction!r}")
        sim = self.similarity if direction == "sound_to_image" else self.similarity.T
        return retrieval_scores(sim, self.positives(by), ks)

    def top(self, query: int, k: int = 5) -> list[int]:
        """Indices of the ``k`` best-scoring images for sound ``query``."""
        return self.similarity[query].topk(min(k, self.similarity.shape[1])).indices.tolist()


@torch.no_grad()
def retrieval(model: SoundLocalizer, dataset: Any, score: str = "distance", batch_size: int = 64,
              device: str | torch.device | None = None) -> Retrieval:
    """Score every sound of ``dataset`` against every image of it with :func:`pair_scores`
    (``score`` ``"distance"``, the paper's ``-d+``, or ``"cosine"``).

    Runs in eval mode without gradients (the model's mode is restored). ``N`` pairs cost ``N``
    passes of the localization module over ``N`` images: keep the gallery small (hundreds).
    """
    pairs = read_pairs(dataset, batch_size)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    try:
        feats = _batched(model.encode_image, pairs.images, batch_size, dev)
        sounds = _batched(model.encode_sound, pairs.waveforms, batch_size, dev)
        sim = pair_scores(model, feats, sounds, score)
    finally:
        model.train(was_training)
    return Retrieval(ids=pairs.ids, similarity=sim.float().cpu(), labels=pairs.labels)


# -- negative audio ------------------------------------------------------------------------------
def replacement_sounds(waveforms: torch.Tensor, kind: str, labels: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sounds that replace ``waveforms`` ``[N, T]`` in :func:`negative_audio_test`.

    ``silence``: zeros. ``noise``: white Gaussian noise with each clip's own RMS (clipped to
    [-1, 1]), so loudness does not change. ``other_class``: the clip of another pair, drawn
    among the pairs of another class. ``same_class``: the clip of another pair of the same
    class. Returns ``(sounds [N, T], source [N])`` with ``source[i]`` the pair whose clip
    replaced pair ``i``'s (``-1`` for silence and noise; ``i`` itself when no pair qualifies,
    e.g. the only pair of its class).
    """
    n = waveforms.shape[0]
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    source = torch.full((n,), -1, dtype=torch.long)
    if kind == "silence":
        return torch.zeros_like(waveforms), source
    if kind == "noise":
        rms = waveforms.double().pow(2).mean(dim=1, keepdim=True).sqrt().to(waveforms.dtype)
        noise = torch.randn(waveforms.shape, generator=g, dtype=waveforms.dtype)
        return (noise * rms).clamp(-1, 1), source
    if kind not in ("other_class", "same_class"):
        raise ValueError(f"kind must be one of {NEGATIVE_KINDS}, got {kind!r}")
    if labels is None:
        raise ValueError(f"kind {kind!r} needs the pairs' class labels (a 'label' extra)")
    for i in range(n):
        same = labels == labels[i]
        allowed = ~same if kind == "other_class" else same
        allowed[i] = False
        choices = allowed.nonzero().flatten()
        # a pair with no other pair to draw from keeps its own clip (source[i] == i)
        source[i] = choices[torch.randint(choices.numel(), (1,), generator=g)] if choices.numel() else i
    return waveforms[source], source


def map_change(before: torch.Tensor, after: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How far each attention map moved: ``(tv [N], peak_shift [N])``.

    ``tv``: the total-variation distance ``½ Σ_i |α_i - α'_i|`` between maps that sum to 1 (0:
    the same map, 1: no mass in common); ``peak_shift``: the Euclidean distance, in grid cells,
    between the two maps' highest cells.
    """
    if before.shape != after.shape or before.dim() != 3:
        raise ValueError(f"maps must both be [N, h, w], got {tuple(before.shape)} and {tuple(after.shape)}")
    tv = 0.5 * (before - after).abs().flatten(1).sum(dim=1)
    w = before.shape[2]
    pa, pb = before.flatten(1).argmax(dim=1), after.flatten(1).argmax(dim=1)
    dy, dx = (pa // w - pb // w).double(), (pa % w - pb % w).double()
    return tv, torch.sqrt(dy ** 2 + dx ** 2)


@dataclass
class NegativeAudioResult:
    """What :func:`negative_audio_test` measured on ``N`` pairs.

    Attributes:
        ids: the pairs' ids.
        original: ``[N, h, w]`` maps with each pair's own sound.
        maps: kind -> ``[N, h, w]`` maps with the replacement sound.
        tv, peak_shift: kind -> ``[N]`` (see :func:`map_change`).
        sources: kind -> ``[N]`` pair whose clip was used (``-1`` for silence and noise).
        tv_uniform: ``[N]`` total-variation distance of each original map from a uniform one (how
            far a map *could* move, at most about this much plus the same again).
        scores: ``"own sound"`` and each kind -> ``(cIoU@0.5, AUC)`` on the annotated pairs.
        n_scored: number of annotated pairs behind ``scores``.
    """

    ids: list[str]
    original: torch.Tensor
    maps: dict[str, torch.Tensor]
    tv: dict[str, torch.Tensor]
    peak_shift: dict[str, torch.Tensor]
    sources: dict[str, torch.Tensor]
    tv_uniform: torch.Tensor
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_scored: int = 0

    def rows(self) -> list[dict[str, Any]]:
        """One row per replacement: mean TV, mean and median peak shift, share of pairs whose
        peak stayed in its cell, cIoU@0.5 and AUC, and their change from the own sound."""
        own = self.scores.get("own sound")
        out = []
        for kind in self.maps:
            shift = self.peak_shift[kind].double()
            row: dict[str, Any] = {
                "sound": kind, "tv_mean": float(self.tv[kind].double().mean()),
                "peak_shift_mean": float(shift.mean()), "peak_shift_median": float(shift.quantile(0.5)),
                "same_peak": float((shift == 0).double().mean()),
            }
            if kind in self.scores and own is not None:
                s, a = self.scores[kind]
                row.update(success=s, auc=a, success_change=s - own[0], auc_change=a - own[1])
            out.append(row)
        return out


@torch.no_grad()
def _attention(model: SoundLocalizer, feats: torch.Tensor, waveforms: torch.Tensor, batch_size: int,
               dev: torch.device) -> torch.Tensor:
    maps = []
    for i in range(0, feats.shape[0], batch_size):
        f_s = model.encode_sound(waveforms[i:i + batch_size].to(dev))
        maps.append(model.localize(feats[i:i + batch_size], f_s).attention.float().cpu())
    return torch.cat(maps)


@torch.no_grad()
def negative_audio_test(
    model: SoundLocalizer,
    dataset: Any,
    kinds: Sequence[str] = NEGATIVE_KINDS,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    protocol: Any = None,
) -> NegativeAudioResult:
    """Localize each image of ``dataset`` with its own sound and with each replacement of
    ``kinds`` (:func:`replacement_sounds`), and measure the change of the maps
    (:func:`map_change`) and of cIoU@0.5 / AUC (:func:`~soundloc.metrics.evaluate`, LVS protocol
    unless ``protocol`` says otherwise) on the pairs that have annotations.

    A model that listens moves its map when the sound goes (silence, noise, another class) and
    keeps it for another clip of the same class; a model whose scores survive silence found
    the source by looking alone. ``seed`` fixes the noise and the drawn pairs.
    """
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in NEGATIVE_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected some of {NEGATIVE_KINDS}")
    pairs = read_pairs(dataset, batch_size)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    g = torch.Generator().manual_seed(int(seed))
    try:
        feats = _batched(model.encode_image, pairs.images, batch_size, dev)
        original = _attention(model, feats, pairs.waveforms, batch_size, dev)
        maps, sources = {}, {}
        for kind in kinds:
            sounds, sources[kind] = replacement_sounds(pairs.waveforms, kind, pairs.labels, g)
            maps[kind] = _attention(model, feats, sounds, batch_size, dev)
    finally:
        model.train(was_training)
    changes = {kind: map_change(original, m) for kind, m in maps.items()}
    uniform = torch.full_like(original, 1.0 / original[0].numel())
    result = NegativeAudioResult(
        ids=pairs.ids, original=original, maps=maps, tv={k: c[0] for k, c in changes.items()},
        peak_shift={k: c[1] for k, c in changes.items()}, sources=sources,
        tv_uniform=map_change(original, uniform)[0],
    )
    scored = [k for k, a in enumerate(pairs.annotations) if a is not None]
    if scored:
        anns = [pairs.annotations[k] for k in scored]
        for name, m in {"own sound": original, **maps}.items():
            ev = evaluate(m[scored], anns, protocol=protocol, baselines=False, per_annotator=False)
            result.scores[name] = (ev.success, ev.auc)
        result.n_scored = len(scored)
    return result


# -- the chapter's tables -------------------------------------------------------------------------

def retrieval_markdown(results: dict[tuple[str, str], Retrieval], ks: Sequence[int] = (1, 5, 10)) -> str:
    """The retrieval results as a Markdown table: one row per model (``results``' keys are
    ``(model name, score)``) and kind of right answer (its own image, ``instance``, or any image of
    its class, ``class``, where the gallery has labels): recall@K and the median rank of the first
    right image; below them, what a random ranking gives for each kind."""
    if not results:
        raise ValueError("results is empty")
    kinds = ["instance"] + (["class"] if all(r.labels is not None for r in results.values()) else [])
    rows, chance = [], {}
    for (name, score), r in results.items():
        for by in kinds:
            s = r.scores(by, ks)
            chance.setdefault(by, s)
            rows.append([name.replace("_", "-"), score, by, *(f"{s.recall[k]:.3f}" for k in ks), f"{s.median_rank:.1f}"])
    for by in kinds:
        rows.append(["chance (random ranking)", None, by, *(f"{chance[by].chance[k]:.3f}" for k in ks), None])
    gallery = next(iter(results.values())).similarity.shape[1]
    header = ["model", "score", "right images", *(f"R@{k}" for k in ks), "median rank"]
    return (f"Sound-to-image retrieval, every sound of a gallery of {gallery} test scenes against every image: "
            "recall@K (a right image among the first K) and the median rank of the first right image.\n\n"
            + pipe_table(header, rows, "lll" + "r" * (len(ks) + 1)))


def negative_audio_markdown(results: dict[str, NegativeAudioResult]) -> str:
    """The negative-audio test of several models (``results``: model name -> its result) as a
    Markdown table: per model its own sound's cIoU@0.5 and AUC, then one row per replacement with
    the mean TV distance and peak shift of the maps, the share of unmoved peaks and the scores."""
    if not results:
        raise ValueError("results is empty")
    rows = []
    for name, res in results.items():
        own = res.scores.get("own sound")
        label = name.replace("_", "-")
        rows.append([label, "own", None, None, None, *((f"{own[0]:.3f}", f"{own[1]:.3f}") if own else (None, None))])
        for row in res.rows():
            rows.append([label, row["sound"].replace("_", " "), f"{row['tv_mean']:.3f}", f"{row['peak_shift_mean']:.2f}",
                         f"{row['same_peak']:.3f}", *((f"{row['success']:.3f}", f"{row['auc']:.3f}")
                                                       if "success" in row else (None, None))])
    first = next(iter(results.values()))
    side = "×".join(map(str, first.original.shape[-2:]))
    header = ["model", "sound", "TV", "peak shift (cells)", "same peak", "cIoU@0.5", "AUC"]
    uniform = ", ".join(f"{n.replace('_', '-')} {float(r.tv_uniform.mean()):.3f}" for n, r in results.items())
    return (f"The negative-audio test on {first.n_scored} annotated test scenes ({side} grid): each image with its "
            "own sound and with the sound replaced.\n\n" + pipe_table(header, rows, "llrrrrr")
            + "\nTV and peak shift are means over the scenes; *same peak* is the share of scenes whose highest cell "
            f"did not move. How far a map could move, the mean TV of the own-sound maps from a uniform map: {uniform}.\n")


__all__ = ["NEGATIVE_KINDS", "NegativeAudioResult", "Pairs", "Retrieval", "SCORES", "map_change",
           "negative_audio_markdown", "negative_audio_test", "pair_scores", "read_pairs", "replacement_sounds",
           "retrieval", "retrieval_markdown"]

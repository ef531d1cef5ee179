"""Beyond localization: what a trained :class:`~soundloc.models.SoundLocalizer` does with sounds
it was not built for.

- :func:`retrieval` / :func:`retrievals` - sound-to-image retrieval with the learned embeddings:
  every sound of a small gallery is a query, every image a candidate; the score of a pair is the
  paper's ``-d+`` or the cosine (:func:`pair_scores`). Scored with :mod:`soundloc.metrics.retrieval`.
- :func:`negative_audio_test` - the same images with their sound replaced by silence, white
  noise, another class's sound, a sound whose source is not in view (off-screen), or (a
  control) another clip of the same class: how much the attention map and its peak move
  (:func:`map_change`), whether the model's confidence drops (:func:`pair_confidences`), and
  what becomes of cIoU@0.5 and AUC, as "A Critical Assessment of Visual Sound Source
  Localization Models Including Negative Audio" (Juanola et al., ICASSP 2025) asks of every
  model; :func:`negative_audio_baselines` gives the same readings for maps that do not listen.
- :func:`offscreen_partners` - for each pair, another pair whose sound's source is not in its
  frame: the off-screen sound of the negative-audio test and the non-sounding pairs of the
  extended protocol (:mod:`soundloc.experiments.benchmark`).

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
from soundloc.metrics.baselines import random_maps
from soundloc.metrics.openset import map_confidence
from soundloc.metrics.retrieval import DEFAULT_KS, RetrievalScores, retrieval_scores
from soundloc.models import LocalizerOutput, SoundLocalizer
from soundloc.utils.progress import progress_bar

#: replacement sounds of :func:`negative_audio_test`; ``same_class`` is the control (a sound the
#: map *should* follow as it follows the pair's own)
NEGATIVE_KINDS: tuple[str, ...] = ("silence", "noise", "other_class", "offscreen", "same_class")
#: replacements that need the pairs' class labels
LABELLED_KINDS: tuple[str, ...] = ("other_class", "offscreen", "same_class")

#: What a model can say about how sure it is that the frame shows the sound's source, one
#: number per pair (:func:`pair_confidences`): ``"peak"``, the attention map's largest α;
#: ``"cosine_peak"``, the largest cosine ``a_i`` between a cell and the sound (before the
#: softmax); ``"cosine_top_quarter"``, the mean of the largest quarter of the cosines (SLAVC's
#: confidence, on its own similarity map); ``"match"``, ``-d+ = -||f_v - f_s||``, the paper's own
#: score of a pair (small distance: the image and the sound go together).
CONFIDENCES: tuple[str, ...] = ("peak", "cosine_peak", "cosine_top_quarter", "match")
#: the map-only confidence (:data:`soundloc.metrics.openset.MAP_CONFIDENCES`) that stands in for
#: each of :data:`CONFIDENCES` where only a map exists (the baselines)
MAP_STAND_IN: dict[str, str] = {"peak": "peak", "cosine_peak": "peak", "cosine_top_quarter": "top_quarter",
                                "match": "peak"}


def pair_confidences(out: LocalizerOutput) -> dict[str, torch.Tensor]:
    """Every confidence of :data:`CONFIDENCES` for a batch of pairs: name -> ``[B]`` float64."""
    scores = out.extras.get("scores")
    if scores is None:
        raise ValueError("the model output has no 'scores' (the cosines a_i) in its extras")
    return {
        "peak": map_confidence(out.attention.detach(), "peak"),
        "cosine_peak": map_confidence(scores.detach(), "peak"),
        "cosine_top_quarter": map_confidence(scores.detach(), "top_quarter"),
        "match": -(out.f_v.detach() - out.f_s.detach()).double().norm(dim=1),
    }


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
                score: str | Sequence[str] = "distance") -> Any:
    """``[S, I]``: the score of sound ``s`` against image ``i`` (a dict score -> ``[S, I]`` when
    ``score`` is a sequence of names: every score from the same embeddings, computed once).

    ``f_v`` depends on the sound through the attention, so each sound attends over every image
    in turn and the image's embedding is compared with that sound's feature. ``"distance"``:
    ``-||f_v(i | s) - f_s(s)||``, the paper's distance ``d+`` (small for a matching pair)
    negated so that higher is better; ``"cosine"``: ``cos(f_v(i | s), f_s(s))``, which ignores
    the embeddings' lengths. ``visual_features`` ``[I, D, h, w]`` from ``model.encode_image``;
    ``sound_features`` ``[S, d]`` from ``model.encode_sound``.
    """
    names = (score,) if isinstance(score, str) else tuple(score)
    for name in names:
        if name not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {name!r}")
    n_images = visual_features.shape[0]
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for f_s in sound_features:
        f_s = f_s.expand(n_images, -1)
        f_v = model.localize(visual_features, f_s).f_v
        if "distance" in rows:
            rows["distance"].append(-(f_v - f_s).norm(dim=1))
        if "cosine" in rows:
            rows["cosine"].append(torch.nn.functional.cosine_similarity(f_v, f_s, dim=1))
    out = {name: torch.stack(r) for name, r in rows.items()}
    return out[score] if isinstance(score, str) else out


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
def retrievals(model: SoundLocalizer, dataset: Any, scores: Sequence[str] = SCORES, batch_size: int = 64,
               device: str | torch.device | None = None) -> dict[str, Retrieval]:
    """Score every sound of ``dataset`` against every image of it with :func:`pair_scores`, for
    each of ``scores`` (``"distance"``, the paper's ``-d+``, and ``"cosine"``) from one pass.

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
        sims = pair_scores(model, feats, sounds, tuple(scores))
    finally:
        model.train(was_training)
    return {name: Retrieval(ids=pairs.ids, similarity=sim.float().cpu(), labels=pairs.labels)
            for name, sim in sims.items()}


def retrieval(model: SoundLocalizer, dataset: Any, score: str = "distance", batch_size: int = 64,
              device: str | torch.device | None = None) -> Retrieval:
    """:func:`retrievals` with one score."""
    if not isinstance(score, str):
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    return retrievals(model, dataset, (score,), batch_size, device)[score]


# -- pairs read one at a time (a real test set does not fit in memory) ----------------------------
def pair_image(dataset: Any, k: int) -> torch.Tensor:
    """The image of pair ``k`` of ``dataset`` without reading its sound where the dataset can
    (``AVDataset.load_image``, ``SyntheticDataset.scene``)."""
    if hasattr(dataset, "load_image"):
        return dataset.load_image(k)
    if hasattr(dataset, "scene"):
        return dataset.scene(k).image
    return dataset[k].image


def pair_waveform(dataset: Any, k: int) -> torch.Tensor:
    """The sound of pair ``k`` of ``dataset`` without reading its image where the dataset can."""
    if hasattr(dataset, "load_waveform"):
        return dataset.load_waveform(k).reshape(-1)
    if hasattr(dataset, "scene"):
        return dataset.scene(k).waveform.reshape(-1)
    return dataset[k].waveform.reshape(-1)


def pair_labels(dataset: Any) -> torch.Tensor | None:
    """The class of every pair (the synthetic world's scenes, an ``index.csv`` column
    ``label``), or ``None`` where some pair has none. Reads no image where it can avoid it."""
    n = len(dataset)
    if hasattr(dataset, "scene"):
        return torch.tensor([dataset.scene(k).label for k in range(n)], dtype=torch.long)
    if hasattr(dataset, "rows"):
        cells = [r.get("label") or "" for r in dataset.rows]
        return torch.tensor([int(float(c)) for c in cells], dtype=torch.long) if all(cells) else None
    labels = [dataset[k].extras.get("label") for k in range(n)]
    return None if any(v is None for v in labels) else torch.stack(labels).long().reshape(-1)


@torch.no_grad()
def localize_positions(model: SoundLocalizer, images: Any, sounds: Any, pairs: Sequence[tuple[int, int]],
                       batch_size: int = 64, device: str | torch.device | None = None,
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Maps ``[P, h, w]`` (CPU float32) and :func:`pair_confidences` of ``P`` pairs made of the
    image of position ``i`` of the dataset ``images`` and the sound of position ``j`` of the
    dataset ``sounds``, for ``(i, j)`` in ``pairs``; read and localized ``batch_size`` at a time,
    in eval mode without gradients (the model's mode is restored)."""
    if not pairs:
        raise ValueError("no pairs to localize")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    maps, confs = [], []
    try:
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            img = torch.stack([pair_image(images, i) for i, _ in chunk]).to(dev)
            wav = torch.stack([pair_waveform(sounds, j) for _, j in chunk]).to(dev)
            out = model(img, wav)
            maps.append(out.attention.float().cpu())
            confs.append({k: v.cpu() for k, v in pair_confidences(out).items()})
    finally:
        model.train(was_training)
    return torch.cat(maps), {k: torch.cat([c[k] for c in confs]) for k in CONFIDENCES}


# -- negative audio ------------------------------------------------------------------------------
def _check_visible(visible: Sequence[Any] | None, n: int) -> list[frozenset[int]] | None:
    if visible is None:
        return None
    if len(visible) != n:
        raise ValueError(f"visible has {len(visible)} entries for {n} pairs")
    return [frozenset(int(k) for k in v) for v in visible]


def partner_rule(labels: bool, visible: bool) -> str:
    """How :func:`offscreen_partners` chooses, given whether classes and the classes in view are known."""
    if not labels:
        return "another clip (no classes known: its source may be in view)"
    if not visible:
        return "a clip of another class (only the pair's own class is known to be in view)"
    return "a clip of a class not in view (neither the sounding object nor a silent one)"


def offscreen_partners(n: int, labels: torch.Tensor | Sequence[int] | None = None, visible: Sequence[Any] | None = None,
                       generator: torch.Generator | None = None,
                       candidates: Sequence[int] | None = None) -> tuple[torch.Tensor, str]:
    """For each of ``n`` pairs, another pair whose sound's source is not in its frame.

    Pair ``j`` qualifies for pair ``i`` when ``j != i`` and ``labels[j]`` is none of the classes
    in view in ``i``'s frame: ``visible[i]`` (a collection of class indices, e.g. the synthetic
    world's sounding and silent objects), or, without ``visible``, ``{labels[i]}`` (only the
    pair's own class is known to be in view: VGG-SS). Without ``labels`` any other pair qualifies
    (Flickr-SoundNet has no classes: the partner's source may be in view). ``candidates``
    restricts the partners to those positions (default: all). One partner is drawn uniformly
    per pair, in order, from ``generator`` (seed 0 by default).

    Returns ``(source [n], rule)``: ``source[i]`` the partner's position, ``-1`` where none
    qualifies; ``rule`` says which of the three rules applied.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    lab = None if labels is None else torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if lab is not None and lab.numel() != n:
        raise ValueError(f"{lab.numel()} labels for {n} pairs")
    seen = _check_visible(visible, n)
    pool = torch.arange(n) if candidates is None else torch.as_tensor(list(candidates), dtype=torch.long)
    rule = partner_rule(lab is not None, seen is not None)
    source = torch.full((n,), -1, dtype=torch.long)
    pool_labels = lab[pool] if lab is not None else None
    for i in range(n):
        ok = pool != i
        if pool_labels is not None:
            banned = sorted(seen[i]) if seen is not None else [int(lab[i])]  # type: ignore[index]
            ok &= ~torch.isin(pool_labels, torch.tensor(banned, dtype=torch.long))
        choices = pool[ok]
        if choices.numel():
            source[i] = choices[torch.randint(choices.numel(), (1,), generator=g)]
    return source, rule


def draw_sources(kind: str, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 visible: Sequence[Any] | None = None) -> torch.Tensor:
    """``[n]``: the pair whose clip replaces each pair's for a drawn ``kind``: another class
    (``other_class``), the same class (``same_class``) or a class not in view (``offscreen``,
    :func:`offscreen_partners`, which needs no labels); ``i`` itself where no pair qualifies
    (e.g. the only pair of its class, or every class in view); ``-1`` everywhere for
    ``silence`` and ``noise``."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if kind in ("silence", "noise"):
        return torch.full((n,), -1, dtype=torch.long)
    if kind not in LABELLED_KINDS:
        raise ValueError(f"kind must be one of {NEGATIVE_KINDS}, got {kind!r}")
    if kind == "offscreen":
        source, _ = offscreen_partners(n, labels, visible, g)
        return torch.where(source < 0, torch.arange(n), source)
    if labels is None:
        raise ValueError(f"kind {kind!r} needs the pairs' class labels (a 'label' extra)")
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    source = torch.empty(n, dtype=torch.long)
    for i in range(n):
        same = labels == labels[i]
        allowed = ~same if kind == "other_class" else same
        allowed[i] = False
        choices = allowed.nonzero().flatten()
        # a pair with no other pair to draw from keeps its own clip (source[i] == i)
        source[i] = choices[torch.randint(choices.numel(), (1,), generator=g)] if choices.numel() else i
    return source


def noise_seeds(n: int, generator: torch.Generator) -> torch.Tensor:
    """``[n]`` seeds, one per pair, for :func:`noise_like` (drawn from ``generator``)."""
    return torch.randint(2**62, (n,), generator=generator, dtype=torch.long)


def noise_like(waveforms: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """White Gaussian noise with each clip's own RMS, clipped to [-1, 1] (loudness does not
    change); row ``i`` is drawn from its own generator seeded ``seeds[i]``, so a pair's noise
    does not depend on the pairs read with it."""
    if seeds.numel() != waveforms.shape[0]:
        raise ValueError(f"{seeds.numel()} seeds for {waveforms.shape[0]} clips")
    rms = waveforms.double().pow(2).mean(dim=1, keepdim=True).sqrt().to(waveforms.dtype)
    noise = torch.stack([torch.randn(waveforms.shape[1:], generator=torch.Generator().manual_seed(int(s)),
                                     dtype=waveforms.dtype) for s in seeds])
    return (noise * rms).clamp(-1, 1)


def replacement_sounds(waveforms: torch.Tensor, kind: str, labels: torch.Tensor | None = None,
                       generator: torch.Generator | None = None,
                       visible: Sequence[Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sounds that replace ``waveforms`` ``[N, T]`` in :func:`negative_audio_test`.

    ``silence``: zeros. ``noise``: :func:`noise_like` (seeds from ``generator``). ``other_class``, ``same_class``,
    ``offscreen``: the clip of the pair :func:`draw_sources` draws. Returns
    ``(sounds [N, T], source [N])`` with ``source[i]`` the pair whose clip replaced pair ``i``'s
    (``-1`` for silence and noise; ``i`` itself when no pair qualifies).
    """
    n = waveforms.shape[0]
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if kind == "silence":
        return torch.zeros_like(waveforms), torch.full((n,), -1, dtype=torch.long)
    if kind == "noise":
        return noise_like(waveforms, noise_seeds(n, g)), torch.full((n,), -1, dtype=torch.long)
    source = draw_sources(kind, n, labels, g, visible)
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


def change_row(tv: torch.Tensor, peak_shift: torch.Tensor, conf_own: torch.Tensor | None,
               conf_new: torch.Tensor | None) -> dict[str, Any]:
    """The readings of one replacement over the pairs given: mean TV, mean and median peak
    shift, share of pairs whose peak stayed in its cell, and, with confidences, the mean change
    of the confidence (replacement minus own) and the share of pairs whose confidence dropped."""
    if tv.numel() == 0:
        raise ValueError("no pairs to summarise")
    shift = peak_shift.double()
    row: dict[str, Any] = {
        "n": int(tv.numel()), "tv_mean": float(tv.double().mean()), "peak_shift_mean": float(shift.mean()),
        "peak_shift_median": float(shift.quantile(0.5)), "same_peak": float((shift == 0).double().mean()),
    }
    if conf_own is not None and conf_new is not None:
        diff = conf_new.double() - conf_own.double()
        row.update(confidence_change=float(diff.mean()), confidence_lower=float((diff < 0).double().mean()))
    return row


@dataclass
class NegativeAudioResult:
    """What :func:`negative_audio_test` measured on ``N`` pairs.

    Attributes:
        ids: the pairs' ids.
        original: ``[N, h, w]`` maps with each pair's own sound.
        maps: kind -> ``[N, h, w]`` maps with the replacement sound.
        tv, peak_shift: kind -> ``[N]`` (see :func:`map_change`).
        sources: kind -> ``[N]`` pair whose clip was used (``-1`` for silence and noise).
        valid: kind -> ``[N]`` bool: the pairs the kind could be tested on (a drawn kind with no
            qualifying partner keeps the pair's own clip and is left out of its readings).
        tv_uniform: ``[N]`` total-variation distance of each original map from a uniform one (how
            far a map *could* move, at most about this much plus the same again).
        confidences: ``"own sound"`` and each kind -> confidence name -> ``[N]``
            (:func:`pair_confidences`).
        scores: ``"own sound"`` and each kind -> ``(cIoU@0.5, AUC)`` on the annotated valid pairs.
        own_scores: kind -> ``(cIoU@0.5, AUC)`` with the own sound on the same pairs as ``scores[kind]``.
        n_scored: number of annotated pairs behind ``scores["own sound"]``.
    """

    ids: list[str]
    original: torch.Tensor
    maps: dict[str, torch.Tensor]
    tv: dict[str, torch.Tensor]
    peak_shift: dict[str, torch.Tensor]
    sources: dict[str, torch.Tensor]
    tv_uniform: torch.Tensor
    valid: dict[str, torch.Tensor] = field(default_factory=dict)
    confidences: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    own_scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_scored: int = 0

    def rows(self, confidence: str = "peak") -> list[dict[str, Any]]:
        """One row per replacement (:func:`change_row` over its valid pairs with the named
        confidence), then cIoU@0.5 and AUC and their change from the own sound on the same pairs."""
        out = []
        for kind in self.maps:
            ok = self.valid.get(kind, torch.ones(len(self.ids), dtype=torch.bool))
            if not bool(ok.any()):
                out.append({"sound": kind, "n": 0})
                continue
            own_c = self.confidences.get("own sound", {}).get(confidence)
            new_c = self.confidences.get(kind, {}).get(confidence)
            row: dict[str, Any] = {"sound": kind, **change_row(
                self.tv[kind][ok], self.peak_shift[kind][ok],
                None if own_c is None else own_c[ok], None if new_c is None else new_c[ok])}
            if kind in self.scores and kind in self.own_scores:
                s, a = self.scores[kind]
                s0, a0 = self.own_scores[kind]
                row.update(success=s, auc=a, success_change=s - s0, auc_change=a - a0)
            out.append(row)
        return out


@torch.no_grad()
def negative_audio_test(
    model: SoundLocalizer,
    dataset: Any,
    kinds: Sequence[str] = NEGATIVE_KINDS,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    protocol: Any = None,
    labels: torch.Tensor | Sequence[int] | None = None,
    visible: Sequence[Any] | None = None,
    progress: bool = False,
) -> NegativeAudioResult:
    """Localize each image of ``dataset`` with its own sound and with each replacement of
    ``kinds`` (:func:`draw_sources`, :func:`noise_like`), and measure the change of the maps
    (:func:`map_change`), of the confidences (:func:`pair_confidences`) and of cIoU@0.5 / AUC
    (:func:`~soundloc.metrics.evaluate`, LVS protocol unless ``protocol`` says otherwise) on the
    pairs that have annotations.

    ``labels`` (default: :func:`pair_labels`) and ``visible`` (the classes in view in each frame;
    see :func:`offscreen_partners`) serve the kinds that draw another pair's clip. The pairs are
    read ``batch_size`` at a time (each image once, its visual features shared by every sound),
    so a test set of thousands of real clips does not have to fit in memory. A model that
    listens moves its map and lowers its confidence when the sound goes (silence, noise, an
    off-screen sound) and keeps both for another clip of the same class; a model whose scores
    survive silence found the source by looking alone. ``seed`` fixes the drawn pairs and the
    noise, whatever ``batch_size``.
    """
    kinds = tuple(kinds)
    n = len(dataset) if dataset is not None else 0
    lab = _negative_inputs(kinds, batch_size, n, labels, dataset)
    g = torch.Generator().manual_seed(int(seed))
    sources = {kind: draw_sources(kind, n, lab, g, visible) for kind in kinds}
    seeds = noise_seeds(n, g)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    try:
        ids, annotations, own, per_kind = _localize_each_sound(model, dataset, kinds, sources, seeds, batch_size, dev,
                                                               progress)
    finally:
        model.train(was_training)

    def cat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {k: torch.cat([p[k] for p in parts]) for k in CONFIDENCES}

    original = torch.cat([m for m, _ in own])
    maps = {k: torch.cat([m for m, _ in v]) for k, v in per_kind.items()}
    confidences = {"own sound": cat([c for _, c in own]), **{k: cat([c for _, c in v]) for k, v in per_kind.items()}}
    changes = {kind: map_change(original, m) for kind, m in maps.items()}
    uniform = torch.full_like(original, 1.0 / original[0].numel())
    valid = {kind: (src < 0) | (src != torch.arange(n)) for kind, src in sources.items()}
    result = NegativeAudioResult(
        ids=ids, original=original, maps=maps, tv={k: c[0] for k, c in changes.items()},
        peak_shift={k: c[1] for k, c in changes.items()}, sources=sources,
        tv_uniform=map_change(original, uniform)[0], valid=valid, confidences=confidences,
    )
    _score_negatives(result, annotations, protocol)
    return result


def _negative_inputs(kinds: tuple[str, ...], batch_size: int, n: int, labels: Any, dataset: Any) -> torch.Tensor | None:
    """Check :func:`negative_audio_test`'s arguments; the pairs' class labels where a kind needs them."""
    for kind in kinds:
        if kind not in NEGATIVE_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected some of {NEGATIVE_KINDS}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if n == 0:
        raise ValueError("dataset is empty")
    needs = [k for k in kinds if k in ("other_class", "same_class")]
    lab = torch.as_tensor(labels, dtype=torch.long).reshape(-1) if labels is not None else (
        pair_labels(dataset) if any(k in LABELLED_KINDS for k in kinds) else None)
    if lab is not None and lab.numel() != n:
        raise ValueError(f"{lab.numel()} labels for {n} pairs")
    if needs and lab is None:
        raise ValueError(f"kind(s) {needs} need the pairs' class labels (a 'label' extra or labels=...)")
    return lab


def _replacement(kind: str, own: torch.Tensor, pos: torch.Tensor, sources: dict[str, torch.Tensor],
                 seeds: torch.Tensor, dataset: Any) -> torch.Tensor:
    """The sounds that replace a batch's own ones for ``kind``: silence, noise of their level,
    or the drawn pairs' clips (a pair left without a partner keeps its own sound)."""
    if kind == "silence":
        return torch.zeros_like(own)
    if kind == "noise":
        return noise_like(own, seeds[pos])
    src = sources[kind][pos]
    return torch.stack([own[r] if int(j) == int(p) else pair_waveform(dataset, int(j))
                        for r, (p, j) in enumerate(zip(pos, src))])


Localized = tuple[torch.Tensor, dict[str, torch.Tensor]]  # a batch's maps and confidences


def _localize_each_sound(model: SoundLocalizer, dataset: Any, kinds: tuple[str, ...], sources: dict[str, torch.Tensor],
                         seeds: torch.Tensor, batch_size: int, dev: torch.device,
                         progress: bool) -> tuple[list[str], list[Any], list[Localized], dict[str, list[Localized]]]:
    """Every batch's maps and confidences with its own sounds and with each kind's, each image's
    visual features computed once: ``(ids, annotations, own, per kind)``."""
    ids: list[str] = []
    annotations: list[Annotation | None] = []
    own_results: list[Localized] = []
    per_kind: dict[str, list[Localized]] = {k: [] for k in kinds}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    start = 0
    for batch in progress_bar(loader, progress, desc="negative audio", unit="batch", leave=False):
        pos = torch.arange(start, start + len(batch))
        start += len(batch)
        ids.extend(batch.ids)
        annotations.extend(batch.annotations)
        feats = model.encode_image(batch.image.to(dev))

        def run(waves: torch.Tensor) -> Localized:
            out = model.localize(feats, model.encode_sound(waves.to(dev)))
            return out.attention.float().cpu(), {k: v.cpu() for k, v in pair_confidences(out).items()}

        own_results.append(run(batch.waveform))
        for kind in kinds:
            per_kind[kind].append(run(_replacement(kind, batch.waveform, pos, sources, seeds, dataset)))
    return ids, annotations, own_results, per_kind


def _score_negatives(result: NegativeAudioResult, annotations: list[Any], protocol: Any) -> None:
    """cIoU@0.5 / AUC of the maps on the annotated pairs (with each kind's valid pairs only),
    into ``result.scores`` and ``result.own_scores``."""
    annotated = torch.tensor([a is not None for a in annotations], dtype=torch.bool)

    def score(m: torch.Tensor, keep: torch.Tensor) -> tuple[float, float]:
        idx = keep.nonzero().flatten().tolist()
        ev = evaluate(m[idx], [annotations[k] for k in idx], protocol=protocol, baselines=False, per_annotator=False)
        return ev.success, ev.auc

    if not bool(annotated.any()):
        return
    result.scores["own sound"] = score(result.original, annotated)
    result.n_scored = int(annotated.sum())
    for kind, m in result.maps.items():
        keep = annotated & result.valid[kind]
        if bool(keep.any()):
            result.scores[kind] = score(m, keep)
            result.own_scores[kind] = (result.scores["own sound"] if bool(keep.equal(annotated))
                                       else score(result.original, keep))


def negative_audio_baselines(n: int, grid: tuple[int, int], kinds: Sequence[str] = NEGATIVE_KINDS, seed: int = 0,
                             confidence: str = "peak") -> dict[str, list[dict[str, Any]]]:
    """The readings of :func:`change_row` for maps that do not listen, per kind: the whole image
    and the centre prior give every pair the same map whatever its sound (no change, no
    confidence change, by construction), and random maps (uniform values on ``grid``, normalised
    to sum 1, a fresh draw for the own sound and for each replacement from ``seed``) move
    without listening: they set how much change means nothing, since only a change larger for
    silence or an off-screen sound than for the same-class control says the model listens.
    ``confidence`` names one of :data:`CONFIDENCES` (its map stand-in ranks the random maps)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    kind_of_map = MAP_STAND_IN.get(confidence)
    if kind_of_map is None:
        raise ValueError(f"confidence must be one of {CONFIDENCES}, got {confidence!r}")
    gen = torch.Generator().manual_seed(int(seed))

    def draw() -> torch.Tensor:
        m = random_maps(n, tuple(grid), gen).double()
        return m / m.flatten(1).sum(dim=1)[:, None, None]

    own = draw()
    fixed = torch.full((n, *grid), 1.0 / (grid[0] * grid[1]), dtype=torch.float64)
    out: dict[str, list[dict[str, Any]]] = {"whole image": [], "centre prior": [], "random": []}
    for kind in kinds:
        for name in ("whole image", "centre prior"):
            tv, shift = map_change(fixed, fixed)
            c = map_confidence(fixed, "peak")
            out[name].append({"sound": kind, **change_row(tv, shift, c, c)})
        new = draw()
        tv, shift = map_change(own, new)
        out["random"].append({"sound": kind, **change_row(tv, shift, map_confidence(own, kind_of_map),
                                                          map_confidence(new, kind_of_map))})
    return out


__all__ = ["CONFIDENCES", "LABELLED_KINDS", "MAP_STAND_IN", "NEGATIVE_KINDS", "NegativeAudioResult", "Pairs",
           "Retrieval", "SCORES", "change_row", "draw_sources", "localize_positions", "map_change",
           "negative_audio_baselines", "negative_audio_test", "noise_like", "noise_seeds", "offscreen_partners", "pair_confidences",
           "pair_image", "pair_labels", "pair_scores", "pair_waveform", "partner_rule", "read_pairs", "replacement_sounds", "retrieval",
           "retrievals"]

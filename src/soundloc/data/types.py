"""The sample type shared by real and synthetic data.

Every dataset in soundloc yields :class:`Sample` objects and every loader batches them into a
:class:`Batch` with :func:`collate`. Annotations follow the Sound Source Localization dataset
(Senocak et al., 2018, Sec. 4): three annotators each draw a box around the sound source in a
256×256 frame and tag it "object" or "ambient".
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from soundloc.constants import ANNOTATION_FRAME, SAMPLE_RATE

#: Tags an annotator may give a box ("" where the source does not say).
TAGS = ("object", "ambient", "")

BoxT = tuple[int, int, int, int]


@dataclass(frozen=True)
class Annotation:
    """Boxes drawn by the annotators of one image/sound pair.

    Attributes:
        boxes: one entry per annotator, each a tuple of boxes ``(x1, y1, x2, y2)`` in integer
            pixel coordinates of a ``frame_size × frame_size`` frame, half-open (rows
            ``y1:y2``, columns ``x1:x2``). The paper's annotator map ``b_j`` is the union of
            annotator ``j``'s boxes; the community's evaluation code (LVS, the default of
            :mod:`soundloc.metrics`) counts every box separately instead (the two differ only
            where one annotator's boxes overlap; ``Protocol(box_union=True)`` gives the paper's).
        tags: one tag per annotator: ``"object"``, ``"ambient"`` or ``""`` (unknown).
        frame_size: side of the square frame the boxes live in (256 for Flickr-SoundNet; 224
            for VGG-SS, whose normalised boxes are stored in the evaluation frame:
            :mod:`soundloc.data.vggss`).
        category: the sound's class where the dataset names one (VGG-SS: ``"playing cello"``),
            else ``""``.
    """

    boxes: tuple[tuple[BoxT, ...], ...]
    tags: tuple[str, ...] = ()
    frame_size: int = ANNOTATION_FRAME
    category: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.frame_size, int) or self.frame_size <= 0:
            raise ValueError(f"frame_size must be a positive int, got {self.frame_size!r}")
        boxes = tuple(tuple(tuple(int(v) for v in box) for box in ann) for ann in self.boxes)
        for j, ann in enumerate(boxes):
            for box in ann:
                if len(box) != 4:
                    raise ValueError(f"annotator {j}: a box needs 4 coordinates, got {box!r}")
                x1, y1, x2, y2 = box
                if x2 < x1 or y2 < y1:
                    raise ValueError(f"annotator {j}: box {box!r} has x2 < x1 or y2 < y1")
        tags = tuple(self.tags) if self.tags else ("",) * len(boxes)
        if len(tags) != len(boxes):
            raise ValueError(f"{len(tags)} tags for {len(boxes)} annotators")
        for t in tags:
            if t not in TAGS:
                raise ValueError(f"unknown tag {t!r}; expected one of {TAGS}")
        if not isinstance(self.category, str):
            raise ValueError(f"category must be a string, got {self.category!r}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "tags", tags)

    @property
    def num_annotators(self) -> int:
        return len(self.boxes)

    def to_json(self) -> dict[str, Any]:
        """The per-item form stored in ``annotations.json`` (see :mod:`soundloc.data.layout`)."""
        out: dict[str, Any] = {
            "annotators": [
                {"boxes": [list(b) for b in ann], "tag": tag} for ann, tag in zip(self.boxes, self.tags)
            ]
        }
        if self.category:
            out["class"] = self.category
        return out

    @classmethod
    def from_json(cls, item: dict[str, Any], frame_size: int = ANNOTATION_FRAME) -> "Annotation":
        annotators = item["annotators"]
        return cls(
            boxes=tuple(tuple(tuple(b) for b in a["boxes"]) for a in annotators),
            tags=tuple(a.get("tag", "") for a in annotators),
            frame_size=frame_size,
            category=item.get("class", ""),
        )


@dataclass
class Sample:
    """One image/sound pair as a dataset returns it.

    Attributes:
        id: the pair's identifier (the Flickr video id for real data).
        image: ``[3, H, W]`` float32 in [0, 1], resized to the dataset's image size (not yet
            normalised; models normalise).
        waveform: ``[T]`` float32 mono audio at :data:`SAMPLE_RATE`.
        annotation: the annotators' boxes, or ``None`` for unlabelled pairs.
        gt_attention: ``[h, w]`` ground-truth attention on the model's grid (non-negative, sums
            to 1), made at load time from one annotator's boxes; ``None`` without annotation.
        extras: optional fields by name, e.g. the synthetic world's ``"context_mask"``
            (``[H, W]`` float in {0, 1}) or ``"label"`` (class index, 0-d long tensor).
    """

    id: str
    image: torch.Tensor
    waveform: torch.Tensor
    annotation: Annotation | None = None
    gt_attention: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    """A collated minibatch (see :func:`collate`).

    ``gt_attention`` is zero on rows whose ``has_gt`` is False (and everywhere when the
    dataset has no grid). ``extras`` holds the fields present in every sample of the batch.
    ``skipped`` lists ``(id, reason)`` of the pairs that could not be read and were left out
    (:func:`collate_readable`); the batch may then hold fewer rows, or none.
    """

    ids: list[str]
    image: torch.Tensor  # [B, 3, H, W]
    waveform: torch.Tensor  # [B, T]
    gt_attention: torch.Tensor  # [B, h, w] (or [B, 0, 0] without a grid)
    has_gt: torch.Tensor  # [B] bool
    annotations: list[Annotation | None]
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        def mv(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=non_blocking)

        return Batch(
            ids=self.ids,
            image=mv(self.image),
            waveform=mv(self.waveform),
            gt_attention=mv(self.gt_attention),
            has_gt=mv(self.has_gt),
            annotations=self.annotations,
            extras={k: mv(v) for k, v in self.extras.items()},
            skipped=self.skipped,
        )

    def pin_memory(self) -> "Batch":
        return Batch(
            ids=self.ids,
            image=self.image.pin_memory(),
            waveform=self.waveform.pin_memory(),
            gt_attention=self.gt_attention.pin_memory(),
            has_gt=self.has_gt.pin_memory(),
            annotations=self.annotations,
            extras={k: v.pin_memory() for k, v in self.extras.items()},
            skipped=self.skipped,
        )


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (use as a DataLoader's ``collate_fn``).

    Images and waveforms must share their shapes within a batch (datasets resize images and
    crop/pad audio to fixed sizes). A sample without ground truth gets a zero grid.
    """
    if len(samples) == 0:
        raise ValueError("collate needs at least one sample")
    shapes = {tuple(s.image.shape) for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"images of different shapes in one batch: {sorted(shapes)}")
    lengths = {int(s.waveform.shape[-1]) for s in samples}
    if len(lengths) != 1:
        raise ValueError(f"waveforms of different lengths in one batch: {sorted(lengths)}")
    grids = {tuple(s.gt_attention.shape) for s in samples if s.gt_attention is not None}
    if len(grids) > 1:
        raise ValueError(f"gt_attention grids of different shapes in one batch: {sorted(grids)}")
    grid = grids.pop() if grids else (0, 0)
    gt = torch.zeros((len(samples), *grid), dtype=torch.float32)
    has_gt = torch.zeros(len(samples), dtype=torch.bool)
    for i, s in enumerate(samples):
        if s.gt_attention is not None:
            gt[i] = s.gt_attention
            has_gt[i] = True
    common = set(samples[0].extras)
    for s in samples[1:]:
        common &= set(s.extras)
    extras = {k: torch.stack([s.extras[k] for s in samples]) for k in sorted(common)}
    return Batch(
        ids=[s.id for s in samples],
        image=torch.stack([s.image for s in samples]),
        waveform=torch.stack([s.waveform.reshape(-1) for s in samples]),
        gt_attention=gt,
        has_gt=has_gt,
        annotations=[s.annotation for s in samples],
        extras=extras,
    )


@dataclass
class Unreadable:
    """What a dataset wrapped by :class:`~soundloc.data.dataset.SkipUnreadable` gives for a
    pair it could not read: its id and why (the message names the file)."""

    id: str
    reason: str


def collate_readable(items: Sequence[Sample | Unreadable]) -> Batch:
    """:func:`collate` of the readable samples; the others go to ``Batch.skipped``. A batch
    of unreadable pairs only has no rows (empty tensors)."""
    samples = [s for s in items if isinstance(s, Sample)]
    skipped = [(s.id, s.reason) for s in items if isinstance(s, Unreadable)]
    if samples:
        batch = collate(samples)
        batch.skipped = skipped
        return batch
    empty = torch.zeros(0)
    return Batch(ids=[], image=empty.reshape(0, 3, 0, 0), waveform=empty.reshape(0, 0),
                 gt_attention=empty.reshape(0, 0, 0), has_gt=torch.zeros(0, dtype=torch.bool), annotations=[],
                 skipped=skipped)

"""One dataset interface for real and synthetic data: :class:`AVDataset`.

It reads a prepared folder (see :mod:`soundloc.data.layout`), whichever way it was made
(``data_scripts/prepare_*.py`` for Flickr-SoundNet, ``soundloc synth`` for the synthetic
world), and yields :class:`~soundloc.data.types.Sample` objects. Ground-truth attention for
the supervised loss L_S (paper Sec. 3.3) is made here, at load time, for the model's grid.
"""
from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from soundloc.data import io
from soundloc.data.layout import ANNOTATIONS_FILE, read_annotations, read_id_list, read_index, split_path
from soundloc.data.types import SAMPLE_RATE, Annotation, Sample, Unreadable
from soundloc.metrics.groundtruth import box_map, consensus_map
from soundloc.metrics.regions import grid_coverage

GridT = tuple[int, int]


def grid_attention(mask: torch.Tensor, grid: GridT) -> torch.Tensor | None:
    """Turn a frame-sized mask into a ground-truth attention map on the model's grid.

    Each cell gets the fraction of its area that the mask covers (area averaging), and the
    map is normalised to sum 1: α_GT of the supervised loss L_S = −Σ_i α_GT,i log α_i.
    Returns ``None`` for an empty mask (no supervision can be made from it).
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {tuple(mask.shape)}")
    cells = grid_coverage(mask, grid)
    total = float(cells.sum())
    if total <= 0:
        return None
    return cells / total


def annotation_attention(
    annotation: Annotation, grid: GridT, annotator: int | str = "random", rng: np.random.Generator | None = None,
) -> torch.Tensor | None:
    """Ground-truth attention on ``grid`` from an annotation.

    ``annotator`` is an index, ``"random"`` (one annotator drawn per call, as the authors do at
    every training step), or ``"consensus"`` (the consensus map min(Σ_j b_j / 2, 1) of the
    evaluation protocol).
    """
    n = annotation.num_annotators
    if n == 0:
        return None
    if annotator == "consensus":
        mask = consensus_map(annotation.boxes, annotation.frame_size, consensus=min(2, n), box_union=True)
    else:
        if annotator == "random":
            j = int((rng or np.random.default_rng()).integers(n))
        elif isinstance(annotator, int) and 0 <= annotator < n:
            j = annotator
        else:
            raise ValueError(f"annotator must be 'random', 'consensus' or an index < {n}, got {annotator!r}")
        mask = box_map(annotation.boxes[j], annotation.frame_size)
    return grid_attention(mask, grid)


class EpochConcatDataset(ConcatDataset):
    """A ``ConcatDataset`` (e.g. unlabelled pairs followed by labelled ones, the
    semi-supervised training set) that passes :meth:`set_epoch` on to every part that has it,
    so each labelled pair gets a fresh annotator draw every epoch (a plain ``ConcatDataset``
    has no ``set_epoch``, and the draws of epoch 0 would stay)."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)


class AVDataset(Dataset[Sample]):
    """Image/sound pairs from a prepared folder (real or synthetic), as :class:`Sample` objects.

    Args:
        root: the prepared folder (``index.csv`` and friends).
        ids: which pairs: ``None`` (all in the index), a split name (``splits/<name>.txt``), a
            path to an id-list file, or a sequence of ids.
        image_size: side of the square image the model sees (frames are resized).
        grid: the model's attention grid ``(h, w)`` (or an int for square); ``None`` makes no
            ground-truth attention. For a stride-16 backbone, ``image_size // 16``.
        clip_seconds: audio length; clips are cropped from ``clip_offset`` or padded
            (``pad_mode``) to this length. ``None`` keeps whole files (batching then needs
            equal lengths).
        annotator: how ``gt_attention`` is made (see :func:`annotation_attention`).
        labelled: ``None`` uses every annotation found; a collection of ids restricts the
            ground truth to those pairs (the semi-supervised setting's labelled subset);
            ``False`` drops all ground truth (unsupervised).
        seed: makes the random annotator choice reproducible (with :meth:`set_epoch`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        ids: str | os.PathLike[str] | Sequence[str] | None = None,
        image_size: int = 224,
        grid: int | GridT | None = None,
        clip_seconds: float | None = 20.0,
        clip_offset: str = "start",
        pad_mode: str = "repeat",
        annotator: int | str = "random",
        labelled: Sequence[str] | set[str] | bool | None = None,
        sample_rate: int = SAMPLE_RATE,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        rows = read_index(self.root)
        by_id = {r["id"]: r for r in rows}
        selected = self._resolve_ids(ids, by_id)
        self.rows = [by_id[i] for i in selected]
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = int(image_size)
        self.grid: GridT | None = (grid, grid) if isinstance(grid, int) else (tuple(grid) if grid else None)  # type: ignore[assignment]
        if clip_offset not in {"start", "center", "random"}:
            raise ValueError(f"clip_offset must be 'start', 'center' or 'random', got {clip_offset!r}")
        self.clip_offset = clip_offset
        self.pad_mode = pad_mode
        self.sample_rate = sample_rate
        self.clip_samples = None if clip_seconds is None else int(round(clip_seconds * sample_rate))
        self.annotator = annotator
        self.seed = int(seed)
        self.epoch = 0
        self.audio = True  # False: samples without audio (see without_audio)
        ann_path = self.root / ANNOTATIONS_FILE
        annotations = read_annotations(ann_path) if ann_path.is_file() else {}
        self.annotations: dict[str, Annotation] = {i: annotations[i] for i in selected if i in annotations}
        if labelled is False:
            self.labelled: set[str] = set()
        elif labelled is None or labelled is True:
            self.labelled = set(self.annotations)
        else:
            self.labelled = set(labelled) & set(self.annotations)
        self.extra_columns = [c for c in (rows[0].keys() if rows else []) if c not in ("id", "frame", "audio")]

    def _resolve_ids(self, ids: str | os.PathLike[str] | Sequence[str] | None, by_id: dict[str, dict[str, str]]) -> list[str]:
        if ids is None:
            return list(by_id)
        if isinstance(ids, (str, os.PathLike)):
            p = Path(ids)
            lst = split_path(self.root, str(ids)) if not p.suffix and not p.is_file() else p
            wanted = read_id_list(lst)
        else:
            wanted = list(ids)
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise KeyError(f"{len(missing)} id(s) not in {self.root / 'index.csv'}: {missing[:5]}")
        return wanted

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def set_epoch(self, epoch: int) -> None:
        """Change the random annotator draws (call once per epoch for fresh draws)."""
        self.epoch = int(epoch)

    def without_audio(self) -> "AVDataset":
        """The same pairs, read without their audio (``waveform`` empty): for training from the
        frozen sound stream's cached features (:mod:`soundloc.data.sound_features`)."""
        other = copy.copy(self)
        other.audio = False
        return other

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def load_waveform(self, index: int) -> torch.Tensor:
        row = self.rows[index]
        wav = io.read_wav(self.root / row["audio"], sample_rate=self.sample_rate)
        if self.clip_samples is None:
            return wav
        extra = max(0, wav.shape[0] - self.clip_samples)
        offset = {"start": 0, "center": extra // 2}.get(self.clip_offset)
        if offset is None:  # random
            offset = int(self._rng(index).integers(extra + 1))
        return io.fit_length(wav, self.clip_samples, mode=self.pad_mode, offset=offset)

    def load_image(self, index: int) -> torch.Tensor:
        return io.read_image(self.root / self.rows[index]["frame"], self.image_size)

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {len(self.rows)} samples")
        row = self.rows[index]
        item_id = row["id"]
        annotation = self.annotations.get(item_id)
        gt = None
        if annotation is not None and self.grid is not None and item_id in self.labelled:
            gt = annotation_attention(annotation, self.grid, self.annotator, rng=self._rng(index))
        extras: dict[str, torch.Tensor] = {}
        for col in self.extra_columns:
            value = row.get(col) or ""
            if value == "":
                continue
            if col.endswith("_mask"):
                extras[col] = io.read_mask(self.root / value, self.image_size)
            else:
                try:
                    num = float(value)
                except ValueError:
                    continue
                extras[col] = torch.tensor(int(num)) if num.is_integer() and "." not in value else torch.tensor(num)
        return Sample(
            id=item_id,
            image=self.load_image(index),
            waveform=self.load_waveform(index) if self.audio else torch.zeros(0),
            annotation=annotation,
            gt_attention=gt,
            extras=extras,
        )


class SkipUnreadable(Dataset[Sample | Unreadable]):
    """``dataset`` with each pair that cannot be read given as :class:`Unreadable` instead of
    raising: a missing or corrupt file (the error names it), or silent audio (all samples zero:
    SoundNet's features of silence say nothing about the frame). Each one is reported once by a
    warning naming it. A training run over 144k downloaded videos should lose the pair, not the
    run; :func:`~soundloc.data.types.collate_readable` leaves them out of the batch and
    :class:`~soundloc.train.Trainer` counts them in the epoch's record.
    """

    def __init__(self, dataset: Dataset[Sample]) -> None:
        self.dataset = dataset
        self.reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _id(self, index: int) -> str:
        ids = getattr(self.dataset, "ids", None)
        return str(ids[index]) if ids is not None else f"#{index}"

    def __getitem__(self, index: int) -> Sample | Unreadable:
        try:
            sample = self.dataset[index]
        except (FileNotFoundError, ValueError, OSError) as exc:
            return self._skip(self._id(index), " ".join(str(exc).split()))
        if sample.waveform.numel() and not bool(sample.waveform.abs().max() > 0):  # empty: audio not read
            return self._skip(sample.id, "silent audio (all samples zero)")
        return sample

    def _skip(self, item_id: str, reason: str) -> Unreadable:
        if item_id not in self.reported:
            self.reported.add(item_id)
            warnings.warn(f"skipped pair {item_id}: {reason}", stacklevel=2)
        return Unreadable(item_id, reason)

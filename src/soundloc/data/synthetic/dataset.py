"""Scenes served as :class:`~soundloc.data.types.Sample` objects, and written to disk."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm

from soundloc.data import io
from soundloc.data.dataset import GridT, annotation_attention
from soundloc.data.layout import split_path, write_annotations, write_id_list, write_index
from soundloc.data.synthetic.config import KINDS
from soundloc.data.synthetic.world import Scene, SyntheticWorld, render_scenes, world_splits
from soundloc.data.types import Annotation, Sample


class SyntheticDataset(Dataset[Sample]):
    """Scenes of a :class:`SyntheticWorld` as :class:`Sample` objects, generated lazily.

    The knobs are those of :class:`~soundloc.data.dataset.AVDataset`, and a sample equals the
    one ``AVDataset`` reads from the folder :func:`write_world` makes (images are quantised to
    8 bits here as in the PNG; audio differs by the 16-bit WAV quantisation only), with extras
    ``"context_mask"``, ``"object_mask"`` (``[H, W]`` float) and ``"label"``,
    ``"context_label"``, ``"kind"`` (index into :data:`KINDS`), ``"visible"`` (0-d long).

    Args:
        world: the world.
        indices: which scenes: an int ``n`` (scenes ``0..n-1``) or a sequence of indices.
        grid: the model's attention grid for ``gt_attention`` (``None``: no ground truth).
        annotator: ``"random"`` (one annotator per sample, redrawn each epoch), ``"consensus"``
            or an annotator index (see :func:`~soundloc.data.dataset.annotation_attention`).
        labelled: ``None`` (every annotated scene gives ground truth), ``False`` (none: the
            unsupervised setting), or a collection of ids / indices (the labelled subset).
        seed: seeds the annotator draws (with :meth:`set_epoch`), as in ``AVDataset``.
        cache: keep generated scenes in memory (images as uint8, about 60 kB per 1 s scene).
    """

    def __init__(
        self,
        world: SyntheticWorld,
        indices: int | Sequence[int] = 1000,
        grid: int | GridT | None = None,
        annotator: int | str = "random",
        labelled: Iterable[str | int] | bool | None = None,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if not isinstance(world, SyntheticWorld):
            raise TypeError(f"world must be a SyntheticWorld, got {type(world).__name__}")
        self.world = world
        if isinstance(indices, (int, np.integer)) and not isinstance(indices, bool):
            if indices < 0:
                raise ValueError(f"indices must be a count >= 0 or a sequence of indices, got {indices}")
            self.indices = list(range(int(indices)))
        else:
            self.indices = [int(i) for i in indices]
            if any(i < 0 for i in self.indices):
                raise ValueError("indices must be non-negative")
        self.grid: GridT | None = (grid, grid) if isinstance(grid, int) else (tuple(grid) if grid else None)  # type: ignore[assignment]
        if not (annotator in ("random", "consensus") or (isinstance(annotator, int) and annotator >= 0)):
            raise ValueError(f"annotator must be 'random', 'consensus' or an index, got {annotator!r}")
        self.annotator = annotator
        self._labelled_spec = labelled
        if labelled is False:
            self._labelled_idx: set[int] | None = set()
        elif labelled is None or labelled is True:
            self._labelled_idx = None  # every annotated scene
        else:
            self._labelled_idx = {SyntheticWorld.index_of(x) if isinstance(x, str) else int(x) for x in labelled}
        self.seed = int(seed)
        self.epoch = 0
        self.cache = bool(cache)
        self._cache: dict[int, tuple[np.ndarray, torch.Tensor, Scene]] = {}
        self.image_size = world.config.image_size
        self.sample_rate = world.config.sample_rate

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def ids(self) -> list[str]:
        return [SyntheticWorld.scene_id(i) for i in self.indices]

    def set_epoch(self, epoch: int) -> None:
        """Change the random annotator draws (call once per epoch), as ``AVDataset.set_epoch``."""
        self.epoch = int(epoch)

    def _rng(self, position: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, position])

    def scene(self, position: int) -> Scene:
        """The :class:`Scene` at ``position`` (from the cache when present)."""
        index = self.indices[position]
        hit = self._cache.get(index)
        if hit is not None:
            img8, wav, meta = hit
            return dataclasses.replace(meta, image=torch.from_numpy(img8).float().div_(255.0), waveform=wav)
        sc = self.world.scene(index)
        img8 = self._store(sc)[0]
        return dataclasses.replace(sc, image=torch.from_numpy(img8).float().div_(255.0))

    def prefetch(self, workers: int = 0, progress: bool = False, desc: str = "rendering scenes") -> "SyntheticDataset":
        """Render every scene not yet cached (with ``workers`` processes; see
        :func:`render_scenes`) and keep it in the cache shared with :meth:`subset` datasets."""
        if not self.cache:
            raise ValueError("prefetch needs a dataset built with cache=True")
        todo = [i for i in dict.fromkeys(self.indices) if i not in self._cache]
        for sc in auto_tqdm(render_scenes(self.world, todo, workers), total=len(todo), desc=desc,
                       disable=not progress, leave=False):
            self._store(sc)
        return self

    def _store(self, sc: Scene) -> tuple[np.ndarray, torch.Tensor, Scene]:
        # quantise the image to 8 bits as a written PNG is, so that the in-memory and on-disk
        # samples agree exactly; audio is kept in float (16-bit PCM differs by < 2**-15)
        img8 = (sc.image.numpy() * 255.0 + 0.5).astype(np.uint8)
        entry = (img8, sc.waveform, dataclasses.replace(sc, image=torch.empty(0), waveform=torch.empty(0)))
        if self.cache:
            self._cache[sc.index] = entry
        return entry

    def is_labelled(self, index: int) -> bool:
        """Whether scene ``index`` may give ground truth (before checking it has an annotation)."""
        return self._labelled_idx is None or index in self._labelled_idx

    def labelled_indices(self) -> list[int]:
        """Positions whose samples carry ``gt_attention`` (annotated, labelled, and a grid set);
        found without rendering (:class:`~soundloc.train.Trainer` asks for them)."""
        if self.grid is None:
            return []
        return [
            k for k, i in enumerate(self.indices)
            if self.is_labelled(i) and self.world.scene_kind(i) != "offscreen"
        ]

    @property
    def labelled(self) -> set[str]:
        """Ids of the annotated pairs allowed to give ground truth (as ``AVDataset.labelled``)."""
        return {
            SyntheticWorld.scene_id(i) for i in self.indices
            if self.is_labelled(i) and self.world.scene_kind(i) != "offscreen"
        }

    def __getitem__(self, position: int) -> Sample:
        if not 0 <= position < len(self.indices):
            raise IndexError(f"index {position} out of range for {len(self.indices)} samples")
        sc = self.scene(position)
        gt = None
        if sc.annotation is not None and self.grid is not None and self.is_labelled(sc.index):
            gt = annotation_attention(sc.annotation, self.grid, self.annotator, rng=self._rng(position))
        return Sample(
            id=sc.id, image=sc.image, waveform=sc.waveform, annotation=sc.annotation, gt_attention=gt,
            extras={
                "context_mask": sc.context_mask, "object_mask": sc.object_mask,
                "label": torch.tensor(sc.label, dtype=torch.long),
                "context_label": torch.tensor(sc.context_label, dtype=torch.long),
                "kind": torch.tensor(KINDS.index(sc.kind), dtype=torch.long),
                "visible": torch.tensor(int(sc.visible), dtype=torch.long),
            },
        )

    def subset(self, indices: Sequence[int], **overrides: Any) -> "SyntheticDataset":
        """A dataset over other scene indices of the same world sharing this one's cache."""
        kw: dict[str, Any] = dict(grid=self.grid, annotator=self.annotator, labelled=self._labelled_spec, seed=self.seed, cache=self.cache)
        kw.update(overrides)
        out = SyntheticDataset(self.world, indices, **kw)
        out._cache = self._cache
        return out


def write_world(
    world: SyntheticWorld,
    root: str | os.PathLike[str],
    n: int,
    n_test: int = 0,
    n_labelled: int = 0,
    progress: bool = True,
) -> Path:
    """Write scenes ``0..n-1`` of ``world`` in the prepared-data layout under ``root``.

    Files (see :mod:`soundloc.data.layout`): ``frames/<id>.png``, ``audio/<id>.wav`` (16-bit),
    ``masks/<id>_context.png`` and ``masks/<id>_object.png``, ``index.csv`` (columns id, frame,
    audio, context_mask, object_mask, label, context_label, kind, visible), ``annotations.json``
    (every annotated scene; the world's config and seed stored beside the items),
    ``splits/train.txt``, ``splits/test.txt`` and ``splits/labelled.txt`` (:func:`world_splits`).
    Every file is written atomically; ``index.csv`` last, so a folder with an index is complete.
    """
    splits = world_splits(world, n, n_test, n_labelled)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    annotations: dict[str, Annotation] = {}
    kinds = {k: i for i, k in enumerate(KINDS)}
    for i in tqdm(range(n), desc="writing synthetic world", disable=not progress, leave=False):
        sc = world.scene(i)
        frame, audio = f"frames/{sc.id}.png", f"audio/{sc.id}.wav"
        cmask, omask = f"masks/{sc.id}_context.png", f"masks/{sc.id}_object.png"
        io.write_image(root / frame, sc.image)
        io.write_wav(root / audio, sc.waveform, world.config.sample_rate)
        io.write_image(root / cmask, (sc.context_mask.numpy() * 255).astype(np.uint8))
        io.write_image(root / omask, (sc.object_mask.numpy() * 255).astype(np.uint8))
        rows.append({
            "id": sc.id, "frame": frame, "audio": audio, "context_mask": cmask, "object_mask": omask,
            "label": sc.label, "context_label": sc.context_label, "kind": kinds[sc.kind], "visible": int(sc.visible),
        })
        if sc.annotation is not None:
            annotations[sc.id] = sc.annotation
    write_annotations(
        root / "annotations.json", annotations, source="soundloc synthetic world", seed=world.seed,
        world=world.config.to_dict(), kinds={v: k for k, v in kinds.items()},
    )
    for name, idx in (("train", splits.train), ("test", splits.test), ("labelled", splits.labelled)):
        write_id_list(split_path(root, name), [SyntheticWorld.scene_id(i) for i in idx])
    write_index(root, rows)
    return root

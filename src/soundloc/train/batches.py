"""Which pairs a scheme trains on, in which order, in which batches.

The order of every epoch is one seeded permutation of the training pairs (:class:`EpochOrder`),
drawn from a generator re-seeded from ``(seed, epoch)`` (:class:`EpochGenerators`), so that the
same seed gives the same run and a resumed epoch redraws its order and skips the batches done.
With several processes each takes its share of every global batch (:class:`ShardedEpochOrder`).
The supervised scheme trains on the labelled pairs only (:func:`training_subset`).
"""
from __future__ import annotations

import signal
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Sampler, Subset

from soundloc.data.dataset import SkipUnreadable
from soundloc.data.types import collate, collate_readable
from soundloc.train.config import TrainConfig
from soundloc.utils.progress import progress_bar


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for generator ``stream`` at ``epoch`` (independent streams per epoch)."""
    return int(np.random.SeedSequence([seed % 2**63, epoch, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EpochGenerators:
    """The two generators of training, CPU generators so that numbers do not depend on the
    device: ``shuffle`` draws each epoch's order, ``negative`` each step's negatives
    (:func:`soundloc.losses.sample_negatives`). :meth:`seed_epoch` re-seeds both for an epoch."""

    #: the streams of :func:`derived_seed`: shuffling, negatives, and validation's fixed negatives
    SHUFFLE, NEGATIVE, VALIDATION = 0, 1, 2

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.shuffle = torch.Generator()
        self.negative = torch.Generator()

    def seed_epoch(self, epoch: int) -> None:
        """Re-seed the shuffling and negative generators for ``epoch``."""
        self.shuffle.manual_seed(derived_seed(self.seed, epoch, self.SHUFFLE))
        self.negative.manual_seed(derived_seed(self.seed, epoch, self.NEGATIVE))

    def validation(self) -> torch.Generator:
        """A generator for validation's negatives: the same at every epoch."""
        return torch.Generator().manual_seed(derived_seed(self.seed, 0, self.VALIDATION))


class EpochOrder(Sampler[int]):
    """The shuffled order of one epoch, drawn from ``generator`` when iterated, from position
    ``start`` on: one ``randperm`` of the dataset per pass, the draw of
    ``DataLoader(shuffle=True, generator=...)``. A resumed run sets ``start`` to the pairs
    already done and redraws the same permutation from the re-seeded generator."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator
        self.start = 0
        self.epoch = 0
        self.tag_epoch = False  # yield (epoch, index) pairs for EpochTagged (persistent workers)

    def __iter__(self) -> Any:
        for index in self.indices():
            yield (self.epoch, index) if self.tag_epoch else index

    def indices(self) -> Any:
        """The epoch's dataset indices, in order (from ``start`` on)."""
        order = torch.randperm(self.size, generator=self.generator).tolist()
        yield from order[self.start:]

    def __len__(self) -> int:
        return self.size - self.start


class ShardedEpochOrder(EpochOrder):
    """One rank's share of :class:`EpochOrder`'s global order (data parallelism).

    Every rank draws the same permutation, cuts it into global batches of ``batch_size`` pairs
    (the last incomplete one dropped, as one process does) and takes the ``rank``-th slice of
    ``batch_size / world_size`` pairs of each: concatenated in rank order, the local batches are
    the one-process batch. ``start`` counts pairs of the global order (a multiple of
    ``batch_size``)."""

    def __init__(self, size: int, generator: torch.Generator, rank: int, world_size: int, batch_size: int) -> None:
        super().__init__(size, generator)
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} is not divisible by the world size {world_size}")
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size

    def indices(self) -> Any:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        local = self.batch_size // self.world_size
        for first in range(self.start, self.size - self.batch_size + 1, self.batch_size):
            yield from order[first + self.rank * local: first + (self.rank + 1) * local]

    def __len__(self) -> int:
        return (self.size - self.start) // self.batch_size * (self.batch_size // self.world_size)


class EpochTagged(torch.utils.data.Dataset):
    """``dataset`` indexed by ``(epoch, index)``: the epoch travels with each index.

    A persistent DataLoader worker keeps the copy of the dataset it was started with, which the
    trainer's ``set_epoch`` calls do not reach; this wrapper calls ``set_epoch`` on the worker's
    own copy of ``target`` (the dataset that has the method) when the epoch of an index changes,
    so the samples are those a fresh worker would give."""

    def __init__(self, dataset: Any, target: Any) -> None:
        self.dataset = dataset
        self.target = target  # pickled with dataset: a worker's target is its dataset's own
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self.epoch:
            if hasattr(self.target, "set_epoch"):
                self.target.set_epoch(epoch)
            self.epoch = epoch
        return self.dataset[index]


def labelled_indices(dataset: Any, progress: bool = False) -> list[int]:
    """Indices of the pairs of ``dataset`` that carry a ground-truth attention map: from the
    dataset's own ``labelled_indices()``, an :class:`~soundloc.data.AVDataset`'s ``labelled``
    ids (when it has a ``grid``), through a ``Subset`` or a ``ConcatDataset``, without loading
    anything; otherwise every pair is loaded once and checked."""
    if callable(getattr(dataset, "labelled_indices", None)):
        return [int(i) for i in dataset.labelled_indices()]
    if isinstance(dataset, Subset):
        inner = set(labelled_indices(dataset.dataset, progress))
        return [k for k, i in enumerate(dataset.indices) if int(i) in inner]
    if isinstance(dataset, ConcatDataset):  # e.g. unlabelled videos + the labelled pool
        starts = [0, *dataset.cumulative_sizes[:-1]]
        return [s + k for s, part in zip(starts, dataset.datasets) for k in labelled_indices(part, progress)]
    if hasattr(dataset, "labelled") and hasattr(dataset, "ids") and hasattr(dataset, "grid"):
        labelled = set(dataset.labelled) if dataset.grid is not None else set()
        return [k for k, i in enumerate(dataset.ids) if i in labelled]
    found = progress_bar(range(len(dataset)), progress, desc="finding labelled pairs", leave=False)
    return [k for k in found if getattr(dataset[k], "gt_attention", None) is not None]


def training_subset(dataset: Any, config: TrainConfig) -> Any:
    """The pairs ``config.scheme`` trains on: all of them, or the labelled ones for the
    supervised scheme (never loading the others)."""
    if config.scheme != "supervised":
        return dataset
    idx = labelled_indices(dataset, config.progress)
    if not idx:
        raise ValueError("the supervised scheme needs labelled pairs, but the training set has none")
    return Subset(dataset, idx)


def _ignore_interrupt(worker_id: int) -> None:
    """A DataLoader worker's start: Ctrl-C reaches the whole process group, and the main
    process decides what it means; a worker that died of it would fail the next batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def training_pairs(train_set: Any, config: TrainConfig) -> Any:
    """The training subset, read through :class:`~soundloc.data.SkipUnreadable` with
    ``skip_unreadable``; ``ValueError`` when it cannot fill one batch."""
    if train_set is None or len(train_set) == 0:
        raise ValueError("train_set is empty")
    data = training_subset(train_set, config)
    data = SkipUnreadable(data) if config.skip_unreadable else data
    if len(data) < config.batch_size:
        what = "labelled pairs" if config.scheme == "supervised" else "pairs"
        raise ValueError(f"the training set has {len(data)} {what}, fewer than batch_size={config.batch_size}: "
                         "no full batch")
    return data


def make_loader(dataset: Any, config: TrainConfig, generator: torch.Generator | None, pin_memory: bool,
                rank: int = 0, world_size: int = 1, epoch_target: Any = None) -> DataLoader:
    """A DataLoader of :class:`~soundloc.data.Batch`: with a ``generator``, the shuffled
    training order (:class:`EpochOrder`, this rank's share with several processes; the last
    incomplete batch dropped); without, every pair in order. With ``persistent_workers`` the
    epoch travels with each index to ``epoch_target`` (default ``dataset``; :class:`EpochTagged`)."""
    c, batch_size = config, config.batch_size
    sampler: EpochOrder | None = None
    if generator is not None and world_size > 1:
        sampler = ShardedEpochOrder(len(dataset), generator, rank, world_size, batch_size)
        batch_size //= world_size
    elif generator is not None:
        sampler = EpochOrder(len(dataset), generator)
    persistent = c.persistent_workers and c.num_workers > 0 and sampler is not None
    if persistent:
        assert sampler is not None
        sampler.tag_epoch = True
        dataset = EpochTagged(dataset, dataset if epoch_target is None else epoch_target)
    extra = {"prefetch_factor": c.prefetch_factor} if c.num_workers > 0 and c.prefetch_factor is not None else {}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=generator is not None,
                      collate_fn=collate_readable if c.skip_unreadable else collate, num_workers=c.num_workers,
                      generator=generator, pin_memory=pin_memory, persistent_workers=persistent,
                      worker_init_fn=_ignore_interrupt if c.num_workers > 0 else None, **extra)


__all__ = ["EpochGenerators", "EpochOrder", "EpochTagged", "ShardedEpochOrder", "derived_seed", "labelled_indices",
           "make_loader", "training_pairs", "training_subset"]

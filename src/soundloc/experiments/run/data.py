"""A run's datasets, split as in the paper (Senocak et al., CVPR 2018, Sec. 4).

The *unlabelled* pairs (Flickr-SoundNet videos; the synthetic world's training scenes) train L_U;
the *supervision pool* (the annotated pairs outside the test list: "Sup. 2.5k" in Table 1) gives
the ``labelled`` pairs that train L_S and, drawn from the same pool and held out of training, the
*validation* pairs scored after every epoch to pick the best checkpoint. The *test* pairs are
scored once, at the end, with the best model: selecting a checkpoint on the test set inflates the
reported numbers. Training pairs that cannot be read are skipped by the trainer; validation and
test pairs are all read at the start, and a bad one stops the run before it trains.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset

from soundloc.data import AVDataset, EpochConcatDataset, PackedDataset, SkipUnreadable, SyntheticDataset, SyntheticWorld, Unreadable
from soundloc.data.layout import read_annotations, read_id_list, split_path
from soundloc.data.leakage import enforce_no_leakage
from soundloc.data.sound_features import WithSoundFeatures, ensure_sound_features
from soundloc.experiments.run.config import RunConfig
from soundloc.models import SoundLocalizer


@dataclass
class RunData:
    """The datasets of a run. ``train`` is what :meth:`Trainer.fit` gets (labelled pairs carry
    ``gt_attention``); ``val`` and ``test`` carry annotations but no ground-truth grid."""

    train: Any
    val: Any
    test: Any
    grid: tuple[int, int]
    sizes: dict[str, int]


def _pool_draw(pool: list[Any], config: RunConfig) -> tuple[list[Any], list[Any]]:
    """(validation, labelled) drawn from the supervision pool by ``split_seed``: one shuffled
    order, validation first, then the labelled pairs (nested across ``labelled`` sizes)."""
    need = config.val_size + (config.labelled if config.train.scheme != "unsupervised" else 0)
    if need > len(pool):
        raise ValueError(f"the supervision pool has {len(pool)} annotated pairs, fewer than --val-size "
                         f"{config.val_size} + --labelled {config.labelled}")
    order = np.random.default_rng([config.split_seed, 15]).permutation(len(pool))
    chosen = [pool[i] for i in order[:need]]
    return chosen[: config.val_size], chosen[config.val_size:]


def annotations_of(dataset: Any) -> list[Any]:
    """The annotation of every pair of an :class:`AVDataset` or a :class:`SyntheticDataset`."""
    if isinstance(dataset, SyntheticDataset):
        return [dataset.scene(k).annotation for k in range(len(dataset))]
    return [dataset.annotations[i] for i in dataset.ids]


def _synthetic_data(config: RunConfig, grid: tuple[int, int]) -> RunData:
    dc = config.data
    world = SyntheticWorld(dc.world, seed=dc.world_seed)
    train_idx = list(range(dc.n_scenes - dc.n_test))
    annotated = [i for i in range(dc.n_scenes) if world.scene_kind(i) != "offscreen"]
    test_idx = [i for i in annotated if i >= len(train_idx)]
    val_idx, lab_idx = _pool_draw([i for i in annotated if i < len(train_idx)], config)
    held = set(val_idx)
    fit_idx = [i for i in train_idx if i not in held]
    if dc.n_unlabelled is not None:
        fit_idx = sorted(set(fit_idx[: dc.n_unlabelled]) | set(lab_idx))
    base = SyntheticDataset(world, fit_idx, grid=grid, annotator=config.annotator, labelled=lab_idx,
                            seed=config.train.seed)
    if config.train.scheme == "unsupervised":
        base = base.subset(fit_idx, labelled=False)
    val = base.subset(val_idx, labelled=False, grid=None)
    test = base.subset(test_idx, labelled=False, grid=None)
    return RunData(train=base, val=val, test=test, grid=grid,
                   sizes={"train": len(fit_idx), "labelled": len(lab_idx), "val": len(val_idx), "test": len(test_idx)})


def _folder(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{what} {os.fspath(path)!r} is not a folder")
    if not (p / "index.csv").is_file():
        raise FileNotFoundError(f"{what} {os.fspath(path)!r} has no index.csv (prepare it with data_scripts/)")
    return p


def _folder_data(config: RunConfig, grid: tuple[int, int]) -> RunData:
    dc, m = config.data, config.model
    root = _folder(dc.root or "", "--data")
    annotated = _folder(dc.annotated, "--annotated") if dc.annotated else root
    test_list = split_path(annotated, "test")
    if not test_list.is_file():
        raise FileNotFoundError(f"{test_list} not found: the annotated set needs its test list "
                                "(soundloc data annotations --test-list ...)")
    test_ids = read_id_list(test_list)
    if not test_ids:
        raise ValueError(f"{test_list}: the test list is empty")
    anns = read_annotations(annotated / "annotations.json") if (annotated / "annotations.json").is_file() else {}
    pool_list = split_path(annotated, "train")
    pool = read_id_list(pool_list) if pool_list.is_file() else [i for i in anns if i not in set(test_ids)]
    pool = [i for i in pool if i in anns]
    val_ids, lab_ids = _pool_draw(pool, config)
    make = PackedDataset if dc.source == "packed" else AVDataset
    common: dict[str, Any] = dict(image_size=m.image_size, clip_seconds=m.clip_samples / m.sample_rate,
                                  sample_rate=m.sample_rate, seed=config.train.seed)
    held = set(val_ids) | set(test_ids) | (set(lab_ids) if annotated == root else set())
    unlabelled_ids = [r for r in AVDataset(root, **common).ids if r not in held]
    if dc.n_unlabelled is not None:
        unlabelled_ids = unlabelled_ids[: dc.n_unlabelled]
    enforce_no_leakage(unlabelled_ids + list(lab_ids), test_ids)
    fit: dict[str, Any] = dict(common, uint8_frames=True) if dc.uint8_frames else common  # training pairs only
    parts: list[Any] = []
    if config.train.scheme != "supervised" and unlabelled_ids:
        parts.append(make(root, unlabelled_ids, labelled=False, **fit))
    if config.train.scheme != "unsupervised":
        parts.append(make(annotated, lab_ids, grid=grid, annotator=config.annotator, labelled=set(lab_ids), **fit))
    train = parts[0] if len(parts) == 1 else EpochConcatDataset(parts)
    val = _all_readable(make(annotated, val_ids, labelled=False, **common), "validation")
    test = _all_readable(make(annotated, test_ids, labelled=False, **common), "test")
    return RunData(train=train, val=val, test=test, grid=grid,
                   sizes={"train": len(train), "labelled": len(lab_ids), "val": len(val_ids), "test": len(test_ids)})


def _all_readable(dataset: AVDataset, what: str) -> AVDataset:
    """``dataset`` after reading every pair once: the pairs a run is measured on must all be
    there (training pairs that cannot be read are skipped instead), and a bad one should stop
    the run before it trains, not at its end."""
    reader = SkipUnreadable(dataset)
    reader.reported.update(dataset.ids)  # no warning: the error below says it
    for k in range(len(dataset)):
        item = reader[k]
        if isinstance(item, Unreadable):
            raise ValueError(f"{what} pair {item.id}: {item.reason}")
    return dataset


def build_data(config: RunConfig) -> RunData:
    """The run's datasets (:class:`RunData`); a missing folder or too small a pool raises with
    the path or the option named."""
    size = config.data.world.image_size if config.data.source == "synthetic" else config.model.image_size
    grid = (size // config.model.visual_stride,) * 2  # the visual stream's stride (16 for VGG16)
    if config.data.source == "synthetic":
        return _synthetic_data(config, grid)  # type: ignore[arg-type]
    return _folder_data(config, grid)  # type: ignore[arg-type]


def with_sound_features(train: Any, model: SoundLocalizer, config: RunConfig, progress: bool = False) -> Any:
    """The training set served with cached sound features (see ``cache_sound_features``) when
    they apply: a frozen sound stream and prepared folders; else ``train`` unchanged."""
    if not (config.cache_sound_features and config.model.freeze_sound and config.data.source != "synthetic"):
        return train
    parts = train.datasets if isinstance(train, ConcatDataset) else [train]
    wrapped = [WithSoundFeatures(p, ensure_sound_features(model, p, progress=progress)) for p in parts]
    return EpochConcatDataset(wrapped) if isinstance(train, ConcatDataset) else wrapped[0]


__all__ = ["RunData", "annotations_of", "build_data", "with_sound_features"]

"""Training runs on any data: one typed config, its datasets, a run folder, resume.

What ``soundloc train`` does, as a library (Senocak et al., CVPR 2018, Sec. 3-4). A
:class:`TrainRunConfig` fully describes a run: the model (preset ``paper``, the authors' VGG16 at
320x320 with SoundNet-8 on 20 s, or ``cpu``, the small from-scratch model), the training
(:class:`~soundloc.train.TrainConfig`: scheme, optimizer, epochs...) and the data
(:class:`DataConfig`: the synthetic world, a prepared folder read by
:class:`~soundloc.data.AVDataset`, or its packed cache read by
:class:`~soundloc.data.PackedDataset`).

Splits, as in the paper: the *unlabelled* pairs (Flickr-SoundNet videos; the synthetic world's
training scenes) train L_U; the *supervision pool* (the annotated pairs outside the test list:
"Sup. 2.5k" in Table 1) gives the ``labelled`` pairs that train L_S and, drawn from the same
pool and held out of training, the *validation* pairs scored (cIoU@0.5, AUC) after every epoch
to pick the best checkpoint. The *test* pairs are scored once, at the end, with the best
model: selecting a checkpoint on the test set inflates the reported numbers.

A run folder holds ``config.json`` (the config, with the thread count it trains with),
``last.pt`` (a resumable checkpoint, :func:`soundloc.train.save_checkpoint`, written every
epoch and every ``TrainConfig.checkpoint_every`` steps), ``best.pt`` (the best model by validation,
:func:`soundloc.models.load_model` reads it), ``log.csv`` (one row per epoch; the same curves
in ``tensorboard/`` when that package is installed) and, at the end, ``results.json``
(validation history, test scores with the random, whole-image and centre-prior baselines and
per annotator, and provenance). :func:`resume_run` continues an interrupted run with every
setting recorded in ``config.json`` (threads included), so that it ends bit-identical to the
uninterrupted run on the same machine; :func:`open_run` applies the few changes a resume may
make (:data:`RESUMABLE`: more epochs, another device, thread count, checkpoint interval or
worker count) and records them there. Ctrl-C during training stops after the current step with
the checkpoint written there (:class:`~soundloc.train.TrainingInterrupted`); a second Ctrl-C
stops at once (the last checkpoint stays intact: it is written atomically). The temporary files
of a write cut short by SIGKILL are removed by the next start (:func:`soundloc.utils.stale_parts`).

Training pairs that cannot be read (missing, corrupt or silent files) are skipped with a
warning and counted in the log; validation and test pairs are all read at the start, and a bad
one stops the run before it trains. With a frozen sound stream on prepared folders, the sound
features are computed once and cached (:mod:`soundloc.data.sound_features`).

Under ``torchrun`` (several processes, :func:`soundloc.train.init_distributed`), every process
builds the same data and model and trains its share of each global batch
(:class:`~soundloc.train.Trainer`); rank 0 alone writes the run folder.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import signal
import threading
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import ConcatDataset

from soundloc.config import ConfigMixin, check_choice, check_int
from soundloc.data import AVDataset, EpochConcatDataset, PackedDataset, SkipUnreadable, SyntheticDataset, SyntheticWorld, Unreadable, WorldConfig
from soundloc.data.layout import read_annotations, read_id_list, split_path
from soundloc.data.leakage import enforce_no_leakage
from soundloc.data.sound_features import WithSoundFeatures, ensure_sound_features
from soundloc.experiments.provenance import provenance
from soundloc.metrics import evaluate
from soundloc.models import ModelConfig, SoundLocalizer, build_model, load_model
from soundloc.train import (
    Trainer,
    TrainConfig,
    checkpoint_position,
    distributed_world,
    predict_attention,
    read_checkpoint,
    resume_trainer,
    save_trained,
)
from soundloc.utils import atomic_open, json_safe, read_json, seed_everything, stale_parts, write_json

Preset = Literal["paper", "cpu"]
DataSource = Literal["synthetic", "folder", "packed"]
Selection = Literal["val_auc", "val_ciou"]

CONFIG_FILE = "config.json"
LAST_CHECKPOINT = "last.pt"
BEST_MODEL = "best.pt"
LOG_FILE = "log.csv"
RESULTS_FILE = "results.json"
#: The columns of ``log.csv`` (an epoch's history record, without its per-step curves).
LOG_COLUMNS = ("epoch", "loss", "l_u", "l_s", "steps", "pairs", "labelled", "unreadable", "lr", "val_ciou", "val_auc",
               "seconds")
#: The fields of a run's config that a resume may change (:func:`open_run`): they extend the run
#: or say where and how fast it runs; every other field defines the run and stays as recorded.
RESUMABLE = ("train.epochs", "train.device", "train.checkpoint_every", "train.num_workers", "threads")


def preset_model(preset: Preset, **overrides: Any) -> ModelConfig:
    """:meth:`ModelConfig.paper` or :meth:`ModelConfig.cpu` with ``overrides``."""
    if preset not in typing.get_args(Preset):
        raise ValueError(f"preset must be one of {list(typing.get_args(Preset))}, got {preset!r}")
    return (ModelConfig.paper if preset == "paper" else ModelConfig.cpu)(**overrides)


@dataclass
class DataConfig(ConfigMixin):
    """Where the pairs come from and how they are split.

    Attributes:
        source: ``"synthetic"`` (the built-in world, rendered in memory), ``"folder"`` (a
            prepared folder, :mod:`soundloc.data.layout`) or ``"packed"`` (the same folder read
            through its packed cache, :class:`~soundloc.data.PackedDataset`).
        root: the prepared folder of the unlabelled training pairs (``folder``/``packed``).
        annotated: the prepared folder of the annotated set (``annotations.json``,
            ``splits/test.txt``; ``splits/train.txt`` is the supervision pool, else every
            annotated pair outside the test list); default ``root``.
        n_unlabelled: use the first this many unlabelled pairs (``None``: all; the paper's 10k
            and 144k).
        world, world_seed, n_scenes, n_test: the synthetic world, its seed, how many scenes in
            all and how many of the last ones are held out for testing (the annotated ones
            among them are the test set).
        uint8_frames: (``packed`` only) the training pairs' frames travel as the cache's uint8
            and become floats on the device (:class:`~soundloc.data.PackedDataset`; the same
            numbers, a quarter of the bytes to copy).
    """

    source: DataSource = "synthetic"
    root: str | None = None
    annotated: str | None = None
    n_unlabelled: int | None = None
    world: WorldConfig = field(default_factory=WorldConfig)
    world_seed: int = 0
    n_scenes: int = 1200
    n_test: int = 200
    uint8_frames: bool = False

    def __post_init__(self) -> None:
        check_choice(self, "source")
        if self.uint8_frames is not False and (self.uint8_frames is not True or self.source != "packed"):
            raise ValueError(f"DataConfig.uint8_frames is a bool for source 'packed', got {self.uint8_frames!r} "
                             f"with source {self.source!r}")
        check_int(self, "n_unlabelled", optional=True)
        check_int(self, "world_seed", low=0)
        check_int(self, "n_scenes", "n_test")
        if self.source == "synthetic" and (self.root or self.annotated):
            raise ValueError("DataConfig.root and .annotated are for source 'folder' or 'packed', not 'synthetic'")
        if self.source != "synthetic" and not self.root:
            raise ValueError(f"DataConfig.root must name the prepared folder for source {self.source!r}")
        if self.n_test >= self.n_scenes:
            raise ValueError(f"DataConfig.n_test must be < n_scenes, got {self.n_test} >= {self.n_scenes}")


def default_train(preset: Preset = "cpu") -> TrainConfig:
    """The training a run gets unless told otherwise: semi-supervised, checkpoints every 200
    steps, unreadable pairs skipped; for the ``paper`` preset the authors' README command
    (Adam, lr 1e-4, batch 30, 10 epochs), for the ``cpu`` preset the small model's (lr 1e-3,
    batch 32, 8 epochs)."""
    common: dict[str, Any] = dict(scheme="semi_supervised", checkpoint_every=200, skip_unreadable=True)
    if preset == "paper":
        return TrainConfig(**common)  # TrainConfig's defaults are the authors' command
    return TrainConfig(epochs=8, batch_size=32, lr=1e-3, **common)


@dataclass
class TrainRunConfig(ConfigMixin):
    """Everything one training run depends on (saved as the run's ``config.json``).

    Attributes:
        preset: the model preset the run started from (``"paper"`` or ``"cpu"``); a checkpoint
            of another preset is refused on resume.
        model: the model (:meth:`ModelConfig.paper` / :meth:`ModelConfig.cpu` with changes).
        train: how to train (scheme, optimizer, epochs, checkpoint interval...).
        data: where the pairs come from.
        labelled: labelled pairs drawn from the supervision pool for L_S (the supervised and
            semi-supervised schemes; the paper's 0.5k-2.5k); 0 for the unsupervised scheme.
        val_size: validation pairs drawn from the supervision pool (held out of training).
        select_by: the validation score that picks ``best.pt``.
        split_seed: seeds the draw of the validation and labelled pairs from the pool (the
            labelled sets of different sizes are nested: the first N of one order).
        annotator: how L_S's ground truth is drawn each step (``"random"``: one annotator per
            pair, as the authors; ``"consensus"``; or an annotator's index).
        cache_sound_features: with a frozen sound stream and a prepared folder, compute the
            training clips' sound features once (``ROOT/cache/sound_features``, rebuilt when the
            sound weights change) and train from them without reading audio
            (:mod:`soundloc.data.sound_features`; the authors precompute them too).
        threads: torch's CPU threads (``torch.set_num_threads``). ``None``: the count the
            process has, which :func:`run_training` records here; float sums split over
            another count round otherwise, so a resume restores it.
    """

    preset: Preset = "cpu"
    model: ModelConfig = field(default_factory=ModelConfig.cpu)
    train: TrainConfig = field(default_factory=default_train)
    data: DataConfig = field(default_factory=DataConfig)
    labelled: int = 300
    val_size: int = 100
    select_by: Selection = "val_auc"
    split_seed: int = 0
    annotator: int | str = "random"
    cache_sound_features: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        check_choice(self, "preset", "select_by")
        check_int(self, "labelled", "split_seed", low=0)
        check_int(self, "val_size")
        check_int(self, "threads", optional=True)
        if self.train.epochs < 1:
            raise ValueError(f"a run trains at least one epoch: train.epochs must be >= 1, got {self.train.epochs}")
        if self.train.scheme != "unsupervised" and self.labelled < 1:
            raise ValueError(f"TrainRunConfig.labelled must be >= 1 for the {self.train.scheme} scheme, got 0")
        if self.train.scheme == "supervised" and self.labelled < self.train.batch_size:
            raise ValueError(f"TrainRunConfig.labelled = {self.labelled} is below train.batch_size = "
                             f"{self.train.batch_size}: the supervised scheme would make no full batch")
        if not (self.annotator in ("random", "consensus") or (isinstance(self.annotator, int) and self.annotator >= 0)):
            raise ValueError(f"TrainRunConfig.annotator must be 'random', 'consensus' or an index, got {self.annotator!r}")
        if self.data.source == "synthetic" and self.model.clip_samples != self.data.world.clip_samples:
            raise ValueError(f"model.clip_samples = {self.model.clip_samples} differs from the synthetic world's "
                             f"clips ({self.data.world.clip_samples} samples)")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A config file's dictionary: JSON, or YAML (``.yaml``/``.yml``) when PyYAML is installed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {os.fspath(path)!r}")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{p}: reading YAML needs PyYAML (pip install pyyaml); or give the config as JSON") from None
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    else:
        d = read_json(p)
    if not isinstance(d, dict):
        raise ValueError(f"{p}: a config file holds one mapping of fields, got {type(d).__name__}")
    return d


def build_run_config(d: dict[str, Any]) -> TrainRunConfig:
    """A :class:`TrainRunConfig` from a (possibly partial) dictionary: the ``model`` fields are
    changes to the ``preset``'s model (default ``cpu``); on the synthetic world the model's
    image size and clip length default to the world's. Unknown keys raise ``ValueError``."""
    d = dict(d)
    preset = d.get("preset", "cpu")
    data = DataConfig.from_dict(d.pop("data", {}) or {})
    model_changes = dict(d.pop("model", {}) or {})
    if data.source == "synthetic":
        model_changes.setdefault("image_size", data.world.image_size)
        model_changes.setdefault("clip_samples", data.world.clip_samples)
    unknown = sorted(set(model_changes) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise ValueError(f"ModelConfig has no field(s) {unknown} (unknown keys)")
    model = preset_model(preset, **model_changes)
    train = TrainConfig.from_dict({**default_train(preset).to_dict(), **(d.pop("train", {}) or {})})
    fields = {f.name for f in dataclasses.fields(TrainRunConfig)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise ValueError(f"TrainRunConfig has no field(s) {unknown} (unknown keys)")
    return TrainRunConfig(**{**d, "model": model, "train": train, "data": data})


# -- data ----------------------------------------------------------------------------------------


@dataclass
class RunData:
    """The datasets of a run. ``train`` is what :meth:`Trainer.fit` gets (labelled pairs carry
    ``gt_attention``); ``val`` and ``test`` carry annotations but no ground-truth grid."""

    train: Any
    val: Any
    test: Any
    grid: tuple[int, int]
    sizes: dict[str, int]


def _pool_draw(pool: list[Any], config: TrainRunConfig) -> tuple[list[Any], list[Any]]:
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


def _synthetic_data(config: TrainRunConfig, grid: tuple[int, int]) -> RunData:
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


def _folder_data(config: TrainRunConfig, grid: tuple[int, int]) -> RunData:
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


def build_data(config: TrainRunConfig) -> RunData:
    """The run's datasets (:class:`RunData`); a missing folder or too small a pool raises with
    the path or the option named."""
    size = config.data.world.image_size if config.data.source == "synthetic" else config.model.image_size
    grid = (size // config.model.visual_stride,) * 2  # the visual stream's stride (16 for VGG16)
    if config.data.source == "synthetic":
        return _synthetic_data(config, grid)  # type: ignore[arg-type]
    return _folder_data(config, grid)  # type: ignore[arg-type]


# -- scoring -------------------------------------------------------------------------------------


def score(model: SoundLocalizer, dataset: Any, grid: tuple[int, int], baselines: bool = False,
          seed: int = 0, batch_size: int = 32) -> Any:
    """cIoU@0.5 / AUC of ``model`` on an annotated ``dataset`` (:func:`soundloc.metrics.evaluate`,
    the LVS protocol; random baseline maps on the model's grid)."""
    ids, maps = predict_attention(model, dataset, batch_size=batch_size)
    return evaluate(maps, annotations_of(dataset), ids=ids, baselines=baselines, seed=seed,
                    random_grid=grid, per_annotator=baselines)


class RunTrainer(Trainer):
    """A :class:`Trainer` that keeps a run folder: ``log.csv`` and ``best.pt`` every epoch, and
    the same curves for TensorBoard in ``tensorboard/`` when the ``tensorboard`` package is
    installed (it is optional)."""

    def __init__(self, model: SoundLocalizer, config: TrainConfig, run_dir: Path, run_config: TrainRunConfig) -> None:
        super().__init__(model, config)
        self.run_dir = run_dir
        self.run_config = run_config
        self.checkpoint_extra = {"run_config": run_config.to_dict()}
        self._tensorboard: Any = None

    def best_so_far(self) -> float | None:
        """The best validation score of the finished epochs (``None`` before any)."""
        key = self.run_config.select_by
        vals = [r[key] for r in self.history if r.get(key) is not None]
        return max(vals) if vals else None

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        if self.rank != 0:  # with several processes (torchrun), rank 0 keeps the run folder
            return
        key = self.run_config.select_by
        best = self.best_so_far()
        if record.get(key) is not None and (best is None or record[key] > best):
            save_trained(self.run_dir / BEST_MODEL, self, extra={"epoch": record["epoch"], key: record[key],
                                                                  "run_config": self.run_config.to_dict()})
        write_log(self.run_dir / LOG_FILE, [*self.history, record])
        self.log_tensorboard(record)

    def log_tensorboard(self, record: dict[str, Any]) -> None:
        """The epoch's numbers as TensorBoard scalars (nothing when tensorboard is missing)."""
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # torch's writer needs the tensorboard package
                self._tensorboard = False
                return
            self._tensorboard = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        if self._tensorboard is False:
            return
        for key in LOG_COLUMNS:
            value = record.get(key)
            if key != "epoch" and isinstance(value, (int, float)):
                self._tensorboard.add_scalar(key, value, record["epoch"])
        self._tensorboard.flush()


def write_log(path: Path, history: list[dict[str, Any]]) -> None:
    """``log.csv``: one row per epoch (:data:`LOG_COLUMNS`), rewritten whole and atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in history:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in LOG_COLUMNS})
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())


def with_sound_features(train: Any, model: SoundLocalizer, config: TrainRunConfig, progress: bool = False) -> Any:
    """The training set served with cached sound features (see ``cache_sound_features``) when
    they apply: a frozen sound stream and prepared folders; else ``train`` unchanged."""
    if not (config.cache_sound_features and config.model.freeze_sound and config.data.source != "synthetic"):
        return train
    parts = train.datasets if isinstance(train, ConcatDataset) else [train]
    wrapped = [WithSoundFeatures(p, ensure_sound_features(model, p, progress=progress)) for p in parts]
    return EpochConcatDataset(wrapped) if isinstance(train, ConcatDataset) else wrapped[0]


def _val_fn(grid: tuple[int, int], seed: int) -> Any:
    def val_fn(model: SoundLocalizer, dataset: Any) -> dict[str, float]:
        ev = score(model, dataset, grid, seed=seed)
        return {"ciou": float(ev.success), "auc": float(ev.auc)}
    return val_fn


def _finish(trainer: RunTrainer, data: RunData, command: str | None) -> dict[str, Any]:
    """Score the best model (else the last) once on the test set and write ``results.json``
    (rank 0 writes it; with several processes every rank waits for rank 0's ``best.pt``)."""
    if trainer.world_size > 1:
        torch.distributed.barrier()
    run_dir, config = trainer.run_dir, trainer.run_config
    best_path = run_dir / BEST_MODEL
    model = load_model(best_path) if best_path.is_file() else trainer.model
    ev = score(model, data.test, data.grid, baselines=True, seed=config.train.seed)
    scored = [r for r in trainer.history if r.get(config.select_by) is not None]
    best = max(scored, key=lambda r: r[config.select_by]) if scored else None  # the first of equals
    results = {
        "config": config.to_dict(),
        "sizes": data.sizes,
        "history": [{k: v for k, v in r.items() if k != "step"} for r in trainer.history],
        "best": {"select_by": config.select_by, "score": best and best[config.select_by],
                 "epoch": best and best["epoch"], "model": BEST_MODEL if best_path.is_file() else None},
        "test": {"ciou_at_0.5": float(ev.success), "auc": float(ev.auc),
                 "baselines": {k: v.to_dict() for k, v in ev.baselines.items()}, "n": ev.n,
                 "per_annotator": None if ev.annotators is None else {
                     "iou_at_0.5": ev.annotators.success, "auc": ev.annotators.auc, "count": ev.annotators.count,
                     "mean_iou_at_0.5": ev.annotators.mean_success, "mean_auc": ev.annotators.mean_auc}},
        "provenance": provenance(trainer.device, command or ""),
    }
    if trainer.rank == 0:
        write_json(run_dir / RESULTS_FILE, json_safe(results))
    return results


def check_new_run(out: str | os.PathLike[str]) -> None:
    """``out`` does not hold a run already (resume that one instead)."""
    if (Path(out) / CONFIG_FILE).exists():
        raise FileExistsError(f"{out} already holds a run ({CONFIG_FILE}): resume it with --resume {out}")


def remove_stale_parts(run_dir: Path) -> None:
    """Delete the temporary files a SIGKILL left while writing the run folder's files."""
    for name in (CONFIG_FILE, LAST_CHECKPOINT, BEST_MODEL, LOG_FILE, RESULTS_FILE):
        for part in stale_parts(run_dir / name):
            part.unlink(missing_ok=True)


def use_threads(config: TrainRunConfig) -> TrainRunConfig:
    """Train with ``config.threads`` (set in torch), or record the count the process has."""
    if config.threads is None:
        return dataclasses.replace(config, threads=torch.get_num_threads())
    torch.set_num_threads(config.threads)
    return config


@contextlib.contextmanager
def stop_on_interrupt(trainer: Trainer) -> Iterator[None]:
    """While the block runs, a first Ctrl-C (SIGINT) asks ``trainer`` to stop after its current
    step (:attr:`~soundloc.train.Trainer.stop_requested`: it writes its checkpoint there and
    raises :class:`~soundloc.train.TrainingInterrupted`) and a second one interrupts at once.
    In the main thread of a single process only: with several (torchrun), the ranks would stop
    at different steps, so Ctrl-C interrupts at once there."""
    if threading.current_thread() is not threading.main_thread() or trainer.world_size > 1:
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def first_interrupt(signum: int, frame: Any) -> None:
        trainer.stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one interrupts

    signal.signal(signal.SIGINT, first_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _new_trainer(config: TrainRunConfig, run_dir: Path, progress: bool) -> RunTrainer:
    seed_everything(config.train.seed)
    model = build_model(config.model)
    return RunTrainer(model, dataclasses.replace(config.train, progress=progress), run_dir, config)


def _train(trainer: RunTrainer, data: RunData, progress: bool, command: str | None) -> dict[str, Any]:
    config, run_dir = trainer.run_config, trainer.run_dir
    train_set = with_sound_features(data.train, trainer.model, config, progress)
    with stop_on_interrupt(trainer):
        trainer.fit(train_set, data.val, _val_fn(data.grid, config.train.seed), checkpoint=run_dir / LAST_CHECKPOINT)
    return _finish(trainer, data, command)


def run_training(config: TrainRunConfig, out: str | os.PathLike[str], command: str | None = None,
                 progress: bool = True, data: RunData | None = None) -> dict[str, Any]:
    """Train one run into the folder ``out`` (see the module docstring); returns the results.

    ``out`` must not hold a run already (resume it with :func:`resume_run`); ``data`` is
    :func:`build_data`'s output when the caller built it already (to check the input first).
    ``config.threads`` is applied, or the process's count recorded in ``config.json``."""
    run_dir = Path(out)
    check_new_run(run_dir)
    config = use_threads(config)
    data = build_data(config) if data is None else data
    rank, world_size = distributed_world()
    if world_size > 1:  # every rank has checked the folder before rank 0 writes to it
        torch.distributed.barrier()
    if rank == 0:
        remove_stale_parts(run_dir)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
    return _train(_new_trainer(config, run_dir, progress), data, progress, command)


def recorded_config(out: str | os.PathLike[str]) -> TrainRunConfig:
    """The config recorded in the run folder ``out`` (``FileNotFoundError`` when there is none)."""
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume {out}: no run there (no {CONFIG_FILE})")
    return TrainRunConfig.from_dict(read_json(path))


def open_run(out: str | os.PathLike[str], changes: dict[str, Any] | None = None) -> TrainRunConfig:
    """The config of the run in ``out``, checked against its ``last.pt`` (a checkpoint whose
    model is not the config's, e.g. another preset's, is refused), with ``changes`` applied and
    written back to ``config.json``: dotted field names of :data:`RESUMABLE` (``"train.epochs"``
    extends the run; fewer epochs than it has finished are refused) to their new values.
    A run interrupted before its first checkpoint has no ``last.pt``: it starts again."""
    run_dir = Path(out)
    config = recorded_config(out)
    recorded = config.to_dict()
    state = read_checkpoint(run_dir / LAST_CHECKPOINT) if (run_dir / LAST_CHECKPOINT).is_file() else None
    if state is not None:
        saved = ModelConfig.from_dict(state["model_config"])
        if saved != config.model:
            changed = sorted(f.name for f in dataclasses.fields(ModelConfig) if getattr(saved, f.name) != getattr(config.model, f.name))
            raise ValueError(f"{run_dir / LAST_CHECKPOINT} holds another model than {run_dir / CONFIG_FILE} "
                             f"(fields {changed} differ, e.g. another preset): not this run's checkpoint")
    if not changes:
        return config
    unknown = sorted(set(changes) - set(RESUMABLE))
    if unknown:
        raise ValueError(f"a resume continues the run as recorded: {unknown} cannot change (only {list(RESUMABLE)})")
    done = 0 if state is None else int(state["epoch"])
    if changes.get("train.epochs") is not None and changes["train.epochs"] < done:
        raise ValueError(f"--epochs {changes['train.epochs']}: the run in {out} has finished {done} epochs")
    d = config.to_dict()
    for path, value in changes.items():
        *parents, key = path.split(".")
        target = d
        for p in parents:
            target = target[p]
        target[key] = value
    config = TrainRunConfig.from_dict(d)
    if d != recorded:
        write_json(run_dir / CONFIG_FILE, config.to_dict())
    return config


def run_position(out: str | os.PathLike[str]) -> tuple[int, int]:
    """Where the run in ``out`` would resume, as :func:`soundloc.train.checkpoint_position`'s
    ``(epoch, step)`` of its ``last.pt`` (``(1, 0)`` before its first checkpoint)."""
    path = Path(out) / LAST_CHECKPOINT
    return checkpoint_position(read_checkpoint(path)) if path.is_file() else (1, 0)


def resume_run(out: str | os.PathLike[str], config: TrainRunConfig | None = None, command: str | None = None,
               progress: bool = True, data: RunData | None = None) -> dict[str, Any]:
    """Continue the run in ``out`` from its ``last.pt`` with ``config`` (default
    :func:`open_run`'s), its threads included; returns the results, as :func:`run_training`.
    Without a ``last.pt`` (interrupted before its first checkpoint) the run starts again."""
    run_dir = Path(out)
    config = use_threads(open_run(out) if config is None else config)
    data = build_data(config) if data is None else data
    if distributed_world()[0] == 0:
        remove_stale_parts(run_dir)
    if not (run_dir / LAST_CHECKPOINT).is_file():
        return _train(_new_trainer(config, run_dir, progress), data, progress, command)
    train_config = dataclasses.replace(config.train, progress=progress)
    trainer = resume_trainer(run_dir / LAST_CHECKPOINT, config=train_config,
                             factory=lambda model, c: RunTrainer(model, c, run_dir, config))
    assert isinstance(trainer, RunTrainer)
    return _train(trainer, data, progress, command)


__all__ = [
    "DataConfig",
    "RESUMABLE",
    "RunData",
    "RunTrainer",
    "TrainRunConfig",
    "annotations_of",
    "build_data",
    "build_run_config",
    "check_new_run",
    "default_train",
    "load_config_file",
    "open_run",
    "preset_model",
    "recorded_config",
    "remove_stale_parts",
    "resume_run",
    "run_position",
    "run_training",
    "score",
    "stop_on_interrupt",
    "use_threads",
    "write_log",
]

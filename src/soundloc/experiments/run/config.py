"""A training run's config: :class:`RunConfig` (model, training, data, splits) and
:class:`DataConfig`. The defaults come from the presets: ``RunConfig(preset="paper")`` is the
authors' model (:meth:`~soundloc.models.ModelConfig.paper`) trained as their README command
(:meth:`~soundloc.train.TrainConfig.paper`); the ``cpu`` preset is the small model and the
training defaults. A config file or dictionary names only what it changes (:meth:`RunConfig.from_dict`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from soundloc.config import ConfigMixin, check_choice, check_int
from soundloc.constants import PRESETS, Preset
from soundloc.data.synthetic.config import WorldConfig
from soundloc.models import ModelConfig
from soundloc.train.config import TrainConfig
from soundloc.utils.files import read_json

DataSource = Literal["synthetic", "folder", "packed"]
Selection = Literal["val_auc", "val_ciou"]
#: The training fields a resume may change (with the run's ``threads``): they extend the run or
#: say where and how fast it runs; every other field defines the run and stays as recorded.
RESUMABLE_TRAIN = ("epochs", "device", "checkpoint_every", "num_workers")


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
            and become floats on the device (the same numbers, a quarter of the bytes to copy).
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


def preset_model(preset: Preset, data: DataConfig, changes: dict[str, Any] | None = None) -> ModelConfig:
    """The preset's model (:meth:`ModelConfig.paper` / :meth:`ModelConfig.cpu`) with
    ``changes``; on the synthetic world its image size and clip length default to the world's."""
    base = (ModelConfig.paper if preset == "paper" else ModelConfig.cpu)()
    sized = {"image_size": data.world.image_size, "clip_samples": data.world.clip_samples}
    return ModelConfig.from_dict({**base.to_dict(), **(sized if data.source == "synthetic" else {}), **(changes or {})})


@dataclass
class RunConfig(ConfigMixin):
    """Everything one training run depends on (saved as the run's ``config.json``).

    Attributes:
        preset: ``"paper"`` or ``"cpu"``: the model and training a run gets unless told
            otherwise; a checkpoint of another preset's model is refused on resume.
        model: the model (default: the preset's, sized to the synthetic world's images and clips).
        train: how to train (default: the preset's :class:`~soundloc.train.TrainConfig`).
        data: where the pairs come from.
        labelled: labelled pairs drawn from the supervision pool for L_S (the paper's
            0.5k-2.5k); always 0 for the unsupervised scheme.
        val_size: validation pairs drawn from the supervision pool (held out of training).
        select_by: the validation score that picks ``best.pt``.
        split_seed: seeds the draw of the validation and labelled pairs from the pool (the
            labelled sets of different sizes are nested: the first N of one order).
        annotator: how L_S's ground truth is drawn each step (``"random"``: one annotator per
            pair, as the authors; ``"consensus"``; or an annotator's index).
        cache_sound_features: with a frozen sound stream and a prepared folder, compute the
            training clips' sound features once and train from them without reading audio
            (:mod:`soundloc.data.sound_features`; the authors precompute them too).
        threads: torch's CPU threads (``None``: the count the process has, which a run records
            here: float sums split over another count round otherwise, so a resume restores it).
    """

    preset: Preset = "cpu"
    model: ModelConfig = None  # type: ignore[assignment]  # None: the preset's (see above)
    train: TrainConfig = None  # type: ignore[assignment]  # None: the preset's
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
        self.model = preset_model(self.preset, self.data) if self.model is None else self.model
        self.train = TrainConfig.preset(self.preset) if self.train is None else self.train
        self.labelled = 0 if self.train.scheme == "unsupervised" else self.labelled
        check_int(self, "labelled", "split_seed", low=0)
        check_int(self, "val_size")
        check_int(self, "threads", optional=True)
        if self.train.epochs < 1:
            raise ValueError(f"a run trains at least one epoch: train.epochs must be >= 1, got {self.train.epochs}")
        if self.train.scheme != "unsupervised" and self.labelled < 1:
            raise ValueError(f"RunConfig.labelled must be >= 1 for the {self.train.scheme} scheme, got 0")
        if self.train.scheme == "supervised" and self.labelled < self.train.batch_size:
            raise ValueError(f"RunConfig.labelled = {self.labelled} is below train.batch_size = "
                             f"{self.train.batch_size}: the supervised scheme would make no full batch")
        if not (self.annotator in ("random", "consensus") or (isinstance(self.annotator, int) and self.annotator >= 0)):
            raise ValueError(f"RunConfig.annotator must be 'random', 'consensus' or an index, got {self.annotator!r}")
        if self.data.source == "synthetic" and self.model.clip_samples != self.data.world.clip_samples:
            raise ValueError(f"model.clip_samples = {self.model.clip_samples} differs from the synthetic world's "
                             f"clips ({self.data.world.clip_samples} samples)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """A config from a dictionary that names what it changes (:meth:`fields_from`); a
        complete dictionary (``config.json``) is the config it was saved from."""
        return cls(**cls.fields_from(d))

    @classmethod
    def fields_from(cls, d: dict[str, Any]) -> dict[str, Any]:
        """The fields of a config, typed, from a dictionary that names what it changes: the
        ``model`` and ``train`` fields are changes to the ``preset``'s (default ``cpu``), the
        ``data`` fields to :class:`DataConfig`'s defaults. Unknown keys raise ``ValueError``
        naming them. (A caller may change the fields further before building the config.)"""
        if not isinstance(d, dict):
            raise TypeError(f"RunConfig.from_dict needs a dict, got {type(d).__name__}")
        d = dict(d)
        preset = d.get("preset", "cpu")
        if preset not in PRESETS:
            raise ValueError(f"RunConfig.preset must be one of {list(PRESETS)}, got {preset!r}")
        data = DataConfig.from_dict(d.pop("data", None) or {})
        model = preset_model(preset, data, d.pop("model", None) or {})
        train = TrainConfig.from_dict({**TrainConfig.preset(preset).to_dict(), **(d.pop("train", None) or {})})
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"RunConfig has no field(s) {unknown} (unknown keys)")
        return {**d, "model": model, "train": train, "data": data}

    def fields(self) -> dict[str, Any]:
        """The config's fields (the nested configs as they are), to build a changed one."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resume_conflicts(self, changes: "RunConfig") -> list[str]:
        """Where ``changes`` differs from this run outside what a resume may change
        (:data:`RESUMABLE_TRAIN` and ``threads``), one ``"field is X there, asked Y"`` each."""
        kept = {name: getattr(self.train, name) for name in RESUMABLE_TRAIN}
        other = dataclasses.replace(changes, threads=self.threads, train=dataclasses.replace(changes.train, **kept))
        return [f"{name} is {a!r} there, asked {b!r}" for name, a, b in differences(self, other)]

    def resumed(self, changes: "RunConfig") -> "RunConfig":
        """This run continued with ``changes``' resumable values (more epochs, another device,
        checkpoint interval, worker count or thread count); ``ValueError`` naming every other
        field where ``changes`` differs (:meth:`resume_conflicts`)."""
        conflicts = self.resume_conflicts(changes)
        if conflicts:
            raise ValueError(f"a resume continues the run as recorded: {'; '.join(conflicts)} (only "
                             f"train.{', train.'.join(RESUMABLE_TRAIN)} and threads may change)")
        resumed = {name: getattr(changes.train, name) for name in RESUMABLE_TRAIN}
        return dataclasses.replace(self, threads=changes.threads, train=dataclasses.replace(self.train, **resumed))


def differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted field, a's value, b's value)`` wherever two configs of one type differ."""
    if not (dataclasses.is_dataclass(a) and type(a) is type(b)):
        return [] if a == b else [(prefix, a, b)]
    return [d for f in dataclasses.fields(a)
            for d in differences(getattr(a, f.name), getattr(b, f.name), f"{prefix}.{f.name}" if prefix else f.name)]


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


__all__ = ["DataConfig", "DataSource", "RESUMABLE_TRAIN", "RunConfig", "Selection", "differences",
           "load_config_file", "preset_model"]

"""The pigeon experiment's configuration: one typed object describes a run.

:class:`PigeonConfig` nests the world (:class:`~soundloc.data.synthetic.WorldConfig`), the
model (:class:`~soundloc.models.ModelConfig`) and the visual stream's pretraining
(:class:`~soundloc.pretrain.PretrainConfig`, or ``None`` for a stream trained from scratch),
and round-trips through the ``config`` entry of ``results.json``. :meth:`PigeonConfig.at_scale`
gives the named sizes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from soundloc.config import ConfigMixin, check_choice, check_int, check_number
from soundloc.constants import SCALES, Scale, Scheme
from soundloc.data.synthetic import WorldConfig
from soundloc.models import ModelConfig
from soundloc.pretrain import PretrainConfig
from soundloc.losses import AttentionReduction
from soundloc.train import Optimizer, TrainConfig


def cpu_model(world: WorldConfig, **overrides: Any) -> ModelConfig:
    """``ModelConfig.cpu`` sized for ``world``'s images and clips, with the experiment's
    softmax temperature 0.1 and both streams frozen (each pretrained first, as the authors'
    VGG16 and SoundNet are), then ``overrides``.

    τ = 0.1 departs from the paper (τ = 1): over cosines in [-1, 1] the paper's softmax keeps
    α near uniform, and mass readings flatten; the cIoU and AUC only rank cells and do not change.
    """
    base: dict[str, Any] = {"image_size": world.image_size, "clip_samples": world.clip_samples,
                            "temperature": 0.1, "freeze_visual": True, "freeze_sound": True}
    base.update(overrides)
    return ModelConfig.cpu(**base)


def _smoke_world() -> WorldConfig:
    return WorldConfig(clip_seconds=0.5)


#: The training defaults (:class:`~soundloc.train.TrainConfig`) the experiment's fields start from.
_TRAINING = TrainConfig()


@dataclass
class PigeonConfig(ConfigMixin):
    """Everything the pigeon experiment depends on.

    Attributes:
        scale: the preset's name (informative).
        world: the synthetic world.
        model: the model; its ``image_size`` and ``clip_samples`` must be the world's.
        pretraining: how the visual stream is pretrained as an image classifier on a world of
            another seed before every scheme starts from it (the paper's ImageNet VGG16);
            ``None`` trains the stream from scratch with the rest of the model.
        n_train: training scenes (unlabelled video: every kind of scene).
        n_labelled: annotated training scenes whose boxes the supervised and semi-supervised
            schemes may use (the first ``n_labelled`` annotated training scenes).
        n_test: held-out scenes (the annotated ones among them are the test set).
        epochs: epochs of every scheme (the same budget for all three).
        batch_size, lr, weight_decay, optimizer, attention_reduction: as
            :class:`~soundloc.train.TrainConfig` (its defaults).
        annotator: how L_S's ground truth is drawn (``"random"``: one annotator per step, as
            the authors do; ``"consensus"``; or an annotator's index).
        n_figure_examples: test scenes shown in the attention figure.
        random_repeats: draws of the random baseline.
        device: ``None`` = GPU when visible, else CPU.
        threads: torch CPU threads (``None`` leaves torch's default).
        workers: processes that render the world's scenes (0: in this process; the results
            do not depend on it).
        pretrain_cache: a folder where pretrained visual streams are kept and reused by any
            later run whose pretraining would be identical
            (:func:`~soundloc.pretrain.pretrained_visual_state`); ``None``: always pretrain.
        sound_pretraining: how the sound stream is pretrained as a sound classifier on the
            clips of a world of another seed before every scheme starts from it (the paper's
            SoundNet, :func:`~soundloc.pretrain.pretrain_sound`); ``None`` trains the sound
            stream from scratch with the rest of the model.
        feature_cache: compute each frozen stream's outputs once per scene and train and score
            every scheme from them (:mod:`soundloc.data.frozen_features`): the same numbers up
            to the rounding of the convolutions, several times faster. Trained streams are
            always run.
    """

    scale: Scale = "smoke"
    world: WorldConfig = field(default_factory=_smoke_world)
    model: ModelConfig = field(default_factory=lambda: cpu_model(_smoke_world()))
    pretraining: PretrainConfig | None = field(default_factory=PretrainConfig)
    n_train: int = 3000
    n_labelled: int = 300
    n_test: int = 300
    epochs: int = _TRAINING.epochs
    batch_size: int = _TRAINING.batch_size
    lr: float = _TRAINING.lr
    weight_decay: float = _TRAINING.weight_decay
    optimizer: Optimizer = _TRAINING.optimizer
    attention_reduction: AttentionReduction = _TRAINING.attention_reduction
    annotator: Literal["random", "consensus"] | int = "random"
    n_figure_examples: int = 6
    random_repeats: int = 10
    device: str | None = None
    threads: int | None = None
    workers: int = 0
    pretrain_cache: str | None = None
    sound_pretraining: PretrainConfig | None = field(default_factory=lambda: _sound_pretraining())
    feature_cache: bool = True

    def __post_init__(self) -> None:
        check_choice(self, "scale", "optimizer", "attention_reduction")
        for name, kind in (("world", WorldConfig), ("model", ModelConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"PigeonConfig.{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.pretraining is not None and not isinstance(self.pretraining, PretrainConfig):
            raise TypeError(f"PigeonConfig.pretraining must be a PretrainConfig or None, got {type(self.pretraining).__name__}")
        check_int(self, "n_train", "n_test", "epochs", "batch_size", "n_figure_examples", "random_repeats")
        check_int(self, "workers", low=0)
        check_int(self, "threads", optional=True)
        if not isinstance(self.feature_cache, bool):
            raise ValueError(f"PigeonConfig.feature_cache must be a bool, got {self.feature_cache!r}")
        if self.sound_pretraining is not None and not isinstance(self.sound_pretraining, PretrainConfig):
            raise TypeError(f"PigeonConfig.sound_pretraining must be a PretrainConfig or None, "
                            f"got {type(self.sound_pretraining).__name__}")
        check_number(self, "lr", low_open=True)
        check_number(self, "weight_decay")
        if isinstance(self.n_labelled, bool) or not isinstance(self.n_labelled, int) or not 2 <= self.n_labelled <= self.n_train:
            raise ValueError(f"PigeonConfig.n_labelled must be an int in [2, n_train = {self.n_train}], got {self.n_labelled!r}")
        if self.n_labelled < self.batch_size:
            raise ValueError(f"PigeonConfig.n_labelled ({self.n_labelled}) must be >= batch_size ({self.batch_size}): "
                             "the supervised scheme trains on the labelled scenes alone")
        if not (self.annotator in ("random", "consensus") or (isinstance(self.annotator, int) and 0 <= self.annotator)):
            raise ValueError(f"PigeonConfig.annotator must be 'random', 'consensus' or an index, got {self.annotator!r}")
        if (self.model.image_size, self.model.clip_samples) != (self.world.image_size, self.world.clip_samples):
            raise ValueError(
                f"PigeonConfig.model is sized for {self.model.image_size}px images and {self.model.clip_samples}-sample "
                f"clips, the world makes {self.world.image_size}px and {self.world.clip_samples}-sample ones"
            )

    @classmethod
    def at_scale(cls, scale: str, **overrides: Any) -> "PigeonConfig":
        """The named preset (:data:`~soundloc.constants.SCALES`) with ``overrides``.

        ``world``, ``model``, ``pretraining`` and ``sound_pretraining`` may be given as config
        objects or as dicts of fields that change the preset's; when the world changes its
        image size or clip length and no model is given, the model follows it.
        ``pretraining=None`` trains the visual stream from scratch, ``sound_pretraining=None``
        the sound stream (give ``model={"freeze_sound": False}`` with it).
        """
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        preset = _PRESETS[scale]
        world = _merge(preset["world"], overrides.pop("world", None))
        model_over = overrides.pop("model", None)
        if isinstance(model_over, ModelConfig):
            model = model_over
        else:
            model = cpu_model(world, **{**preset["model"], **(model_over or {})})
        pre_over = overrides.pop("pretraining", preset["pretraining"])
        pretraining = None if pre_over is None else _merge(preset["pretraining"] or PretrainConfig(), pre_over)
        sound_over = overrides.pop("sound_pretraining", preset["sound_pretraining"])
        sound = None if sound_over is None else _merge(preset["sound_pretraining"] or _sound_pretraining(), sound_over)
        kw: dict[str, Any] = {**preset["fields"], **overrides}
        return cls(scale=scale, world=world, model=model, pretraining=pretraining,  # type: ignore[arg-type]
                   sound_pretraining=sound, **kw)

    @classmethod
    def migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Configs saved before the configs were nested (``world`` and ``model`` as dicts of
        overrides, ``visual_pretraining``, or no pretraining at all in the first version) load
        as the same experiment: the world as it was then (every class context-bound), the model
        as ``ModelConfig.cpu`` sized for it plus the overrides, and L_S averaged over the
        labelled rows, as it was then. Configs without ``sound_pretraining`` trained the sound
        stream from scratch (``None``)."""
        overrides = isinstance(d.get("model"), dict) and "visual_backbone" not in d["model"]
        d = {"sound_pretraining": None, **d}  # saved before the sound stream was pretrained
        if "visual_pretraining" not in d and not overrides:
            return d
        d.setdefault("visual_pretraining", None)  # the first version trained the stream from scratch
        world = WorldConfig.from_dict(dict(d.get("world") or {}))
        pre = d.pop("visual_pretraining")
        d["world"] = world.to_dict()
        sized = {"image_size": world.image_size, "clip_samples": world.clip_samples, **(d.get("model") or {})}
        d["model"] = ModelConfig.cpu(**sized).to_dict()
        d["pretraining"] = None if pre is None else PretrainConfig.from_dict(dict(pre)).to_dict()
        d.setdefault("attention_reduction", "labelled_mean")
        return d

    def train_config(self, scheme: Scheme, seed: int, progress: bool = True) -> TrainConfig:
        """The :class:`~soundloc.train.TrainConfig` of one scheme."""
        return TrainConfig(
            scheme=scheme, epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer,
            lr=self.lr, weight_decay=self.weight_decay, attention_reduction=self.attention_reduction,
            device=self.device, seed=seed, progress=progress, num_workers=self.workers,
        )


def _merge(base: Any, change: Any) -> Any:
    """``change`` when it is a config object, else ``base`` with the fields of the dict ``change``."""
    if change is None:
        return base
    if isinstance(change, dict):
        return dataclasses.replace(base, **change) if change else base
    return change


def _sound_pretraining(**overrides: Any) -> PretrainConfig:
    """The sound stream's pretraining: 2,000 clips of a world of seed + 2000 (another world
    than the visual stream's), 2 epochs, batch 64, no flips; ``overrides`` change it."""
    return PretrainConfig(**{"n_train": 2000, "n_test": 400, "epochs": 2, "batch_size": 64,
                             "world_seed_offset": 2000, "flip": False, **overrides})


#: The named sizes: ``fields`` are PigeonConfig fields, ``model`` overrides of :func:`cpu_model`.
_PRESETS: dict[str, dict[str, Any]] = {
    # a chapter under the test suite (SOUNDLOC_QUICK=1): every code path, seconds; nothing is claimed
    "quick": {
        "world": WorldConfig(clip_seconds=0.5),
        "model": {"visual_width": 16},
        "pretraining": PretrainConfig(n_train=128, n_test=32, epochs=1, batch_size=32),
        "sound_pretraining": _sound_pretraining(n_train=128, n_test=32, epochs=1, batch_size=32),
        "fields": dict(n_train=96, n_labelled=32, n_test=32, epochs=1, batch_size=16,
                       n_figure_examples=2, random_repeats=2),
    },
    # tests and quick chapter runs: small world, one short training per scheme
    "tiny": {
        "world": WorldConfig(clip_seconds=0.5),
        "model": {"visual_width": 16},
        "pretraining": PretrainConfig(n_train=480, n_test=96, epochs=2, batch_size=32),
        "sound_pretraining": _sound_pretraining(n_train=240, n_test=96, epochs=2, batch_size=32),
        "fields": dict(n_train=240, n_labelled=48, n_test=48, epochs=2, batch_size=16,
                       n_figure_examples=3, random_repeats=3),
    },
    # the CPU scale (2 cores): what the book's tables report (PigeonConfig's defaults)
    "smoke": {
        "world": _smoke_world(),
        "model": {},
        "pretraining": PretrainConfig(),
        "sound_pretraining": _sound_pretraining(),
        "fields": {},
    },
    # GPU-sized: 128x128 images (16x16 grid), 8 classes, wider networks, more data and epochs
    "full": {
        "world": WorldConfig(image_size=128, num_classes=8, clip_seconds=1.0),
        "model": {"visual_width": 64, "visual_dim": 256, "sound_width": 0.5, "sound_dim": 256,
                  "sound_hidden": 256, "visual_hidden": 256},
        "pretraining": PretrainConfig(n_train=20000, n_test=2000, epochs=8, batch_size=128),
        "sound_pretraining": _sound_pretraining(n_train=8000, n_test=1000, epochs=3, batch_size=128),
        "fields": dict(n_train=20000, n_labelled=2500, n_test=500, epochs=20, batch_size=64, lr=3e-4),
    },
}


__all__ = ["PigeonConfig", "cpu_model"]

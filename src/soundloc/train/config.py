"""How to train: :class:`TrainConfig`, the one source of every training default.

Its field defaults are what a run gets unless told otherwise, the ``cpu`` preset (the small model's
training); :meth:`TrainConfig.paper` changes what the authors' README command sets (Adam, lr 1e-4,
weight decay 0, batch 30, 10 epochs). The command line shows these values in ``--help``, and the
experiments' configs name only what they change. Torch-free, like every config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from soundloc.config import ConfigMixin, check_choice, check_int, check_number
from soundloc.constants import PRESETS, AttentionReduction, Preset, Scheme

Optimizer = Literal["adam", "sgd"]
Scheduler = Literal["cosine", "step"]
AmpDtype = Literal["float16", "bfloat16"]

#: The ``paper`` preset's changes to the defaults: the authors' README command (its optimizer,
#: Adam without weight decay, is the default already).
PAPER_CHANGES: dict[str, Any] = {"epochs": 10, "batch_size": 30, "lr": 1e-4}
#: The speed settings ``soundloc train --fast`` turns on (CUDA; numbers change by rounding only).
FAST_CHANGES: dict[str, Any] = {"amp": True, "amp_dtype": "bfloat16", "channels_last": True,
                                "cudnn_benchmark": True, "sync_every": 50, "persistent_workers": True}


@dataclass
class TrainConfig(ConfigMixin):
    """How to train (plain types only: it goes into checkpoints and saved models as a dict).

    The speed settings, from ``amp_dtype`` to ``prefetch_factor``, are for GPU training of the
    paper's frozen setup; each one is off by default (:data:`FAST_CHANGES` turns them on).

    Attributes:
        scheme: ``"unsupervised"`` (L_U), ``"supervised"`` (L_S on the labelled pairs only) or
            ``"semi_supervised"`` (``L_U + λ L_S``), the schemes of the paper's Table 1.
        epochs: passes over the training set.
        batch_size: pairs per step (the global batch with several processes); at least 2 for the
            schemes with L_U (the negative of a pair is another pair of its batch). The loader
            drops the last incomplete batch.
        optimizer: ``"adam"`` or ``"sgd"`` (``momentum`` applies to SGD only).
        lr, weight_decay, momentum: optimizer settings.
        lam: λ of ``L = L_U + λ L_S`` (paper Sec. 3.3; 1 in the paper) on annotated pairs.
        attention_reduction: how L_S is averaged in a batch: ``"batch_mean"`` (the paper's: sum
            over annotated pairs ÷ batch size) or ``"labelled_mean"`` (over the annotated pairs).
        grad_clip: clip the gradients' global L2 norm to this value (``None``: no clipping).
        num_workers: DataLoader worker processes.
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` (a GPU when one is visible).
        seed: seeds everything random in training (the initial weights come from whoever built
            the model: seed before building it too).
        progress: show tqdm progress bars (the numbers are the same either way).
        log_every: refresh the progress bar's running loss every this many steps.
        scheduler: learning-rate schedule stepped at the end of every epoch: ``None`` (constant,
            the authors'), ``"cosine"`` (to 0 over ``epochs``) or ``"step"`` (times
            ``scheduler_gamma`` every ``scheduler_step`` epochs).
        scheduler_step, scheduler_gamma: the ``"step"`` schedule's period (epochs) and factor.
        checkpoint_every: with a checkpoint path, also write it after every this many optimizer
            steps (``None``: at epoch ends only).
        skip_unreadable: leave out the pairs that cannot be read (a missing or corrupt file,
            silent audio), each reported by a warning and counted in the epoch's record,
            instead of stopping the run.
        amp: mixed precision on a CUDA device (autocast to ``amp_dtype``).
        amp_dtype: ``"float16"`` (with a gradient scaler) or ``"bfloat16"`` (no scaler needed).
        channels_last: the model's 4-D weights and the image batches in NHWC memory order.
        cudnn_benchmark: let cuDNN pick its fastest convolutions (CUDA only).
        compile: ``torch.compile`` the streams and the localization module in place.
        sync_every: bring the loss terms to the host every this many steps (1: every step);
            between two the host never waits for the device, and the history is the same.
        persistent_workers: keep the DataLoader's workers across epochs (with ``num_workers``).
        prefetch_factor: batches each worker loads ahead (``None``: DataLoader's default).
    """

    scheme: Scheme = "semi_supervised"
    epochs: int = 8
    batch_size: int = 32
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lam: float = 1.0
    attention_reduction: AttentionReduction = "batch_mean"
    grad_clip: float | None = None
    num_workers: int = 0
    device: str | None = None
    seed: int = 0
    progress: bool = True
    log_every: int = 10
    scheduler: Scheduler | None = None
    scheduler_step: int = 1
    scheduler_gamma: float = 0.1
    checkpoint_every: int | None = 200
    skip_unreadable: bool = True
    amp: bool = False
    amp_dtype: AmpDtype = "float16"
    channels_last: bool = False
    cudnn_benchmark: bool = False
    compile: bool = False
    sync_every: int = 1
    persistent_workers: bool = False
    prefetch_factor: int | None = None

    def __post_init__(self) -> None:
        check_choice(self, "scheme", "optimizer", "attention_reduction", "scheduler", "amp_dtype")
        check_int(self, "epochs", "seed", "num_workers", low=0)
        check_int(self, "batch_size", "log_every", "scheduler_step", "sync_every")
        check_int(self, "checkpoint_every", "prefetch_factor", optional=True)
        check_number(self, "scheduler_gamma", low_open=True, high=1.0)
        for name in ("amp", "skip_unreadable", "channels_last", "cudnn_benchmark", "compile", "persistent_workers"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.scheme != "supervised" and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for the {self.scheme} scheme (a pair's negative is another "
                             f"pair of its batch), got {self.batch_size}")
        check_number(self, "weight_decay", "momentum", "lam")
        check_number(self, "lr", low_open=True)
        check_number(self, "grad_clip", low_open=True, optional=True)

    @classmethod
    def preset(cls, name: Preset, **changes: Any) -> "TrainConfig":
        """The ``paper`` or ``cpu`` preset's training with ``changes``."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)}, got {name!r}")
        return cls(**{**(PAPER_CHANGES if name == "paper" else {}), **changes})

    @classmethod
    def paper(cls, **changes: Any) -> "TrainConfig":
        """The authors' README command: Adam, lr 1e-4, weight decay 0, batch 30, 10 epochs."""
        return cls.preset("paper", **changes)

    @classmethod
    def cpu(cls, **changes: Any) -> "TrainConfig":
        """The small model's training: the defaults (Adam, lr 1e-3, batch 32, 8 epochs)."""
        return cls.preset("cpu", **changes)


__all__ = ["FAST_CHANGES", "PAPER_CHANGES", "AmpDtype", "Optimizer", "Scheduler", "TrainConfig"]

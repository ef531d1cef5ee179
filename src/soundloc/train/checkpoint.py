"""Checkpoints and resume: everything a run needs to continue exactly as if uninterrupted.

A checkpoint (:func:`save_checkpoint`, written atomically) holds the model, the optimizer, the
learning-rate scheduler, the gradient scaler, every random state (torch CPU and CUDA, NumPy,
Python, and the negatives' generator mid-epoch), the position in the epoch (the steps done and
their records) and both configs, as plain types and tensors that load with
``torch.load(weights_only=True)``. :func:`~soundloc.train.resume_trainer` rebuilds the trainer; its ``fit``
redraws the interrupted epoch's order from the same seed, skips the batches done and ends with
the uninterrupted run's weights and history (timings aside). A checkpoint holds no trace of the
number of processes, so a run resumes on another.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from soundloc.models import ModelConfig, SoundLocalizer, build_model, save_model
from soundloc.train.records import EpochSteps
from soundloc.utils.files import atomic_path, read_torch_file
from soundloc.utils.seeding import get_rng_state, set_rng_state

#: A :class:`~soundloc.train.Trainer` (its module imports this one).
Trainer = Any


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` when :attr:`Trainer.stop_requested` was set: training
    stopped between two steps, after writing its checkpoint (when it had a path). ``epoch``
    (1-based) is the epoch of the last step done and ``step`` the optimizer steps done in all."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"training stopped at epoch {epoch} step {step}")
        self.epoch, self.step = epoch, step


def checkpoint_position(state: dict[str, Any]) -> tuple[int, int]:
    """Where a trainer's state (or a checkpoint) stands, as ``(epoch, step)``: the 1-based
    epoch of its last step (1 before any) and the optimizer steps done in all."""
    epoch = int(state["epoch"]) + (1 if state.get("epoch_steps") else 0)
    return max(epoch, 1), int(state["step"])


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """Everything needed to resume ``trainer`` (see the module docstring)."""
    trainer.epoch_steps.sync(trainer.epoch)
    return {
        "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "scaler": None if trainer.speed.scaler is None else trainer.speed.scaler.state_dict(),
        "epoch": trainer.epoch,
        "step": trainer.step,
        "epoch_steps": [dict(p) for p in trainer.epoch_steps.steps],
        "epoch_seconds": float(trainer.epoch_steps.seconds),
        "history": [dict(r) for r in trainer.history],
        "train_config": trainer.config.to_dict(),
        "rng": get_rng_state(),
        "negative_generator": trainer.generators.negative.get_state(),
    }


def restore_trainer(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put :func:`trainer_state`'s output back into ``trainer``: weights, optimizer, scheduler,
    scaler, progress and the global random states (the negatives' generator mid-epoch is
    applied when ``fit`` re-enters the epoch)."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if (state.get("scheduler") is None) != (trainer.scheduler is None):
        raise ValueError("the checkpoint and the config disagree on the LR scheduler (TrainConfig.scheduler)")
    if trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    if trainer.speed.scaler is not None and state.get("scaler") is not None:
        trainer.speed.scaler.load_state_dict(state["scaler"])
    trainer.epoch, trainer.step = int(state["epoch"]), int(state["step"])
    trainer.history = [dict(r) for r in state["history"]]
    steps = [dict(p) for p in state.get("epoch_steps", [])]
    trainer.epoch_steps = EpochSteps(steps, float(state.get("epoch_seconds", 0.0)),
                                     state.get("negative_generator") if steps else None)
    set_rng_state(state["rng"])


def save_checkpoint(path: str | os.PathLike[str], trainer: Trainer) -> None:
    """Write ``trainer``'s resumable checkpoint (model config, trainer state,
    ``trainer.checkpoint_extra`` under ``"extra"``) atomically: a crash while writing leaves the
    previous file intact."""
    payload = {"model_config": dataclasses.asdict(trainer.model.config), **trainer_state(trainer),
               "extra": dict(trainer.checkpoint_extra)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw contents of a :func:`save_checkpoint` file (``weights_only``), checked to be
    one; ``FileNotFoundError`` or ``ValueError`` naming the file otherwise."""
    state = read_torch_file(path, "checkpoint")
    needed = {"model_config", "model", "optimizer", "epoch", "step", "history", "train_config", "rng"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise ValueError(f"{os.fspath(path)!r} is not a soundloc training checkpoint (needs keys {sorted(needed)})")
    return state


def checkpoint_model(state: dict[str, Any]) -> SoundLocalizer:
    """The model of a :func:`read_checkpoint` dictionary, with its weights (nothing is
    downloaded: the weights hold any pretrained stream; ``config.pretrained`` keeps its value)."""
    model_config = ModelConfig.from_dict(state["model_config"])
    model = build_model(dataclasses.replace(model_config, pretrained=False, sound_weights_path=None))
    model.config = model_config
    model.load_state_dict(state["model"])
    return model


def save_trained(path: str | os.PathLike[str], trainer: Trainer, extra: dict[str, Any] | None = None) -> None:
    """Save the trained model with its train config and history (``weights_only``-loadable)."""
    payload = {"train_config": trainer.config.to_dict(), "history": [dict(r) for r in trainer.history]}
    save_model(path, trainer.model, extra={**payload, **(extra or {})})


__all__ = ["TrainingInterrupted", "checkpoint_model", "checkpoint_position", "read_checkpoint", "restore_trainer",
           "save_checkpoint", "save_trained", "trainer_state"]

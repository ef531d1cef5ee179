"""What training records: each step's loss terms, each epoch's summary, and the callbacks that
see them as they come (:class:`StepRecorder` keeps every step for per-step curves).

A step's record (``parts``) holds ``loss``, ``l_u`` and ``l_s`` (``None`` for a term the scheme
does not use, and ``l_s`` also where the batch had no annotated pair), ``pairs``, ``labelled``,
``skipped`` and, with ``skip_unreadable``, ``unreadable`` (the ids left out). With
``TrainConfig.sync_every`` > 1 the terms stay device tensors until :meth:`EpochSteps.sync`
brings them to the host in one transfer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from soundloc.data.types import Batch

History = list[dict[str, Any]]
#: a step's values that may wait on the device
TERMS = ("loss", "l_u", "l_s", "grad_norm")


def skipped_step(pairs: int, unreadable: list[str]) -> dict[str, Any]:
    """The record of a step that took none: too few readable pairs (a pair needs another as its
    negative), or none with a ground truth in the supervised scheme."""
    return {"pairs": pairs, "labelled": 0, "l_u": None, "l_s": None, "loss": 0.0, "skipped": True,
            "unreadable": unreadable}


@dataclass
class EpochSteps:
    """Where the unfinished epoch stands: its steps' records (their number is the position in
    the epoch), the seconds it took before a resume, and the negatives' generator state that a
    checkpoint saved mid-epoch (restored when the epoch resumes).

    Attributes:
        pending: steps whose terms are still on the device, with the first ids of their batch
            (for the error that names a non-finite loss).
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    negative_state: torch.Tensor | None = None
    pending: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, parts: dict[str, Any], ids: list[str], epoch: int) -> None:
        """Append a step's record; a non-finite loss raises ``FloatingPointError`` naming the
        step (at the next :meth:`sync` when the terms are still on the device)."""
        if isinstance(parts["loss"], torch.Tensor):
            self.pending[len(self.steps)] = ids[:4]
        elif not math.isfinite(parts["loss"]):
            raise FloatingPointError(f"loss became {parts['loss']} at epoch {epoch + 1}, step {len(self.steps) + 1} "
                                     f"(batch ids {ids[:4]}...)")
        self.steps.append(parts)

    def sync(self, epoch: int) -> None:
        """Bring the terms left on the device to the host, in place, with one transfer (the
        floats the per-step path gives); a non-finite loss among them raises as in :meth:`add`."""
        where = [(k, key) for k, p in enumerate(self.steps) for key in TERMS if isinstance(p.get(key), torch.Tensor)]
        if not where:
            return
        values = torch.stack([self.steps[k][key].float().reshape(()) for k, key in where]).cpu().tolist()
        for (k, key), v in zip(where, values):
            self.steps[k][key] = v
        for k in sorted({k for k, _ in where}):
            ids = self.pending.pop(k, [])
            loss = self.steps[k]["loss"]
            if not self.steps[k].get("skipped") and not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, step {k + 1} (batch ids {ids}...)")

    def running_loss(self, last: int) -> float | None:
        """The mean loss of the last ``last`` steps that were taken (the progress bar's)."""
        recent = [p["loss"] for p in self.steps[-last:] if not p["skipped"]]
        return float(np.mean(recent)) if recent else None


def epoch_record(epoch: int, steps: list[dict[str, Any]], seconds: float, skip_unreadable: bool) -> dict[str, Any]:
    """An epoch's history record: ``epoch`` (1-based), ``loss``, ``l_u``, ``l_s`` (means over
    the steps taken; ``l_s`` over those with an annotated pair), ``steps``, ``pairs``,
    ``labelled``, ``seconds``, ``step`` (each step's terms, for per-step curves) and, with
    ``skip_unreadable``, ``unreadable`` / ``unreadable_ids`` (the pairs left out)."""
    done = [p for p in steps if not p["skipped"]]

    def mean(key: str) -> float | None:
        vals = [p[key] for p in done if p.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    record = {
        "epoch": epoch + 1, "loss": mean("loss"), "l_u": mean("l_u"), "l_s": mean("l_s"), "steps": len(done),
        "pairs": int(sum(p["pairs"] for p in done)), "labelled": int(sum(p["labelled"] for p in done)),
        "seconds": float(seconds), "step": {k: [p.get(k) for p in done] for k in ("loss", "l_u", "l_s")},
    }
    if skip_unreadable:
        record["unreadable_ids"] = [i for p in steps for i in p.get("unreadable", [])]
        record["unreadable"] = len(record["unreadable_ids"])
    return record


class Callback:
    """What a :class:`~soundloc.train.Trainer` calls as it trains; override what you need.
    ``on_step_end`` comes after every step (after any checkpoint of that step was written),
    ``on_epoch_end`` with the epoch's record before it joins the history."""

    def on_step_end(self, trainer: Any, batch: Batch, parts: dict[str, Any]) -> None:
        """After every step: ``batch.ids`` are the pairs it used, ``parts`` its record."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """After every epoch, with its record (``trainer.history`` holds the epochs before it)."""


class StepRecorder(Callback):
    """Keeps the record of every step (:attr:`parts`) and the ids of the pairs it used
    (:attr:`ids`): the per-step curves of the chapters."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.ids: list[str] = []

    def on_step_end(self, trainer: Any, batch: Batch, parts: dict[str, Any]) -> None:
        self.parts.append(parts)
        self.ids.extend(batch.ids)

    def values(self, key: str = "loss") -> list[Any]:
        """Every step's ``key`` (``"loss"``, ``"l_u"``, ``"l_s"``...), in order."""
        return [p.get(key) for p in self.parts]


__all__ = ["Callback", "EpochSteps", "History", "StepRecorder", "epoch_record", "skipped_step"]

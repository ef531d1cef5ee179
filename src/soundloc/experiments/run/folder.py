"""A run's folder: what a training run writes, and how it is read back to resume.

``config.json`` (the :class:`~soundloc.experiments.run.RunConfig`, with the thread count it
trains with), ``last.pt`` (a resumable checkpoint, :func:`soundloc.train.save_checkpoint`, every
epoch and every ``checkpoint_every`` steps), ``best.pt`` (the best model by validation,
:func:`soundloc.models.load_model` reads it), ``log.csv`` (one row per epoch; the same curves in
``tensorboard/`` when that package is installed) and, at the end, ``results.json`` (validation
history, test scores beside the baselines and per annotator, provenance). Every file is written
atomically; the temporary files of a write cut short by SIGKILL are removed by the next start.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
from pathlib import Path
from typing import Any

from soundloc.experiments.run.config import RunConfig
from soundloc.models import ModelConfig
from soundloc.train import Callback, Trainer, checkpoint_position, read_checkpoint, save_trained
from soundloc.utils.files import atomic_open, read_json, stale_parts, write_json

CONFIG_FILE = "config.json"
LAST_CHECKPOINT = "last.pt"
BEST_MODEL = "best.pt"
LOG_FILE = "log.csv"
RESULTS_FILE = "results.json"
#: The columns of ``log.csv`` (an epoch's history record, without its per-step curves).
LOG_COLUMNS = ("epoch", "loss", "l_u", "l_s", "steps", "pairs", "labelled", "unreadable", "lr", "val_ciou", "val_auc",
               "seconds")


class RunFolder(Callback):
    """Keeps the run folder as training goes: ``best.pt`` when an epoch's validation score
    (``select_by``) is the best so far, ``log.csv`` and TensorBoard scalars every epoch (rank 0
    alone with several processes)."""

    def __init__(self, run_dir: Path, config: RunConfig) -> None:
        self.run_dir = run_dir
        self.config = config
        self.tensorboard: Any = None  # the SummaryWriter once made; False without tensorboard

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.rank != 0:
            return
        key = self.config.select_by
        scores = [r[key] for r in trainer.history if r.get(key) is not None]
        if record.get(key) is not None and (not scores or record[key] > max(scores)):
            save_trained(self.run_dir / BEST_MODEL, trainer, extra={"epoch": record["epoch"], key: record[key],
                                                                     "run_config": self.config.to_dict()})
        write_log(self.run_dir / LOG_FILE, [*trainer.history, record])
        self.log_tensorboard(record)

    def log_tensorboard(self, record: dict[str, Any]) -> None:
        """The epoch's numbers as TensorBoard scalars (nothing when tensorboard is missing)."""
        if self.tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # torch's writer needs the tensorboard package
                self.tensorboard = False
                return
            self.tensorboard = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        if self.tensorboard is False:
            return
        for key in LOG_COLUMNS:
            value = record.get(key)
            if key != "epoch" and isinstance(value, (int, float)):
                self.tensorboard.add_scalar(key, value, record["epoch"])
        self.tensorboard.flush()


def write_log(path: Path, history: list[dict[str, Any]]) -> None:
    """``log.csv``: one row per epoch (:data:`LOG_COLUMNS`), rewritten whole and atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in history:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in LOG_COLUMNS})
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())


def check_new_run(out: str | os.PathLike[str]) -> None:
    """``out`` does not hold a run already (resume that one instead)."""
    if (Path(out) / CONFIG_FILE).exists():
        raise FileExistsError(f"{out} already holds a run ({CONFIG_FILE}): resume it with --resume {out}")


def remove_stale_parts(run_dir: Path) -> None:
    """Delete the temporary files a SIGKILL left while writing the run folder's files."""
    for name in (CONFIG_FILE, LAST_CHECKPOINT, BEST_MODEL, LOG_FILE, RESULTS_FILE):
        for part in stale_parts(run_dir / name):
            part.unlink(missing_ok=True)


def recorded_config(out: str | os.PathLike[str]) -> RunConfig:
    """The config recorded in the run folder ``out`` (``FileNotFoundError`` when there is none)."""
    path = Path(out) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume {out}: no run there (no {CONFIG_FILE})")
    return RunConfig.from_dict(read_json(path))


def open_run(out: str | os.PathLike[str], wanted: RunConfig | None = None) -> RunConfig:
    """The config of the run in ``out``, checked against its ``last.pt`` (a checkpoint of
    another model, e.g. another preset's, is refused), continued with ``wanted``'s resumable
    values (:meth:`RunConfig.resumed`: more epochs, another device, thread count, checkpoint
    interval or worker count; fewer epochs than the run has finished are refused) and written
    back to ``config.json``. A run interrupted before its first checkpoint starts again."""
    run_dir = Path(out)
    config = recorded_config(out)
    state = read_checkpoint(run_dir / LAST_CHECKPOINT) if (run_dir / LAST_CHECKPOINT).is_file() else None
    if state is not None and ModelConfig.from_dict(state["model_config"]) != config.model:
        saved = ModelConfig.from_dict(state["model_config"])
        changed = sorted(f.name for f in dataclasses.fields(ModelConfig) if getattr(saved, f.name) != getattr(config.model, f.name))
        raise ValueError(f"{run_dir / LAST_CHECKPOINT} holds another model than {run_dir / CONFIG_FILE} "
                         f"(fields {changed} differ, e.g. another preset): not this run's checkpoint")
    if wanted is None:
        return config
    resumed = config.resumed(wanted)
    done = 0 if state is None else int(state["epoch"])
    if resumed.train.epochs < done:
        raise ValueError(f"--epochs {resumed.train.epochs}: the run in {out} has finished {done} epochs")
    if resumed != config:
        write_json(run_dir / CONFIG_FILE, resumed.to_dict())
    return resumed


def run_position(out: str | os.PathLike[str]) -> tuple[int, int]:
    """Where the run in ``out`` would resume, as :func:`soundloc.train.checkpoint_position`'s
    ``(epoch, step)`` of its ``last.pt`` (``(1, 0)`` before its first checkpoint)."""
    path = Path(out) / LAST_CHECKPOINT
    return checkpoint_position(read_checkpoint(path)) if path.is_file() else (1, 0)


__all__ = ["BEST_MODEL", "CONFIG_FILE", "LAST_CHECKPOINT", "LOG_COLUMNS", "LOG_FILE", "RESULTS_FILE", "RunFolder",
           "check_new_run", "open_run", "recorded_config", "remove_stale_parts", "run_position", "write_log"]

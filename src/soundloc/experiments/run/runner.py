"""A training run from start to results: what ``soundloc train`` does, as a library.

:func:`run_training` builds the model and the data of a :class:`~soundloc.experiments.run.RunConfig`,
trains with :class:`~soundloc.train.Trainer` (validating every epoch, keeping the run folder), and
scores the best model once on the test set beside the random, whole-image and centre-prior
baselines. :func:`resume_run` continues an interrupted run with every setting recorded, threads
included, so that it ends bit-identical to the uninterrupted run on the same machine. Ctrl-C stops
after the current step with the checkpoint written there; a second Ctrl-C stops at once (the last
checkpoint stays intact). Under ``torchrun`` every process builds the same data and model and
trains its share of each global batch; rank 0 alone writes the run folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from soundloc.experiments.provenance import provenance
from soundloc.experiments.run.config import RunConfig
from soundloc.experiments.run.data import RunData, annotations_of, build_data, with_sound_features
from soundloc.experiments.run.folder import (BEST_MODEL, CONFIG_FILE, LAST_CHECKPOINT, RESULTS_FILE, RunFolder,
                                             check_new_run, open_run, remove_stale_parts)
from soundloc.metrics import evaluate
from soundloc.models import SoundLocalizer, build_model, load_model
from soundloc.train import Trainer, distributed_world, predict_attention, resume_trainer
from soundloc.utils.files import json_safe, write_json
from soundloc.utils.seeding import seed_everything


def score(model: SoundLocalizer, dataset: Any, grid: tuple[int, int], baselines: bool = False,
          seed: int = 0, batch_size: int = 32) -> Any:
    """cIoU@0.5 / AUC of ``model`` on an annotated ``dataset`` (:func:`soundloc.metrics.evaluate`,
    the LVS protocol; random baseline maps on the model's grid)."""
    ids, maps = predict_attention(model, dataset, batch_size=batch_size)
    return evaluate(maps, annotations_of(dataset), ids=ids, baselines=baselines, seed=seed,
                    random_grid=grid, per_annotator=baselines)


def use_threads(config: RunConfig) -> RunConfig:
    """Train with ``config.threads`` (set in torch), or record the count the process has."""
    if config.threads is None:
        return dataclasses.replace(config, threads=torch.get_num_threads())
    torch.set_num_threads(config.threads)
    return config


@contextlib.contextmanager
def stop_on_interrupt(trainer: Trainer) -> Iterator[None]:
    """While the block runs, a first Ctrl-C (SIGINT) asks ``trainer`` to stop after its current
    step (:attr:`~soundloc.train.Trainer.stop_requested`) and a second one interrupts at once.
    In the main thread of a single process only: with several, the ranks would stop at
    different steps, so Ctrl-C interrupts at once there."""
    if threading.current_thread() is not threading.main_thread() or trainer.distribution.several:
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


def score_test_set(trainer: Trainer, config: RunConfig, data: RunData, run_dir: Path,
                   command: str | None) -> dict[str, Any]:
    """Score the best model (else the last) once on the test set and write ``results.json``
    (rank 0 writes it; with several processes every rank waits for rank 0's ``best.pt``)."""
    if trainer.distribution.several:
        torch.distributed.barrier()
    best_path = run_dir / BEST_MODEL
    ev = score(load_model(best_path) if best_path.is_file() else trainer.model, data.test, data.grid, baselines=True,
               seed=config.train.seed)
    scored = [r for r in trainer.history if r.get(config.select_by) is not None]
    best = max(scored, key=lambda r: r[config.select_by]) if scored else None  # the first of equals
    annotators = None if ev.annotators is None else {
        "iou_at_0.5": ev.annotators.success, "auc": ev.annotators.auc, "count": ev.annotators.count,
        "mean_iou_at_0.5": ev.annotators.mean_success, "mean_auc": ev.annotators.mean_auc}
    results = {
        "config": config.to_dict(),
        "sizes": data.sizes,
        "history": [{k: v for k, v in r.items() if k != "step"} for r in trainer.history],
        "best": {"select_by": config.select_by, "score": best and best[config.select_by],
                 "epoch": best and best["epoch"], "model": BEST_MODEL if best_path.is_file() else None},
        "test": {"ciou_at_0.5": float(ev.success), "auc": float(ev.auc), "n": ev.n, "per_annotator": annotators,
                 "baselines": {k: v.to_dict() for k, v in ev.baselines.items()}},
        "provenance": provenance(trainer.device, command or ""),
    }
    if trainer.rank == 0:
        write_json(run_dir / RESULTS_FILE, json_safe(results))
    return results


def _train(trainer: Trainer, config: RunConfig, data: RunData, run_dir: Path, progress: bool,
           command: str | None) -> dict[str, Any]:
    """Fit with validation and the run folder kept, then the test results."""
    train_set = with_sound_features(data.train, trainer.model, config, progress)

    def val_fn(model: SoundLocalizer, dataset: Any) -> dict[str, float]:
        ev = score(model, dataset, data.grid, seed=config.train.seed)
        return {"ciou": float(ev.success), "auc": float(ev.auc)}

    with stop_on_interrupt(trainer):
        trainer.fit(train_set, data.val, val_fn, checkpoint=run_dir / LAST_CHECKPOINT)
    return score_test_set(trainer, config, data, run_dir, command)


def _new_trainer(config: RunConfig, run_dir: Path, progress: bool) -> Trainer:
    seed_everything(config.train.seed)
    return Trainer(build_model(config.model), dataclasses.replace(config.train, progress=progress),
                   callbacks=[RunFolder(run_dir, config)], checkpoint_extra={"run_config": config.to_dict()})


def run_training(config: RunConfig, out: str | os.PathLike[str], command: str | None = None,
                 progress: bool = True, data: RunData | None = None) -> dict[str, Any]:
    """Train one run into the folder ``out``; returns the results (``results.json``).

    ``out`` must not hold a run already (resume it with :func:`resume_run`); ``data`` is
    :func:`~soundloc.experiments.run.build_data`'s output when the caller built it already
    (to check the input first). ``config.threads`` is applied, or the process's count recorded."""
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
    return _train(_new_trainer(config, run_dir, progress), config, data, run_dir, progress, command)


def resume_run(out: str | os.PathLike[str], config: RunConfig | None = None, command: str | None = None,
               progress: bool = True, data: RunData | None = None) -> dict[str, Any]:
    """Continue the run in ``out`` from its ``last.pt`` with ``config`` (default
    :func:`~soundloc.experiments.run.open_run`'s), its threads included; returns the results.
    Without a ``last.pt`` (interrupted before its first checkpoint) the run starts again."""
    run_dir = Path(out)
    config = use_threads(open_run(out) if config is None else config)
    data = build_data(config) if data is None else data
    if distributed_world()[0] == 0:
        remove_stale_parts(run_dir)
    if not (run_dir / LAST_CHECKPOINT).is_file():
        return _train(_new_trainer(config, run_dir, progress), config, data, run_dir, progress, command)
    trainer = resume_trainer(run_dir / LAST_CHECKPOINT, config=dataclasses.replace(config.train, progress=progress),
                             callbacks=[RunFolder(run_dir, config)], extra={"run_config": config.to_dict()})
    return _train(trainer, config, data, run_dir, progress, command)


__all__ = ["resume_run", "run_training", "score", "stop_on_interrupt", "score_test_set", "use_threads"]

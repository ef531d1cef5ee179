"""The training loop of the paper (Senocak et al., CVPR 2018, Sec. 3.2-3.3), in one screen.

:class:`Trainer` runs epochs of steps; a step is: a batch of image/sound pairs, the model's
forward, the scheme's objective from :mod:`soundloc.losses` (``L_U``, ``L_S`` or
``L_U + λ L_S``, with each pair's negative the sound of another pair of its batch), backward and
the optimizer's step. What else training needs is a collaborator with explicit arguments:
the order and batches (:mod:`~soundloc.train.batches`), several processes
(:mod:`~soundloc.train.distributed`), precision and speed switches (:mod:`~soundloc.train.speed`),
records and callbacks (:mod:`~soundloc.train.records`), checkpoints and resume
(:mod:`~soundloc.train.checkpoint`) and validation (:mod:`~soundloc.train.validation`).

Reproducibility: ``fit`` seeds everything with ``config.seed``; the order of every epoch and the
negatives come from two generators re-seeded from ``(seed, epoch)``, so the same seed gives the
same history on the same machine (all but the ``seconds``).
"""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function
from torch.utils.data import DataLoader

from soundloc.data.types import Batch
from soundloc.losses import sample_negatives, scheme_loss
from soundloc.models import LocalizerOutput, SoundLocalizer
from soundloc.train import batches, checkpoint as ckpt
from soundloc.train.config import TrainConfig
from soundloc.train.distributed import Distribution, distributed_world
from soundloc.train.records import Callback, EpochSteps, History, epoch_record, skipped_step
from soundloc.train.speed import Speed
from soundloc.train.validation import ValFn, cached_forward, validate, weighted_means
from soundloc.utils.device import default_device
from soundloc.utils.progress import progress_bar
from soundloc.utils.seeding import seed_everything


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD over the parameters that require gradients (frozen streams are left out)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (every stream and layer is frozen)")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer,
                   config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The epoch-wise learning-rate schedule of ``config.scheduler`` (``None``: constant)."""
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.scheduler_step, gamma=config.scheduler_gamma)
    return None


def training_device(requested: str | None) -> torch.device:
    """``requested``, else a GPU when one is visible; with several processes a bare ``cuda``
    is this process's GPU (``LOCAL_RANK``'s, set by :func:`~soundloc.train.init_distributed`)."""
    device = torch.device(requested or default_device())
    if distributed_world()[1] > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


class Trainer:
    """Trains a :class:`~soundloc.models.SoundLocalizer` with one of the paper's schemes.

    Usage::

        trainer = Trainer(model, TrainConfig(scheme="semi_supervised", epochs=8))
        history = trainer.fit(train_set, val_set)

    ``train_set`` is any map-style dataset of :class:`~soundloc.data.Sample`.

    Attributes:
        model, config, device, optimizer, scheduler: what trains, how, where.
        epoch, step: epochs finished and optimizer steps taken (a resumed trainer goes on).
        history: one record per finished epoch (:func:`~soundloc.train.records.epoch_record`).
        epoch_steps: where the unfinished epoch stands (:class:`~soundloc.train.records.EpochSteps`).
        callbacks: called after every step and epoch (:class:`~soundloc.train.records.Callback`).
        checkpoint_extra: plain data stored with every checkpoint (e.g. the run's config).
        stop_requested: set it (a Ctrl-C handler does) to stop ``fit`` after the current step,
            with its checkpoint written there: :class:`~soundloc.train.TrainingInterrupted`.
        distribution, speed, generators: the collaborators (processes, precision, randomness).
    """

    def __init__(self, model: SoundLocalizer, config: TrainConfig | None = None, callbacks: Iterable[Callback] = (),
                 checkpoint_extra: dict[str, Any] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (a SoundLocalizer), got {type(model).__name__}")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config, self.device = config, training_device(config.device)
        self.distribution, self.speed = Distribution(self.device), Speed(config, self.device)
        self.model, self.ddp = self.distribution.wrap(self.speed.prepare_model(model.to(self.device)), config)
        self.optimizer = make_optimizer(self.model, config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.generators = batches.EpochGenerators(config.seed)
        self.callbacks = list(callbacks)
        self.checkpoint_extra = dict(checkpoint_extra or {})
        self.stop_requested = False
        self.epoch, self.step = 0, 0
        self.history: History = []
        self.epoch_steps = EpochSteps()

    @property
    def rank(self) -> int:
        return self.distribution.rank

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, train_set: Any, val_set: Any = None, val_fn: ValFn | None = None,
            checkpoint: str | os.PathLike[str] | None = None) -> History:
        """Train for ``config.epochs`` epochs (minus those done) and return the history.

        Each epoch: ``train_set.set_epoch(epoch)`` when the dataset has it (fresh annotator
        draws for L_S), one pass over the shuffled training pairs, then validation on
        ``val_set`` (:func:`~soundloc.train.validation.validate`). With ``checkpoint``, a
        resumable checkpoint is written there at every epoch's end and every
        ``config.checkpoint_every`` steps (by rank 0 alone with several processes).
        """
        if self.epoch == 0 and not self.epoch_steps:  # a resumed trainer restored the global RNG
            seed_everything(self.config.seed)
        data = batches.training_pairs(train_set, self.config)
        loader = batches.make_loader(data, self.config, self.generators.shuffle, self.device.type == "cuda",
                                     self.rank, self.distribution.world_size, epoch_target=train_set)
        path = checkpoint if checkpoint is not None and self.rank == 0 else None
        self.model.train()
        first, epochs = self.epoch, range(self.epoch, self.config.epochs)
        bar = progress_bar(epochs, self.shows_progress and len(epochs) > 1, desc=self.config.scheme, unit="epoch")
        for epoch in bar:
            lr = self.optimizer.param_groups[0]["lr"]
            seconds = self.train_epoch(epoch, loader, train_set, epoch == first, path)
            record = epoch_record(epoch, self.epoch_steps.steps, seconds, self.config.skip_unreadable)
            record.update({"lr": float(lr)} if self.scheduler is not None else {})
            if val_set is not None:
                record.update(validate(self.model, val_set, val_fn, self.held_out_loss))
            self.end_epoch(record, path)
            if record["loss"] is not None and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{record['loss']:.4f}")
        return self.history

    def train_epoch(self, epoch: int, loader: DataLoader, train_set: Any, first: bool,
                    checkpoint: str | os.PathLike[str] | None) -> float:
        """One pass over the epoch's batches (those not done before a resume); its seconds."""
        c, steps = self.config, self.epoch_steps
        t0 = time.perf_counter() - (steps.seconds if len(steps) else 0.0)
        self.start_epoch(epoch, loader, train_set, first)
        show = self.shows_progress
        bar = progress_bar(loader, show, desc=f"epoch {epoch + 1}/{c.epochs}", leave=False, unit="batch")
        for batch in bar:
            parts = self.train_step(batch, defer=c.sync_every > 1 and not self.distribution.several)
            steps.add(parts, batch.ids, epoch)
            save_now = bool(checkpoint and c.checkpoint_every and not parts["skipped"]
                            and self.step % c.checkpoint_every == 0)
            if save_now or len(steps) % c.sync_every == 0 or (show and len(steps) % c.log_every == 0):
                steps.sync(epoch)
            if save_now:
                self.save(checkpoint, time.perf_counter() - t0)
            for callback in self.callbacks:
                callback.on_step_end(self, batch, parts)
            if self.stop_requested:
                self.stop(None if save_now else checkpoint, time.perf_counter() - t0)
            if show and len(steps) % c.log_every == 0 and steps.running_loss(c.log_every) is not None:
                bar.set_postfix(loss=f"{steps.running_loss(c.log_every):.4f}")
        steps.sync(epoch)
        return time.perf_counter() - t0

    def start_epoch(self, epoch: int, loader: DataLoader, train_set: Any, first: bool) -> None:
        """Set the dataset's epoch, re-seed the generators, and place the order where a resumed
        epoch stands (the negatives' generator where its checkpoint left it)."""
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        self.generators.seed_epoch(epoch)
        if len(self.epoch_steps) and self.epoch_steps.negative_state is not None:
            self.generators.negative.set_state(self.epoch_steps.negative_state)
        self.epoch_steps.negative_state = None
        if isinstance(loader.sampler, batches.EpochOrder):
            loader.sampler.start = len(self.epoch_steps) * self.config.batch_size
            loader.sampler.epoch = epoch
        if loader.persistent_workers and not first:
            # A fresh loader iterator draws its workers' base seed from the shuffling generator
            # before the epoch's permutation, a persistent one once: draw it as fresh ones would.
            torch.empty((), dtype=torch.int64).random_(generator=self.generators.shuffle)

    def end_epoch(self, record: dict[str, Any], checkpoint: str | os.PathLike[str] | None) -> None:
        """Hand the record to the callbacks, add it to the history, step the schedule and write
        the checkpoint."""
        if self.config.scheme == "semi_supervised" and record["labelled"] == 0 and record["epoch"] == 1:
            warnings.warn("semi_supervised training saw no annotated pair in its first epoch: it is the unsupervised "
                          "scheme (does the dataset make gt_attention? pass grid=...)", stacklevel=3)
        for callback in self.callbacks:
            callback.on_epoch_end(self, record)
        self.history.append(record)
        self.epoch, self.epoch_steps = self.epoch + 1, EpochSteps()
        if self.scheduler is not None:
            with warnings.catch_warnings():  # an epoch resumed after its last batch took no step here
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.scheduler.step()
        if checkpoint is not None:
            ckpt.save_checkpoint(checkpoint, self)
        if self.stop_requested:
            self.stop(None, 0.0)

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, batch: Batch, defer: bool = False) -> dict[str, Any]:
        """Forward, the scheme's loss, backward and the optimizer's step on one batch; returns
        the step's record. A step left with too few readable pairs (with several processes: a
        rank with none), or a supervised batch without ground truth, is skipped (nothing
        changes, ``parts["skipped"]`` is True). ``defer`` keeps the terms on the device."""
        c, processes = self.config, self.distribution
        sizes = processes.sizes(len(batch))
        skipped = [i for i, _ in batch.skipped]
        if sum(sizes) < (1 if c.scheme == "supervised" else 2) or min(sizes) == 0:
            return skipped_step(sum(sizes), processes.unreadable(skipped) if c.skip_unreadable else skipped)
        labelled = int(batch.has_gt.sum())  # counted on the host, before the batch moves
        batch = self.speed.prepare_batch(batch)
        with record_function("soundloc.forward"), self.speed.autocast():
            out = self.forward(batch)
            loss, parts = self.compute_loss(batch, out, self.generators.negative, sizes, labelled, defer)
        parts["skipped"] = not loss.requires_grad
        if c.skip_unreadable:
            parts["unreadable"] = processes.unreadable(skipped)
        if parts["skipped"]:
            return parts
        norm = self.speed.step(loss, self.optimizer)
        if norm is not None:
            parts["grad_norm"] = norm.detach() if defer else float(norm)
        self.step += 1
        return parts

    def forward(self, batch: Batch) -> LocalizerOutput:
        """The model on a batch on the device, taking frozen streams' cached outputs from it
        (:func:`~soundloc.train.validation.cached_forward`); in training with several processes,
        through the DDP wrapper."""
        f_s, grid = batch.extras.get("sound_feature"), batch.extras.get("visual_feature")
        if f_s is not None and not self.model.config.freeze_sound:
            raise ValueError("cached sound features need a frozen sound stream (ModelConfig.freeze_sound)")
        if grid is not None and not self.model.config.freeze_visual:
            raise ValueError("cached visual features need a frozen visual stream (ModelConfig.freeze_visual)")
        if self.ddp is not None and self.model.training:
            if grid is not None:
                raise ValueError("cached visual features are for one process (the frozen stream's DDP path reads images)")
            return self.ddp(batch.image, batch.waveform if f_s is None else f_s, f_s is not None,
                            self.config.scheme != "supervised")
        return cached_forward(self.model, batch)

    def compute_loss(self, batch: Batch, out: LocalizerOutput, generator: torch.Generator,
                     sizes: list[int] | None = None, labelled: int | None = None,
                     defer: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(loss, parts)``: :func:`soundloc.losses.scheme_loss` on the batch, with each pair's
        negative drawn by ``generator`` from the other pairs of the batch (with several
        processes and every rank's ``sizes``, of the global batch). ``labelled`` counts the
        annotated pairs when the caller did on the host; ``defer`` keeps the terms as tensors."""
        c = self.config
        labelled = int(batch.has_gt.sum()) if labelled is None else labelled
        if sizes is not None and self.distribution.several:
            f_neg, share, count = self.distribution.global_negatives(out, sizes, labelled, generator, c)
        else:
            negatives = None if c.scheme == "supervised" else sample_negatives(len(batch), generator)
            f_neg = None if negatives is None else out.f_s[self.speed.to_device(negatives)]
            share, count = None, labelled
        terms = scheme_loss(c.scheme, out.f_v, out.f_s, f_neg, out.logits, batch.gt_attention, batch.has_gt,
                            lam=c.lam, attention_reduction=c.attention_reduction, labelled=labelled > 0, share=share)
        if share is not None:
            loss, l_u, l_s = self.distribution.mean_terms(terms)
        else:
            loss, l_u, l_s = (None if t is None else t.detach() if defer else float(t.detach())
                              for t in (terms.total, terms.l_u, terms.l_s))
        pairs = sum(sizes) if share is not None and sizes is not None else len(batch)
        return terms.total, {"pairs": pairs, "labelled": count, "l_u": l_u, "l_s": l_s, "loss": loss}

    # -- around the loop ---------------------------------------------------------------------------
    @torch.no_grad()
    def held_out_loss(self, dataset: Any) -> dict[str, float]:
        """The scheme's loss on ``dataset`` in eval mode: ``{"loss", "l_u", "l_s"}`` (means over
        pairs; ``l_s`` over annotated pairs). Every pair is used (a last batch of one pair,
        which has no negative, aside), with negatives from a generator seeded by
        ``config.seed`` alone: the same number at every epoch, the training draws untouched."""
        generator, was_training = self.generators.validation(), self.model.training
        self.model.eval()
        records = []
        try:
            data = batches.training_subset(dataset, self.config)
            for batch in batches.make_loader(data, self.config, None, self.device.type == "cuda"):
                if self.config.scheme != "supervised" and len(batch) < 2:
                    continue
                batch = self.speed.prepare_batch(batch)
                records.append(self.compute_loss(batch, self.forward(batch), generator)[1])
        finally:
            self.model.train(was_training)
        return weighted_means(records)

    @property
    def shows_progress(self) -> bool:
        """Progress bars are shown (``config.progress``) by one process."""
        return self.config.progress and self.rank == 0

    def save(self, checkpoint: str | os.PathLike[str], seconds: float) -> None:
        """Write the checkpoint mid-epoch, ``seconds`` into the epoch."""
        self.epoch_steps.seconds = seconds
        ckpt.save_checkpoint(checkpoint, self)

    def stop(self, checkpoint: str | os.PathLike[str] | None, seconds: float) -> None:
        """Answer :attr:`stop_requested`: write the checkpoint (when a path is given) and raise
        :class:`~soundloc.train.TrainingInterrupted`."""
        if checkpoint is not None:
            self.save(checkpoint, seconds)
        self.stop_requested = False
        self.epoch_steps.sync(self.epoch)
        raise ckpt.TrainingInterrupted(*ckpt.checkpoint_position(
            {"epoch": self.epoch, "epoch_steps": self.epoch_steps.steps, "step": self.step}))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (:func:`~soundloc.train.checkpoint.trainer_state`)."""
        return ckpt.trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (:func:`~soundloc.train.checkpoint.restore_trainer`)."""
        ckpt.restore_trainer(self, state)


def resume_trainer(path: str | os.PathLike[str], config: TrainConfig | None = None, device: str | None = None,
                   callbacks: Iterable[Callback] = (), extra: dict[str, Any] | None = None) -> Trainer:
    """The model and a :class:`Trainer` rebuilt from a checkpoint (:func:`~soundloc.train.save_checkpoint`),
    ready to continue with ``fit``: ``config`` changes the saved one (e.g. more ``epochs``),
    ``device`` overrides its device; the checkpoint's ``"extra"`` is updated with ``extra``."""
    state = ckpt.read_checkpoint(path)
    config = TrainConfig.from_dict(state["train_config"]) if config is None else config
    if device is not None:
        config = dataclasses.replace(config, device=device)
    trainer = Trainer(ckpt.checkpoint_model(state), config, callbacks=callbacks,
                      checkpoint_extra={**(state.get("extra") or {}), **(extra or {})})
    ckpt.restore_trainer(trainer, state)
    return trainer


def train(model: SoundLocalizer, dataset: Any, config: TrainConfig | None = None, val_set: Any = None,
          val_fn: ValFn | None = None, save_to: str | os.PathLike[str] | None = None) -> History:
    """Train ``model`` on ``dataset`` in place with a :class:`Trainer`; return the history.
    With ``save_to``, the final model is written with its train config and history."""
    trainer = Trainer(model, config)
    history = trainer.fit(dataset, val_set=val_set, val_fn=val_fn)
    if save_to is not None:
        ckpt.save_trained(save_to, trainer)
    return history


__all__ = ["Trainer", "make_optimizer", "make_scheduler", "resume_trainer", "train", "training_device"]

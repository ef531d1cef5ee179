"""The training loop shared by every experiment (Senocak et al., CVPR 2018, Sec. 3.2-3.3).

One plain loop, in the spirit of torchvision's reference scripts: :class:`Trainer` owns the
model, the optimizer and the random generators; :meth:`Trainer.fit` runs epochs of
:meth:`Trainer.train_step`, and :meth:`Trainer.compute_loss` is where the paper's objectives
live. Three learning schemes (``TrainConfig.scheme``), those of the paper's Table 1:

- ``"unsupervised"`` -- the triplet loss L_U only (Sec. 3.2): every image/sound pair is used,
  annotations are ignored. The negative of each pair is the sound of another pair of the same
  batch (:func:`soundloc.losses.sample_negatives`).
- ``"supervised"`` -- the attention loss L_S = −Σ_i α_GT,i log α_i only (Sec. 3.3), on the
  labelled pairs only: the loader is built over the labelled subset of the dataset (see
  :meth:`Trainer.labelled_indices`); pairs without ground truth are never loaded.
- ``"semi_supervised"`` -- L = L_U + λ(α_GT) L_S (Sec. 3.3): L_U on every pair, L_S where a
  ground truth exists; ``λ(α_GT) = TrainConfig.lam`` (1 in the paper) for annotated pairs and 0
  otherwise. With ``lam = 0`` it is the unsupervised scheme (same numbers, same seed).

Reproducibility: :meth:`Trainer.fit` calls :func:`soundloc.utils.seed_everything` with
``config.seed``; the shuffling of every epoch and the negatives are drawn from two
``torch.Generator`` objects re-seeded at the start of each epoch from ``(seed, epoch)``, so the
same seed gives the same history on the same machine (all but the ``seconds`` field). The
model's initial weights come from whoever built it: seed before
:func:`soundloc.models.build_model` too.

Resuming: given a ``checkpoint`` path, :meth:`Trainer.fit` writes a checkpoint atomically at the
end of every epoch and, with ``TrainConfig.checkpoint_every = N``, after every N optimizer
steps. It holds the model, the optimizer, the LR scheduler, the grad scaler (mixed precision),
every random state (torch CPU and CUDA, NumPy, Python, the shuffling and negative generators),
the position in the epoch (the batches done and their loss terms) and both configs, as plain
types and tensors that load with ``torch.load(weights_only=True)``. :func:`resume_trainer`
rebuilds the trainer; its :meth:`~Trainer.fit` redraws the interrupted epoch's shuffled order
from the same seed, skips the batches already done and continues exactly as the uninterrupted
run would have: same weights, same history (timings aside). Setting
:attr:`Trainer.stop_requested` (a Ctrl-C handler does, :mod:`soundloc.experiments.engine`)
stops :meth:`Trainer.fit` after the current step: it writes the checkpoint there and raises
:class:`TrainingInterrupted`, so an interruption loses no finished step.

Several processes (``torchrun``): when the default process group of ``torch.distributed`` is
initialised (:func:`init_distributed` does it from torchrun's environment variables), the
trainer runs data-parallel: ``TrainConfig.batch_size`` stays the *global* batch, each of the
``W`` processes takes its ``batch_size / W`` pairs of every global batch of the same seeded
epoch order (:class:`ShardedEpochOrder`), the model is wrapped in
``DistributedDataParallel`` and the sound features f_s of the global batch are gathered so
that each pair's negative is drawn from the whole global batch with the generator every rank
shares (the paper's L_U, Sec. 3.2, over the global batch). The objective, its gradient and the
history are those of one process on the same global batch, up to float rounding. BatchNorm
in trained streams is converted to ``SyncBatchNorm`` (CUDA only; frozen streams keep their
fixed statistics). Progress bars and checkpoints come from rank 0 only; a checkpoint holds no
trace of the world size, so a run resumes on another number of processes.

Defaults of :class:`TrainConfig` are the authors' README command (Adam, lr 1e-4, weight decay 0,
batch 30, 10 epochs); their code's own defaults differ (SGD, momentum 0.9, weight decay 1e-4,
batch 32): :meth:`TrainConfig.authors_code`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.profiler import record_function
from torch.utils.data import ConcatDataset, DataLoader, Sampler, Subset

from soundloc.config import ConfigMixin, check_choice, check_int, check_number
from soundloc.constants import SCHEMES, Scheme
from soundloc.data.dataset import SkipUnreadable
from soundloc.data.types import Batch, collate, collate_readable
from soundloc.losses import AttentionReduction, attention_loss, sample_negatives, scheme_loss, unsupervised_loss
from soundloc.models import LocalizerOutput, ModelConfig, SoundLocalizer, build_model, save_model
from soundloc.utils import (atomic_path, default_device, get_rng_state, progress_bar, read_torch_file, seed_everything,
                            set_rng_state)

Optimizer = Literal["adam", "sgd"]
Scheduler = Literal["cosine", "step"]
AmpDtype = Literal["float16", "bfloat16"]

History = list[dict[str, Any]]
_TERMS = ("loss", "l_u", "l_s", "grad_norm")  # a step's values that may wait on the device
ValFn = Callable[[SoundLocalizer, Any], dict[str, float]]


@dataclass
class TrainConfig(ConfigMixin):
    """How to train (plain types only: ``asdict`` of it goes into saved models).

    The speed settings, from ``amp_dtype`` to ``prefetch_factor``, are for GPU training of the
    paper's frozen setup. Each one is off by default, so CPU training gives the same numbers
    as before. ``benchmarks/bench_train.py`` measures them, and ``soundloc train --fast``
    turns them on.

    Attributes:
        scheme: ``"unsupervised"`` | ``"supervised"`` | ``"semi_supervised"`` (module docstring).
        epochs: passes over the training set.
        batch_size: pairs per step; at least 2 for the schemes with L_U (the negative of a pair
            is another pair of its batch). The loader drops the last incomplete batch.
        optimizer: ``"adam"`` or ``"sgd"`` (``momentum`` applies to SGD only).
        lr, weight_decay, momentum: optimizer settings.
        lam: λ of the semi-supervised loss L = L_U + λ L_S (paper Sec. 3.3; 1 in the paper),
            applied to annotated pairs; ignored by the other schemes.
        attention_reduction: how L_S is averaged in a batch: ``"batch_mean"`` (the paper's: sum
            over annotated pairs ÷ batch size, the per-pair λ(α_GT) L_S averaged over the
            batch) or ``"labelled_mean"`` (over the annotated pairs of the batch).
        grad_clip: clip the gradients' global L2 norm to this value (``None``: no clipping).
        num_workers: DataLoader worker processes.
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` (:func:`soundloc.utils.default_device`).
        seed: seeds everything random in training (see the module docstring).
        progress: show tqdm progress bars.
        log_every: refresh the progress bar's running loss every this many steps.
        scheduler: learning-rate schedule, stepped at the end of every epoch: ``None`` (constant
            ``lr``, the authors' setting), ``"cosine"`` (cosine annealing to 0 over ``epochs``)
            or ``"step"`` (multiply by ``scheduler_gamma`` every ``scheduler_step`` epochs).
        scheduler_step, scheduler_gamma: the ``"step"`` schedule's period (epochs) and factor.
        amp: mixed precision on a CUDA device (autocast to ``amp_dtype``; with float16, a
            gradient scaler).
        checkpoint_every: with a checkpoint path given to :meth:`Trainer.fit`, also write the
            checkpoint after every this many optimizer steps (``None``: at epoch ends only).
        skip_unreadable: leave out of training the pairs that cannot be read (a missing or
            corrupt file, silent audio), each reported by a warning naming it and counted in the
            epoch's record (``unreadable``), instead of stopping the run
            (:class:`~soundloc.data.SkipUnreadable`).
        amp_dtype: the autocast type of ``amp``: ``"float16"`` (with a gradient scaler) or
            ``"bfloat16"`` (float32's exponent range: no scaler needed).
        channels_last: the model's 4-D weights and the image batches in channels-last memory
            order (NHWC), the layout of tensor-core convolutions.
        cudnn_benchmark: let cuDNN time its convolution algorithms on the first batches of each
            shape and keep the fastest (``torch.backends.cudnn.benchmark``; CUDA only).
        compile: ``torch.compile`` the model's streams and localization module in place
            (``nn.Module.compile``: the state dict keeps its keys, checkpoints are unchanged).
        sync_every: bring the steps' loss terms from the device to the host every this many
            steps (1: every step, as always). Between two, the terms stay device tensors in the
            steps' records, so the host never waits for the device; the non-finite loss check
            and ``on_step_end``'s ``parts`` see them at the next sync (the history is the same).
        persistent_workers: keep the DataLoader's worker processes alive across epochs (with
            ``num_workers`` > 0). Each worker holds its own copy of the dataset, which the
            trainer's ``set_epoch`` calls would not reach: the sampler then sends the epoch with
            every index, so the per-epoch draws (annotators, random crops) are those of
            fresh workers.
        prefetch_factor: batches each worker loads ahead (``None``: DataLoader's default, 2).
    """

    scheme: Scheme = "unsupervised"
    epochs: int = 10
    batch_size: int = 30
    optimizer: Optimizer = "adam"
    lr: float = 1e-4
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
    amp: bool = False
    checkpoint_every: int | None = None
    skip_unreadable: bool = False
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
            raise ValueError(
                f"batch_size must be >= 2 for the {self.scheme} scheme (a pair's negative is another "
                f"pair of its batch), got {self.batch_size}"
            )
        check_number(self, "weight_decay", "momentum", "lam")
        check_number(self, "lr", low_open=True)
        check_number(self, "grad_clip", low_open=True, optional=True)

    @classmethod
    def authors_code(cls, **overrides: Any) -> "TrainConfig":
        """The defaults of the authors' training script (SGD, lr 1e-4, momentum 0.9, weight decay
        1e-4, batch 32), as opposed to their README's command (this class's defaults)."""
        base: dict[str, Any] = dict(optimizer="sgd", lr=1e-4, momentum=0.9, weight_decay=1e-4, batch_size=32)
        base.update(overrides)
        return cls(**base)



class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` when :attr:`Trainer.stop_requested` was set: training
    stopped between two steps, after writing its checkpoint (when it had a path).
    ``epoch`` (1-based) is the epoch of the last step done and ``step`` the optimizer steps
    done in all (:func:`checkpoint_position`)."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"training stopped at epoch {epoch} step {step}")
        self.epoch, self.step = epoch, step


def checkpoint_position(state: dict[str, Any]) -> tuple[int, int]:
    """Where a :meth:`Trainer.state_dict` (or a checkpoint) stands, as ``(epoch, step)``: the
    1-based epoch of its last step (1 before any) and the optimizer steps done in all."""
    epoch = int(state["epoch"]) + (1 if state.get("epoch_steps") else 0)
    return max(epoch, 1), int(state["step"])


def _ignore_interrupt(worker_id: int) -> None:
    """A DataLoader worker's start: Ctrl-C reaches the whole process group, and the main
    process decides what it means (:attr:`Trainer.stop_requested`); a worker that died of it
    would fail the next batch instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class EpochOrder(Sampler[int]):
    """The shuffled order of one epoch, drawn from ``generator`` when iterated, from position
    ``start`` on.

    The same draw as ``DataLoader(shuffle=True, generator=...)`` (one ``randperm`` of the
    dataset per pass), so a run that skips nothing is the plain shuffled loader's run; a resumed
    run sets ``start`` to the number of pairs already done and redraws the same permutation
    from the re-seeded generator, without loading the skipped pairs.
    """

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator
        self.start = 0
        self.epoch = 0
        self.tag_epoch = False  # yield (epoch, index) pairs for EpochTagged (persistent workers)

    def __iter__(self) -> Any:
        for index in self.indices():
            yield (self.epoch, index) if self.tag_epoch else index

    def indices(self) -> Any:
        """The epoch's dataset indices, in order (from ``start`` on)."""
        order = torch.randperm(self.size, generator=self.generator).tolist()
        yield from order[self.start:]

    def __len__(self) -> int:
        return self.size - self.start


class ShardedEpochOrder(EpochOrder):
    """One rank's share of the global epoch order of :class:`EpochOrder` (data parallelism).

    Every rank draws the same permutation from the same generator (seeded from
    ``(seed, epoch)`` by :meth:`Trainer.seed_epoch`), cuts it into global batches of
    ``batch_size`` pairs (the last incomplete one dropped, as the one-process loader does) and
    takes the ``rank``-th slice of ``batch_size / world_size`` pairs of each: concatenated in
    rank order, the local batches are the one-process batch. A ``DistributedSampler`` that keeps
    the trainer's seeded shuffle and resumes mid-epoch; ``start`` counts pairs of the global
    order (a multiple of ``batch_size``).
    """

    def __init__(self, size: int, generator: torch.Generator, rank: int, world_size: int, batch_size: int) -> None:
        super().__init__(size, generator)
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} is not divisible by the world size {world_size}")
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size

    def indices(self) -> Any:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        local = self.batch_size // self.world_size
        for first in range(self.start, self.size - self.batch_size + 1, self.batch_size):
            yield from order[first + self.rank * local: first + (self.rank + 1) * local]

    def __len__(self) -> int:
        return (self.size - self.start) // self.batch_size * (self.batch_size // self.world_size)


class EpochTagged(torch.utils.data.Dataset):
    """``dataset`` indexed by ``(epoch, index)``: the epoch travels with each index.

    A persistent DataLoader worker keeps the copy of the dataset it was started with, so the
    ``set_epoch(epoch)`` that :meth:`Trainer.fit` calls on the main process's dataset does not
    reach it. This wrapper calls ``set_epoch`` on the worker's own copy of ``target`` (the
    dataset that has the method, possibly inside ``dataset``: a ``Subset``, a
    :class:`~soundloc.data.SkipUnreadable`) whenever the epoch of an index changes, so the
    samples are those a fresh worker would give.
    """

    def __init__(self, dataset: Any, target: Any) -> None:
        self.dataset = dataset
        self.target = target  # pickled with dataset: a worker's target is its dataset's own
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self.epoch:
            if hasattr(self.target, "set_epoch"):
                self.target.set_epoch(epoch)
            self.epoch = epoch
        return self.dataset[index]


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes, when it describes one.

    With ``WORLD_SIZE`` > 1 in the environment (torchrun also sets ``RANK``, ``LOCAL_RANK``,
    ``MASTER_ADDR`` and ``MASTER_PORT``) and no process group yet, initialise the default one:
    NCCL with each process on GPU ``LOCAL_RANK`` when CUDA is available, gloo otherwise.
    Nothing happens in a plain single process.

    Returns:
        ``(rank, world_size)``, as :func:`distributed_world` gives them afterwards.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return distributed_world()


class _GatherRows(torch.autograd.Function):
    """All ranks' rows of a ``[b_r, D]`` tensor, in rank order (``[sum(sizes), D]``; ``sizes``
    holds every rank's ``b_r``). The gradient of the gathered rows is summed over ranks and each
    rank keeps its own rows': what every rank's loss contributes to the features it computed
    (all_gather and all_reduce only, which every backend has)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:  # type: ignore[override]
        rank = dist.get_rank()
        ctx.first, ctx.rows = sum(sizes[:rank]), x.shape[0]
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.first: ctx.first + ctx.rows], None


class _Step(nn.Module):
    """What ``DistributedDataParallel`` wraps: the model's forward on waveforms, or on cached
    sound features (:meth:`Trainer.forward`), so both paths go through DDP's hooks. Without L_U
    (the supervised scheme) f_v comes out detached: DDP looks for unused parameters from the
    outputs, and the layers that make f_v get no gradient there."""

    def __init__(self, model: SoundLocalizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, sound: torch.Tensor, cached: bool, f_v: bool) -> LocalizerOutput:
        if cached:
            out = self.model.localize(self.model.encode_image(image), sound)
        else:
            out = self.model(image, sound)
        return out if f_v else dataclasses.replace(out, f_v=out.f_v.detach())


def _derived_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for generator ``stream`` at ``epoch`` (independent streams per epoch)."""
    return int(np.random.SeedSequence([seed % 2**63, epoch, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class Trainer:
    """Trains a :class:`~soundloc.models.SoundLocalizer` with one of the paper's schemes.

    Usage::

        trainer = Trainer(model, TrainConfig(scheme="semi_supervised", epochs=8))
        history = trainer.fit(train_set, val_set)

    ``train_set`` is any map-style dataset of :class:`~soundloc.data.Sample` (an
    :class:`~soundloc.data.AVDataset`, a list of samples, a ``Subset``...). Extension points for
    subclasses: :meth:`make_optimizer`,
    :meth:`make_loader`, :meth:`labelled_indices`, :meth:`forward`, :meth:`compute_loss`,
    :meth:`train_step`, :meth:`on_step_end`, :meth:`on_epoch_end`, :meth:`validate`.

    Attributes:
        model: the model (moved to ``device``).
        config: the :class:`TrainConfig`.
        device: the torch device training runs on.
        optimizer: built by :meth:`make_optimizer` over the parameters that require gradients.
        scheduler: the learning-rate scheduler (:meth:`make_scheduler`) or ``None``.
        scaler: the gradient scaler of mixed precision (``config.amp``) or ``None``.
        epoch: number of epochs finished so far (a resumed trainer continues from here).
        history: one dict per finished epoch (see :meth:`fit`).
        step: number of optimizer steps taken so far.
        epoch_steps: the loss terms of the batches done in the current, unfinished epoch (its
            length is the position in the epoch; empty between epochs).
        checkpoint_extra: plain data stored with every checkpoint :meth:`fit` writes (e.g. the
            experiment's config); :func:`read_checkpoint` returns it under ``"extra"``.
        rank, world_size: this process's place in the process group (``0, 1`` without one).
        ddp: the ``DistributedDataParallel`` wrapper of :attr:`model` with several processes
            (:meth:`wrap_distributed`), else ``None``.
        stop_requested: set it (e.g. from a signal handler) to stop :meth:`fit` after the
            current step, with its checkpoint written there: :class:`TrainingInterrupted`.
    """

    def __init__(self, model: SoundLocalizer, config: TrainConfig | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (a SoundLocalizer), got {type(model).__name__}")
        if config is None:
            config = TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.rank, self.world_size = distributed_world()
        self.device = torch.device(config.device or default_device())
        if self.world_size > 1 and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())  # LOCAL_RANK's (init_distributed)
        if config.amp and self.device.type != "cuda":
            raise ValueError(f"TrainConfig.amp (mixed precision) needs a CUDA device, got {self.device}")
        self.model = model.to(self.device)
        self.apply_speed_settings()
        self.ddp: nn.Module | None = self.wrap_distributed() if self.world_size > 1 else None
        self.optimizer = self.make_optimizer()
        self.scheduler = self.make_scheduler()
        self.scaler = torch.amp.GradScaler("cuda") if config.amp and config.amp_dtype == "float16" else None
        self.epoch = 0
        self.step = 0
        self.history: History = []
        self.epoch_steps: list[dict[str, Any]] = []
        self.checkpoint_extra: dict[str, Any] = {}
        self.stop_requested = False
        self._epoch_seconds = 0.0  # time spent in the unfinished epoch before a resume
        self._negative_state: torch.Tensor | None = None  # set by load_state_dict mid-epoch
        self._rank_sizes: list[int] | None = None  # every rank's pairs in the step being taken
        self._host_labelled: int | None = None  # the step's annotated pairs, counted on the host
        self._defer_parts = False  # compute_loss keeps the loss terms on the device (sync_every > 1)
        self._pending_ids: dict[int, list[str]] = {}  # steps not yet synced -> their first batch ids
        # Seeded per epoch in fit(); CPU generators so that numbers do not depend on the device.
        self.shuffle_generator = torch.Generator()
        self.negative_generator = torch.Generator()

    # -- building blocks -----------------------------------------------------------------------
    def apply_speed_settings(self) -> None:
        """The speed settings of the config that act on the model and the backend:
        ``cudnn_benchmark`` (CUDA only), ``channels_last`` (the model's 4-D weights) and
        ``compile`` (each stream and the localization module compiled in place, so that the
        state dict and the checkpoints keep their keys). Numbers change only by float rounding
        (channels-last and compiled kernels sum in other orders)."""
        c = self.config
        if c.cudnn_benchmark and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if c.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if c.compile:
            for name in ("visual", "sound", "attention"):
                part = getattr(self.model, name, None)
                if isinstance(part, nn.Module):
                    part.compile()

    def wrap_distributed(self) -> nn.Module:
        """The model in ``DistributedDataParallel``, for a world of several processes.

        BatchNorm layers with trainable parameters become ``SyncBatchNorm`` (statistics over
        the global batch, as one process would compute them); PyTorch synchronises them on CUDA
        only, so on CPU they are refused: freeze the streams that hold them. Frozen streams keep
        their fixed statistics. ``find_unused_parameters`` is on only where some trainable
        parameters take no part in the loss: a trained sound stream's SoundNet scene head, and
        the layers that make f_v in the supervised scheme (L_S alone).

        Returns:
            The DDP module :meth:`forward` calls in training (:attr:`model` stays the plain
            model: checkpoints and saved models do not depend on the world size).

        Raises:
            ValueError: a ``batch_size`` not divisible by the world size, or trainable
                BatchNorm off CUDA.
        """
        c = self.config
        if c.batch_size % self.world_size:
            raise ValueError(f"batch_size={c.batch_size} (the global batch) is not divisible by the world size {self.world_size}")
        trained_bn = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                      and any(p.requires_grad for p in m.parameters(recurse=False))]
        if trained_bn:
            if self.device.type != "cuda":
                raise ValueError(
                    f"the model has {len(trained_bn)} trainable BatchNorm layers: with several processes they must be "
                    f"synchronised (SyncBatchNorm, CUDA only) or frozen (ModelConfig.freeze_sound / freeze_visual)"
                )
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        # Parameters without a gradient: a trained SoundNet's scene head (conv8_scenes), which no
        # loss uses, and, with L_S alone, the layers that make f_v. Only then must DDP look for them.
        scenes = getattr(getattr(self.model, "sound", None), "conv8_scenes", None)
        unused = c.scheme == "supervised" or (
            isinstance(scenes, nn.Module) and any(p.requires_grad for p in scenes.parameters()))
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(_Step(self.model), device_ids=ids, find_unused_parameters=unused)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam or SGD over the parameters that require gradients (frozen streams are left out)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (every stream and layer is frozen)")
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The epoch-wise learning-rate schedule of ``config.scheduler`` (``None``: constant)."""
        c = self.config
        if c.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(c.epochs, 1))
        if c.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=c.scheduler_step, gamma=c.scheduler_gamma)
        return None

    def labelled_indices(self, dataset: Any) -> list[int]:
        """Indices of the pairs of ``dataset`` that carry a ground-truth attention map.

        Without loading anything for an :class:`~soundloc.data.AVDataset` (its ``labelled`` ids,
        when it has a ``grid``), a ``Subset`` or a ``ConcatDataset`` of such datasets; a dataset
        may also provide its own ``labelled_indices()`` method. Otherwise every sample is loaded
        once and checked for ``gt_attention``.
        """
        if hasattr(dataset, "labelled_indices") and callable(dataset.labelled_indices):
            return [int(i) for i in dataset.labelled_indices()]
        if isinstance(dataset, Subset):
            inner = set(self.labelled_indices(dataset.dataset))
            return [k for k, i in enumerate(dataset.indices) if int(i) in inner]
        if isinstance(dataset, ConcatDataset):  # e.g. unlabelled videos + the labelled pool
            starts = [0, *dataset.cumulative_sizes[:-1]]
            return [start + k for start, part in zip(starts, dataset.datasets) for k in self.labelled_indices(part)]
        if hasattr(dataset, "labelled") and hasattr(dataset, "ids") and hasattr(dataset, "grid"):
            if dataset.grid is None:
                return []
            labelled = set(dataset.labelled)
            return [k for k, i in enumerate(dataset.ids) if i in labelled]
        out = []
        for k in progress_bar(range(len(dataset)), self.config.progress, desc="finding labelled pairs", leave=False):
            if getattr(dataset[k], "gt_attention", None) is not None:
                out.append(k)
        return out

    def training_subset(self, dataset: Any) -> Any:
        """The pairs the scheme trains on: all of them, or the labelled ones for ``"supervised"``."""
        if self.config.scheme != "supervised":
            return dataset
        idx = self.labelled_indices(dataset)
        if not idx:
            raise ValueError("the supervised scheme needs labelled pairs, but the training set has none")
        return Subset(dataset, idx)

    def make_loader(self, dataset: Any, shuffle: bool = True, drop_last: bool = True,
                    epoch_target: Any = None) -> DataLoader:
        """A DataLoader of :class:`~soundloc.data.Batch` (``collate_fn=soundloc.data.collate``),
        shuffled by :attr:`shuffle_generator` through an :class:`EpochOrder` sampler (so that a
        resumed epoch can start mid-way); the last incomplete batch is dropped for training (a
        batch of 1 has no negative). With several processes, the shuffled loader serves this
        rank's share of each global batch (:class:`ShardedEpochOrder`).

        Batches go to pinned memory on CUDA (``non_blocking`` copies). With
        ``config.persistent_workers`` (and workers), the shuffled loader keeps its workers
        across epochs and sends the epoch with each index to ``epoch_target`` (default
        ``dataset``; :class:`EpochTagged`)."""
        c = self.config
        sampler: EpochOrder | None = None
        batch_size = c.batch_size
        if shuffle and self.world_size > 1:  # this rank's slice of every global batch
            sampler = ShardedEpochOrder(len(dataset), self.shuffle_generator, self.rank, self.world_size, batch_size)
            batch_size //= self.world_size
        elif shuffle:
            sampler = EpochOrder(len(dataset), self.shuffle_generator)
        persistent = c.persistent_workers and c.num_workers > 0 and sampler is not None
        if persistent:
            assert sampler is not None
            sampler.tag_epoch = True
            dataset = EpochTagged(dataset, dataset if epoch_target is None else epoch_target)
        extra: dict[str, Any] = {}
        if c.num_workers > 0 and c.prefetch_factor is not None:
            extra["prefetch_factor"] = c.prefetch_factor
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            collate_fn=collate_readable if c.skip_unreadable else collate,
            num_workers=c.num_workers,
            generator=self.shuffle_generator if shuffle else None,
            pin_memory=self.device.type == "cuda",
            persistent_workers=persistent,
            worker_init_fn=_ignore_interrupt if c.num_workers > 0 else None,
            **extra,
        )

    def seed_epoch(self, epoch: int) -> None:
        """Re-seed the shuffling and negative generators for ``epoch`` (from ``config.seed``)."""
        self.shuffle_generator.manual_seed(_derived_seed(self.config.seed, epoch, 0))
        self.negative_generator.manual_seed(_derived_seed(self.config.seed, epoch, 1))

    # -- one step ------------------------------------------------------------------------------
    def prepare_batch(self, batch: Batch) -> Batch:
        """The batch on the device, ready for the model: frames packed as uint8
        (:class:`~soundloc.data.PackedDataset` with ``uint8_frames``) become floats in [0, 1]
        there (a quarter of the bytes to pin and copy; ``u8 / 255`` as the dataset computes it,
        so the same numbers), and images go channels-last with ``config.channels_last``."""
        batch = batch.to(self.device, non_blocking=True)
        image = batch.image
        if image.dtype == torch.uint8:
            image = image.float().div_(255.0)
        if self.config.channels_last and image.dim() == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        batch.image = image
        return batch

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The mixed-precision context of a step: CUDA autocast to ``config.amp_dtype`` with
        ``config.amp``, else nothing."""
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.config.amp_dtype == "bfloat16" else torch.float16)

    def forward(self, batch: Batch) -> LocalizerOutput:
        """The model on a batch (already on the device). A batch carrying the frozen sound
        stream's cached features (``extras["sound_feature"]``, :mod:`soundloc.data.sound_features`)
        skips the sound network: the attention module gets them in place of its output. In
        training with several processes the model runs through its DDP wrapper (:attr:`ddp`)."""
        f_s = batch.extras.get("sound_feature")
        if f_s is not None and not self.model.config.freeze_sound:
            raise ValueError("cached sound features need a frozen sound stream (ModelConfig.freeze_sound)")
        grid = batch.extras.get("visual_feature")
        if grid is not None and not self.model.config.freeze_visual:
            raise ValueError("cached visual features need a frozen visual stream (ModelConfig.freeze_visual)")
        if self.ddp is not None and self.model.training:
            if grid is not None:
                raise ValueError("cached visual features are for one process (the frozen stream's DDP path reads images)")
            return self.ddp(batch.image, batch.waveform if f_s is None else f_s, f_s is not None,
                            self.config.scheme != "supervised")
        return cached_forward(self.model, batch)

    def compute_loss(self, batch: Batch, out: LocalizerOutput) -> tuple[torch.Tensor, dict[str, float]]:
        """The scheme's objective on one batch: ``(loss, parts)``.

        - unsupervised: ``L_U(f_v, f_s, f_s[neg])`` with ``neg`` from
          :func:`~soundloc.losses.sample_negatives` (Sec. 3.2);
        - supervised: ``L_S(logits, α_GT)`` on the annotated rows (Sec. 3.3);
        - semi-supervised: ``L_U + λ L_S``, L_S on the annotated rows only (Sec. 3.3).

        ``parts`` holds floats: ``loss``, ``l_u`` and ``l_s`` (``None`` for a term the scheme
        does not use, and ``l_s`` also ``None`` when the batch has no annotated pair), ``pairs``
        and ``labelled`` (counts).

        In training with several processes, :meth:`compute_global_loss` takes over: the same
        objective over the global batch.
        """
        if self.world_size > 1 and self.model.training:
            return self.compute_global_loss(batch, out)
        c = self.config
        n_lab = self._host_labelled if self._host_labelled is not None else int(batch.has_gt.sum())
        if c.scheme != "unsupervised" and n_lab > 0 and out.logits.shape != batch.gt_attention.shape:
            raise ValueError(
                f"the dataset's gt_attention grid {tuple(batch.gt_attention.shape[1:])} differs from the "
                f"model's attention grid {tuple(out.logits.shape[1:])}: build the dataset with grid="
                f"{tuple(out.logits.shape[1:])}"
            )
        neg = None
        if c.scheme != "supervised":
            neg = self._to_device(sample_negatives(len(batch), self.negative_generator), out.f_s.device)
        terms = scheme_loss(c.scheme, out.f_v, out.f_s, neg, out.logits, batch.gt_attention, batch.has_gt,
                            lam=c.lam, attention_reduction=c.attention_reduction, labelled=n_lab > 0)
        value = self._term_value
        parts: dict[str, Any] = {
            "pairs": len(batch), "labelled": n_lab,
            "l_u": None if terms.l_u is None else value(terms.l_u),
            "l_s": None if terms.l_s is None else value(terms.l_s),
            "loss": value(terms.total),
        }
        return terms.total, parts

    @staticmethod
    def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
        """A small CPU tensor on ``device`` without making the host wait: a plain copy to a GPU
        synchronises the stream, a copy from pinned memory does not (the same values)."""
        if device.type != "cuda":
            return t.to(device)
        return t.pin_memory().to(device, non_blocking=True)

    def _term_value(self, term: torch.Tensor) -> float | torch.Tensor:
        """A loss term for the step's record: a float, or the detached device tensor while a
        training step defers the host sync (``config.sync_every`` > 1; see :meth:`sync_steps`)."""
        return term.detach() if self._defer_parts else float(term.detach())

    def compute_global_loss(self, batch: Batch, out: LocalizerOutput) -> tuple[torch.Tensor, dict[str, float]]:
        """This rank's share of the scheme's objective over the global batch (several processes).

        The sound features f_s of all ranks are gathered in rank order (the one-process batch)
        and the negatives of the ``W b`` rows are drawn with :attr:`negative_generator`, which
        every rank seeds alike, exactly as one process draws them (Sec. 3.2: the negative of a
        pair is the sound of another pair of the batch, now of the global batch); this rank
        keeps its rows' negatives. Each term is scaled so that its mean over ranks is the global
        term (L_U and the ``"batch_mean"`` L_S by this rank's share of the global batch, the
        ``"labelled_mean"`` L_S by its share of the annotated pairs); DDP
        averages the gradients over ranks and the gathered rows send theirs back to the rank
        that computed them, so the gradient is the one-process gradient.

        Args:
            batch: this rank's pairs (``batch_size / W`` of them, unless unreadable pairs were
                left out), on the device.
            out: the model's output on them.

        Returns:
            ``(loss, parts)`` as :meth:`compute_loss`; ``parts`` hold the global batch's values
            (the same on every rank).
        """
        c = self.config
        size, b = self.world_size, len(batch)
        sizes = self._rank_sizes if self._rank_sizes is not None else self.gather_sizes(b)
        n = sum(sizes)  # the global batch (fewer than batch_size when unreadable pairs were left out)
        n_lab = int(batch.has_gt.sum())
        if c.scheme != "unsupervised" and n_lab > 0 and out.logits.shape != batch.gt_attention.shape:
            raise ValueError(
                f"the dataset's gt_attention grid {tuple(batch.gt_attention.shape[1:])} differs from the "
                f"model's attention grid {tuple(out.logits.shape[1:])}"
            )
        counts = torch.tensor([float(n_lab)], device=out.f_v.device)
        dist.all_reduce(counts)
        n_global = int(counts.item())
        l_u = l_s = None
        share = b * size / n  # local means -> this rank's share of a global mean (1 when sizes are equal)
        if c.scheme != "supervised":
            f_s_all = _GatherRows.apply(out.f_s, sizes)
            neg = sample_negatives(n, self.negative_generator, device=out.f_s.device)
            first = sum(sizes[: self.rank])
            l_u = unsupervised_loss(out.f_v, out.f_s, f_s_all[neg[first: first + b]]) * share
        if c.scheme != "unsupervised" and n_global > 0:
            if n_lab > 0:
                l_s = attention_loss(out.logits, batch.gt_attention, batch.has_gt, reduction=c.attention_reduction)
                l_s = l_s * (n_lab * size / n_global if c.attention_reduction == "labelled_mean" else share)
            else:  # no annotated pair here, some elsewhere: a zero that keeps DDP's graph whole
                l_s = out.logits.sum() * 0.0
        if c.scheme == "unsupervised" or l_s is None:
            total = l_u if l_u is not None else out.f_v.new_zeros(())
        else:
            total = l_s if l_u is None else l_u + c.lam * l_s
        terms = [t.detach() if t is not None else out.f_v.new_zeros(()) for t in (total, l_u, l_s)]
        mean = torch.stack(terms).float()
        dist.all_reduce(mean)
        mean = (mean / size).tolist()
        parts: dict[str, Any] = {
            "pairs": n, "labelled": n_global, "loss": mean[0],
            "l_u": None if l_u is None else mean[1], "l_s": None if l_s is None else mean[2],
        }
        return total, parts

    def train_step(self, batch: Batch) -> dict[str, Any]:
        """Forward, loss, backward, (clip), optimizer step on one batch; returns the loss parts.

        A supervised batch without any annotated pair (possible only when a labelled pair's mask
        turned out empty) is skipped: nothing is updated and ``parts["skipped"]`` is True.
        With several processes the decision is the global batch's, and a step where some rank
        was left with no readable pair is skipped by all (it would have nothing to run).
        """
        fewest = 1 if self.config.scheme == "supervised" else 2
        sizes = self.gather_sizes(len(batch)) if self.world_size > 1 else [len(batch)]
        if sum(sizes) < fewest or min(sizes) == 0:  # unreadable pairs left too few
            return {"pairs": sum(sizes), "labelled": 0, "l_u": None, "l_s": None, "loss": 0.0, "skipped": True,
                    "unreadable": self.gather_unreadable(batch)}
        self._rank_sizes = sizes if self.world_size > 1 else None
        self._host_labelled = int(batch.has_gt.sum()) if batch.has_gt.device.type == "cpu" else None
        batch = self.prepare_batch(batch)
        self._defer_parts = self.config.sync_every > 1 and self.world_size == 1
        try:
            with record_function("soundloc.forward"), self.autocast():
                out = self.forward(batch)
                loss, parts = self.compute_loss(batch, out)
        finally:
            self._rank_sizes = self._host_labelled = None
            self._defer_parts = False
        parts["skipped"] = not loss.requires_grad
        if self.config.skip_unreadable:
            parts["unreadable"] = self.gather_unreadable(batch)
        if parts["skipped"]:
            return parts
        with record_function("soundloc.backward"):
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if self.config.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
        with record_function("soundloc.optimizer"):
            if self.config.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], self.config.grad_clip
                )
                parts["grad_norm"] = norm.detach() if isinstance(parts["loss"], torch.Tensor) else float(norm)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
        self.step += 1
        return parts

    def sync_steps(self, steps: list[dict[str, Any]]) -> None:
        """Bring the loss terms that steps left on the device (``config.sync_every`` > 1) to
        the host, in place, with one transfer; a non-finite loss among them raises
        ``FloatingPointError`` naming its step, as the per-step check would have.

        The floats are those the per-step path gives (``float`` of the same tensors)."""
        where = [(k, key) for k, p in enumerate(steps) for key in _TERMS if isinstance(p.get(key), torch.Tensor)]
        if not where:
            return
        values = torch.stack([steps[k][key].float().reshape(()) for k, key in where]).cpu().tolist()
        for (k, key), v in zip(where, values):
            steps[k][key] = v
        for k in sorted({k for k, _ in where}):
            ids = self._pending_ids.pop(k, [])
            loss = steps[k]["loss"]
            if not steps[k].get("skipped") and not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss} at epoch {self.epoch + 1}, step {k + 1} (batch ids {ids}...)")

    def gather_sizes(self, rows: int) -> list[int]:
        """Every rank's number of pairs in the current step, in rank order (``[rows]`` alone)."""
        if self.world_size == 1:
            return [rows]
        sizes = [torch.zeros(1, dtype=torch.long, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(sizes, torch.tensor([rows], dtype=torch.long, device=self.device))
        return [int(t.item()) for t in sizes]

    def gather_unreadable(self, batch: Batch) -> list[str]:
        """The ids of the pairs the current step left out (``skip_unreadable``), every rank's
        in rank order, i.e. in the global batch's order."""
        local = [i for i, _ in batch.skipped]
        if self.world_size == 1 or not self.config.skip_unreadable:
            return local
        every: list[Any] = [None] * self.world_size
        dist.all_gather_object(every, local)
        return [i for ids in every for i in ids]

    # -- hooks ---------------------------------------------------------------------------------
    def on_step_end(self, batch: Batch, parts: dict[str, Any]) -> None:
        """Called after every step, after any checkpoint of that step was written (default:
        nothing). ``batch.ids`` are the pairs it used."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """Called with the epoch's history record before it is appended (default: nothing)."""

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate_loss(self, dataset: Any) -> dict[str, float]:
        """The scheme's loss on ``dataset`` in eval mode, without gradients: ``{"loss", "l_u",
        "l_s"}`` (means over pairs; ``l_s`` over annotated pairs; absent terms left out).

        Every pair is used (the last batch is kept unless it is a single pair, which has no
        negative). Negatives come from a generator seeded with ``config.seed`` alone, so the
        number is the same at every epoch and the training generators are left untouched."""
        was_training = self.model.training
        saved = self.negative_generator.get_state()
        self.negative_generator.manual_seed(_derived_seed(self.config.seed, 0, 2))
        self.model.eval()
        needs_negative = self.config.scheme != "supervised"
        totals: dict[str, float] = {}
        weights: dict[str, float] = {}
        try:
            data = self.training_subset(dataset)
            for batch in self.make_loader(data, shuffle=False, drop_last=False):
                if needs_negative and len(batch) < 2:
                    continue
                batch = self.prepare_batch(batch)
                _, parts = self.compute_loss(batch, self.forward(batch))
                for key, weight in (("loss", parts["pairs"]), ("l_u", parts["pairs"]), ("l_s", parts["labelled"])):
                    if parts[key] is not None:
                        totals[key] = totals.get(key, 0.0) + parts[key] * weight
                        weights[key] = weights.get(key, 0.0) + weight
        finally:
            self.negative_generator.set_state(saved)
            self.model.train(was_training)
        if not weights:
            raise ValueError("the validation set gave no batch to evaluate (a single pair has no negative)")
        return {k: totals[k] / weights[k] for k in totals}

    def validate(self, val_set: Any, val_fn: ValFn | None = None) -> dict[str, float]:
        """Validation metrics for the history, keys prefixed ``val_``: ``val_fn(model, val_set)``
        when given (model in eval mode, no gradients), else :meth:`evaluate_loss`."""
        if val_fn is None:
            metrics = self.evaluate_loss(val_set)
        else:
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad():
                    metrics = val_fn(self.model, val_set)
            finally:
                self.model.train(was_training)
            if not isinstance(metrics, dict):
                raise TypeError(f"val_fn must return a dict of floats, got {type(metrics).__name__}")
        return {(k if k.startswith("val_") else f"val_{k}"): (float(v) if v is not None else None)
                for k, v in metrics.items()}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, train_set: Any, val_set: Any = None, val_fn: ValFn | None = None,
            checkpoint: str | os.PathLike[str] | None = None) -> History:
        """Train for ``config.epochs`` epochs (minus those already done) and return the history.

        With ``checkpoint``, a resumable checkpoint (:func:`save_checkpoint`) is written there at
        every epoch's end and every ``config.checkpoint_every`` optimizer steps. A trainer
        restored mid-epoch (:func:`resume_trainer`) skips the batches of that epoch it has done.

        Each epoch: ``train_set.set_epoch(epoch)`` when the dataset has it (fresh annotator
        draws for L_S), the generators are re-seeded, one pass over the (shuffled) training
        pairs, then validation if ``val_set`` is given. History record per epoch: ``epoch``
        (1-based), ``loss``, ``l_u``, ``l_s`` (means over the epoch's steps; ``l_s`` over the
        steps that had an annotated pair; ``None`` for unused terms), ``steps``, ``pairs``,
        ``labelled`` (annotated pairs seen), ``seconds``, ``step`` (each step's ``loss``,
        ``l_u`` and ``l_s``), the ``val_*`` metrics, ``lr`` (the rate the epoch trained
        with) when a scheduler is set, and ``unreadable`` / ``unreadable_ids`` (the pairs left
        out) with ``skip_unreadable``. With several processes every rank trains on its share
        of each global batch and holds the same history; rank 0 alone shows progress and
        writes the checkpoint.
        """
        c = self.config
        if train_set is None or len(train_set) == 0:
            raise ValueError("train_set is empty")
        if self.epoch == 0 and not self.epoch_steps:  # a resumed trainer restored the global RNG
            seed_everything(c.seed)
        data = self.training_subset(train_set)
        if c.skip_unreadable:
            data = SkipUnreadable(data)
        if len(data) < c.batch_size:
            what = "labelled pairs" if c.scheme == "supervised" else "pairs"
            raise ValueError(
                f"the training set has {len(data)} {what}, fewer than batch_size={c.batch_size}: no full batch"
            )
        loader = self.make_loader(data, shuffle=True, drop_last=True, epoch_target=train_set)
        self._first_fit_epoch = self.epoch  # the first epoch this call runs (see persistent workers)
        self.model.train()
        show = c.progress and self.rank == 0  # one process reports
        writes = checkpoint is not None and self.rank == 0
        epochs = range(self.epoch, c.epochs)
        epoch_bar = progress_bar(epochs, show and len(epochs) > 1, desc=f"{c.scheme}", unit="epoch")
        for epoch in epoch_bar:
            done = len(self.epoch_steps)  # batches of this epoch done before a resume
            t0 = time.perf_counter() - (self._epoch_seconds if done else 0.0)
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            self.seed_epoch(epoch)
            if done and self._negative_state is not None:
                self.negative_generator.set_state(self._negative_state)
            self._negative_state = None
            if isinstance(loader.sampler, EpochOrder):
                loader.sampler.start = done * c.batch_size
                loader.sampler.epoch = epoch
            if loader.persistent_workers and epoch > self._first_fit_epoch:
                # A fresh loader iterator draws its workers' base seed from the shuffling
                # generator before the epoch's permutation; a persistent one draws it once.
                # Draw it here too, so that every epoch's order is that of fresh workers.
                torch.empty((), dtype=torch.int64).random_(generator=self.shuffle_generator)
            steps = self.epoch_steps
            lr = self.optimizer.param_groups[0]["lr"]
            bar = progress_bar(loader, show, desc=f"epoch {epoch + 1}/{c.epochs}", leave=False, unit="batch")
            for batch in bar:
                parts = self.train_step(batch)
                if isinstance(parts["loss"], torch.Tensor):  # synced later (config.sync_every)
                    self._pending_ids[len(steps)] = batch.ids[:4]
                elif not math.isfinite(parts["loss"]):
                    raise FloatingPointError(
                        f"loss became {parts['loss']} at epoch {epoch + 1}, step {len(steps) + 1} "
                        f"(batch ids {batch.ids[:4]}...)"
                    )
                steps.append(parts)
                checkpoint_now = writes and c.checkpoint_every and not parts["skipped"] \
                    and self.step % c.checkpoint_every == 0
                if checkpoint_now or len(steps) % c.sync_every == 0 or (show and len(steps) % c.log_every == 0):
                    self.sync_steps(steps)
                if checkpoint_now:
                    self._epoch_seconds = time.perf_counter() - t0
                    save_checkpoint(checkpoint, self)
                self.on_step_end(batch, parts)
                if self.stop_requested:
                    if writes and not checkpoint_now:
                        self._epoch_seconds = time.perf_counter() - t0
                        save_checkpoint(checkpoint, self)
                    self._stop()
                if show and len(steps) % c.log_every == 0:
                    recent = [p["loss"] for p in steps[-c.log_every:] if not p["skipped"]]
                    if recent:
                        bar.set_postfix(loss=f"{np.mean(recent):.4f}")
            self.sync_steps(steps)
            record = self._epoch_record(epoch, steps, time.perf_counter() - t0)
            if c.skip_unreadable:
                record["unreadable_ids"] = [i for p in steps for i in p.get("unreadable", [])]
                record["unreadable"] = len(record["unreadable_ids"])
            if self.scheduler is not None:
                record["lr"] = float(lr)
            if val_set is not None:
                record.update(self.validate(val_set, val_fn))
            if c.scheme == "semi_supervised" and record["labelled"] == 0 and epoch == 0:
                warnings.warn(
                    "semi_supervised training saw no annotated pair in its first epoch: it is the "
                    "unsupervised scheme (does the dataset make gt_attention? pass grid=...)",
                    stacklevel=2,
                )
            if record["loss"] is not None and hasattr(epoch_bar, "set_postfix"):
                epoch_bar.set_postfix(loss=f"{record['loss']:.4f}")
            self.on_epoch_end(record)
            self.history.append(record)
            self.epoch = epoch + 1
            self.epoch_steps = []
            self._epoch_seconds = 0.0
            if self.scheduler is not None:
                with warnings.catch_warnings():  # an epoch resumed after its last batch took no step here
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                    self.scheduler.step()
            if writes:
                save_checkpoint(checkpoint, self)
            if self.stop_requested:
                self._stop()
        return self.history

    def _stop(self) -> None:
        """Answer :attr:`stop_requested` (the checkpoint, if any, is written)."""
        self.stop_requested = False
        self.sync_steps(self.epoch_steps)
        raise TrainingInterrupted(*checkpoint_position(
            {"epoch": self.epoch, "epoch_steps": self.epoch_steps, "step": self.step}))

    @staticmethod
    def _epoch_record(epoch: int, steps: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
        done = [p for p in steps if not p["skipped"]]

        def mean(key: str) -> float | None:
            vals = [p[key] for p in done if p.get(key) is not None]
            return float(np.mean(vals)) if vals else None

        return {
            "epoch": epoch + 1,
            "loss": mean("loss"),
            "l_u": mean("l_u"),
            "l_s": mean("l_s"),
            "steps": len(done),
            "pairs": int(sum(p["pairs"] for p in done)),
            "labelled": int(sum(p["labelled"] for p in done)),
            "seconds": float(seconds),
            # every step's terms, for per-step curves (soundloc.viz.plot_history)
            "step": {k: [p.get(k) for p in done] for k in ("loss", "l_u", "l_s")},
        }

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (plain types and tensors: loads with ``weights_only``):
        model, optimizer, scheduler and scaler states, progress (epoch, step, the unfinished
        epoch's batches), history, the config, the global random states and the generators."""
        self.sync_steps(self.epoch_steps)
        return {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "epoch_steps": [dict(p) for p in self.epoch_steps],
            "epoch_seconds": float(self._epoch_seconds),
            "history": [dict(r) for r in self.history],
            "train_config": self.config.to_dict(),
            "rng": get_rng_state(),
            "negative_generator": self.negative_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output: model, optimizer, scheduler, scaler, progress and,
        when saved, the global random states (torch, CUDA, NumPy, Python) and, mid-epoch, the
        negatives' generator (applied when :meth:`fit` re-enters the epoch)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if (state.get("scheduler") is None) != (self.scheduler is None):
            raise ValueError("the checkpoint and the config disagree on the LR scheduler (TrainConfig.scheduler)")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.history = [dict(r) for r in state["history"]]
        self.epoch_steps = [dict(p) for p in state.get("epoch_steps", [])]
        self._epoch_seconds = float(state.get("epoch_seconds", 0.0))
        self._negative_state = state.get("negative_generator") if self.epoch_steps else None
        if "rng" in state:
            set_rng_state(state["rng"])
        elif "torch_rng" in state:  # checkpoints written before the other states were saved
            torch.set_rng_state(state["torch_rng"])


def save_checkpoint(path: str | os.PathLike[str], trainer: Trainer) -> None:
    """Write a resumable checkpoint (model config, trainer state, ``trainer.checkpoint_extra``
    under ``"extra"``) atomically: a crash while writing leaves the previous file intact.

    Read it back with :func:`resume_trainer`; only plain types and tensors are stored, so it
    loads with ``torch.load(weights_only=True)``.
    """
    payload = {"model_config": dataclasses.asdict(trainer.model.config), **trainer.state_dict(),
               "extra": dict(trainer.checkpoint_extra)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw contents of a :func:`save_checkpoint` file (``weights_only``), checked to be
    one; ``FileNotFoundError`` or ``ValueError`` naming the file otherwise."""
    state = read_torch_file(path, "checkpoint")
    needed = {"model_config", "model", "optimizer", "epoch", "step", "history", "train_config"}
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


def resume_trainer(
    path: str | os.PathLike[str], config: TrainConfig | None = None, device: str | None = None,
    factory: Callable[[SoundLocalizer, TrainConfig], Trainer] = Trainer,
) -> Trainer:
    """Rebuild the model and a :class:`Trainer` from :func:`save_checkpoint`, ready to continue
    with :meth:`Trainer.fit` (pass ``config`` to change e.g. ``epochs``; ``device`` overrides the
    saved one; ``factory(model, config)`` builds a subclass). Restores the global random states
    saved with it, and the checkpoint's ``"extra"`` into the trainer's ``checkpoint_extra``
    (entries the factory set win)."""
    state = read_checkpoint(path)
    model = checkpoint_model(state)
    if config is None:
        config = TrainConfig.from_dict(state["train_config"])
    if device is not None:
        config = dataclasses.replace(config, device=device)
    trainer = factory(model, config)
    trainer.load_state_dict(state)
    trainer.checkpoint_extra = {**(state.get("extra") or {}), **trainer.checkpoint_extra}  # the factory's are newer
    return trainer


def train(
    model: SoundLocalizer,
    dataset: Any,
    config: TrainConfig | None = None,
    val_set: Any = None,
    val_fn: ValFn | None = None,
    save_to: str | os.PathLike[str] | None = None,
) -> History:
    """Train ``model`` on ``dataset`` in place with a :class:`Trainer`; return the history.

    With ``save_to``, the final model is written by :func:`soundloc.models.save_model` with
    ``extra={"train_config": asdict(config), "history": history}``.
    """
    trainer = Trainer(model, config)
    history = trainer.fit(dataset, val_set=val_set, val_fn=val_fn)
    if save_to is not None:
        save_trained(save_to, trainer)
    return history


def save_trained(path: str | os.PathLike[str], trainer: Trainer, extra: dict[str, Any] | None = None) -> None:
    """Save the trained model with its train config and history (``weights_only``-loadable)."""
    payload = {"train_config": trainer.config.to_dict(), "history": [dict(r) for r in trainer.history]}
    if extra:
        payload.update(extra)
    save_model(path, trainer.model, extra=payload)


def cached_forward(model: SoundLocalizer, batch: Batch) -> LocalizerOutput:
    """The model on a batch (on its device), taking a frozen stream's cached output from the
    batch where it carries one: ``extras["visual_feature"]`` (the grid v,
    :mod:`soundloc.data.frozen_features`) in place of the visual network and
    ``extras["sound_feature"]`` (f_s, :mod:`soundloc.data.sound_features`) in place of the sound
    network. Without either it is ``model(image, waveform)``."""
    grid, f_s = batch.extras.get("visual_feature"), batch.extras.get("sound_feature")
    if grid is None and f_s is None:
        return model(batch.image, batch.waveform)
    visual = grid.to(model._param_dtype()) if grid is not None else model.encode_image(batch.image)
    return model.localize(visual, f_s if f_s is not None else model.encode_sound(batch.waveform))


@torch.no_grad()
def predict_attention(
    model: SoundLocalizer,
    dataset: Any,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[list[str], torch.Tensor]:
    """Attention maps α of ``model`` on every pair of ``dataset``, in order.

    Runs in eval mode without gradients (the model's mode is restored afterwards). Returns
    ``(ids, attention)`` with ``attention`` a float32 CPU tensor ``[N, h, w]`` whose maps sum to
    1: what :mod:`soundloc.metrics` scores (cIoU, AUC).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if dataset is None or len(dataset) == 0:
        raise ValueError("dataset is empty")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers)
    ids: list[str] = []
    maps: list[torch.Tensor] = []
    try:
        for batch in progress_bar(loader, progress, desc="attention", unit="batch", leave=False):
            out = cached_forward(model, batch.to(dev))
            ids.extend(batch.ids)
            maps.append(out.attention.float().cpu())
    finally:
        model.train(was_training)
    return ids, torch.cat(maps)


__all__ = [
    "EpochOrder",
    "EpochTagged",
    "ShardedEpochOrder",
    "TrainingInterrupted",
    "checkpoint_model",
    "checkpoint_position",
    "distributed_world",
    "init_distributed",
    "History",
    "SCHEMES",
    "TrainConfig",
    "Trainer",
    "predict_attention",
    "read_checkpoint",
    "resume_trainer",
    "save_checkpoint",
    "save_trained",
    "train",
]

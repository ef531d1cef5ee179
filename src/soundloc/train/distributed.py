"""Data parallelism: several processes (``torchrun``) train on one global batch.

``TrainConfig.batch_size`` stays the *global* batch: each of the ``W`` processes takes its
``batch_size / W`` pairs of every global batch (:class:`~soundloc.train.batches.ShardedEpochOrder`),
the model is wrapped in ``DistributedDataParallel``, and :class:`Distribution` gathers the sound
features f_s of the global batch so that each pair's negative is drawn from the whole global
batch with the generator every rank shares (the paper's L_U, Sec. 3.2, over the global batch).
Each rank's terms are weighed by its share (:class:`~soundloc.losses.BatchShare`), so that the
objective, its gradient and the history are those of one process on the same global batch, up to
float rounding. In one process :class:`Distribution` does nothing.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from soundloc.losses import BatchShare, LossTerms, sample_negatives
from soundloc.models import LocalizerOutput, SoundLocalizer
from soundloc.train.config import TrainConfig


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment, with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``): NCCL with
    each process on GPU ``LOCAL_RANK`` when CUDA is available, gloo otherwise. Nothing happens in
    a plain single process. Returns :func:`distributed_world`'s ``(rank, world_size)``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return distributed_world()


class _GatherRows(torch.autograd.Function):
    """All ranks' rows of a ``[b_r, D]`` tensor, in rank order (``sizes`` holds every rank's
    ``b_r``). The gradient of the gathered rows is summed over ranks and each rank keeps its own
    rows': what every rank's loss contributes to the features it computed."""

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
    """What ``DistributedDataParallel`` wraps: the model's forward on waveforms or on cached
    sound features, so both go through DDP's hooks. Without L_U (the supervised scheme) f_v
    comes out detached: DDP finds unused parameters from the outputs."""

    def __init__(self, model: SoundLocalizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, sound: torch.Tensor, cached: bool, f_v: bool) -> LocalizerOutput:
        out = self.model.localize(self.model.encode_image(image), sound) if cached else self.model(image, sound)
        return out if f_v else dataclasses.replace(out, f_v=out.f_v.detach())


class Distribution:
    """This process's place among the training processes, and what it exchanges with them.

    Attributes:
        rank, world_size: from :func:`distributed_world` (``0, 1`` in one process).
        device: the training device (all-reduced tensors live there).
    """

    def __init__(self, device: torch.device) -> None:
        self.rank, self.world_size = distributed_world()
        self.device = device

    @property
    def several(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: SoundLocalizer, config: TrainConfig) -> tuple[SoundLocalizer, nn.Module | None]:
        """``(model, ddp)``: with several processes, trainable BatchNorm converted to
        ``SyncBatchNorm`` (CUDA only: refused elsewhere) and the DDP wrapper the training
        forward goes through; in one process ``(model, None)``. ``find_unused_parameters`` only
        where some trainable parameters take no part in the loss (a trained SoundNet's scene
        head; the layers that make f_v under L_S alone)."""
        if not self.several:
            return model, None
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size={config.batch_size} (the global batch) is not divisible by the world size "
                             f"{self.world_size}")
        trained_bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                      and any(p.requires_grad for p in m.parameters(recurse=False))]
        if trained_bn and self.device.type != "cuda":
            raise ValueError(f"the model has {len(trained_bn)} trainable BatchNorm layers: with several processes they "
                             "must be synchronised (SyncBatchNorm, CUDA only) or frozen (ModelConfig.freeze_sound / "
                             "freeze_visual)")
        if trained_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        scenes = getattr(getattr(model, "sound", None), "conv8_scenes", None)
        unused = config.scheme == "supervised" or (
            isinstance(scenes, nn.Module) and any(p.requires_grad for p in scenes.parameters()))
        ids = [self.device.index] if self.device.type == "cuda" else None
        return model, nn.parallel.DistributedDataParallel(_Step(model), device_ids=ids, find_unused_parameters=unused)

    def sizes(self, rows: int) -> list[int]:
        """Every rank's number of pairs in the current step, in rank order (``[rows]`` alone)."""
        if not self.several:
            return [rows]
        sizes = [torch.zeros(1, dtype=torch.long, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(sizes, torch.tensor([rows], dtype=torch.long, device=self.device))
        return [int(t.item()) for t in sizes]

    def unreadable(self, local: list[str]) -> list[str]:
        """The ids of the pairs the step left out, every rank's, in the global batch's order."""
        if not self.several:
            return local
        every: list[Any] = [None] * self.world_size
        dist.all_gather_object(every, local)
        return [i for ids in every for i in ids]

    def global_negatives(self, out: LocalizerOutput, sizes: list[int], labelled: int, generator: torch.Generator,
                         config: TrainConfig) -> tuple[torch.Tensor | None, BatchShare, int]:
        """``(f_neg, share, labelled_global)`` of this rank's rows in the global batch: each
        row's negative drawn over the gathered f_s of all ranks exactly as one process draws
        them over the global batch, and the weights that make the mean of the ranks' terms the
        global terms (L_U and the ``batch_mean`` L_S by this rank's share of the pairs, the
        ``labelled_mean`` L_S by its share of the annotated pairs)."""
        n, b = sum(sizes), sizes[self.rank]
        counts = torch.tensor([float(labelled)], device=out.f_v.device)
        dist.all_reduce(counts)
        n_lab = int(counts.item())
        share = b * self.world_size / n  # local means -> this rank's share of a global mean
        f_neg = None
        if config.scheme != "supervised":
            f_s_all = _GatherRows.apply(out.f_s, sizes)
            neg = sample_negatives(n, generator, device=out.f_s.device)
            first = sum(sizes[: self.rank])
            f_neg = f_s_all[neg[first: first + b]]
        l_s = labelled * self.world_size / n_lab if config.attention_reduction == "labelled_mean" and n_lab else share
        return f_neg, BatchShare(l_u=share, l_s=l_s, labelled_anywhere=n_lab > 0), n_lab

    def mean_terms(self, terms: LossTerms) -> list[float | None]:
        """``[loss, l_u, l_s]`` of the global batch: the ranks' weighted terms averaged."""
        zero = terms.total.new_zeros(())
        values = [zero if t is None else t.detach() for t in (terms.total, terms.l_u, terms.l_s)]
        mean = torch.stack(values).float()
        dist.all_reduce(mean)
        out = (mean / self.world_size).tolist()
        return [out[0], None if terms.l_u is None else out[1], None if terms.l_s is None else out[2]]


__all__ = ["Distribution", "distributed_world", "init_distributed"]

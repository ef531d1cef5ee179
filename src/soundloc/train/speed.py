"""Precision and speed switches of training: mixed precision, channels-last, cuDNN autotuning,
``torch.compile``, and the optimizer step that goes with them.

Every switch is a :class:`~soundloc.train.TrainConfig` field, off by default, so CPU training
gives the same numbers whether this module is read or not; on a GPU they change the numbers by
float rounding only (other kernels sum in other orders). ``benchmarks/bench_train.py`` measures
them, and ``soundloc train --fast`` turns them on.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function

from soundloc.data.types import Batch
from soundloc.models import SoundLocalizer
from soundloc.train.config import TrainConfig


class Speed:
    """The precision and speed settings of ``config`` on ``device``.

    Attributes:
        scaler: the gradient scaler of float16 mixed precision, else ``None``.
    """

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        if config.amp and device.type != "cuda":
            raise ValueError(f"TrainConfig.amp (mixed precision) needs a CUDA device, got {device}")
        self.config = config
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if config.amp and config.amp_dtype == "float16" else None

    def prepare_model(self, model: SoundLocalizer) -> SoundLocalizer:
        """The model with the settings that act on it: cuDNN autotuning (CUDA), channels-last
        4-D weights, and each stream and the localization module compiled in place (the state
        dict keeps its keys, so checkpoints are unchanged)."""
        c = self.config
        if c.cudnn_benchmark and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if c.channels_last:
            model.to(memory_format=torch.channels_last)
        if c.compile:
            for name in ("visual", "sound", "attention"):
                part = getattr(model, name, None)
                if isinstance(part, nn.Module):
                    part.compile()
        return model

    def prepare_batch(self, batch: Batch) -> Batch:
        """The batch on the device, ready for the model: frames packed as uint8 (the packed
        cache's ``uint8_frames``) become floats ``u8 / 255`` there, as the dataset computes
        them, and images go channels-last with ``channels_last``."""
        batch = batch.to(self.device, non_blocking=True)
        image = batch.image
        if image.dtype == torch.uint8:
            image = image.float().div_(255.0)
        if self.config.channels_last and image.dim() == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        batch.image = image
        return batch

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """A step's mixed-precision context: CUDA autocast to ``amp_dtype`` with ``amp``."""
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.config.amp_dtype == "bfloat16" else torch.float16)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A small CPU tensor on the device without making the host wait (a copy from pinned
        memory does not synchronise the stream; the same values)."""
        if self.device.type != "cuda":
            return t.to(self.device)
        return t.pin_memory().to(self.device, non_blocking=True)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
        """Backward, gradient clipping (``grad_clip``) and the optimizer's step, through the
        scaler with float16; returns the gradients' norm before clipping (``None`` without)."""
        norm = None
        with record_function("soundloc.backward"):
            optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if self.config.grad_clip is not None:
                    self.scaler.unscale_(optimizer)
            else:
                loss.backward()
        with record_function("soundloc.optimizer"):
            if self.config.grad_clip is not None:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            if self.scaler is not None:
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                optimizer.step()
        return norm


__all__ = ["Speed"]

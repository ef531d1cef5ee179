"""The model in eval mode: predictions (attention maps) and validation during training.

:func:`predict_attention` gives the maps :mod:`soundloc.metrics` scores; :func:`validate` gives
an epoch's ``val_*`` numbers, from a scoring function (a run scores cIoU and AUC) or, without
one, the scheme's own loss on the held-out pairs (:meth:`~soundloc.train.Trainer.held_out_loss`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from soundloc.data.types import Batch, collate
from soundloc.models import LocalizerOutput, SoundLocalizer
from soundloc.utils.progress import progress_bar

ValFn = Callable[[SoundLocalizer, Any], dict[str, float]]


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


def weighted_means(records: list[dict[str, Any]]) -> dict[str, float]:
    """``loss`` and ``l_u`` averaged over the pairs of the batches' records, ``l_s`` over their
    annotated pairs (a term absent from every batch is left out)."""
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    for parts in records:
        for key, weight in (("loss", parts["pairs"]), ("l_u", parts["pairs"]), ("l_s", parts["labelled"])):
            if parts[key] is not None:
                totals[key] = totals.get(key, 0.0) + parts[key] * weight
                weights[key] = weights.get(key, 0.0) + weight
    if not weights:
        raise ValueError("the validation set gave no batch to evaluate (a single pair has no negative)")
    return {k: totals[k] / weights[k] for k in totals}


def validate(model: SoundLocalizer, val_set: Any, val_fn: ValFn | None,
             held_out_loss: Callable[[Any], dict[str, float]]) -> dict[str, float | None]:
    """An epoch's validation numbers, keys prefixed ``val_``: ``val_fn(model, val_set)`` (in
    eval mode, without gradients) when given, else ``held_out_loss(val_set)``."""
    if val_fn is None:
        metrics = held_out_loss(val_set)
    else:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                metrics = val_fn(model, val_set)
        finally:
            model.train(was_training)
        if not isinstance(metrics, dict):
            raise TypeError(f"val_fn must return a dict of floats, got {type(metrics).__name__}")
    return {(k if k.startswith("val_") else f"val_{k}"): (float(v) if v is not None else None) for k, v in metrics.items()}


__all__ = ["ValFn", "cached_forward", "predict_attention", "validate", "weighted_means"]

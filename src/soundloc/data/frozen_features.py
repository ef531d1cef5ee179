"""A frozen stream's outputs, computed once per pair and kept in memory.

In the paper's setting both streams are pretrained and fixed (Senocak et al., CVPR 2018,
Sec. 4: an ImageNet VGG16 and SoundNet, whose features the authors precompute): an image's grid
``v`` (``[D, H', W']``) and a clip's feature ``f_s`` (``[sound_dim]``) never change during
training, so computing them again at every step of every epoch repeats the same forward passes.
:func:`compute_frozen_features` runs each frozen stream once over a dataset (eval mode, no
gradients: what the frozen stream gives inside the model) and :class:`WithFeatures` serves the
dataset's samples with them in ``extras`` (``"visual_feature"``, ``"sound_feature"``);
:class:`~soundloc.train.Trainer` and :func:`~soundloc.train.predict_attention` then feed them
to the localization module in place of the networks' outputs
(:func:`~soundloc.train.cached_forward`).

The features are the streams' own float32 outputs, computed in batches of another size than
training's: a model trained from them differs from one fed the inputs by the rounding of the
convolutions' summation order only. (For prepared folders on disk, the sound stream's features
are cached in files: :mod:`soundloc.data.sound_features`.)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from soundloc.data.types import Sample, collate
from soundloc.utils.progress import progress_bar

#: stream -> the extras key its cached output travels under
EXTRAS = {"visual": "visual_feature", "sound": "sound_feature"}


def frozen_streams(model: Any) -> tuple[str, ...]:
    """The streams of ``model`` (a :class:`~soundloc.models.SoundLocalizer`) that are frozen."""
    return tuple(s for s, frozen in (("visual", model.config.freeze_visual), ("sound", model.config.freeze_sound)) if frozen)


@torch.no_grad()
def compute_frozen_features(model: Any, dataset: Dataset[Sample], streams: tuple[str, ...] | None = None,
                            batch_size: int = 64, progress: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """The outputs of ``model``'s frozen ``streams`` (default: every frozen one) on every pair of
    ``dataset``: ``{extras key: {id: float32 tensor}}``.

    Raises ``ValueError`` for a stream that is trained (its outputs would change every step).
    Torch's global random state is left as it was (the loader draws a seed from it).
    """
    streams = frozen_streams(model) if streams is None else tuple(streams)
    for s in streams:
        if s not in EXTRAS:
            raise ValueError(f"unknown stream {s!r}: 'visual' or 'sound'")
        if s not in frozen_streams(model):
            raise ValueError(f"caching the {s} stream's features needs it frozen (ModelConfig.freeze_{s})")
    out: dict[str, dict[str, torch.Tensor]] = {EXTRAS[s]: {} for s in streams}
    if not streams:
        return out
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            for batch in progress_bar(loader, progress, desc="frozen features", unit="batch", leave=False):
                if "visual" in streams:
                    out[EXTRAS["visual"]].update(zip(batch.ids, model.encode_image(batch.image.to(device)).float().cpu().unbind(0)))
                if "sound" in streams:
                    out[EXTRAS["sound"]].update(zip(batch.ids, model.encode_sound(batch.waveform.to(device)).float().cpu().unbind(0)))
    finally:
        model.train(was_training)
    return out


class WithFeatures(Dataset[Sample]):
    """The samples of ``dataset`` with cached stream outputs in ``extras``: ``features`` maps an
    extras key to ``{id: tensor}`` (:func:`compute_frozen_features`); every other attribute is
    the dataset's."""

    def __init__(self, dataset: Any, features: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        for key, table in features.items():
            missing = [i for i in dataset.ids if i not in table]
            if missing:
                raise ValueError(f"no cached {key} for {len(missing)} pair(s), e.g. {missing[0]!r}")
        self.dataset = dataset
        self.features = features

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # ids, labelled, grid, scene, set_epoch...: the dataset's
        if name in ("dataset", "features"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        for key, table in self.features.items():
            sample.extras[key] = table[sample.id]
        return sample


__all__ = ["EXTRAS", "WithFeatures", "compute_frozen_features", "frozen_streams"]

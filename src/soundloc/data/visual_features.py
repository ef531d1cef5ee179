"""The frozen visual stream's grid features, computed once per image and kept in memory.

In the paper's setting the visual stream is VGG16 with fixed ImageNet weights (Senocak et al.,
CVPR 2018, Sec. 4): an image's grid ``v`` (conv5_3, ``[D, H', W']``) never changes during
training, so computing it again at every step of every epoch repeats the same forward pass. On
the CPU scale of the pigeon experiment the visual forward pass is most of a training step.
:func:`compute_visual_features` runs the stream once over a dataset (eval mode, no gradients:
what the frozen stream gives inside the model) and :class:`WithVisualFeatures` serves the
dataset's samples with ``extras["visual_feature"]``; :class:`~soundloc.train.Trainer` and
:func:`~soundloc.train.predict_attention` then feed it to the localization module in place of
the visual network's output (:meth:`~soundloc.models.SoundLocalizer.localize`).

The features are the stream's own float32 outputs, computed in batches of another size than
training's: a model trained from them differs from one fed the images by the rounding of the
convolutions' summation order only.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from soundloc.data.types import Sample, collate
from soundloc.utils import progress_bar

EXTRA = "visual_feature"


@torch.no_grad()
def compute_visual_features(model: Any, dataset: Dataset[Sample], batch_size: int = 64,
                            progress: bool = False) -> dict[str, torch.Tensor]:
    """The frozen visual stream of ``model`` (a :class:`~soundloc.models.SoundLocalizer`) on
    every image of ``dataset``: ``{id: [D, H', W'] float32}``.

    Raises ``ValueError`` when the stream is trained (its features would change every step).
    Torch's global random state is left as it was (the loader draws a seed from it).
    """
    if not model.config.freeze_visual:
        raise ValueError("caching visual features needs a frozen visual stream (ModelConfig.freeze_visual)")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: dict[str, torch.Tensor] = {}
    try:
        with torch.random.fork_rng(devices=[]):
            for batch in progress_bar(loader, progress, desc="visual features", unit="batch", leave=False):
                feats = model.encode_image(batch.image.to(device)).float().cpu()
                out.update(zip(batch.ids, feats.unbind(0)))
    finally:
        model.train(was_training)
    return out


class WithVisualFeatures(Dataset[Sample]):
    """The samples of ``dataset`` with ``extras["visual_feature"]`` from ``features`` (by id,
    as :func:`compute_visual_features` returns them); every other attribute is the dataset's."""

    def __init__(self, dataset: Any, features: Mapping[str, torch.Tensor]) -> None:
        missing = [i for i in dataset.ids if i not in features]
        if missing:
            raise ValueError(f"no cached visual feature for {len(missing)} pair(s), e.g. {missing[0]!r}")
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
        sample.extras[EXTRA] = self.features[sample.id]
        return sample


__all__ = ["EXTRA", "WithVisualFeatures", "compute_visual_features"]

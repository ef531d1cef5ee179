"""The frozen sound network's features, computed once per clip and kept on disk.

In the paper's setting the sound stream is SoundNet-8 with fixed pretrained weights (the authors
precompute its features; Senocak et al., CVPR 2018, Sec. 4), so a clip's feature ``f_s`` never
changes during training. Reading 144k clips of 20 s every epoch (about 127 GB as 16-bit audio)
and running SoundNet on them costs far more than the rest of the model; their 1000-d features
in float16 take about 0.3 GB. :func:`ensure_sound_features` computes them once (eval mode, no
gradients: what the frozen stream gives inside the model) and stores them under
``ROOT/cache/sound_features/``:

::

    features.npy   float16 [N, D]   f_s of every pair, in the order of ``ids``
    index.json     ids, D, and the key: a hash of the sound network's weights and of the clip
                   parameters; written last, so an index that matches means a complete cache

The cache is rebuilt when the key or the ids change (other weights, another clip length).
:class:`WithSoundFeatures` serves a dataset's samples with ``extras["sound_feature"]`` and no
audio (:class:`~soundloc.data.dataset.AVDataset` with ``audio=False`` reads no WAV);
:class:`~soundloc.train.Trainer` then feeds the feature to the model in place of the waveform.
Features are stored in 16 bits: a model trained from them differs from one fed the waveforms
by that rounding only.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from soundloc.data.dataset import AVDataset
from soundloc.data.types import Sample, collate
from soundloc.utils.files import atomic_path, read_json, write_json
from soundloc.utils.progress import progress_bar

CACHE_SUBDIR = "cache/sound_features"
FEATURES_FILE = "features.npy"
INDEX_FILE = "index.json"


def sound_key(sound: nn.Module, clip_samples: int | None, sample_rate: int, extra: dict[str, Any] | None = None) -> str:
    """A sha256 of the sound network's weights (names, shapes, values) and of the clip
    parameters: equal keys mean equal features."""
    h = hashlib.sha256()
    for name, tensor in sorted(sound.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    h.update(json.dumps({"clip_samples": clip_samples, "sample_rate": sample_rate, **(extra or {})},
                        sort_keys=True).encode())
    return h.hexdigest()


@torch.no_grad()
def compute_sound_features(encode: Any, dataset: Dataset[Sample], batch_size: int = 16,
                           device: torch.device | str = "cpu", progress: bool = False) -> np.ndarray:
    """``encode(waveform batch) -> [B, D]`` over every sample of ``dataset`` in order, as
    float16. Torch's global random state is left as it was (a resumed run stays exact)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    with torch.random.fork_rng(devices=[]):  # the loader draws a seed from the global generator
        out = [encode(batch.waveform.to(device)).float().cpu().numpy().astype(np.float16)
               for batch in progress_bar(loader, progress, desc="sound features", unit="batch")]
    return np.concatenate(out)


def ensure_sound_features(model: Any, dataset: AVDataset, batch_size: int = 16, progress: bool = False) -> Path:
    """The feature cache of ``dataset`` (its root's ``cache/sound_features``) for ``model``'s
    sound stream, built or rebuilt when missing, made by other weights or clips, or for other
    ids; returns its folder. ``model`` is a :class:`~soundloc.models.SoundLocalizer` with a
    frozen sound stream (``ValueError`` otherwise: a trained stream's features change)."""
    if not model.config.freeze_sound:
        raise ValueError("caching sound features needs a frozen sound stream (ModelConfig.freeze_sound)")
    folder = Path(dataset.root) / CACHE_SUBDIR
    key = sound_key(model.sound, dataset.clip_samples, dataset.sample_rate,
                    {"waveform_scale": model.config.waveform_scale, "padding": model.config.short_clip_padding})
    index_path = folder / INDEX_FILE
    if index_path.is_file() and (folder / FEATURES_FILE).is_file():
        index = read_json(index_path)
        if index.get("key") == key and index.get("ids") == dataset.ids:
            return folder
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        feats = compute_sound_features(model.encode_sound, dataset, batch_size, device, progress)
    finally:
        model.train(was_training)
    with atomic_path(folder / FEATURES_FILE) as tmp:
        np.save(tmp, feats)
    write_json(index_path, {"key": key, "ids": dataset.ids, "dim": int(feats.shape[1]), "dtype": "float16"})
    return folder


class WithSoundFeatures(Dataset[Sample]):
    """The samples of ``dataset`` without audio and with ``extras["sound_feature"]`` (float32
    ``[D]``) from the cache in ``folder`` (:func:`ensure_sound_features`)."""

    def __init__(self, dataset: AVDataset, folder: str | os.PathLike[str]) -> None:
        index = read_json(Path(folder) / INDEX_FILE)
        if index["ids"] != dataset.ids:
            raise ValueError(f"{folder}: the sound-feature cache holds other pairs than the dataset (rebuild it)")
        self.dataset = dataset
        self.features = np.load(Path(folder) / FEATURES_FILE, mmap_mode="r")
        self.silent = dataset.without_audio()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # ids, labelled, grid, set_epoch...: the dataset's
        if name in ("dataset", "features", "silent"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
        self.silent.set_epoch(epoch)

    def __getitem__(self, index: int) -> Sample:
        sample = self.silent[index]
        sample.extras["sound_feature"] = torch.from_numpy(np.asarray(self.features[index], dtype=np.float32))
        return sample


__all__ = ["WithSoundFeatures", "compute_sound_features", "ensure_sound_features", "sound_key"]

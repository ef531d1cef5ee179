"""The frozen sound stream's feature cache: features equal the stream's output (to float16),
reuse and rebuild by the sound weights, training from the cache without reading audio, and
``soundloc train`` using it on a prepared folder."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from soundloc.cli import main
from conftest import TINY_MODEL, TINY_WORLD, tiny_model_config
from soundloc.data import AVDataset, SyntheticWorld, WorldConfig, write_world
from soundloc.data.sound_features import CACHE_SUBDIR, WithSoundFeatures, ensure_sound_features
from soundloc.models import build_model
from soundloc.train import TrainConfig, Trainer

TINY = {**TINY_MODEL, "image_size": 32, "clip_samples": 11025}  # the tiny model on half-second clips


@pytest.fixture()
def root(tmp_path):  # type: ignore[no-untyped-def]
    r = tmp_path / "data"
    write_world(SyntheticWorld(WorldConfig(**TINY_WORLD), seed=2), r, n=24, progress=False)
    return r


def frozen_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(tiny_model_config(**TINY, freeze_sound=True))


def test_cache_holds_the_streams_features_and_follows_its_weights(root) -> None:  # type: ignore[no-untyped-def]
    ds = AVDataset(root, image_size=32, clip_seconds=0.5)
    model = frozen_model()
    folder = ensure_sound_features(model, ds)
    assert folder == root / CACHE_SUBDIR
    feats = np.load(folder / "features.npy")
    assert feats.dtype == np.float16 and feats.shape == (24, 8)
    model.eval()
    with torch.no_grad():
        ref = model.encode_sound(torch.stack([ds[i].waveform for i in range(24)])).numpy()
    np.testing.assert_allclose(feats.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    stamp = (folder / "features.npy").stat().st_mtime_ns
    assert ensure_sound_features(model, ds) == folder and (folder / "features.npy").stat().st_mtime_ns == stamp
    with torch.no_grad():  # other sound weights: another key, the cache is rebuilt
        model.sound.conv1[0].weight.mul_(2.0)
    ensure_sound_features(model, ds)
    assert not np.array_equal(np.load(folder / "features.npy"), feats)
    with pytest.raises(ValueError, match="frozen"):
        ensure_sound_features(build_model(tiny_model_config(**TINY)), ds)


def test_training_from_the_cache_reads_no_audio(root) -> None:  # type: ignore[no-untyped-def]
    ds = AVDataset(root, image_size=32, clip_seconds=0.5)
    config = TrainConfig(scheme="unsupervised", epochs=2, batch_size=4, lr=3e-3, progress=False)
    online = Trainer(frozen_model(), config).fit(ds)
    cached = WithSoundFeatures(ds, ensure_sound_features(frozen_model(), ds))
    shutil.rmtree(root / "audio")  # nothing below may open a WAV
    assert cached[0].waveform.numel() == 0 and cached.ids == ds.ids
    history = Trainer(frozen_model(), config).fit(cached)
    # the same run up to the features' 16-bit rounding
    for a, b in zip(online, history):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-2) and b["pairs"] == a["pairs"]


def test_train_command_uses_the_cache_with_a_frozen_sound_stream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    write_world(SyntheticWorld(WorldConfig(**TINY_WORLD), seed=2), root, n=40, n_test=8, progress=False)
    d = {"data": {"source": "folder", "root": str(root)}, "model": {**TINY, "freeze_sound": True},
         "labelled": 0, "val_size": 4, "train": {"scheme": "unsupervised", "epochs": 1, "batch_size": 4}}
    (tmp_path / "c.json").write_text(json.dumps(d))
    assert main(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    index = json.loads((root / CACHE_SUBDIR / "index.json").read_text())
    sizes = json.loads((tmp_path / "run" / "results.json").read_text())["sizes"]
    n_test = len((root / "splits" / "test.txt").read_text().split())
    assert len(index["ids"]) == sizes["train"] == 40 - n_test - 4  # the training pairs only: not validation, not test

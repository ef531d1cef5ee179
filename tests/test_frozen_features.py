"""Frozen streams: the sound stream's pretraining, and training from their cached outputs."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from soundloc.data.frozen_features import WithFeatures, compute_frozen_features
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig
from soundloc.experiments.pigeon import PigeonConfig
from soundloc.experiments.pigeon.run import build_world, pretrained_streams, run_schemes
from soundloc.models import ModelConfig, build_model
from soundloc.pretrain import PretrainConfig, pretrained_sound_state

SOUND = PretrainConfig(n_train=96, n_test=48, epochs=2, batch_size=16, world_seed_offset=2000, flip=False)


def _config(**kw) -> PigeonConfig:
    base = dict(n_train=64, n_labelled=16, n_test=24, epochs=1, threads=1, random_repeats=1, n_figure_examples=1,
                pretraining={"n_train": 64, "n_test": 16, "epochs": 1, "batch_size": 16},
                sound_pretraining=SOUND, model={"freeze_sound": True})
    return PigeonConfig.at_scale("tiny", **{**base, **kw})


def test_sound_stream_learns_the_classes_and_is_cached(tmp_path) -> None:
    cfg = _config()
    state, record = pretrained_sound_state(cfg.model, cfg.world, SOUND, seed=4, cache_dir=tmp_path)
    # four classes with distinct harmonic signatures, learned from 96 clips in 2 epochs: far above
    # the 1/4 of guessing on 48 held-out clips (guessing's sd is sqrt(0.25 * 0.75 / 48) = 0.06,
    # so 0.6 is more than five of them above it)
    assert record["test_accuracy"] >= 0.6, record
    assert record["world_config"]["offscreen_p"] == 0.0 and record["world_seed"] == 4 + 2000
    again, record2 = pretrained_sound_state(cfg.model, cfg.world, SOUND, seed=4, cache_dir=tmp_path)
    assert record2["reused_from"] and all(torch.equal(state[k], again[k]) for k in state)
    assert len(list(tmp_path.glob("sound_*.pt"))) == 1


def test_schemes_trained_from_cached_outputs_match_the_networks() -> None:
    # same process, same threads: only the convolutions' batch size differs between the cached
    # features (batches of 128) and the networks run inside training (batches of 16); float32
    # sums in another order differ by ~1e-7 relative, far below the 1e-5 allowed on the maps
    cfg = _config()
    data = build_world(cfg, 5)
    streams = pretrained_streams(cfg, 5, "cpu")
    assert streams.sound is not None and streams.visual is not None
    runs = {c: run_schemes(dataclasses.replace(cfg, feature_cache=c), data, streams, 5, "cpu") for c in (True, False)}
    assert isinstance(runs[True].data.train_set, WithFeatures) and not isinstance(runs[False].data.train_set, WithFeatures)
    for scheme, maps in runs[True].maps.items():
        assert torch.allclose(maps, runs[False].maps[scheme], atol=1e-5, rtol=0), scheme
        for g in ("context_bound", "free"):
            assert runs[True].schemes[scheme]["groups"][g]["ciou_at_0.5"] == runs[False].schemes[scheme]["groups"][g]["ciou_at_0.5"]


def test_frozen_features_are_the_streams_outputs_and_refuse_trained_streams() -> None:
    world = SyntheticWorld(WorldConfig(clip_seconds=0.5), seed=1)
    ds = SyntheticDataset(world, 6)
    model = build_model(ModelConfig.cpu(visual_width=8, visual_dim=16, sound_width=0.0625, sound_dim=8,
                                        sound_hidden=8, visual_hidden=8, clip_samples=world.config.clip_samples,
                                        freeze_visual=True, freeze_sound=True))
    feats = compute_frozen_features(model, ds, batch_size=4)
    model.eval()
    with torch.no_grad():
        v = model.encode_image(ds[2].image[None])[0]
        s = model.encode_sound(ds[2].waveform[None])[0]
    assert torch.allclose(feats["visual_feature"][ds.ids[2]], v, atol=1e-6)
    assert torch.allclose(feats["sound_feature"][ds.ids[2]], s, atol=1e-6)
    sample = WithFeatures(ds, feats)[2]
    assert set(sample.extras) >= {"visual_feature", "sound_feature"}
    trained = build_model(ModelConfig.cpu(visual_width=8, visual_dim=16, sound_width=0.0625, sound_dim=8,
                                          sound_hidden=8, visual_hidden=8, clip_samples=world.config.clip_samples))
    with pytest.raises(ValueError, match="freeze_visual"):
        compute_frozen_features(trained, ds, streams=("visual",))
    with pytest.raises(ValueError, match="no cached"):
        WithFeatures(SyntheticDataset(world, 8), feats)

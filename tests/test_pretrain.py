"""Pretraining the visual stream as an image classifier (soundloc.pretrain), and the parallel
scene rendering it and the pigeon experiment use."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, render_scenes
from soundloc.models import SmallCNN
from soundloc.pretrain import PretrainConfig, accuracy, classification_set, pretrain_visual, recompute_batchnorm


def _same_scene(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert (torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y), f.name


def test_render_scenes_with_workers_equals_in_process() -> None:
    world = SyntheticWorld(WorldConfig(clip_seconds=0.05), seed=7)
    idx = [5, 3, 200, 4, 150, 151, 9]
    here = list(render_scenes(world, idx, workers=0))
    there = list(render_scenes(world, idx, workers=2, chunk=2))
    assert [s.index for s in there] == idx
    for a, b, i in zip(here, there, idx):
        _same_scene(a, b)
        _same_scene(a, world.scene(i))
    with pytest.raises(ValueError, match="workers"):
        list(render_scenes(world, idx, workers=-1))


def test_prefetch_fills_the_shared_cache_with_the_same_samples() -> None:
    world = SyntheticWorld(WorldConfig(clip_seconds=0.05), seed=3)
    lazy = SyntheticDataset(world, 40, grid=8)
    eager = SyntheticDataset(world, 40, grid=8).prefetch(workers=2)
    assert len(eager._cache) == 40
    sub = eager.subset([1, 2])
    assert sub._cache is eager._cache
    for k in (0, 17, 39):
        a, b = lazy[k], eager[k]
        assert torch.equal(a.image, b.image) and torch.equal(a.waveform, b.waveform)
    with pytest.raises(ValueError, match="cache"):
        SyntheticDataset(world, 4, cache=False).prefetch()


def test_pretrain_config_world_and_validation() -> None:
    base = WorldConfig(image_size=64, num_classes=4, context_p=0.9, offscreen_p=0.3, ambient_p=0.1, clip_seconds=1.0)
    wc = PretrainConfig().world_config(base)
    # images only, the world's own statistics otherwise
    assert wc.offscreen_p == 0 and wc.ambient_p == 0 and wc.clip_seconds == 0.05
    assert wc.context_p == 0.9 and wc.num_classes == 4 and wc.image_size == 64
    assert PretrainConfig(world={"context_p": 0.25}).world_config(base).context_p == 0.25
    assert PretrainConfig.from_dict(PretrainConfig().to_dict()) == PretrainConfig()
    for bad in ({"n_train": 0}, {"epochs": 1.5}, {"batch_size": 10**6}, {"lr": 0}, {"workers": -1}):
        with pytest.raises(ValueError):
            PretrainConfig(**bad)
    with pytest.raises(ValueError, match="world_sed"):
        PretrainConfig.from_dict({"world_sed": 1})


def test_classification_set_labels_are_the_sounding_class() -> None:
    world = SyntheticWorld(PretrainConfig().world_config(WorldConfig()), seed=11)
    x, y = classification_set(world, 12, start=4)
    assert x.dtype == torch.uint8 and x.shape == (12, 3, 64, 64)
    for k in range(12):
        sc = world.scene(4 + k)
        assert int(y[k]) == sc.label and sc.kind == "object"
        assert torch.equal(x[k], (sc.image * 255 + 0.5).to(torch.uint8))
    with pytest.raises(ValueError, match="in view"):
        classification_set(SyntheticWorld(WorldConfig(offscreen_p=1.0, ambient_p=0.0), seed=0), 3)


def test_recompute_batchnorm_gives_the_data_statistics() -> None:
    torch.manual_seed(0)
    net = SmallCNN(width=4, out_channels=8, stride=2, normalize=False)
    images = (torch.rand(40, 3, 8, 8) * 255).to(torch.uint8)
    with torch.no_grad():
        net.features[0].weight.normal_()
    assert recompute_batchnorm(net, images, batch_size=20) == 2
    # the first BatchNorm sees conv1(x): two equal batches, so its running mean is the population's
    with torch.no_grad():
        h = net.features[0](images.float() / 255)
    bn = net.features[1]
    assert torch.allclose(bn.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    # cumulative average of the two batches' unbiased variances
    var = [h[i:i + 20].var((0, 2, 3), unbiased=True) for i in (0, 20)]
    assert torch.allclose(bn.running_var, sum(var) / 2, atol=1e-5)
    assert bn.momentum == 0.1 and net.training  # restored
    assert recompute_batchnorm(nn.Sequential(nn.Conv2d(3, 2, 1)), images) == 0


def test_pretrain_visual_learns_the_classes_and_is_reproducible() -> None:
    cfg = PretrainConfig(n_train=384, n_test=96, epochs=3, batch_size=32)
    world = WorldConfig(clip_seconds=0.5, bound_fraction=1.0)  # every band shows its class 90 % of the time
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = SmallCNN(width=8, out_channels=32, stride=8)
        info = pretrain_visual(net, world, cfg, seed=5)
        nets.append(net)
    assert not nets[0].training
    assert info["world_seed"] == 1005 and info["n_train"] == 384 and sum(info["class_counts"]) == 384
    assert info["world_config"]["offscreen_p"] == 0 and info["world_config"]["context_p"] == 0.9
    # four classes: chance is 0.25; a few hundred images already teach the shapes/bands
    assert info["test_accuracy"] > 0.6, info
    assert info["epoch_losses"][-1] < info["epoch_losses"][0]
    for (k, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        assert torch.equal(a, b), k
    frozen = SmallCNN(width=8, out_channels=32, stride=8, freeze=True)
    with pytest.raises(ValueError, match="trainable"):
        pretrain_visual(frozen, world, cfg)
    with pytest.raises(TypeError, match="PretrainConfig"):
        pretrain_visual(nets[0], world, {"epochs": 1})  # type: ignore[arg-type]


def test_accuracy_counts_by_hand() -> None:
    class Const(nn.Module):
        out_channels = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # class evidence = the red channel
            return torch.stack([x[:, 0], 1 - x[:, 0]], 1)

    head = nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    images = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    images[:2, 0] = 255  # red: class 0
    labels = torch.tensor([0, 1, 1, 0])  # two right, two wrong
    assert accuracy(Const(), head, images, labels) == 0.5

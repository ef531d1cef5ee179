"""Tests of the "same image, other sound" helpers of soundloc.experiments.localize:
attention_table gives, for every image and sound, the map the full model gives on that pair;
mix_sounds blends two clips; class_mask marks the objects of one class of a synthetic scene."""
from __future__ import annotations

import pytest
import torch

from soundloc.data.synthetic import SyntheticWorld, WorldConfig
from soundloc.experiments.localize import BUNDLED_CHECKPOINT, attention_table, class_mask, load_localizer, mix_sounds


@pytest.fixture(scope="module")
def model():
    return load_localizer(BUNDLED_CHECKPOINT)


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WorldConfig(), seed=0)


def test_attention_table_is_the_model_on_every_pair(model, world) -> None:
    scenes = [world.scene(i) for i in range(1000, 1005)]
    images = torch.stack([s.image for s in scenes[:2]])
    sounds = torch.stack([s.waveform for s in scenes[2:]])
    table = attention_table(model, images, sounds)
    assert table.shape == (2, 3, 8, 8)
    with torch.no_grad():
        for i in range(2):
            for j in range(3):
                expected = model(images[i:i + 1], sounds[j:j + 1]).attention[0]
                # one image's features shared by 3 sounds against batches of one: the same float32
                # sums in other blockings, ~1e-6 of the cosine scores; the bundled model's softmax at
                # temperature 0.1 makes that <= 2e-5 of each cell's mass
                torch.testing.assert_close(table[i, j], expected, rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(table.flatten(2).sum(-1), torch.ones(2, 3))
    with pytest.raises(ValueError, match="images"):
        attention_table(model, images[0], sounds)


def test_mix_sounds() -> None:
    a, b = torch.ones(10), torch.zeros(10)
    assert torch.equal(mix_sounds(a, b, 0.0), a)
    assert torch.equal(mix_sounds(a, b, 1.0), b)
    torch.testing.assert_close(mix_sounds(a, b, 0.25), torch.full((10,), 0.75))
    with pytest.raises(ValueError, match="weight"):
        mix_sounds(a, b, 1.5)
    with pytest.raises(ValueError, match="shape"):
        mix_sounds(a, torch.zeros(9), 0.5)


def test_class_mask_marks_the_objects_of_a_class(world) -> None:
    scene = next(s for s in (world.scene(i) for i in range(50)) if s.kind == "object")
    own = class_mask(scene, scene.label)
    x1, y1, x2, y2 = scene.box
    assert own[y1:y2, x1:x2].eq(1).all()
    for k in range(world.config.num_classes):
        mask = class_mask(scene, k)
        expected = torch.zeros_like(mask)
        for c, (u1, v1, u2, v2) in zip(scene.distractor_labels, scene.distractor_boxes):
            if c == k:
                expected[v1:v2, u1:u2] = 1
        if k == scene.label:
            expected[y1:y2, x1:x2] = 1
        assert torch.equal(mask, expected)
    offscreen = next(s for s in (world.scene(i) for i in range(200)) if s.kind == "offscreen")
    expected = torch.zeros_like(class_mask(offscreen, offscreen.label))
    for c, (u1, v1, u2, v2) in zip(offscreen.distractor_labels, offscreen.distractor_boxes):
        if c == offscreen.label:
            expected[v1:v2, u1:u2] = 1
    assert torch.equal(class_mask(offscreen, offscreen.label), expected)  # heard, not in view: no box of its own

"""The synthetic audio-visual world: determinism, the statistics it promises, the shared layout."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundloc.data import AVDataset, annotation_attention
from soundloc.data.synthetic import (
    SHAPES,
    SyntheticDataset,
    SyntheticWorld,
    WorldConfig,
    class_signature,
    render_sound,
    shape_mask,
    world_splits,
    write_world,
)
from soundloc.data.types import collate

SMALL = WorldConfig(clip_seconds=0.25)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SMALL, seed=3)


@pytest.fixture(scope="module")
def scenes(world: SyntheticWorld) -> list:
    return [world.scene(i) for i in range(300)]


def test_scene_is_deterministic_per_seed_and_index(world: SyntheticWorld) -> None:
    a, b = world.scene(7), SyntheticWorld(SMALL, seed=3).scene(7)
    assert torch.equal(a.image, b.image) and torch.equal(a.waveform, b.waveform)
    assert a.annotation == b.annotation and a.label == b.label and a.box == b.box
    other_seed = SyntheticWorld(SMALL, seed=4).scene(7)
    other_index = world.scene(8)
    assert not torch.equal(a.image, other_seed.image)
    assert not torch.equal(a.image, other_index.image)


def test_scene_shapes_ranges_and_annotation_frame(scenes: list) -> None:
    for sc in scenes[:50]:
        assert sc.image.shape == (3, 64, 64) and sc.image.dtype == torch.float32
        assert 0.0 <= float(sc.image.min()) and float(sc.image.max()) <= 1.0
        assert sc.waveform.shape == (SMALL.clip_samples,) and torch.isfinite(sc.waveform).all()
        assert float(sc.waveform.abs().max()) <= 1.0
        assert set(torch.unique(sc.context_mask).tolist()) <= {0.0, 1.0}
        if sc.kind == "offscreen":
            assert sc.annotation is None and float(sc.object_mask.sum()) == 0
            continue
        ann = sc.annotation
        assert ann.num_annotators == 3 and ann.frame_size == 256
        assert ann.tags == (("object",) * 3 if sc.kind == "object" else ("ambient",) * 3)
        for (box,) in ann.boxes:
            assert 0 <= box[0] < box[2] <= 256 and 0 <= box[1] < box[3] <= 256


def test_annotators_box_the_source_with_jitter(scenes: list) -> None:
    """Every annotator's box is the true box ×4 (64 → 256 frame) moved by a few σ at most."""
    for sc in scenes:
        if sc.kind != "object":
            continue
        x1, y1, x2, y2 = (4 * v for v in sc.box)
        for (b,) in sc.annotation.boxes:
            tol_x, tol_y = 5 * 0.06 * (x2 - x1) + 2, 5 * 0.06 * (y2 - y1) + 2
            assert abs(b[0] - x1) <= tol_x and abs(b[2] - min(x2, 256)) <= tol_x
            assert abs(b[1] - y1) <= tol_y and abs(b[3] - min(y2, 256)) <= tol_y
        # the object box and the context region are disjoint; the context lies in the band
        assert float((sc.object_mask * sc.context_mask).sum()) == 0


def test_sources_are_large_enough_for_ciou_half(scenes: list) -> None:
    """Median rule: cIoU >= 0.5 needs the source to cover >= 1/4 of the frame (side >= 0.5)."""
    areas = [float(sc.object_mask.mean()) for sc in scenes if sc.kind == "object"]
    # box side s in [0.5, 0.7] of the frame and w*h = s^2 (aspect kept), up to pixel rounding
    assert min(areas) >= 0.25 - 2 * 1.0 / 64
    assert max(areas) <= 0.7**2 * 1.25 + 2 * 1.0 / 64


def test_context_predicts_the_class_with_probability_p() -> None:
    for p in (0.9, 0.25):
        cfg = WorldConfig(clip_seconds=0.25, context_p=p, bound_fraction=1.0, offscreen_p=0.0, ambient_p=0.0)
        w = SyntheticWorld(cfg, seed=1)
        n = 400
        hits = sum(sc.context_label == sc.label for sc in map(w.scene, range(n)))
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(hits / n - p) < 4 * sd, (p, hits / n)


#: Scenes 0-39 of ``SyntheticWorld(WorldConfig(image_size=16, clip_seconds=0.05, context_p=0.5),
#: seed=11)`` as drawn before the world was graded (every class bound): sound and band classes.
OLD_WORLD_LABELS = "3020211221031230023201321110130012010321"
OLD_WORLD_CONTEXT = "1300313231031102021203331101300002010330"


def test_bound_fraction_one_is_the_world_before_grading() -> None:
    """A config saved without ``bound_fraction`` loads as 1.0 (every class bound), and that
    world is the old one, scene for scene; the default world binds classes 0 and 1 only."""
    kw = dict(image_size=16, clip_seconds=0.05, context_p=0.5)
    old = WorldConfig(**kw).to_dict()
    del old["bound_fraction"]
    migrated = WorldConfig.from_dict(old)
    assert migrated.bound_fraction == 1.0 and migrated == WorldConfig(**kw, bound_fraction=1.0)
    a, b = SyntheticWorld(migrated, seed=11), SyntheticWorld(WorldConfig(**kw, bound_fraction=1.0), seed=11)
    for i in range(40):
        sa, sb = a.scene(i), b.scene(i)
        assert torch.equal(sa.image, sb.image) and torch.equal(sa.waveform, sb.waveform)
        assert (sa.label, sa.context_label, sa.annotation) == (sb.label, sb.context_label, sb.annotation)
    assert "".join(str(a.scene(i).label) for i in range(40)) == OLD_WORLD_LABELS
    assert "".join(str(a.scene(i).context_label) for i in range(40)) == OLD_WORLD_CONTEXT
    assert WorldConfig.from_dict(WorldConfig(bound_fraction=0.25).to_dict()).bound_fraction == 0.25
    default = WorldConfig()
    assert default.bound_fraction == 0.5 and default.context_bound_classes == (0, 1)
    assert [default.is_context_bound(k) for k in range(4)] == [True, True, False, False]
    assert [default.class_context_p(k) for k in range(4)] == [0.9, 0.9, 0.25, 0.25]
    assert WorldConfig(bound_fraction=0.0).context_bound_classes == ()
    assert WorldConfig(num_classes=6, bound_fraction=1.0).context_bound_classes == tuple(range(6))


def test_graded_world_binds_the_first_classes_and_frees_the_others() -> None:
    """Bound classes: the band shows the sound's own class with probability context_p; free
    classes: the band's class is uniform over the K classes (own class 1/K, each other 1/K)."""
    k, p, n = 4, 0.8, 2000
    cfg = WorldConfig(num_classes=k, context_p=p, bound_fraction=0.5, image_size=16, clip_seconds=0.05,
                      n_distractors=0)
    w = SyntheticWorld(cfg, seed=2)
    pairs = [(sc.label, sc.context_label) for sc in map(w.scene, range(n)) if sc.kind != "ambient"]
    for c in range(k):
        bands = [b for a, b in pairs if a == c]
        m = len(bands)
        assert m > 300, (c, m)
        expected = {c: p} if c in (0, 1) else {j: 1 / k for j in range(k)}
        for j, q in expected.items():
            freq = bands.count(j) / m
            assert abs(freq - q) < 3 * math.sqrt(q * (1 - q) / m), (c, j, freq, q)


def test_silent_objects_are_independent_of_the_sound(scenes: list) -> None:
    """Distractor classes are uniform over all K classes, the sounding one included."""
    same = [d == sc.label for sc in scenes for d in sc.distractor_labels]
    n, k = len(same), SMALL.num_classes
    assert n == (SMALL.n_ground_objects + SMALL.n_distractors) * len(scenes) > 0
    assert abs(np.mean(same) - 1 / k) < 4 * math.sqrt((1 / k) * (1 - 1 / k) / n)


def test_scene_kinds_follow_their_probabilities() -> None:
    w = SyntheticWorld(WorldConfig(clip_seconds=0.25, offscreen_p=0.2, ambient_p=0.3), seed=0)
    kinds = [w.scene_kind(i) for i in range(2000)]
    assert abs(kinds.count("offscreen") / 2000 - 0.2) < 0.04
    assert abs(kinds.count("ambient") / 2000 - 0.3) < 0.04
    for i in range(40):  # scene_kind agrees with the rendered scene
        sc = w.scene(i)
        assert sc.kind == kinds[i]
        if sc.kind == "ambient":  # annotators box the band; the band is the sound's class
            assert sc.context_label == sc.label and sc.box[3] == 64 and sc.box[0] == 0


@pytest.mark.parametrize(
    "shape,area",
    [("disk", math.pi / 4), ("square", 0.85**2), ("diamond", 0.5), ("ring", math.pi / 4 * (1 - 0.25)),
     ("plus", (2 * 0.6 * 1.9 - 0.6 * 0.6) / 4)],
)
def test_shape_areas(shape: str, area: float) -> None:
    g = (np.arange(800) + 0.5) / 400 - 1.0
    u, v = np.meshgrid(g, g)
    assert abs(shape_mask(shape, u, v).mean() - area) < 5e-3


def test_every_shape_is_distinct() -> None:
    g = (np.arange(200) + 0.5) / 100 - 1.0
    u, v = np.meshgrid(g, g)
    masks = [shape_mask(s, u, v) for s in SHAPES]
    for i in range(len(SHAPES)):
        for j in range(i + 1, len(SHAPES)):
            assert (masks[i] != masks[j]).mean() > 0.05, (SHAPES[i], SHAPES[j])


def test_class_zero_sounds_at_its_fundamental() -> None:
    cfg = WorldConfig(clip_seconds=1.0, noise_level=0.0)
    sig = class_signature(0, cfg.num_classes)
    assert sig.f0 == 150.0 and sig.chirp == 0.0
    rng = np.random.default_rng(0)
    wav = render_sound(rng, sig, cfg)
    spec = np.abs(np.fft.rfft(wav))
    freqs = np.fft.rfftfreq(len(wav), 1 / cfg.sample_rate)
    band = (freqs > 60) & (freqs < 1000)
    peak = freqs[band][np.argmax(spec[band])]
    assert abs(peak / 150.0 - 1) < 0.15  # pitch jitter sigma 4%


def test_sound_predicts_its_class() -> None:
    """A nearest-centroid classifier on log spectra separates the classes (the sound is informative)."""
    cfg = WorldConfig(clip_seconds=0.5)
    k = cfg.num_classes
    rng = np.random.default_rng(1)

    def feat(c: int) -> np.ndarray:
        wav = render_sound(rng, class_signature(c, k), cfg) + rng.normal(0, cfg.noise_level, cfg.clip_samples)
        spec = np.abs(np.fft.rfft(wav)) ** 2
        bands = np.array_split(spec, 64)
        return np.log(np.array([b.sum() for b in bands]) + 1e-6)

    train = {c: np.mean([feat(c) for _ in range(15)], axis=0) for c in range(k)}
    correct = total = 0
    for c in range(k):
        for _ in range(15):
            f = feat(c)
            pred = min(train, key=lambda j: np.sum((train[j] - f) ** 2))
            correct += pred == c
            total += 1
    assert correct / total > 0.9


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        WorldConfig(num_classes=1)
    with pytest.raises(ValueError, match="context_p"):
        WorldConfig(context_p=1.5)
    for bad in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(ValueError, match="bound_fraction"):
            WorldConfig(bound_fraction=bad)
    with pytest.raises(ValueError, match="class index"):
        WorldConfig().class_context_p(4)
    with pytest.raises(ValueError, match="object_scale"):
        WorldConfig(object_scale=(0.7, 0.5))
    with pytest.raises(ValueError, match="offscreen_p"):
        WorldConfig(offscreen_p=0.7, ambient_p=0.5)
    with pytest.raises(ValueError, match="seed"):
        SyntheticWorld(SMALL, seed=-1)
    with pytest.raises(ValueError, match="index"):
        SyntheticWorld(SMALL).scene(-2)
    with pytest.raises(ValueError, match="no field"):
        WorldConfig.from_dict({"num_clases": 3})
    assert WorldConfig.from_dict(SMALL.to_dict()) == SMALL


def test_dataset_samples_and_ground_truth(world: SyntheticWorld) -> None:
    ds = SyntheticDataset(world, 40, grid=8, seed=5)
    s = ds[0]
    assert s.id == "syn000000" and s.image.shape == (3, 64, 64)
    assert set(s.extras) == {"context_mask", "object_mask", "label", "context_label", "kind", "visible"}
    assert s.extras["label"].dtype == torch.long and int(s.extras["label"]) == world.scene(0).label
    for k in range(len(ds)):
        sample = ds[k]
        sc = world.scene(ds.indices[k])
        if sc.annotation is None:
            assert sample.gt_attention is None
        else:
            assert sample.gt_attention.shape == (8, 8)
            assert abs(float(sample.gt_attention.sum()) - 1) < 1e-5
    # the image is the scene's, quantised to 8 bits
    assert torch.allclose(s.image, world.scene(0).image, atol=0.5 / 255 + 1e-6)
    batch = collate([ds[k] for k in range(4)])
    assert batch.image.shape == (4, 3, 64, 64) and batch.extras["context_mask"].shape == (4, 64, 64)


def test_dataset_labelled_subset_and_annotators(world: SyntheticWorld) -> None:
    annotated = [i for i in range(40) if world.scene_kind(i) != "offscreen"]
    none = SyntheticDataset(world, 40, grid=8, labelled=False)
    assert all(none[k].gt_attention is None for k in range(5)) and none.labelled_indices() == []
    some = SyntheticDataset(world, 40, grid=8, labelled=["syn000001", 2, 3])
    expect = [i for i in (1, 2, 3) if i in annotated]
    assert some.labelled_indices() == expect
    assert some.labelled == {f"syn{i:06d}" for i in expect}
    assert SyntheticDataset(world, 40, grid=None).labelled_indices() == []
    # consensus ground truth is annotation_attention's consensus map
    cons = SyntheticDataset(world, 40, grid=8, annotator="consensus")
    k = annotated[0]
    ref = annotation_attention(world.scene(k).annotation, (8, 8), "consensus")
    assert torch.allclose(cons[k].gt_attention, ref)
    # the random annotator is redrawn per epoch (the three boxes differ, so maps differ)
    rnd = SyntheticDataset(world, 40, grid=8, annotator="random", seed=0)
    maps = []
    for e in range(6):
        rnd.set_epoch(e)
        maps.append(rnd[k].gt_attention)
    assert any(not torch.equal(maps[0], m) for m in maps[1:])
    rnd.set_epoch(0)
    assert torch.equal(rnd[k].gt_attention, maps[0])


def test_dataset_cache_gives_identical_samples(world: SyntheticWorld) -> None:
    cached = SyntheticDataset(world, 10, grid=8, cache=True)
    fresh = SyntheticDataset(world, 10, grid=8, cache=False)
    a1, a2, b = cached[3], cached[3], fresh[3]
    assert torch.equal(a1.image, a2.image) and torch.equal(a1.image, b.image)
    assert torch.equal(a1.waveform, b.waveform)
    sub = cached.subset([3, 4], labelled=False)
    assert sub[0].id == "syn000003" and sub[0].gt_attention is None


def test_dataset_bad_input(world: SyntheticWorld) -> None:
    with pytest.raises(TypeError, match="world"):
        SyntheticDataset("not a world")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="annotator"):
        SyntheticDataset(world, 5, annotator="median")
    with pytest.raises(IndexError):
        SyntheticDataset(world, 5)[5]


def test_splits(world: SyntheticWorld) -> None:
    sp = world_splits(world, 100, 20, 10)
    assert sp.train == tuple(range(80))
    assert all(80 <= i < 100 and world.scene_kind(i) != "offscreen" for i in sp.test)
    assert len(sp.labelled) == 10 and set(sp.labelled) <= set(sp.train)
    assert all(world.scene_kind(i) != "offscreen" for i in sp.labelled)
    with pytest.raises(ValueError):
        world_splits(world, 10, 10, 0)


def test_write_world_reads_back_as_the_same_samples(tmp_path, world: SyntheticWorld) -> None:
    root = write_world(world, tmp_path / "w", 24, n_test=6, n_labelled=5, progress=False)
    for name in ("index.csv", "annotations.json", "splits/train.txt", "splits/test.txt", "splits/labelled.txt"):
        assert (root / name).is_file(), name
    sp = world_splits(world, 24, 6, 5)
    disk = AVDataset(root, ids="train", image_size=64, grid=8, clip_seconds=SMALL.clip_seconds,
                     labelled=[f"syn{i:06d}" for i in sp.labelled], seed=2)
    mem = SyntheticDataset(world, sp.train, grid=8, labelled=sp.labelled, seed=2)
    assert disk.ids == mem.ids
    for k in range(len(mem)):
        a, b = disk[k], mem[k]
        assert a.id == b.id
        assert torch.equal(a.image, b.image)
        assert torch.allclose(a.waveform, b.waveform, atol=1.0 / 32767 + 1e-6)
        assert a.annotation == b.annotation
        assert (a.gt_attention is None) == (b.gt_attention is None)
        if a.gt_attention is not None:
            assert torch.allclose(a.gt_attention, b.gt_attention)
        assert set(a.extras) == set(b.extras)
        for key in a.extras:
            assert a.extras[key].dtype == b.extras[key].dtype, key
            assert torch.equal(a.extras[key], b.extras[key]), key
    test_ids = (root / "splits" / "test.txt").read_text().split()
    assert test_ids == [f"syn{i:06d}" for i in sp.test]


def test_synth_command_writes_a_loadable_folder(tmp_path) -> None:
    from soundloc.cli import main

    assert main(["synth", "--out", str(tmp_path / "s"), "--n", "6", "--test", "2", "--labelled", "2",
                 "--clip-seconds", "0.25", "--seed", "1", "--quiet"]) == 0
    ds = AVDataset(tmp_path / "s", image_size=64, clip_seconds=0.25)
    assert len(ds) == 6 and ds[0].extras["label"] == SyntheticWorld(WorldConfig(clip_seconds=0.25), 1).scene(0).label
    assert main(["synth", "--out", str(tmp_path / "bad"), "--n", "4", "--classes", "1", "--quiet"]) == 2


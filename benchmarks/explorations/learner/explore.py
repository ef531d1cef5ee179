"""Exploration: why the unsupervised learner does not localize, and which world lets it.

Not part of the library: a measurement script for the exploration logged in ``LOG.md`` beside it
(exploration seeds >= 100 only). For one *lever* (a named change of the pigeon experiment's
configuration, :data:`LEVERS`) and one seed it trains the unsupervised scheme (and, with
``--schemes``, others) through the library's own pipeline (:mod:`soundloc.experiments.pigeon.run`)
and measures:

- the free and context-bound classes' cIoU@0.5 and AUC beside the random, whole-image and
  centre-prior baselines;
- where the attention goes: density (mass / area, 1 = chance) on the object, the band, the silent
  objects and the rest of the image;
- the test triplet loss L_U and the matching accuracy (d+ < d-, own sound against another
  test pair's sound, and against a sound of another class) of the attention model and of the
  same model trained with a uniform attention (temperature 1e6: z is the grid's mean), so that
  "does anything ask the attention to find the source?" has a number;
- the effective receptive field of a grid cell of the frozen visual stream (share of the input
  gradient of the centre cell's feature inside squares of growing side).

    python benchmarks/explorations/learner/explore.py --lever base --seed 100 [--scale smoke]

writes ``runs/<lever>/seed<N>.json`` (with its command, config, date and library version).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent

#: lever name -> (what it changes, PigeonConfig.at_scale overrides)
_DUET_WORLD = {"n_ground_objects": 1, "n_distractors": 0, "object_scale": [0.5, 0.6], "object_aspect": [0.55, 0.75]}
_SINGLE = {"world": {"n_ground_objects": 0}}  # pretraining images show one object (ImageNet-like)

#: the sound stream pretrained as a sound classifier (the synthetic world's SoundNet) and frozen, as the authors'
_SOUND = {"sound_pretraining": {"n_train": 2000, "n_test": 400, "epochs": 2, "batch_size": 64,
                                "world_seed_offset": 2000, "flip": False},
          "model_freeze_sound": True}

LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "base": ("today's graded world (smoke)", {}),
    "duet": ("one silent object as large as the source standing beside it; no sky objects",
             {"world": _DUET_WORLD, "pretraining": _SINGLE}),
    "duet_k8": ("duet with 8 classes", {"world": {**_DUET_WORLD, "num_classes": 8}, "pretraining": _SINGLE}),
    "duet_stride4": ("duet, visual stride 4 (16x16 grid, receptive field 18 px instead of 38)",
                     {"world": _DUET_WORLD, "pretraining": _SINGLE, "model": {"visual_stride": 4}}),
    "duet_t1": ("duet, the paper's softmax (temperature 1)",
                {"world": _DUET_WORLD, "pretraining": _SINGLE, "model": {"temperature": 1.0}}),
    "duet_relu": ("duet, ReLU attention (mechanism 2)",
                  {"world": _DUET_WORLD, "pretraining": _SINGLE, "model": {"mechanism": "relu"}}),
    "duet_long": ("duet, 16 epochs instead of 8", {"world": _DUET_WORLD, "pretraining": _SINGLE, "epochs": 16}),
    "base_frozen_sound": ("today's world, sound stream pretrained and frozen (the authors' setup)", {**_SOUND}),
    "duet_frozen_sound": ("duet, sound stream pretrained and frozen", {"world": _DUET_WORLD, "pretraining": _SINGLE, **_SOUND}),
    "duet_stride4_frozen_sound": ("duet, stride 4, sound stream pretrained and frozen",
                                  {"world": _DUET_WORLD, "pretraining": _SINGLE, "model": {"visual_stride": 4}, **_SOUND}),
    "duet_frozen_sound_t1": ("duet, frozen sound, the paper's softmax (temperature 1)",
                             {"world": _DUET_WORLD, "pretraining": _SINGLE, "model": {"temperature": 1.0}, **_SOUND}),
    "duet_frozen_sound_long": ("duet, frozen sound, 16 epochs instead of 8",
                               {"world": _DUET_WORLD, "pretraining": _SINGLE, "epochs": 16, **_SOUND}),
    "candidate": ("duet, frozen sound, visual pretraining on 4,000 images for 4 epochs (a quarter of the cost)",
                  {"world": _DUET_WORLD, "pretraining": {**_SINGLE, "n_train": 4000, "n_test": 500, "epochs": 4},
                   **_SOUND}),
    "trio": ("two silent objects as large as the source on the ground (3 objects)",
             {"world": {**_DUET_WORLD, "n_ground_objects": 2, "object_scale": [0.42, 0.5], "object_aspect": [0.5, 0.7]},
              "pretraining": _SINGLE}),
}


def _regions(scenes: list[Any]) -> dict[str, torch.Tensor]:
    """``[N, H, W]`` masks: object, band (context), silent objects (outside the source), rest."""
    obj = torch.stack([s.object_mask for s in scenes])
    band = torch.stack([s.context_mask for s in scenes])
    size = obj.shape[-1]
    dis = torch.zeros_like(obj)
    for k, s in enumerate(scenes):
        for (x1, y1, x2, y2) in s.distractor_boxes:
            dis[k, y1:y2, x1:x2] = 1.0
    dis = dis * (1 - obj) * (1 - band)
    rest = (1 - obj) * (1 - band) * (1 - dis)
    return {"object": obj, "band": band, "silent_objects": dis, "rest": rest}


def _densities(maps: torch.Tensor, regions: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, float]:
    from soundloc.metrics import region_density
    return {name: float(torch.nanmean(region_density(maps[keep], m[keep]))) for name, m in regions.items()}


@torch.no_grad()
def _matching(model: Any, dataset: Any, labels: torch.Tensor, seed: int) -> dict[str, float]:
    """Test L_U and matching accuracy with a random other pair's sound and with a sound of
    another class as the negative."""
    from soundloc.data.types import collate
    from soundloc.losses import triplet_distances, unsupervised_loss
    from soundloc.train import cached_forward
    model.eval()
    batch = collate([dataset[k] for k in range(len(dataset))])
    out = cached_forward(model, batch)
    n = len(labels)
    g = torch.Generator().manual_seed(seed)
    other = (torch.arange(n) + 1 + torch.randint(0, n - 1, (n,), generator=g)) % n
    cls = torch.empty(n, dtype=torch.long)
    for i in range(n):
        pool = torch.nonzero(labels != labels[i]).flatten()
        cls[i] = pool[torch.randint(0, len(pool), (1,), generator=g)]
    res = {}
    for name, neg in (("random", other), ("other_class", cls)):
        d_pos, d_neg = triplet_distances(out.f_v, out.f_s, out.f_s[neg])
        res[f"match_acc_{name}"] = float((d_pos < d_neg).float().mean())
        res[f"test_l_u_{name}"] = float(unsupervised_loss(out.f_v, out.f_s, out.f_s[neg]))
    return res


def effective_receptive_field(visual: torch.nn.Module, size: int, n: int = 16, seed: int = 0) -> dict[str, Any]:
    """Share of |d feature(centre cell) / d image| inside centred squares of growing side,
    averaged over ``n`` random images (the frozen stream in eval mode)."""
    visual.eval()
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(n, 3, size, size, generator=g, requires_grad=True)
    feats = visual(img)
    gh, gw = feats.shape[-2:]
    feats[:, :, gh // 2, gw // 2].sum().backward()
    grad = img.grad.abs().sum(1).mean(0)  # [H, W]
    stride = size // gh
    cy, cx = (gh // 2) * stride + stride // 2, (gw // 2) * stride + stride // 2
    total = float(grad.sum())
    shares = {}
    for side in (stride, 2 * stride, 3 * stride, 4 * stride, 6 * stride, size):
        h = side // 2
        shares[str(side)] = float(grad[max(cy - h, 0):cy + h, max(cx - h, 0):cx + h].sum()) / total
    return {"stride": stride, "image": size, "share_inside_square_of_side": shares}


def run(lever: str, seed: int, scale: str, schemes: list[str], out_dir: Path, threads: int) -> dict[str, Any]:
    from soundloc.experiments.pigeon import run as P
    from soundloc.experiments.pigeon.config import PigeonConfig
    from soundloc.experiments.provenance import provenance
    from soundloc.metrics import evaluate
    torch.set_num_threads(threads)
    what, overrides = LEVERS[lever]
    overrides = json.loads(json.dumps(overrides))  # a copy
    recorded = json.loads(json.dumps(overrides))
    if overrides.pop("model_freeze_sound", False):
        overrides["model"] = {**overrides.get("model", {}), "freeze_sound": True}
    if "sound_pretraining" in overrides:
        from soundloc.pretrain import PretrainConfig
        overrides["sound_pretraining"] = PretrainConfig(**overrides["sound_pretraining"])
    cfg = PigeonConfig.at_scale(scale, pretrain_cache=str(HERE / "pretrain_cache"), **overrides)
    t0 = time.perf_counter()
    data = P.build_world(cfg, seed)
    streams = P.pretrained_streams(cfg, seed, "cpu")
    pre, sound_pre = streams.records["visual"], streams.records["sound"]
    data = P.cache_features(cfg, data, streams, seed, "cpu")
    regions = _regions(data.test_scenes)
    keep = data.visible
    labels = torch.tensor([s.label for s in data.test_scenes])
    groups = data.groups()
    anns = [s.annotation for s in data.test_scenes]
    result: dict[str, Any] = {"lever": lever, "what": what, "seed": seed, "scale": scale, "overrides": recorded,
                              "pretrain_test_accuracy": pre["test_accuracy"] if pre else None,
                              "sound_pretrain_test_accuracy": sound_pre["test_accuracy"] if sound_pre else None,
                              "schemes": {}}
    variants = [(s, cfg) for s in schemes]
    variants.append(("unsupervised_uniform", dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, temperature=1e6))))
    for name, c in variants:
        scheme = "unsupervised" if name == "unsupervised_uniform" else name
        t1 = time.perf_counter()
        trainer = P.train_scheme(c, scheme, data, streams, seed, "cpu")
        _, maps = __import__("soundloc.train", fromlist=["predict_attention"]).predict_attention(trainer.model, data.test_set, 64)
        row: dict[str, Any] = {"train_seconds": time.perf_counter() - t1,
                               "final_train_loss": trainer.history[-1]["loss"]}
        row.update(_matching(trainer.model, data.test_set, labels, seed))
        if name != "unsupervised_uniform":
            row["density"] = {g: _densities(maps, regions, keep & torch.isin(torch.arange(len(keep)), torch.tensor(idx)))
                              for g, idx in groups.items()}
            for g, idx in groups.items():
                ev = evaluate(maps[idx], [anns[i] for i in idx], baselines=True, seed=seed,
                              random_repeats=cfg.random_repeats, random_grid=data.grid, per_annotator=False)
                row[g] = {"ciou_at_0.5": float(ev.success), "auc": float(ev.auc),
                          "baselines": {b: {"ciou_at_0.5": float(v.success), "auc": float(v.auc)}
                                        for b, v in ev.baselines.items()}}
        result["schemes"][name] = row
        print(f"[{lever} seed {seed}] {name}: " + json.dumps({k: v for k, v in row.items() if k != 'density'}), file=sys.stderr)
    model = P.build_model(cfg.model)
    if streams.visual is not None:
        model.visual.load_state_dict(streams.visual)
    result["erf"] = effective_receptive_field(model.visual, cfg.world.image_size)
    result["seconds"] = time.perf_counter() - t0
    result["config"] = cfg.to_dict()
    result.update(provenance("cpu", "python " + " ".join(sys.argv)))
    out = out_dir / lever / f"seed{seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lever", required=True, choices=sorted(LEVERS))
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--scale", default="smoke")
    ap.add_argument("--schemes", nargs="+", default=["unsupervised"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "runs")
    a = ap.parse_args()
    if a.seed < 100:
        ap.error("exploration seeds are >= 100 (seeds below 100 are kept for decisive runs)")
    run(a.lever, a.seed, a.scale, a.schemes, a.out, a.threads)


if __name__ == "__main__":
    main()

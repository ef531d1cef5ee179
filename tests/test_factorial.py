"""The superstition by cause: the factorial's worlds, effects, tests over seeds and command."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from soundloc.data.synthetic import SyntheticWorld
from soundloc.experiments.pigeon import PigeonConfig
from soundloc.experiments.pigeon.factorial import (
    CELLS,
    effects,
    factorial_worlds,
    fix_contrasts,
    summarize_factorial,
)


def test_worlds_pair_scene_by_scene_and_rotate_the_bound_classes() -> None:
    cfg = PigeonConfig.at_scale("quick")
    k = cfg.world.num_classes
    for seed in range(2 * k):
        plan = factorial_worlds(cfg, seed)
        bound = plan["worlds"]["cooccur"].context_bound_classes
        assert bound == tuple(sorted({seed % k, (seed + 1) % k}))  # half of 4 classes, from seed mod K
        assert plan["worlds"]["chance"].context_p == pytest.approx(1 / k)
        assert plan["pretrainings"]["neutral"].world["context_p"] == pytest.approx(1 / k)
        assert plan["pretrainings"]["biased"].world["context_p"] == cfg.world.context_p
    # every class bound equally often over K seeds
    counts = [sum(c in factorial_worlds(cfg, s)["worlds"]["cooccur"].context_bound_classes for s in range(k))
              for c in range(k)]
    assert counts == [2] * k
    plan = factorial_worlds(cfg, 3)
    a, b = (SyntheticWorld(plan["worlds"][t], seed=3) for t in ("chance", "cooccur"))
    differ = 0
    for i in range(40):
        sa, sb = a.scene(i), b.scene(i)
        assert (sa.label, sa.kind, sa.box, sa.distractor_boxes) == (sb.label, sb.kind, sb.box, sb.distractor_boxes)
        assert torch.equal(sa.waveform, sb.waveform)
        band_top = int(torch.nonzero(sa.context_mask.sum(1) + sa.object_mask.sum(1) > 0)[:, 0].min()) \
            if sa.context_mask.any() else sa.image.shape[-1]
        above = slice(0, min(band_top, sa.box[1] if sa.box else band_top))
        assert torch.equal(sa.image[:, above], sb.image[:, above])  # the sky is the same scene
        differ += sa.context_label != sb.context_label
    assert differ > 0  # ... and the band shows another class in some of them


def _cells(values: dict[str, tuple[float, float]]) -> dict[str, dict]:
    """Cells whose unsupervised scheme has (band, object) density ``values[cell]`` on both groups."""
    out = {}
    for cell, (band, obj) in values.items():
        g = {"context_density": band, "object_density": obj, "ciou_at_0.5": 0.5, "auc": 0.5}
        semi = {"context_density": band - 0.5, "object_density": obj + 1.0, "ciou_at_0.5": 0.9, "auc": 0.7}
        sup = {"context_density": band - 0.4, "object_density": obj + 0.8, "ciou_at_0.5": 0.8, "auc": 0.65}
        base = {name: {"groups": {grp: {"ciou_at_0.5": c, "auc": a} for grp in ("context_bound", "free")}}
                for name, c, a in (("random", 0.0, 0.3), ("whole image", 0.0, 0.35), ("centre prior", 0.35, 0.45))}
        out[cell] = {"schemes": {"unsupervised": {"groups": {"context_bound": g, "free": g}},
                                 "semi_supervised": {"groups": {"context_bound": semi, "free": semi}},
                                 "supervised": {"groups": {"context_bound": sup, "free": sup}}},
                     "baselines": base}
    return out


def test_effects_by_hand() -> None:
    cells = _cells({"neutral_chance": (1.0, 1.5), "neutral_cooccur": (1.4, 1.2),
                    "biased_chance": (1.3, 1.4), "biased_cooccur": (2.0, 0.9)})
    e = effects(cells)
    assert e["cooccurrence"]["band_density"] == pytest.approx(0.4)       # 1.4 - 1.0
    assert e["cooccurrence"]["object_density"] == pytest.approx(-0.3)    # 1.2 - 1.5
    assert e["pretraining"]["band_density"] == pytest.approx(0.3)        # 1.3 - 1.0
    assert e["interaction"]["band_density"] == pytest.approx(0.3)        # (2.0 - 1.3) - (1.4 - 1.0)
    assert e["interaction"]["object_density"] == pytest.approx(-0.2)     # (0.9 - 1.4) - (1.2 - 1.5)
    fix = fix_contrasts(cells)["biased_cooccur"]
    assert fix["semi_minus_supervised"]["ciou_at_0.5"] == pytest.approx(0.1)
    assert fix["semi_minus_unsupervised"]["object_density"] == pytest.approx(1.0)
    assert fix["semi_minus_supervised"]["band_density"] == pytest.approx(-0.1)


def test_summary_states_the_primary_conclusion() -> None:
    def run(seed: int, co: float) -> dict:
        cells = _cells({"neutral_chance": (1.0, 1.5), "neutral_cooccur": (1.0 + co, 1.5),
                        "biased_chance": (1.0, 1.5), "biased_cooccur": (1.0 + co, 1.5)})
        return {"seed": seed, "cells": cells, "effects": effects(cells),
                "effects_by_group": {g: effects(cells, group=g) for g in ("context_bound", "free")},
                "fix": fix_contrasts(cells), "commit": "abc"}

    rising = [run(s, co) for s, co in enumerate([0.3, 0.5, 0.4, 0.6, 0.35, 0.45])]
    s = summarize_factorial(rising)
    assert s["conclusion"]["cooccurrence"] == "positive" and s["n_seeds"] == 6
    assert s["tests"]["context_bound"]["cooccurrence"]["band_density"]["sign_test"]["n_positive"] == 6
    flat = [run(s, co) for s, co in enumerate([0.01, -0.02, 0.015, -0.01, 0.0, 0.005, -0.005, 0.01])]
    assert summarize_factorial(flat)["conclusion"]["cooccurrence"] == "null"
    # no pretraining effect was built in: it is exactly zero on every seed
    assert summarize_factorial(flat)["tests"]["context_bound"]["pretraining"]["band_density"]["t_test"]["mean"] == 0.0
    # the unsupervised model's 0.5 cIoU@0.5 and AUC beat the best baseline (centre prior 0.35 / 0.45)
    # by 0.15 and 0.05: it localizes on every seed and on the mean
    loc = s["localization"]["neutral_chance"]["free"]
    assert loc["n_localizes"] == 6 and loc["localizes_on_the_mean"]
    assert loc["mean_margin"]["ciou_at_0.5"] == pytest.approx(0.15) and loc["mean_margin"]["auc"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="two seeds"):
        summarize_factorial(rising[:1])


def test_factorial_command_writes_every_cell(tmp_path) -> None:
    out = tmp_path / "f"
    cmd = [sys.executable, "-m", "soundloc", "pigeon", "--factorial", "--scale", "quick", "--seed", "100",
           "--out", str(out), "--quiet", "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((out / "results.json").read_text())
    assert set(r["cells"]) == set(CELLS) and r["commit"] and r["bound_classes"] == [0, 1]  # 100 mod 4 = 0
    for cell in CELLS:
        for scheme in ("unsupervised", "supervised", "semi_supervised", "random"):
            for group in ("context_bound", "free"):
                row = r["cells"][cell]["schemes"][scheme]["groups"][group]
                assert {"ciou_at_0.5", "auc", "object_density", "context_density"} <= set(row)
        for base in ("whole image", "centre prior", "random"):
            assert {"ciou_at_0.5", "auc"} <= set(r["cells"][cell]["baselines"][base]["groups"]["free"])
    band = {c: r["cells"][c]["schemes"]["unsupervised"]["groups"]["context_bound"]["context_density"] for c in CELLS}
    assert r["effects"]["cooccurrence"]["band_density"] == pytest.approx(band["neutral_cooccur"] - band["neutral_chance"])
    bad = subprocess.run(cmd[:-4] + ["--out", str(tmp_path / "g"), "--factorial", "--from-scratch"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--factorial" in bad.stderr and "Traceback" not in bad.stderr

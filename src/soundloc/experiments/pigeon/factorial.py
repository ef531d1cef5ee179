"""The superstition by its cause: a 2 × 2 factorial per seed.

What pulls the unsupervised model's attention onto the context (Senocak et al., CVPR 2018,
Sec. 4, the "pigeon superstition")? Two causes can put it there, and a single run cannot tell
them apart:

- **co-occurrence in training**: the sound's class and the band's texture go together in the
  training pairs (``context_p = p``), so L_U (Sec. 3.2) is met by attending to the band;
- **the visual pretraining**: the frozen stream was pretrained as an image classifier on
  images whose band already told the class (the ImageNet photos of trains on rails), so its
  features of the band carry the class before any sound is heard.

Per seed, :func:`run_factorial` crosses the two: the visual pretraining is *neutral* (the
pretraining images' band uninformative, ``1/K``) or *biased* (at ``p``), and the training world
is at *chance* (``1/K``) or *co-occurring* (``p``). The cells are named
``<pretraining>_<training>``: ``neutral_chance``, ``neutral_cooccur``, ``biased_chance``,
``biased_cooccur``; the three schemes train in each. The two training worlds show the same
scenes index by index (``WorldConfig.paired_band``): they differ only in which texture the band
shows. Which classes are bound rotates with the seed (``WorldConfig.bound_shift = seed mod K``),
so over a multiple of ``K`` seeds every class is bound equally often.

Per-seed effects (unsupervised scheme, attention density on the band and on the object of the
context-bound classes' test scenes; :func:`effects`):

- co-occurrence: ``neutral_cooccur - neutral_chance`` (the same classes, the same scenes, the
  same pretrained stream: only the training pairs' co-occurrence differs);
- pretraining: ``biased_chance - neutral_chance``;
- interaction: ``(biased_cooccur - biased_chance) - (neutral_cooccur - neutral_chance)``.

The free classes' effects are computed the same way: co-occurrence binds only the bound
classes, so there an effect is a check that should be absent. :func:`summarize_factorial` tests
the effects over seeds (:mod:`soundloc.stats`).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from soundloc.constants import SCHEMES
from soundloc.experiments.pigeon.config import PigeonConfig
from soundloc.experiments.pigeon.run import Streams, build_world, run_schemes, sound_stream, visual_stream
from soundloc.experiments.provenance import provenance
from soundloc.stats import conclude
from soundloc.utils.device import default_device
from soundloc.utils.files import atomic_path, json_safe, read_json, write_json
from soundloc.utils.summary import format_pair, mean_std

#: pretraining level -> training level, in the order the cells run
PRETRAININGS = ("neutral", "biased")
TRAININGS = ("chance", "cooccur")
CELLS = tuple(f"{pre}_{train}" for pre in PRETRAININGS for train in TRAININGS)
EFFECTS = ("cooccurrence", "pretraining", "interaction")
#: each cell in words
CELL_NAMES = {
    "neutral_chance": "neutral pretraining, training at chance",
    "neutral_cooccur": "neutral pretraining, co-occurring training",
    "biased_chance": "biased pretraining, training at chance",
    "biased_cooccur": "biased pretraining, co-occurring training",
}
#: the per-seed measures each effect is computed on (band = the context region, ``context_density``)
MEASURES = {"band_density": "context_density", "object_density": "object_density"}
RESULTS_FILE = "results.json"


def factorial_worlds(config: PigeonConfig, seed: int) -> dict[str, Any]:
    """The seed's training worlds (``"chance"``, ``"cooccur"``) and pretraining configs
    (``"neutral"``, ``"biased"``): ``config.world`` with ``bound_shift = seed mod K`` at
    ``context_p`` 1/K and ``config.world.context_p``; ``config.pretraining`` with its world's
    ``context_p`` at 1/K and at that ``p``."""
    if config.pretraining is None:
        raise ValueError("the factorial needs a pretrained visual stream (PigeonConfig.pretraining)")
    if not config.world.paired_band:
        raise ValueError("the factorial needs worlds that pair scene by scene (WorldConfig.paired_band=True)")
    k = config.world.num_classes
    p, chance = float(config.world.context_p), 1.0 / k
    base = dataclasses.replace(config.world, bound_shift=seed % k)
    worlds = {"chance": dataclasses.replace(base, context_p=chance), "cooccur": dataclasses.replace(base, context_p=p)}
    pre = {name: dataclasses.replace(config.pretraining, world={**config.pretraining.world, "context_p": q})
           for name, q in (("neutral", chance), ("biased", p))}
    return {"worlds": worlds, "pretrainings": pre, "p": p, "chance": chance}


def _cell_row(trained: Any) -> dict[str, Any]:
    """A cell's record: per scheme (and random) its overall scores, groups and classes, the
    baselines by group and class, and the training's final loss."""
    keep = ("ciou_at_0.5", "auc", "object_density", "context_density", "attention_on_object",
            "attention_on_context", "groups", "per_class", "final_loss", "train_seconds")
    schemes = {name: {k: v for k, v in row.items() if k in keep} for name, row in trained.schemes.items()}
    baselines = dict(trained.baselines)
    baselines["random"] = {**baselines["random"], "groups": schemes["random"]["groups"],
                           "per_class": schemes["random"]["per_class"]}
    return {"schemes": schemes, "baselines": baselines, "timings": trained.timings}


def effects(cells: dict[str, Any], scheme: str = "unsupervised", group: str = "context_bound") -> dict[str, Any]:
    """The per-seed effects (module docstring) of ``scheme`` on ``group``'s scenes:
    ``{effect: {"band_density": x, "object_density": y}}``."""
    def v(cell: str, measure: str) -> float:
        return float(cells[cell]["schemes"][scheme]["groups"][group][MEASURES[measure]])

    out: dict[str, Any] = {}
    for measure in MEASURES:
        nc, np_, bc, bp = (v(c, measure) for c in ("neutral_chance", "neutral_cooccur", "biased_chance", "biased_cooccur"))
        out.setdefault("cooccurrence", {})[measure] = np_ - nc
        out.setdefault("pretraining", {})[measure] = bc - nc
        out.setdefault("interaction", {})[measure] = (bp - bc) - (np_ - nc)
    return out


def fix_contrasts(cells: dict[str, Any], group: str = "context_bound") -> dict[str, Any]:
    """Per cell, the semi-supervised model against the supervised-only one trained on the same
    labels and against the unsupervised one, on ``group``'s scenes: differences of cIoU@0.5,
    AUC, object density and band density."""
    out: dict[str, Any] = {}
    for cell, row in cells.items():
        g = {s: row["schemes"][s]["groups"][group] for s in SCHEMES}
        out[cell] = {f"semi_minus_{other}": {
            "ciou_at_0.5": g["semi_supervised"]["ciou_at_0.5"] - g[other]["ciou_at_0.5"],
            "auc": g["semi_supervised"]["auc"] - g[other]["auc"],
            "object_density": g["semi_supervised"]["object_density"] - g[other]["object_density"],
            "band_density": g["semi_supervised"]["context_density"] - g[other]["context_density"],
        } for other in ("supervised", "unsupervised")}
    return out


def run_factorial(config: PigeonConfig, out_dir: str | os.PathLike[str], seed: int, command: str | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """The four cells of ``seed`` (module docstring), written to ``out_dir/results.json``
    (atomically) with ``cells.<cell>.schemes.<scheme>.groups.<group>`` (densities,
    ``ciou_at_0.5``, ``auc``) and ``per_class``, ``cells.<cell>.baselines.<baseline>.groups``,
    ``effects`` (context-bound classes), ``effects_by_group``, ``fix`` and the provenance (git
    commit included). Pretrained streams are cached in ``config.pretrain_cache`` when set."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads is not None:
        import torch
        torch.set_num_threads(config.threads)
    device = config.device or default_device()
    log = (lambda msg: print(f"[factorial seed {seed}] {msg}", file=sys.stderr)) if progress else (lambda msg: None)
    t_start = time.perf_counter()
    plan = factorial_worlds(config, seed)
    configs = {f"{pre}_{train}": dataclasses.replace(config, world=plan["worlds"][train], pretraining=plan["pretrainings"][pre])
               for pre in PRETRAININGS for train in TRAININGS}
    data = {train: build_world(configs[f"neutral_{train}"], seed, progress) for train in TRAININGS}
    sound, sound_record = sound_stream(config, seed, device, progress)  # one for every cell: sounds ignore the band
    states: dict[str, Streams] = {}
    records: dict[str, Any] = {}
    for pre in PRETRAININGS:
        state, record = visual_stream(configs[f"{pre}_cooccur"], seed, device, progress)
        states[pre] = Streams(state, sound, {"visual": record, "sound": sound_record})
        records[pre] = {k: record.get(k) for k in ("test_accuracy", "key", "world_config", "reused_from", "train_seconds")}
        log(f"{pre} pretraining: held-out accuracy {record['test_accuracy']:.3f}")
    cells: dict[str, Any] = {}
    for pre in PRETRAININGS:
        for train in TRAININGS:
            cell = f"{pre}_{train}"
            trained = run_schemes(configs[cell], data[train], states[pre], seed, device, None, progress)
            cells[cell] = {"pretraining_context_p": plan["chance"] if pre == "neutral" else plan["p"],
                           "training_context_p": plan["chance"] if train == "chance" else plan["p"],
                           **_cell_row(trained)}
            log(f"{cell}: " + ", ".join(
                f"{s} band {cells[cell]['schemes'][s]['groups']['context_bound']['context_density']:.2f}" for s in SCHEMES))
    results: dict[str, Any] = {
        "experiment": "pigeon superstition by cause: visual pretraining x training co-occurrence (2 x 2)",
        "seed": seed, "scale": config.scale, "p": plan["p"], "chance": plan["chance"],
        "bound_classes": list(plan["worlds"]["cooccur"].context_bound_classes),
        "cells": cells,
        "effects": effects(cells),
        "effects_by_group": {g: effects(cells, group=g) for g in ("context_bound", "free")},
        "fix": fix_contrasts(cells),
        "visual_pretraining": records,
        "sound_pretraining": None if sound_record is None else {
            k: sound_record.get(k) for k in ("test_accuracy", "key", "world_config", "reused_from", "train_seconds")},
        "config": config.to_dict(),
        "seconds": time.perf_counter() - t_start,
        **provenance(device, command or f"soundloc.experiments.pigeon.run_factorial(<{config.scale} config>, seed={seed})"),
    }
    write_json(out / RESULTS_FILE, json_safe(results))
    return results


def load_factorial(folder: str | os.PathLike[str], seeds: list[int] | None = None) -> list[dict[str, Any]]:
    """The results of ``folder/seed<N>`` for ``seeds`` (default: every seed folder), in seed
    order; errors name the file."""
    root = Path(folder)
    if seeds is None:
        seeds = sorted(int(p.parent.name[4:]) for p in root.glob(f"seed*/{RESULTS_FILE}") if p.parent.name[4:].isdigit())
    runs = []
    for s in seeds:
        path = root / f"seed{s}" / RESULTS_FILE
        data = read_json(path, f"factorial results file (run `soundloc pigeon --factorial --seed {s} --out {path.parent}`)")
        if not isinstance(data, dict) or "cells" not in data or "effects" not in data:
            raise ValueError(f"{path}: not a factorial results file (no 'cells' or 'effects')")
        runs.append(data)
    return runs


def summarize_factorial(runs: list[dict[str, Any]], delta: float = 0.2, alpha: float = 0.05) -> dict[str, Any]:
    """Tests over seeds (:func:`soundloc.stats.conclude`) of every effect on every measure and
    group, and of the fix contrasts; ``conclusion.cooccurrence`` is the primary question's word
    (co-occurrence effect on the context-bound classes' band density)."""
    if len(runs) < 2:
        raise ValueError(f"a summary over seeds needs at least two seeds, got {len(runs)}")
    seeds = [r["seed"] for r in runs]
    tests: dict[str, Any] = {}
    for group in ("context_bound", "free"):
        for effect in EFFECTS:
            for measure in MEASURES:
                diffs = [r["effects_by_group"][group][effect][measure] for r in runs]
                tests.setdefault(group, {}).setdefault(effect, {})[measure] = conclude(diffs, delta, alpha)
    fix: dict[str, Any] = {}
    for cell in CELLS:
        for contrast in ("semi_minus_supervised", "semi_minus_unsupervised"):
            for measure in ("ciou_at_0.5", "object_density", "band_density"):
                diffs = [r["fix"][cell][contrast][measure] for r in runs]
                fix.setdefault(cell, {}).setdefault(contrast, {})[measure] = conclude(
                    diffs, delta if measure != "ciou_at_0.5" else 0.05, alpha)
    return {
        "seeds": seeds, "n_seeds": len(seeds), "delta": delta, "alpha": alpha,
        "localization": {cell: {g: localization_check(runs, cell, g) for g in ("free", "context_bound")} for cell in CELLS},
        "conclusion": {"cooccurrence": tests["context_bound"]["cooccurrence"]["band_density"]["conclusion"],
                       "pretraining": tests["context_bound"]["pretraining"]["band_density"]["conclusion"],
                       "interaction": tests["context_bound"]["interaction"]["band_density"]["conclusion"]},
        "tests": tests, "fix": fix,
        "commits": sorted({str(r.get("commit")) for r in runs}),
    }


def effect_table(summary: dict[str, Any], group: str = "context_bound") -> str:
    """A Markdown table of the effects on ``group``: mean ± sd over seeds, seeds positive, the
    paired t test, the sign test, TOST and the conclusion."""
    lines = ["| effect | measure | mean ± sd | seeds > 0 | t (df) | p (t) | p (sign) | p (TOST, ±{:g}) | conclusion |".format(summary["delta"]),
             "|---|---|---|---|---|---|---|---|---|"]
    for effect in EFFECTS:
        for measure in MEASURES:
            c = summary["tests"][group][effect][measure]
            t, s, e = c["t_test"], c["sign_test"], c["tost"]
            lines.append(f"| {effect} | {measure.replace('_', ' ')} | {format_pair(t['mean'], t['sd'], 2, signed=True)} | "
                         f"{s['n_positive']} of {len(c['diffs'])} | {t['t']:.2f} ({t['df']}) | {t['p']:.3f} | "
                         f"{s['p']:.3f} | {e['p']:.3f} | {c['conclusion']} |")
    return "\n".join(lines)


def cell_table(runs: list[dict[str, Any]], group: str = "context_bound", scheme: str = "unsupervised") -> str:
    """A Markdown table of ``scheme`` on ``group``'s scenes per cell: band and object density,
    cIoU@0.5 and AUC, mean ± sd over seeds."""
    lines = ["| cell | pretraining p | training p | band density | object density | cIoU@0.5 | AUC |",
             "|---|---|---|---|---|---|---|"]
    for cell in CELLS:
        rows = [r["cells"][cell]["schemes"][scheme]["groups"][group] for r in runs]
        c = runs[0]["cells"][cell]
        vals = [format_pair(*mean_std([x[k] for x in rows]), 2) for k in ("context_density", "object_density", "ciou_at_0.5", "auc")]
        lines.append(f"| {cell} | {c['pretraining_context_p']:g} | {c['training_context_p']:g} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


#: the pre-registered margins by which the unsupervised model must beat every baseline to
#: "localize" (cIoU@0.5, AUC)
LOCALIZES = {"ciou_at_0.5": 0.10, "auc": 0.02}
BASELINES = ("random", "whole image", "centre prior")


def localization_check(runs: list[dict[str, Any]], cell: str = "neutral_chance", group: str = "free",
                       scheme: str = "unsupervised") -> dict[str, Any]:
    """Does ``scheme`` localize ``group``'s scenes in ``cell``? Per seed, its margin over the
    best of the three baselines on cIoU@0.5 and AUC, whether both margins reach
    :data:`LOCALIZES`, the count of such seeds, and the same on the means over seeds."""
    per_seed, margins = [], {k: [] for k in LOCALIZES}
    for r in runs:
        c = r["cells"][cell]
        row = c["schemes"][scheme]["groups"][group]
        m = {k: row[k] - max(c["baselines"][b]["groups"][group][k] for b in BASELINES) for k in LOCALIZES}
        for k in LOCALIZES:
            margins[k].append(m[k])
        per_seed.append({"seed": r["seed"], **m, "localizes": all(m[k] >= LOCALIZES[k] for k in LOCALIZES)})
    mean = {k: mean_std(v)[0] for k, v in margins.items()}
    return {"cell": cell, "group": group, "scheme": scheme, "margins_required": dict(LOCALIZES), "per_seed": per_seed,
            "n_localizes": sum(p["localizes"] for p in per_seed), "n_seeds": len(runs),
            "mean_margin": mean, "localizes_on_the_mean": all(mean[k] >= LOCALIZES[k] for k in LOCALIZES)}


def localization_table(runs: list[dict[str, Any]], cell: str = "neutral_chance", group: str = "free") -> str:
    """A Markdown table of every scheme and baseline on ``group``'s scenes in ``cell``:
    cIoU@0.5 and AUC, mean ± sd over seeds."""
    lines = ["| model | cIoU@0.5 | AUC |", "|---|---|---|"]
    for scheme in SCHEMES:
        rows = [r["cells"][cell]["schemes"][scheme]["groups"][group] for r in runs]
        lines.append(f"| {scheme.replace('_', '-')} | " + " | ".join(
            format_pair(*mean_std([x[k] for x in rows]), 2) for k in ("ciou_at_0.5", "auc")) + " |")
    for b in BASELINES:
        rows = [r["cells"][cell]["baselines"][b]["groups"][group] for r in runs]
        lines.append(f"| {b} (baseline) | " + " | ".join(
            format_pair(*mean_std([x[k] for x in rows]), 2) for k in ("ciou_at_0.5", "auc")) + " |")
    return "\n".join(lines)


def write_summary(folder: str | os.PathLike[str], runs: list[dict[str, Any]], command: str | None = None,
                  delta: float = 0.2) -> dict[str, Any]:
    """``folder/summary.json`` and ``folder/summary.md`` of ``runs`` (:func:`summarize_factorial`)."""
    summary = summarize_factorial(runs, delta=delta)
    summary.update(command=command, date=provenance("cpu", "")["date"],
                   folders={str(r["seed"]): str(Path(folder) / f"seed{r['seed']}") for r in runs})
    write_json(Path(folder) / "summary.json", json_safe(summary))
    text = [f"# The superstition by cause: {summary['n_seeds']} seeds", "",
            f"- command: `{command}`" if command else "- command: (Python API)",
            f"- seeds: {', '.join(map(str, summary['seeds']))}; code: {', '.join(summary['commits'])}",
            f"- primary conclusion (co-occurrence effect on the bound classes' band density): "
            f"**{summary['conclusion']['cooccurrence']}**", "",
            "## Effects on the context-bound classes (unsupervised)", "", effect_table(summary, "context_bound"), "",
            "## The same on the free classes (co-occurrence binds none of them)", "", effect_table(summary, "free"), "",
            "## Cells (unsupervised, context-bound classes)", "", cell_table(runs), "",
            "## Does the unsupervised model localize the free classes? (neutral pretraining, chance co-occurrence)", "",
            localization_table(runs), "",
            f"Seeds where it beats all three baselines by {LOCALIZES['ciou_at_0.5']:g} cIoU@0.5 and "
            f"{LOCALIZES['auc']:g} AUC: {summary['localization']['neutral_chance']['free']['n_localizes']} of "
            f"{summary['n_seeds']}; on the mean: {summary['localization']['neutral_chance']['free']['localizes_on_the_mean']}.", ""]
    with atomic_path(Path(folder) / "summary.md") as tmp:
        tmp.write_text("\n".join(text), encoding="utf-8")
    return summary


def effect_sentence(test: dict[str, Any], what: str) -> str:
    """One effect's result in words: mean ± sd over seeds, the paired t test, the sign test,
    TOST and the conclusion (:func:`soundloc.stats.conclude`'s record)."""
    t, sign, e = test["t_test"], test["sign_test"], test["tost"]
    return (f"{what}: {format_pair(t['mean'], t['sd'], 2, signed=True)} over {t['n']} seeds "
            f"(paired t({t['df']}) = {t['t']:.2f}, p = {t['p']:.3f}; {sign['n_positive']} of {sign['n']} seeds "
            f"positive, sign test p = {sign['p']:.3f}; TOST within ±{e['delta']:g}: p = {e['p']:.3f}): "
            f"**{test['conclusion']}**")


def verdict_markdown(summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """What the factorial shows, as Markdown bullets computed from ``summary``
    (:func:`summarize_factorial`) and ``runs``: whether the unsupervised model localizes the
    free classes in each cell, the primary and secondary effects, and the fix."""
    lines = []
    for cell in CELLS:
        loc = summary["localization"][cell]["free"]
        m = loc["mean_margin"]
        lines.append(f"- **{CELL_NAMES[cell]}**: the unsupervised model beats every baseline on the free "
                     f"classes by the pre-registered margins on {loc['n_localizes']} of {loc['n_seeds']} seeds; "
                     f"mean margin over the best baseline {m['ciou_at_0.5']:+.2f} cIoU@0.5 and {m['auc']:+.2f} AUC "
                     f"({'it localizes' if loc['localizes_on_the_mean'] else 'short of localizing'} on the mean).")
    b = summary["tests"]["context_bound"]
    f = summary["tests"]["free"]
    lines += ["", "- " + effect_sentence(b["cooccurrence"]["band_density"], "Co-occurrence effect on the bound "
                                         "classes' band density (the primary question)"),
              "- " + effect_sentence(b["pretraining"]["band_density"], "Pretraining effect on the same"),
              "- " + effect_sentence(b["interaction"]["band_density"], "Their interaction"),
              "- " + effect_sentence(b["cooccurrence"]["object_density"], "Co-occurrence effect on the bound "
                                     "classes' object density"),
              "- " + effect_sentence(f["cooccurrence"]["band_density"], "Co-occurrence effect on the *free* classes' "
                                     "band density (a check: nothing binds them)"), ""]
    for cell in ("biased_cooccur", "neutral_chance"):
        fix = summary["fix"][cell]
        lines.append("- " + effect_sentence(fix["semi_minus_supervised"]["ciou_at_0.5"],
                                            f"Semi-supervised minus supervised-only, bound classes' cIoU@0.5 ({CELL_NAMES[cell]})"))
        lines.append("- " + effect_sentence(fix["semi_minus_unsupervised"]["ciou_at_0.5"],
                                            f"Semi-supervised minus unsupervised, the same ({CELL_NAMES[cell]})"))
    return "\n".join(lines)


__all__ = ["BASELINES", "CELL_NAMES", "CELLS", "EFFECTS", "LOCALIZES", "MEASURES", "localization_check", "localization_table", "PRETRAININGS", "TRAININGS", "cell_table", "effect_sentence", "effect_table", "effects", "verdict_markdown",
           "factorial_worlds", "fix_contrasts", "load_factorial", "run_factorial", "summarize_factorial",
           "write_summary"]

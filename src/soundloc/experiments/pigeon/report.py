"""Reading and reporting pigeon runs: one run's table, a summary over seeds, a comparison of setups.

Every table that shows a model also shows the random baseline and the kept-pixel baselines
(whole image, centre prior): a model localizes only where it beats all three.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from soundloc.constants import SCHEMES
from soundloc.experiments.pigeon.targets import TARGETS, pigeon_targets
from soundloc.utils.files import read_json
from soundloc.utils.summary import format_mean_std, format_pair, mean_std

RESULTS_FILE = "results.json"
#: Baselines printed beside the schemes (besides random maps, which has its own row).
PRINTED_BASELINES = ("whole image", "centre prior")


def load_results(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``out_dir/results.json`` written by :func:`run_pigeon`.

    Raises:
        FileNotFoundError: no results file; ValueError: not valid JSON or missing ``schemes``.
    """
    path = Path(out_dir) / RESULTS_FILE if Path(out_dir).is_dir() or not str(out_dir).endswith(".json") else Path(out_dir)
    data = read_json(path, f"pigeon results file (run `soundloc pigeon --out {out_dir}`)")
    if not isinstance(data, dict) or "schemes" not in data:
        raise ValueError(f"{path}: not a pigeon results file (no 'schemes')")
    return data


def load_runs(folder: str | os.PathLike[str], pattern: str = "seed*") -> list[dict[str, Any]]:
    """:func:`load_results` of every run folder in ``folder`` whose name matches ``pattern``
    (sorted by name, numbers by value); an empty list when there is none."""
    def natural(p: Path) -> list[Any]:  # seed2 before seed10
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.parent.name)]

    return [load_results(p.parent) for p in sorted(Path(folder).glob(f"{pattern}/{RESULTS_FILE}"), key=natural)]


GROUP_NAMES = ("context_bound", "free")


def format_results(results: dict[str, Any]) -> str:
    """A plain-text table of one run: per scheme cIoU@0.5, AUC, masses and densities, then the
    same by group (context-bound and free classes) with the baselines beside, then the targets."""
    lines = [
        f"pigeon superstition, seed {results.get('seed')}, scale {results.get('scale')}, "
        f"temperature {results.get('temperature')}",
        f"{'scheme':<16}{'cIoU@0.5':>9}{'AUC':>7}{'mass obj':>10}{'mass ctx':>10}{'dens obj':>10}{'dens ctx':>10}{'train s':>9}",
    ]
    for name in (*SCHEMES, "random"):
        r = results["schemes"].get(name)
        if r is None:
            continue
        secs = r.get("train_seconds")
        lines.append(
            f"{name:<16}{r['ciou_at_0.5']:>9.3f}{r['auc']:>7.3f}{r['attention_on_object']:>10.3f}"
            f"{r['attention_on_context']:>10.3f}{r['object_density']:>10.2f}{r['context_density']:>10.2f}"
            f"{(f'{secs:.0f}' if secs is not None else '-'):>9}"
        )
    for name in PRINTED_BASELINES:
        b = results.get("baselines", {}).get(name)
        if b is not None:
            lines.append(f"{name:<16}{b['success']:>9.3f}{b['auc']:>7.3f}{'(no attention map: a kept-pixel baseline)':>50}")
    for group in GROUP_NAMES:
        if group not in results["schemes"].get("unsupervised", {}).get("groups", {}):
            continue
        lines.append(f"-- {group.replace('_', '-')} classes")
        for name in (*SCHEMES, "random"):
            g = results["schemes"].get(name, {}).get("groups", {}).get(group)
            if g is not None:
                lines.append(f"{name:<16}{g['ciou_at_0.5']:>9.3f}{g['auc']:>7.3f}{'':>20}"
                             f"{_num(g['object_density']):>10}{_num(g['context_density']):>10}   n={g['n_scenes']}")
        for name in PRINTED_BASELINES:
            b = results.get("baselines", {}).get(name, {}).get("groups", {}).get(group)
            if b is not None:
                lines.append(f"{name:<16}{b['ciou_at_0.5']:>9.3f}{b['auc']:>7.3f}")
    definitions = results.get("target_definitions", {})
    for k, v in results.get("targets", {}).items():
        what = f" ({definitions[k]})" if k in definitions else ""
        lines.append(f"  target {k}{what}: {'met' if v else 'NOT met'}")
    return "\n".join(lines)


def _num(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def mean_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over ``runs`` of every number of their ``schemes`` and ``baselines`` tables
    (NaN and missing values left out), in the same nested form: a run to judge targets on."""
    def merge(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, dict) for v in present):
            keys = dict.fromkeys(k for v in present for k in v)
            return {k: merge([v.get(k) for v in present]) for k in keys}
        nums = [float(v) for v in present if isinstance(v, (int, float)) and not isinstance(v, bool)]
        nums = [v for v in nums if np.isfinite(v)]
        return float(np.mean(nums)) if nums else (present[0] if present else None)

    return {"schemes": merge([r["schemes"] for r in runs]), "baselines": merge([r.get("baselines", {}) for r in runs])}


def target_summary(runs: list[dict[str, Any]], min_fraction: float = 0.8) -> dict[str, Any]:
    """Which targets each run meets, on how many runs, whether on the mean run
    (:func:`mean_run`), and whether each *holds*: met on at least ``ceil(min_fraction * n)``
    runs and on the mean (4 of 5 seeds and the 5-seed mean, as pre-registered)."""
    if not runs:
        raise ValueError("target_summary needs at least one run")
    per_seed = {str(r.get("seed")): pigeon_targets(r["schemes"]) for r in runs}
    on_mean = pigeon_targets(mean_run(runs)["schemes"])
    need = int(np.ceil(min_fraction * len(runs) - 1e-9))
    counts = {k: sum(t[k] for t in per_seed.values()) for k in TARGETS}
    return {
        "definitions": TARGETS, "runs": len(runs), "seeds": [r.get("seed") for r in runs], "per_seed": per_seed,
        "counts": counts, "on_mean": on_mean, "needed": need,
        "holds": {k: bool(counts[k] >= need and on_mean[k]) for k in TARGETS},
    }


#: The quantities the summary tables show: (scheme, group or None, key).
SUMMARY_ROWS = [
    (s, g, k) for s in (*SCHEMES, "random") for g in (None, *GROUP_NAMES)
    for k in ("ciou_at_0.5", "auc", "object_density", "context_density")
]


def _value(run: dict[str, Any], scheme: str, group: str | None, key: str) -> float | None:
    row = run["schemes"].get(scheme, {})
    row = row if group is None else row.get("groups", {}).get(group, {})
    v = row.get(key)
    return None if v is None or not np.isfinite(v) else float(v)


def summary_table(runs: list[dict[str, Any]]) -> str:
    """A Markdown report over seeds: targets per seed with counts and the mean run's verdict,
    then every scheme's scores overall and by group (mean ± std and each seed), with the
    kept-pixel baselines beside them."""
    t = target_summary(runs)
    seeds = [str(s) for s in t["seeds"]]
    out = ["| target | " + " | ".join(f"seed {s}" for s in seeds) + " | seeds met | on the mean | holds |",
           "|---|" + "---|" * (len(seeds) + 3)]
    for k, what in t["definitions"].items():
        cells = " | ".join("met" if t["per_seed"][s][k] else "**missed**" for s in seeds)
        out.append(f"| {k}: {what} | {cells} | {t['counts'][k]}/{t['runs']} | "
                   f"{'met' if t['on_mean'][k] else '**missed**'} | {'yes' if t['holds'][k] else '**no**'} |")
    out += ["", f"A target holds when met on at least {t['needed']} of {t['runs']} seeds and on the mean.", "",
            "| scheme | scenes | measure | mean ± std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|---|---|---|" + "---|" * len(seeds)]
    for scheme, group, key in SUMMARY_ROWS:
        vals = [_value(r, scheme, group, key) for r in runs]
        have = [v for v in vals if v is not None]
        if not have:
            continue
        out.append(f"| {scheme} | {group or 'all'} | {key} | {format_mean_std(have, 3)} | "
                   + " | ".join(_num(v, 3) for v in vals) + " |")
    for name in PRINTED_BASELINES:
        for group in (None, *GROUP_NAMES):
            for key, src in (("ciou_at_0.5", "success"), ("auc", "auc")):
                vals = []
                for r in runs:
                    b = r.get("baselines", {}).get(name, {})
                    b = b if group is None else b.get("groups", {}).get(group, {})
                    vals.append(b.get(src if group is None else key))
                have = [v for v in vals if v is not None]
                if have:
                    out.append(f"| {name} | {group or 'all'} | {key} | {format_mean_std(have, 3)} | "
                               + " | ".join(_num(v, 3) for v in vals) + " |")
    return "\n".join(out)


def summarize(runs: list[dict[str, Any]]) -> str:
    """A plain-text table over several runs (e.g. seeds): one row per seed and scheme, then
    the mean ± standard deviation over the runs, then which targets each run meets.

    ``runs`` are :func:`load_results` / :func:`run_pigeon` dictionaries.
    """
    if not runs:
        raise ValueError("summarize needs at least one run")
    keys = ("ciou_at_0.5", "auc", "object_density", "context_density")
    head = f"{'seed':>4}  {'scheme':<16}{'cIoU@0.5':>9}{'AUC':>7}{'dens obj':>10}{'dens ctx':>10}"
    lines = [f"pigeon superstition, scale {runs[0].get('scale')}, {len(runs)} run(s)", head]
    for r in runs:
        for name in (*SCHEMES, "random"):
            row = r["schemes"].get(name)
            if row is not None:
                lines.append(f"{r.get('seed')!s:>4}  {name:<16}" + "".join(
                    f"{row[k]:>{w}.{d}f}" for k, w, d in zip(keys, (9, 7, 10, 10), (3, 3, 2, 2))))
    for r in runs:
        for name in PRINTED_BASELINES:
            b = r.get("baselines", {}).get(name)
            if b is not None:
                lines.append(f"{r.get('seed')!s:>4}  {name:<16}{b['success']:>9.3f}{b['auc']:>7.3f}")
    lines.append("mean ± std over runs")
    for name in (*SCHEMES, "random"):
        vals = [[r["schemes"][name][k] for r in runs if name in r["schemes"]] for k in keys]
        if not vals[0]:
            continue
        cells = "".join(f"  {format_mean_std(v, 3)}" for v in vals)
        lines.append(f"      {name:<16}{cells}")
    for r in runs:
        met = [k for k, v in r.get("targets", {}).items() if v]
        missed = [k for k, v in r.get("targets", {}).items() if not v]
        lines.append(f"seed {r.get('seed')}: targets met {len(met)}/{len(met) + len(missed)}"
                     + (f"; not met: {', '.join(missed)}" if missed else ""))
    return "\n".join(lines)


def compare(groups: dict[str, list[dict[str, Any]]]) -> str:
    """A plain-text table comparing setups (e.g. visual streams), each over several seeds.

    For every group: the unsupervised model's mean object and context densities and AUC, the
    random baseline's mean AUC, the semi-supervised cIoU@0.5 gain over the unsupervised model,
    and, per target, on how many of the group's runs it holds.
    """
    if not groups or any(not runs for runs in groups.values()):
        raise ValueError("compare needs at least one group, each with at least one run")
    names = list(next(iter(groups.values()))[0].get("targets", {}))
    head = (f"{'setup':<34}{'runs':>5}{'unsup dens obj':>16}{'unsup dens ctx':>16}{'unsup AUC':>11}"
            f"{'random AUC':>12}{'semi gain':>11}")
    lines = [head]
    for label, runs in groups.items():
        u = [r["schemes"]["unsupervised"] for r in runs]
        s_ = [r["schemes"]["semi_supervised"] for r in runs]
        rnd = [r["schemes"]["random"]["auc"] for r in runs]
        gain = [b["ciou_at_0.5"] - a["ciou_at_0.5"] for a, b in zip(u, s_)]
        lines.append(
            f"{label:<34}{len(runs):>5}{np.mean([x['object_density'] for x in u]):>16.2f}"
            f"{np.mean([x['context_density'] for x in u]):>16.2f}{np.mean([x['auc'] for x in u]):>11.3f}"
            f"{np.mean(rnd):>12.3f}{np.mean(gain):>+11.2f}"
        )
    lines.append("targets held (runs of each setup)")
    for label, runs in groups.items():
        held = [f"{k}: {sum(bool(r.get('targets', {}).get(k)) for r in runs)}/{len(runs)}" for k in names]
        lines.append(f"  {label}: " + "; ".join(held))
    return "\n".join(lines)


#: The pre-registered co-occurrence sweep: probability -> its runs' folder under
#: ``benchmarks/pigeon/`` (0.9 is the pre-registered setup's own runs) and the seeds it uses.
SWEEP_FOLDERS: dict[float, str] = {0.25: "sweep/p0.25", 0.5: "sweep/p0.5", 0.75: "sweep/p0.75", 0.9: "smoke",
                                   1.0: "sweep/p1.0"}
SWEEP_SEEDS: tuple[int, ...] = (0, 1, 2)


def sweep_points(folders: dict[float, str | os.PathLike[str]]) -> dict[float, list[dict[str, Any]]]:
    """The runs (seeds) of each co-occurrence probability of a sweep: probability -> folder of
    ``seed<N>`` runs (:func:`load_runs`); probabilities without runs are left out."""
    out = {float(p): load_runs(folder) for p, folder in folders.items()}
    return {p: runs for p, runs in sorted(out.items()) if runs}


def paired_difference(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]], scheme: str = "unsupervised",
                      group: str = "context_bound", key: str = "context_density") -> dict[str, Any]:
    """Seed by seed, ``key`` of ``scheme`` on ``group``'s scenes in ``runs_b`` minus the same in
    ``runs_a`` (the seeds both have), e.g. a control against the pre-registered setup: a paired
    comparison removes the seed-to-seed spread the two setups share (same world, same split).

    Returns ``seeds``, ``a``, ``b`` and ``diff`` (lists in seed order), ``mean``/``std`` of the
    differences (:func:`~soundloc.utils.summary.mean_std`; ``std`` ``None`` for one seed) and
    ``n_lower`` (seeds where ``b`` is below ``a``)."""
    a = {r["seed"]: r["schemes"][scheme]["groups"][group][key] for r in runs_a}
    b = {r["seed"]: r["schemes"][scheme]["groups"][group][key] for r in runs_b}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("paired_difference: the two series share no seed")
    diff = [b[s] - a[s] for s in seeds]
    mean, std = mean_std(diff)
    return {"seeds": seeds, "a": [a[s] for s in seeds], "b": [b[s] for s in seeds], "diff": diff,
            "mean": mean, "std": std, "n_lower": sum(d < 0 for d in diff)}


def sweep_table(points: dict[float, list[dict[str, Any]]], group: str = "context_bound") -> str:
    """A Markdown table of a sweep: for each probability and scheme, the attention density on
    the context and on the object of ``group``'s scenes, mean ± std over the seeds, and the
    seeds' values."""
    out = ["| probability | scheme | seeds | context density | object density | cIoU@0.5 | per seed (context / object) |",
           "|---|---|---|---|---|---|---|"]
    for p, runs in sorted(points.items()):
        for scheme in ("unsupervised", "semi_supervised", "random"):
            rows = [r["schemes"].get(scheme, {}).get("groups", {}).get(group) for r in runs]
            rows = [x for x in rows if x]
            if not rows:
                continue
            cells = []
            for key in ("context_density", "object_density", "ciou_at_0.5"):
                v = [x[key] for x in rows]
                cells.append(format_mean_std(v, 2))
            each = ", ".join(f"{r.get('seed')}: {x['context_density']:.2f} / {x['object_density']:.2f}" for r, x in zip(runs, rows))
            out.append(f"| {p:g} | {scheme} | {len(rows)} | " + " | ".join(cells) + f" | {each} |")
    return "\n".join(out)


def uninformative_p(points: dict[float, list[dict[str, Any]]]) -> float | None:
    """1/K, the probability at which a context-bound class's band says nothing (as a free
    class's), from the sweep runs' own world (``None`` without runs): the reference of
    :func:`sweep_contrasts`."""
    for runs in points.values():
        if runs:
            return 1.0 / runs[0]["config"]["world"]["num_classes"]
    return None


def sweep_contrasts(points: dict[float, list[dict[str, Any]]], reference: float) -> dict[float, dict[str, Any]]:
    """What the co-occurrence sweep says about the unsupervised pull to the band, per probability.

    At the ``reference`` probability (1/K: a context-bound class's band shows its own texture no
    more often than a free class's) the two groups of classes differ only in *which* classes they
    hold, so whatever separates them there is the classes themselves, not the co-occurrence. For
    each probability ``p`` the result gives:

    - ``t1``, ``t3``: seeds meeting T1 (band above object, context-bound scenes) and T3 (bound
      band density ≥ free band density + 0.3), as ``(met, seeds)``, from each run's ``targets``;
    - ``u_band``: the unsupervised band density on context-bound scenes, ``(mean, std)``
      (:func:`~soundloc.utils.summary.mean_std`);
    - ``u_gap``: the same minus the free classes' band density, ``(mean, std)``;
    - ``vs_reference``: :func:`paired_difference` of ``u_band`` against the reference's runs
      (the same seeds; ``None`` at the reference itself);
    - ``s_band``: the semi-supervised band density on context-bound scenes, ``(mean, std)``, and
      ``s_below_u``: seeds where it is below the unsupervised one, ``(count, seeds)``.
    """
    if reference not in points:
        raise ValueError(f"sweep_contrasts: no runs at the reference probability {reference:g}")

    def band(r: dict[str, Any], scheme: str, group: str) -> float:
        return r["schemes"][scheme]["groups"][group]["context_density"]

    out: dict[float, dict[str, Any]] = {}
    for p, runs in sorted(points.items()):
        n = len(runs)
        out[p] = {
            "t1": (sum(bool(r["targets"]["T1"]) for r in runs), n),
            "t3": (sum(bool(r["targets"]["T3"]) for r in runs), n),
            "u_band": mean_std([band(r, "unsupervised", "context_bound") for r in runs]),
            "u_gap": mean_std([band(r, "unsupervised", "context_bound") - band(r, "unsupervised", "free")
                               for r in runs]),
            "vs_reference": None if p == reference else paired_difference(points[reference], runs),
            "s_band": mean_std([band(r, "semi_supervised", "context_bound") for r in runs]),
            "s_below_u": (sum(band(r, "semi_supervised", "context_bound") < band(r, "unsupervised", "context_bound")
                              for r in runs), n),
        }
    return out


def sweep_contrast_table(contrasts: dict[float, dict[str, Any]]) -> str:
    """:func:`sweep_contrasts` as a Markdown table (mean ± std over the seeds)."""
    def ms(pair: tuple[float, float | None]) -> str:
        return format_pair(*pair, digits=2, single=" (one run)")

    out = ["| probability | T1 met | T3 met | U band density (bound) | U band, bound − free | "
           "U band, paired change from 1/K | S band density (bound) | S band below U |",
           "|---|---|---|---|---|---|---|---|"]
    for p, c in sorted(contrasts.items()):
        ref = c["vs_reference"]
        change = "reference" if ref is None else (
            format_pair(ref["mean"], ref["std"], digits=2, signed=True)
            + f" ({len(ref['seeds']) - ref['n_lower']} of {len(ref['seeds'])} higher)")
        out.append(f"| {p:g} | {c['t1'][0]} of {c['t1'][1]} | {c['t3'][0]} of {c['t3'][1]} | {ms(c['u_band'])} | "
                   f"{ms(c['u_gap'])} | {change} | {ms(c['s_band'])} | {c['s_below_u'][0]} of {c['s_below_u'][1]} |")
    return "\n".join(out)


__all__ = [
    "SWEEP_FOLDERS",
    "SWEEP_SEEDS",
    "GROUP_NAMES",
    "PRINTED_BASELINES",
    "RESULTS_FILE",
    "compare",
    "format_results",
    "load_results",
    "load_runs",
    "mean_run",
    "paired_difference",
    "summarize",
    "summary_table",
    "sweep_contrast_table",
    "sweep_contrasts",
    "sweep_points",
    "sweep_table",
    "target_summary",
    "uninformative_p",
]

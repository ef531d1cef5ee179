"""What chapter 7 reads off the co-occurrence sweep: the numbers its prose quotes.

:func:`~soundloc.experiments.pigeon.report.sweep_contrasts` compares every probability of the
sweep with 1/K, where a context-bound class's band says nothing. :func:`sweep_readings` names
the few numbers the chapter's text states (glued into it), and :func:`per_class_lines` shows,
at 1/K, the unsupervised densities class by class: there the groups differ only in their
classes, so a gap between them comes from the classes, not from the co-occurrence.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from soundloc.experiments.pigeon.config import PigeonConfig
from soundloc.experiments.pigeon.report import sweep_contrasts, uninformative_p
from soundloc.utils.summary import mean_std

Points = dict[float, list[dict[str, Any]]]

#: The readings that are counts or words ("n of m", "rise at every step"): "no" without runs.
WORDS = ("t1_ref", "t3_ref", "t1_09", "t3_09", "up_09", "t1_10", "t3_10", "up_10", "s_below", "trend")
#: The readings that are numbers: NaN without runs.
NUMBERS = ("ref", "u_ref", "u_09", "u_10", "d_09", "d_09_sd", "d_10", "d_10_sd", "s_min", "s_max", "clear",
           "n_above", "gap_ref", "gap_10", "obj_context_bound", "obj_free")


def _of(pair: tuple[int, int]) -> str:
    return f"{pair[0]} of {pair[1]}"


def _at(contrasts: dict[float, dict[str, Any]], p: float, name: str) -> dict[str, Any]:
    """The readings at probability ``p`` (0.9 or 1.0), named ``*_<name>``; "no" / NaN where not run."""
    c = contrasts.get(p)
    change = c["vs_reference"] if c else None
    return {f"u_{name}": c["u_band"][0] if c else math.nan,
            f"t1_{name}": _of(c["t1"]) if c else "no", f"t3_{name}": _of(c["t3"]) if c else "no",
            f"d_{name}": change["mean"] if change else math.nan,
            f"d_{name}_sd": change["std"] if change and change["std"] is not None else math.nan,
            f"up_{name}": f"{len(change['seeds']) - change['n_lower']} of {len(change['seeds'])}" if change else "no"}


def sweep_readings(points: Points) -> dict[str, Any]:
    """The sweep's numbers quoted by chapter 7, by name (:data:`WORDS` and :data:`NUMBERS`):
    the reference 1/K and its T1/T3 counts and unsupervised band density; at 0.9 and 1.0 the
    band density, T1/T3 counts, paired change from 1/K (mean, std, seeds higher); how many
    probabilities rise clearly above 1/K (mean change > its std); whether the band density rises
    at every step; the bound − free gaps at 1/K and 1.0; the unsupervised object densities per
    group at 1/K; the semi-supervised band densities' range and how often they lie below the
    unsupervised ones. Without runs at 1/K, every reading is "no" or NaN."""
    reference = uninformative_p(points)
    if reference not in points:
        return {**dict.fromkeys(WORDS, "no"), **dict.fromkeys(NUMBERS, math.nan)}
    contrasts = sweep_contrasts(points, reference=reference)
    ref = contrasts[reference]
    above = [c["vs_reference"] for p, c in contrasts.items() if p != reference]
    u_means = [c["u_band"][0] for c in contrasts.values()]
    rising = all(b >= a for a, b in zip(u_means, u_means[1:]))
    s_means = [c["s_band"][0] for c in contrasts.values()]
    at_ref = points[reference]
    out: dict[str, Any] = {
        "ref": reference, "t1_ref": _of(ref["t1"]), "t3_ref": _of(ref["t3"]), "u_ref": ref["u_band"][0],
        **_at(contrasts, 0.9, "09"), **_at(contrasts, 1.0, "10"),
        "clear": sum(d["std"] is not None and d["mean"] > d["std"] for d in above), "n_above": len(above),
        "trend": "rise at every step" if rising else "do not rise at every step",
        "gap_ref": ref["u_gap"][0], "gap_10": contrasts[1.0]["u_gap"][0] if 1.0 in contrasts else math.nan,
        "s_min": min(s_means), "s_max": max(s_means),
        "s_below": f"{sum(c['s_below_u'][0] for c in contrasts.values())} of "
                   f"{sum(c['s_below_u'][1] for c in contrasts.values())}",
    }
    for g in ("context_bound", "free"):
        out[f"obj_{g}"] = mean_std([r["schemes"]["unsupervised"]["groups"][g]["object_density"] for r in at_ref])[0]
    return out


def per_class_lines(points: Points) -> list[str]:
    """At 1/K, each class's unsupervised object density (mean and per seed) and band density,
    and whether it is context-bound in the runs' own world (an empty list without runs there)."""
    reference = uninformative_p(points)
    if reference not in points:
        return []
    at_ref = points[reference]
    world = PigeonConfig.from_dict(at_ref[0]["config"]).world
    lines = []
    for k in sorted(at_ref[0]["schemes"]["unsupervised"]["per_class"], key=int):
        obj = [r["schemes"]["unsupervised"]["per_class"][k]["object_density"] for r in at_ref]
        band = [r["schemes"]["unsupervised"]["per_class"][k]["context_density"] for r in at_ref]
        kind = "context-bound" if world.is_context_bound(int(k)) else "free"
        lines.append(f"p = {reference:g}, class {k} ({kind}): unsupervised object density "
                     f"{np.mean(obj):.2f} (seeds: {', '.join(f'{v:.2f}' for v in obj)}), band {np.mean(band):.2f}")
    return lines


__all__ = ["NUMBERS", "WORDS", "per_class_lines", "sweep_readings"]

"""The pigeon experiment's targets (benchmarks/pigeon/PREREGISTRATION.md), judged on one run's
``schemes`` table or on the mean of several, and the comparison of each scheme with the baselines."""
from __future__ import annotations

from typing import Any

from soundloc.constants import SCHEMES


#: The pre-registered targets (benchmarks/pigeon/PREREGISTRATION.md); U = unsupervised,
#: S = semi-supervised, b = the context-bound classes' test scenes, f = the free classes'.
TARGETS = {
    "T1": "superstition: U.b.context_density > U.b.object_density",
    "T2": "no superstition where nothing misleads: U.f.object_density > U.f.context_density and > 1",
    "T3": "the co-occurrence moves attention: U.b.context_density >= U.f.context_density + 0.3",
    "T4": "the fix: S.b.object_density > S.b.context_density and S.b.ciou_at_0.5 >= U.b.ciou_at_0.5 + 0.25",
    "T5": "every trained scheme's AUC > the random baseline's AUC",
}


def pigeon_targets(schemes: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """The targets T1-T5 (:data:`TARGETS`) of one run's (or a mean run's) ``schemes`` table;
    a target whose group is missing is not met."""
    u, s_, r = schemes["unsupervised"], schemes["semi_supervised"], schemes["random"]
    ug, sg = u.get("groups", {}), s_.get("groups", {})
    ub, uf, sb = ug.get("context_bound"), ug.get("free"), sg.get("context_bound")
    return {
        "T1": bool(ub is not None and ub["context_density"] > ub["object_density"]),
        "T2": bool(uf is not None and uf["object_density"] > uf["context_density"] and uf["object_density"] > 1),
        "T3": bool(ub is not None and uf is not None and ub["context_density"] >= uf["context_density"] + 0.3),
        "T4": bool(ub is not None and sb is not None and sb["object_density"] > sb["context_density"]
                   and sb["ciou_at_0.5"] >= ub["ciou_at_0.5"] + 0.25),
        "T5": bool(all(schemes[k]["auc"] > r["auc"] for k in SCHEMES)),
    }


def beats_baselines(schemes: dict[str, dict[str, Any]], baselines: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """For each trained scheme, whether its AUC and cIoU@0.5 beat each baseline's (random,
    whole image, centre prior): a model localizes only where it beats all three."""
    out = {}
    for k in SCHEMES:
        row = schemes[k]
        out[k] = {name: bool(row["auc"] > b["auc"] and row["ciou_at_0.5"] > b["success"]) for name, b in baselines.items()}
    return out


__all__ = ["TARGETS", "beats_baselines", "pigeon_targets"]

"""Why an unsupervised learner is blind: reading the learner's exploration runs.

The exploration (``benchmarks/explorations/learner/``, seeds >= 100) trained the unsupervised
scheme (L_U only, Senocak et al., CVPR 2018, Sec. 3.2) on several worlds and learners ("levers")
and measured, besides cIoU@0.5 and AUC beside the baselines, two things that say whether the
attention has any reason to find the source:

- **matching accuracy** with attention and with a uniform map (the same model trained with a
  softmax temperature of 1e6, so that z is the grid's mean): the share of test pairs whose
  visual embedding is nearer its own sound than a sound of another class (d+ < d-). Equal
  accuracies mean nothing in L_U asks the attention to look anywhere in particular;
- **where the attention goes**: density (mass / area, 1 = chance) on the sounding object, the
  band, the silent objects and the rest of the frame.

A run file (``runs/<lever>/seed<N>.json``) holds ``schemes.unsupervised`` with
``match_acc_other_class``, ``density.<group>.{object, band, silent_objects, rest}`` and
``<group>.{ciou_at_0.5, auc, baselines.<name>.{ciou_at_0.5, auc}}``, and
``schemes.unsupervised_uniform.match_acc_other_class``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from soundloc.utils.files import read_json
from soundloc.utils.summary import format_pair, mean_std


def load_exploration(folder: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """``{lever: [runs in seed order]}`` of ``folder/<lever>/seed<N>.json``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(folder).glob("*/seed*.json"), key=lambda p: (p.parent.name, int(p.stem[4:]))):
        out.setdefault(path.parent.name, []).append(read_json(path, "exploration run"))
    return out


def _cell(values: list[float]) -> str:
    return format_pair(*mean_std(values), 2)


def diagnosis_table(explorations: dict[str, list[dict[str, Any]]], levers: dict[str, str],
                    group: str = "free") -> str:
    """A Markdown table, one row per lever of ``levers`` (name -> what to call it): seeds,
    matching accuracy against another class's sound with attention and with a uniform map,
    where the attention goes on ``group``'s scenes (object / silent objects / band / the rest),
    and cIoU@0.5 and AUC beside the centre prior's (mean ± sd over the seeds)."""
    lines = ["| world and learner | seeds | matching, attention | matching, uniform map | density: object | "
             "silent object | band | rest | cIoU@0.5 | centre prior | AUC | centre prior |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for lever, label in levers.items():
        runs = explorations.get(lever, [])
        if not runs:
            continue
        u = [r["schemes"]["unsupervised"] for r in runs]
        flat = [r["schemes"]["unsupervised_uniform"]["match_acc_other_class"] for r in runs]
        dens = [x["density"][group] for x in u]
        cp = [x[group]["baselines"]["centre prior"] for x in u]
        cells = [_cell([x["match_acc_other_class"] for x in u]), _cell(flat),
                 *(_cell([d[k] for d in dens]) for k in ("object", "silent_objects", "band", "rest")),
                 _cell([x[group]["ciou_at_0.5"] for x in u]), _cell([c["ciou_at_0.5"] for c in cp]),
                 _cell([x[group]["auc"] for x in u]), _cell([c["auc"] for c in cp])]
        lines.append(f"| {label} | {', '.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["diagnosis_table", "load_exploration"]

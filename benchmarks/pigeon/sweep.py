"""The co-occurrence sweep of the pigeon experiment: tables and figure from the committed runs.

    .venv/bin/python benchmarks/pigeon/sweep.py

Reads benchmarks/pigeon/sweep/p<P>/seed<N> (P = 0.25, 0.5, 0.75, 1.0) and, for P = 0.9, the
pre-registered runs benchmarks/pigeon/smoke/seed0-2; writes benchmarks/pigeon/sweep/summary.md
and sweep.png. The runs are made by (PREREGISTRATION.md):
    soundloc pigeon --scale smoke --seeds 0-2 --context-p P --out benchmarks/pigeon/sweep/pP
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from soundloc import viz  # noqa: E402
from soundloc.experiments.pigeon.report import (  # noqa: E402
    SWEEP_FOLDERS,
    SWEEP_SEEDS,
    sweep_contrast_table,
    sweep_contrasts,
    sweep_points,
    sweep_table,
    uninformative_p,
)
from soundloc.utils.files import atomic_path# noqa: E402

HERE = Path(__file__).resolve().parent
FOLDERS = {p: HERE / folder for p, folder in SWEEP_FOLDERS.items()}


def main() -> None:
    points = {p: [r for r in runs if r.get("seed") in SWEEP_SEEDS] for p, runs in sweep_points(FOLDERS).items()}
    points = {p: runs for p, runs in points.items() if runs}
    if not points:
        print("no sweep runs yet")
        return
    table = sweep_table(points)
    reference = uninformative_p(points)  # 1/K: the band says nothing
    if reference in points:
        table += ("\n\n## Against 1/K (the band says nothing), seed by seed\n\n"
                  "T1 and T3 as defined in PREREGISTRATION.md; U = unsupervised, S = semi-supervised; band "
                  "densities on the context-bound classes' scenes; the paired change is each seed's U band "
                  f"density minus the same seed's at p = {reference:g}.\n\n"
                  + sweep_contrast_table(sweep_contrasts(points, reference=reference)))
    print(table)
    with atomic_path(HERE / "sweep" / "summary.md") as tmp:
        tmp.write_text("# Co-occurrence sweep (context-bound classes' scenes; seeds 0-2)\n\n"
                       "Made by `.venv/bin/python benchmarks/pigeon/sweep.py` from the committed runs.\n\n"
                       + table + "\n", encoding="utf-8")
    viz.save_figure(viz.plot_sweep(points), HERE / "sweep" / "sweep.png", close=True)


if __name__ == "__main__":
    main()

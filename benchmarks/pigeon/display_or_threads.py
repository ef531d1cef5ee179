"""Issue 4's seed 3 gave opposite verdicts run as `--threads 2 --quiet` and as the plain command
(default threads, progress shown). Which factor moved it?

    .venv/bin/python benchmarks/pigeon/display_or_threads.py

Re-runs the committed `--threads 2 --quiet` configuration (benchmarks/pigeon_more_seeds/seed3,
issue 4's world: every class context-bound, L_S averaged over the labelled rows) with the
current code, default threads and progress shown, into benchmarks/pigeon/display_check/seed3,
and prints both runs' numbers. torch's default on the project's 2-core machines is 2 threads,
so the two runs of issue 4 differed only in the display, which then changed the batch order.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from soundloc.experiments.pigeon import PigeonConfig, load_results, run_pigeon

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    quiet = load_results(ROOT / "benchmarks/pigeon_more_seeds/seed3")
    config = PigeonConfig.from_dict({**quiet["config"], "threads": None, "pretrain_cache": None})
    plain = run_pigeon(config, HERE / "display_check" / "seed3", seed=3, progress=True,
                       command="benchmarks/pigeon/display_or_threads.py (issue 4's seed 3, default threads, progress shown)")
    print(f"default threads here: {torch.get_num_threads()}; committed run: {quiet['threads']} threads, --quiet")
    keys = ("ciou_at_0.5", "auc", "object_density", "context_density")
    same = True
    for scheme in ("unsupervised", "supervised", "semi_supervised"):
        a = [quiet["schemes"][scheme][k] for k in keys]
        b = [plain["schemes"][scheme][k] for k in keys]
        same &= a == b
        print(f"{scheme:<16} quiet {json.dumps([round(v, 4) for v in a])}  shown {json.dumps([round(v, 4) for v in b])}")
    print("identical:", same)


if __name__ == "__main__":
    main()

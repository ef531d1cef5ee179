"""One cell of the pigeon factorial (three schemes trained and scored) with and without the
frozen visual stream's cached features, side by side.

    python benchmarks/pigeon/bench_cell.py [--scale smoke] [--seed 100] [--threads 2]

Prints each phase's seconds for both runs (the pretraining is made once and shared, as the
factorial shares it between cells), then the largest difference between the two runs' test
maps and whether every pre-registered verdict, target and group score agrees. Timings depend on
the machine and on what else runs on it; the last measured figures are in
``benchmarks/pigeon/factorial/RUN_LOG.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from soundloc.experiments.pigeon import PigeonConfig
from soundloc.experiments.pigeon.run import build_world, pretrained_streams, run_schemes
from soundloc.experiments.pigeon.targets import pigeon_targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="smoke")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pretrain-cache", default="runs/bench_cell_pretrain")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = PigeonConfig.at_scale(a.scale, pretrain_cache=a.pretrain_cache)
    t0 = time.perf_counter()
    data = build_world(cfg, a.seed)
    world_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = pretrained_streams(cfg, a.seed, "cpu")
    pre_s = time.perf_counter() - t0
    runs = {}
    for cached in (True, False):
        c = dataclasses.replace(cfg, feature_cache=cached)
        t0 = time.perf_counter()
        runs[cached] = run_schemes(c, data, state, a.seed, "cpu")
        runs[cached].timings["cell_total"] = time.perf_counter() - t0
    print(f"scale {a.scale}, seed {a.seed}, threads {a.threads}; world {world_s:.1f} s, pretraining {pre_s:.1f} s "
          "(shared by both runs; read from the cache when made before)")
    print(f"{'phase':<28}{'cached (s)':>12}{'images (s)':>12}")
    for key in runs[False].timings:
        print(f"{key:<28}{runs[True].timings.get(key, 0.0):>12.1f}{runs[False].timings[key]:>12.1f}")
    diff = max(float((runs[True].maps[s] - runs[False].maps[s]).abs().max()) for s in runs[True].maps)
    print(f"largest difference between the two runs' test maps: {diff:.2e}")
    same_targets = pigeon_targets(runs[True].schemes) == pigeon_targets(runs[False].schemes)
    keys = ("ciou_at_0.5", "auc")
    same_scores = all(runs[True].schemes[s]["groups"][g][k] == runs[False].schemes[s]["groups"][g][k]
                      for s in runs[True].schemes for g in runs[True].schemes[s]["groups"] for k in keys)
    print(f"targets identical: {same_targets}; every group's cIoU@0.5 and AUC identical: {same_scores}")


if __name__ == "__main__":
    main()

"""Time the evaluation of 250 heatmaps (the size of the Flickr-SoundNet test set) on the CPU.

Scores 250 uniform random 20×20 maps against 250 synthetic 3-annotator annotations under the
LVS protocol and prints the median wall time of each stage over several runs:

    python benchmarks/bench_metrics.py [--n 250] [--runs 5] [--threads N] [--device cpu]

The requirement (issue 7): scoring 250 maps takes well under a second on the CPU.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from soundloc.data.types import Annotation
from soundloc.metrics import ciou, evaluate, gt_maps, per_annotator_scores, predicted_set, success_and_auc


def synthetic_annotations(n: int, seed: int) -> list[Annotation]:
    """``n`` annotations of 3 annotators, one box each, in a 256×256 frame (sides 40..216 px)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        boxes = []
        for _ in range(3):
            w, h = torch.randint(40, 217, (2,), generator=gen).tolist()
            x1 = int(torch.randint(0, 257 - w, (1,), generator=gen))
            y1 = int(torch.randint(0, 257 - h, (1,), generator=gen))
            boxes.append(((x1, y1, x1 + w, y1 + h),))
        out.append(Annotation(boxes=tuple(boxes), tags=("object",) * 3))
    return out


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall time and median process CPU time of ``fn`` in ms (after one warm-up call).

    The CPU time (all threads of this process) is what the work costs when the machine is
    shared; on an idle machine with one thread it is close to the wall time.
    """
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    anns = synthetic_annotations(args.n, args.seed)
    maps = torch.rand(args.n, 20, 20, generator=torch.Generator().manual_seed(args.seed + 1)).to(args.device)
    gt = gt_maps(anns, device=args.device)
    sets = predicted_set(maps)

    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{args.n} maps of 20x20, 3 annotators each, LVS protocol, median of {args.runs} runs")
    rows = [
        ("consensus maps of the annotations (gt_maps)", lambda: gt_maps(anns, device=args.device)),
        ("cIoU of the maps, gt precomputed (ciou)", lambda: ciou(maps, gt)),
        ("cIoU + success@0.5 + AUC, gt precomputed", lambda: success_and_auc(ciou(maps, gt))),
        ("per-annotator IoU / AUC (Table 3)", lambda: per_annotator_scores(sets, anns)),
        ("evaluate(): gt + cIoU + success + AUC", lambda: evaluate(maps, anns, baselines=False, per_annotator=False)),
        ("evaluate(): + per-annotator", lambda: evaluate(maps, anns, baselines=False)),
        ("evaluate(): + baselines (10 random draws)", lambda: evaluate(maps, anns)),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"  {'stage':<{width}}  {'wall ms':>9}  {'CPU ms':>9}")
    for label, fn in rows:
        runs = args.runs if "baselines" not in label else max(1, args.runs // 2)
        wall, cpu = timed(fn, runs)
        print(f"  {label:<{width}}  {wall:9.1f}  {cpu:9.1f}")


if __name__ == "__main__":
    main()

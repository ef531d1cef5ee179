"""Speed of the synthetic world: scenes per second generated in memory and written to disk.

    .venv/bin/python benchmarks/bench_synthetic.py [--n 500] [--seconds 1.0] [--image-size 64]

Prints scenes/second for: generating scenes (SyntheticWorld.scene), serving cached samples
(SyntheticDataset, second pass), writing the prepared layout (write_world) and reading it back
(AVDataset). Timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from soundloc.data import AVDataset
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, write_world


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} scenes/s  ({seconds:6.2f} s for {n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    world = SyntheticWorld(WorldConfig(clip_seconds=args.seconds, image_size=args.image_size), seed=0)
    world.scene(0)  # warm-up
    print(f"synthetic world: {args.n} scenes, {args.image_size}x{args.image_size} images, {args.seconds} s clips, "
          f"{os.cpu_count()} CPUs visible, torch threads {args.threads}")
    t = time.perf_counter()
    for i in range(args.n):
        world.scene(i)
    print("generate (SyntheticWorld.scene)      ", rate(args.n, time.perf_counter() - t))
    ds = SyntheticDataset(world, args.n, grid=args.image_size // 8)
    for k in range(len(ds)):
        ds[k]
    t = time.perf_counter()
    for k in range(len(ds)):
        ds[k]
    print("cached samples (SyntheticDataset)    ", rate(args.n, time.perf_counter() - t))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_world(world, tmp, args.n, n_test=args.n // 10, n_labelled=min(10, args.n // 2), progress=False)
        print("write to disk (write_world)          ", rate(args.n, time.perf_counter() - t))
        disk = AVDataset(tmp, image_size=args.image_size, grid=args.image_size // 8, clip_seconds=args.seconds)
        t = time.perf_counter()
        for k in range(len(disk)):
            disk[k]
        print("read back (AVDataset)                ", rate(args.n, time.perf_counter() - t))


if __name__ == "__main__":
    main()

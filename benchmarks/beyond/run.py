"""The committed results of chapter 12: the paper's three learning schemes on the synthetic
world under the field's later protocols (extended / open-set, negative audio), beside the
baselines. One command remakes them:

    .venv/bin/python benchmarks/beyond/run.py

The world and the models are those of the pigeon experiment's CPU preset
(``PigeonConfig.at_scale("smoke")``, whose world is the library's default world with 0.5 s
clips), seed 0. Its three models are read from ``benchmarks/pigeon/showcase/seed0`` when that run
is the same experiment as the preset now describes; when the library's defaults have changed
since, they are trained again first (into ``--train-out``; about 10 minutes on 2 CPU cores).
The test pairs are the run's held-out scenes. Writes ``results.json`` (with provenance: command,
config, date, device, library version, git commit) and ``results.md`` into ``--out``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from soundloc.data.synthetic import SyntheticWorld
from soundloc.experiments.benchmark import (
    BenchmarkSettings,
    benchmark_markdown,
    benchmark_schemes,
    scheme_models,
    synthetic_set,
)
from soundloc.experiments.pigeon import PigeonConfig
from soundloc.experiments.provenance import git_commit, provenance
from soundloc.book import repository_root
from soundloc.utils.device import default_device
from soundloc.utils.files import atomic_open, write_json

ROOT = repository_root(Path(__file__).resolve().parent) or Path.cwd()
HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=ROOT / "benchmarks" / "pigeon" / "showcase" / "seed0",
                   help="a pigeon run folder whose models to reuse when it is the same experiment")
    p.add_argument("--train-out", type=Path, default=ROOT / "runs" / "beyond-models",
                   help="where to train the models when they cannot be reused")
    p.add_argument("--out", type=Path, default=HERE, help="folder of results.json and results.md")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (world, models, drawn pairs; default 0)")
    p.add_argument("--scenes", type=int, default=None,
                   help="use only the first N held-out scenes (a quick look; the committed results use all)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="torch device (default: GPU when visible, else CPU)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    config = PigeonConfig.at_scale("smoke")
    models, origin = scheme_models(config, args.seed, args.models, args.train_out, progress=not args.quiet)
    world = SyntheticWorld(config.world, seed=args.seed)
    held_out = list(range(config.n_train, config.n_train + config.n_test))[: args.scenes]
    bset = synthetic_set(world, held_out, seed=args.seed)
    settings = BenchmarkSettings(seed=args.seed, random_repeats=config.random_repeats, batch_size=64)
    device = args.device or default_device()
    results = benchmark_schemes(models, bset, settings, device=device, progress=not args.quiet)
    command = "benchmarks/beyond/run.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    doc = {
        "experiment": "the paper's three schemes on the synthetic world under the extended (open-set) protocol "
                      "and the negative-audio assessment",
        "models_from": {**origin, "folder": str(Path(origin["folder"]).resolve().relative_to(ROOT))
                        if Path(origin["folder"]).resolve().is_relative_to(ROOT) else origin["folder"]},
        "config": config.to_dict(),
        "world_seed": args.seed,
        "scenes": [held_out[0], held_out[-1]],
        "settings": {"parts": list(settings.parts), "confidence": settings.confidence, "seed": settings.seed,
                     "random_repeats": settings.random_repeats, "open_protocol": settings.open_protocol},
        "models": results,
        "seconds": time.perf_counter() - t0,
        **provenance(device, command.strip()),
        "git_commit": git_commit(ROOT),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", doc)
    text = "\n\n".join(benchmark_markdown({**doc, "model": {"name": f"the {name} model"}, "sets": {"synthetic": res}})
                       for name, res in results.items())
    with atomic_open(args.out / "results.md", "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    if not args.quiet:
        print(text)
    print(f"wrote {args.out / 'results.json'} ({doc['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

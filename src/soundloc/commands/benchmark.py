"""Run a trained model on the field's benchmarks and write one report (Markdown + JSON).

For each set given (Flickr-SoundNet's annotated test pairs, VGG-SS, the synthetic world), three
parts, each with the whole-image, centre-prior and random baselines beside the model:

  localization   cIoU@0.5 and AUC on the annotated pairs (LVS protocol; VGG-SS: its own preset)
  extended       the open-set protocol of SLAVC: sounding and non-sounding pairs ranked by a
                 confidence: AP, max-F1, precision, and precision by object size
  negative       the same frames with silence, noise, another class's sound, an off-screen
                 sound and a same-class control: how far the map moves, whether the confidence drops

  soundloc benchmark --checkpoint runs/flickr/best.pt --flickr data/ssl --vggss data/vggss --out runs/bench
  soundloc benchmark --synthetic --out runs/bench-synthetic      # the bundled model on the synthetic world

Writes OUT/benchmark.md, OUT/benchmark.json and, for drawn non-sounding pairs,
OUT/non_sounding_<set>.csv (SLAVC's list format; give it back with --flickr-pairs/--vggss-pairs).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from soundloc.commands.common import UsageError, check_device, check_output_dir, fail

#: The one line of ``soundloc --help``.
HELP = "a model on Flickr, VGG-SS, their extended sets and negative audio, beside the baselines"


def _scenes(text: str) -> tuple[int, int]:
    """``START:COUNT`` -> (start, count)."""
    try:
        start, count = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:COUNT (e.g. 1000:200), got {text!r}") from None
    if start < 0 or count < 1:
        raise argparse.ArgumentTypeError(f"START must be >= 0 and COUNT >= 1, got {text!r}")
    return start, count


def configure(parser: argparse.ArgumentParser) -> None:
    from soundloc.experiments.benchmark import PARTS
    from soundloc.experiments.beyond import CONFIDENCES, NEGATIVE_KINDS as KINDS
    from soundloc.metrics.openset import OPEN_SET_PRESETS
    from soundloc.metrics.protocol import PRESETS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="model file or training checkpoint (default: the bundled synthetic-world model)")
    parser.add_argument("--out", required=True, type=Path, help="folder for benchmark.md, benchmark.json and pair lists")
    parser.add_argument("--name", default=None, help="the model's name in the report (default: the checkpoint's file name)")
    sets = parser.add_argument_group("sets (give at least one)")
    sets.add_argument("--flickr", type=Path, default=None,
                      help="the prepared annotated Flickr-SoundNet set (soundloc data annotations --dataset ...)")
    sets.add_argument("--flickr-ids", default="test", help="split name or id-list file (default: test; test249 for LVS's list)")
    sets.add_argument("--flickr-pairs", type=Path, default=None,
                      help="non-sounding pairs in SLAVC's list format (default: one drawn per test pair)")
    sets.add_argument("--vggss", type=Path, default=None, help="the prepared VGG-SS folder (soundloc data vggss)")
    sets.add_argument("--vggss-ids", default="vggss_present", help="split name or id-list file (default: vggss_present)")
    sets.add_argument("--vggss-pairs", type=Path, default=None,
                      help="non-sounding pairs in SLAVC's list format (default: one drawn per test pair)")
    sets.add_argument("--synthetic", action="store_true",
                      help="the synthetic world (library defaults, sized for the model's images and clips)")
    sets.add_argument("--synthetic-seed", type=int, default=0, help="the world's seed (default 0)")
    sets.add_argument("--synthetic-scenes", type=_scenes, default=(1000, 200),
                      help="START:COUNT of held-out scenes (default 1000:200, the test scenes of `soundloc train`'s default run)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts (default: all)")
    parser.add_argument("--confidence", choices=CONFIDENCES, default="peak",
                        help="the confidence that ranks pairs in the extended protocol and whose drop the "
                             "negative-audio part reports (default: peak, the attention map's largest value)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=None,
                        help="negative-audio replacements (default: all the set allows)")
    parser.add_argument("--protocol", choices=list(PRESETS), default=None,
                        help="cIoU protocol for every set (default: lvs for Flickr and the synthetic world, vggss for VGG-SS)")
    parser.add_argument("--open-protocol", choices=list(OPEN_SET_PRESETS), default="slavc",
                        help="how AP and max-F1 sweep the thresholds (default: slavc, every confidence)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn pairs, the noise and the random baseline")
    parser.add_argument("--random-repeats", type=int, default=10, help="draws of the random baseline (default 10)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass (default 32)")
    parser.add_argument("--device", default=None, help="torch device (default: GPU when visible, else CPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _sets(args: argparse.Namespace, model: Any) -> list[Any]:
    from soundloc.data.synthetic import SyntheticWorld, WorldConfig
    from soundloc.experiments.benchmark import folder_set, synthetic_set

    cfg = model.config
    clip_seconds = cfg.clip_samples / cfg.sample_rate
    out = []
    for name, root, ids, pairs in (("flickr", args.flickr, args.flickr_ids, args.flickr_pairs),
                                   ("vggss", args.vggss, args.vggss_ids, args.vggss_pairs)):
        if root is None:
            continue
        if not root.is_dir():
            raise UsageError(f"--{name} {root}: not a folder")
        if pairs is not None and not pairs.is_file():
            raise UsageError(f"--{name}-pairs {pairs}: file not found")
        out.append(folder_set(name, root, ids, cfg.image_size, clip_seconds, cfg.sample_rate, args.protocol,
                              pairs, args.seed))
    if args.synthetic:
        world = SyntheticWorld(WorldConfig(image_size=cfg.image_size, clip_seconds=clip_seconds,
                                           sample_rate=cfg.sample_rate), seed=args.synthetic_seed)
        start, count = args.synthetic_scenes
        out.append(synthetic_set(world, range(start, start + count), args.protocol, args.seed))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        for name in ("flickr", "vggss"):
            if getattr(args, f"{name}_pairs") is not None and getattr(args, name) is None:
                raise UsageError(f"--{name}-pairs needs --{name}")
        if not (args.flickr or args.vggss or args.synthetic):
            raise UsageError("give at least one set: --flickr DIR, --vggss DIR or --synthetic")
        for option in ("random_repeats", "batch_size"):
            if getattr(args, option) < 1:
                raise UsageError(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
        if args.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {args.seed}")
        out = check_output_dir("--out", args.out)
        check_device("--device", args.device)
        if args.checkpoint is not None and not args.checkpoint.is_file():
            raise UsageError(f"--checkpoint {args.checkpoint}: file not found")
        return _run(args, out)
    except (UsageError, FileNotFoundError, ValueError, KeyError) as exc:
        return fail("benchmark", str(exc).strip("'\""))


def _run(args: argparse.Namespace, out: Path) -> int:
    from soundloc.experiments.benchmark import BenchmarkSettings, benchmark_markdown, run_benchmark, write_pairs_csv
    from soundloc.experiments.localize import BUNDLED_CHECKPOINT, load_localizer
    from soundloc.experiments.provenance import git_commit, provenance
    from soundloc.utils.device import default_device
    from soundloc.utils.files import atomic_open, write_json

    checkpoint = args.checkpoint or BUNDLED_CHECKPOINT
    model = load_localizer(checkpoint)
    device = args.device or default_device()
    settings = BenchmarkSettings(parts=tuple(args.parts), confidence=args.confidence,
                                 kinds=tuple(args.kinds) if args.kinds else None, open_protocol=args.open_protocol,
                                 seed=args.seed, random_repeats=args.random_repeats, batch_size=args.batch_size)
    sets = _sets(args, model)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for bset in sets:
        if not args.quiet:
            print(f"{bset.name}: {len(bset.items)} test pairs, {len(bset.non_sounding)} non-sounding pairs", file=sys.stderr)
        if "extended" in settings.parts and any(p.origin == "drawn" for p in bset.non_sounding):
            write_pairs_csv(out / f"non_sounding_{bset.name}.csv", [p for p in bset.non_sounding if p.origin == "drawn"])
        results[bset.name] = run_benchmark(model, bset, settings, device=device, progress=not args.quiet)
    command = ("soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["benchmark"]
               else "soundloc benchmark (called from Python)")
    doc = {
        "model": {"name": args.name or Path(checkpoint).name, "checkpoint": str(checkpoint),
                  "config": model.config.to_dict()},
        "settings": {"parts": list(settings.parts), "confidence": settings.confidence,
                     "kinds": None if settings.kinds is None else list(settings.kinds),
                     "open_protocol": settings.open_protocol, "seed": settings.seed,
                     "random_repeats": settings.random_repeats, "batch_size": settings.batch_size},
        "sets": results,
        **provenance(device, command),
        "git_commit": git_commit(),
    }
    write_json(out / "benchmark.json", doc)
    text = benchmark_markdown(doc)
    with atomic_open(out / "benchmark.md", "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    print(text)
    print(f"wrote {out / 'benchmark.md'} and {out / 'benchmark.json'}")
    return 0

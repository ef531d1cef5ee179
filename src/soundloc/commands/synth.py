"""Write the synthetic audio-visual world to disk in the prepared-data layout.

The folder has the layout real data is prepared into (index.csv, frames/, audio/,
annotations.json, splits/train.txt, test.txt, labelled.txt) plus masks/ and label columns, so
that ``soundloc.data.AVDataset(DIR, ...)`` reads it like real data.

  soundloc synth --out data/synthetic --n 1000 --test 200 --labelled 100 --seed 0
"""
from __future__ import annotations

import argparse

from soundloc.commands.common import UsageError, check_non_negative, check_output_dir, fail

#: The one line of ``soundloc --help``.
HELP = "write the synthetic world to disk in the prepared-data layout"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, required=True, help="number of scenes (ids syn000000 ...)")
    parser.add_argument("--seed", type=int, default=0, help="the world's seed (default 0)")
    parser.add_argument("--test", type=int, default=0, help="how many of the last scenes are held out for test (default 0)")
    parser.add_argument("--labelled", type=int, default=0, help="annotated training scenes listed in splits/labelled.txt")
    parser.add_argument("--classes", type=int, default=None, help="number of sound-source classes (default 4)")
    parser.add_argument("--image-size", type=int, default=None, help="image side in pixels (default 64)")
    parser.add_argument("--clip-seconds", type=float, default=None, help="clip length (default 1.0)")
    parser.add_argument("--context-p", type=float, default=None, help="context/sound co-occurrence probability (default 0.9)")
    parser.add_argument("--distractors", type=int, default=None, help="silent objects per scene (default 3)")
    parser.add_argument("--offscreen-p", type=float, default=None, help="probability of an off-screen source (default 0.05)")
    parser.add_argument("--ambient-p", type=float, default=None, help="probability of an ambient sound (default 0.05)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        check_non_negative("--seed", args.seed)
        check_output_dir("--out", args.out)
    except UsageError as exc:
        return fail("synth", exc)
    from soundloc.data.synthetic import SyntheticWorld, WorldConfig, write_world

    fields = {
        "num_classes": args.classes, "image_size": args.image_size, "clip_seconds": args.clip_seconds,
        "context_p": args.context_p, "n_distractors": args.distractors, "offscreen_p": args.offscreen_p,
        "ambient_p": args.ambient_p,
    }
    try:
        config = WorldConfig(**{k: v for k, v in fields.items() if v is not None})
        world = SyntheticWorld(config, seed=args.seed)
        root = write_world(world, args.out, args.n, n_test=args.test, n_labelled=args.labelled, progress=not args.quiet)
    except (TypeError, ValueError) as exc:
        return fail("synth", exc)
    print(f"wrote {args.n} scenes of {world!r} to {root}")
    return 0

"""Reproduce the paper's tables (Senocak et al., CVPR 2018): Table 1 (schemes and mechanisms),
Table 2 (number of labels), Table 3 (per-annotator IoU).

Every row is a training run (soundloc train) under OUT/runs/, reused when it has finished and
resumed from its checkpoint when it was interrupted, so an interrupted table continues (run the
same command again; more --seeds or --rows add to it). A folder holding another table, a run of
another config or a training run is refused. Writes OUT/results.json, OUT/table.md and OUT/table.csv: our
numbers beside the paper's, with the random, whole-image and centre-prior baselines. Sizes
scale down with --scale (tiny: seconds per row, the test suite; smoke: minutes per row on a CPU;
full: the paper's counts, for real data on a GPU), and the table states them. On the synthetic
world (the default data) the numbers are not comparable with the paper's.

  soundloc experiment table1 --scale smoke --out runs/table1
  soundloc experiment table2 --scale full --data data/flickr --annotated data/ssl --preset paper --out runs/table2
"""
from __future__ import annotations

import argparse
import shlex
import sys

from soundloc.commands.common import UsageError, check_device, check_output_dir, fail, parse_seeds
from soundloc.constants import SCALES

#: The one line of ``soundloc --help``.
HELP = "the paper's Tables 1-3 (synthetic world or real data, at a chosen scale)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' lines
    parser.add_argument("table", choices=("table1", "table2", "table3"), help="which of the paper's tables")
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="sizes and epochs (default tiny)")
    parser.add_argument("--out", required=True, help="output folder (runs/, results.json, table.md, table.csv)")
    parser.add_argument("--data", default=None, help="'synthetic' (default) or a prepared folder of training pairs")
    parser.add_argument("--packed", action="store_true", help="read --data through its packed cache")
    parser.add_argument("--annotated", default=None, help="the prepared annotated set (default: the --data folder)")
    parser.add_argument("--preset", choices=("paper", "cpu"), default=None,
                        help="model preset (default: cpu on the synthetic world, paper on real data)")
    parser.add_argument("--seeds", default="0", metavar="LIST", help="seeds, e.g. 0-2 or 0,3 (mean ± std; default 0)")
    parser.add_argument("--rows", default=None, metavar="KEYS",
                        help="run only these rows, comma-separated (the others read 'not run'): table1 unsup_10k, "
                             "unsup_144k, sup_2.5k, semi_2.5k_10k, semi_2.5k_144k; table2 semi_500_10k ... "
                             "semi_2500_10k; table3 unsup_144k, sup_2.5k, semi_2.5k_10k. A GPU's 15 minutes hold one "
                             "or two rows at the full scale, e.g. --rows sup_2.5k")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every row (default: the scale's)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when visible, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        seeds = parse_seeds(args.seeds)
        check_output_dir("--out", args.out)
        check_device("--device", args.device)
        if args.packed and args.data in (None, "synthetic"):
            raise UsageError("--packed needs --data DIR")
        if args.epochs is not None and args.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
        if args.threads is not None and args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        import torch

        from soundloc.experiments.tables import check_table, check_table_folder, markdown_table, run_table, table_config

        config = table_config(args.table, args.scale, data=args.data, annotated=args.annotated, packed=args.packed,
                              preset=args.preset, seeds=seeds, rows=args.rows, device=args.device, epochs=args.epochs)
        check_table_folder(config, args.out)
        check_table(config)
    except (UsageError, ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        return fail("experiment", exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    command = "soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["experiment"] else None
    try:
        results = run_table(config, args.out, progress=not args.quiet, command=command)
    except KeyboardInterrupt:
        print(f"interrupted; the rows done and the interrupted one's checkpoint are kept in {args.out}: "
              "run the same command again to continue", file=sys.stderr)
        return 130

    print(markdown_table(results))
    print(f"wrote {args.out}/results.json, {args.out}/table.md, {args.out}/table.csv")
    return 0

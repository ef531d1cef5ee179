"""The ``soundloc`` command line.

Every job a user runs outside a notebook is a subcommand. Each subcommand lives in its own
module under :mod:`soundloc.commands` and defines two functions::

    def configure(parser: argparse.ArgumentParser) -> None   # add arguments; no heavy imports
    def run(args: argparse.Namespace) -> int                 # do the work; return an exit code

Modules are imported only to build their parser, and heavy libraries (torch) only inside
``run``, so ``soundloc --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from soundloc import __version__

#: name -> (module under soundloc.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pigeon": ("pigeon", "reproduce the pigeon superstition on the synthetic world"),
    "evaluate": ("evaluate", "score saved heatmaps against annotations (cIoU, AUC, baselines)"),
    "benchmark": ("benchmark", "a model on Flickr, VGG-SS, their extended sets and negative audio, beside the baselines"),
    "synth": ("synth", "write the synthetic world to disk in the prepared-data layout"),
    "data": ("data", "get and prepare real data (download, prepare, annotations, cache, leakage)"),
    "train": ("train", "train a model on the synthetic world or prepared data; resume a run"),
    "experiment": ("experiment", "the paper's Tables 1-3 (synthetic world or real data, at a chosen scale)"),
    "localize": ("localize", "where is the sound? attention map of a trained model on your image/video and sound"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundloc",
        description="Learning to Localize Sound Source in Visual Scenes (Senocak et al., CVPR 2018).",
    )
    parser.add_argument("--version", action="version", version=f"soundloc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(f"soundloc.commands.{module}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name != f"soundloc.commands.{module}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

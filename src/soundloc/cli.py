"""The ``soundloc`` command line.

Every job a user runs outside a notebook is a subcommand, one module of :mod:`soundloc.commands`
each, with ``HELP`` (its line in ``soundloc --help``) and two functions::

    def configure(parser: argparse.ArgumentParser) -> None   # add arguments (and their defaults)
    def run(args: argparse.Namespace) -> int                 # do the work; return an exit code

Only the subcommand named on the command line is configured, so ``soundloc --help`` stays
fast (no torch), while ``soundloc train --help`` shows the defaults the library's configs hold.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from soundloc import __version__
from soundloc.commands import benchmark, data, evaluate, experiment, localize, pigeon, synth, train

#: The subcommands, in the order of ``soundloc --help``.
COMMANDS = {"pigeon": pigeon, "evaluate": evaluate, "benchmark": benchmark, "synth": synth, "data": data,
            "train": train, "experiment": experiment, "localize": localize}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``soundloc``, with the options of subcommand ``command`` (none: the
    list of subcommands only)."""
    parser = argparse.ArgumentParser(
        prog="soundloc",
        description="Learning to Localize Sound Source in Visual Scenes (Senocak et al., CVPR 2018).",
    )
    parser.add_argument("--version", action="version", version=f"soundloc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=(module.__doc__ or module.HELP).strip())
        p.set_defaults(_run=module.run)
        if name == command:
            module.configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # global options take no value
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``soundloc data vggss``: the VGG-Sound Sources annotation file (and its clips) → the prepared layout.

Kept beside :mod:`soundloc.commands.data`, which registers it as one of its steps.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def configure_vggss(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", required=True, type=Path,
                   help="the VGG-SS annotation file (vggss.json: a list of {file, class, bbox})")
    p.add_argument("--out", required=True, type=Path,
                   help="prepared folder: annotations.json, splits/vggss_{listed,present,missing}.txt, frames/, audio/")
    p.add_argument("--videos", type=Path, default=None,
                   help="folder of the downloaded clips, named <file>.mp4 (or another video extension); "
                        "without it only the annotations are imported and clips prepared earlier are counted")
    p.add_argument("--ffmpeg", default=None, help="ffmpeg executable (default: PATH, then imageio-ffmpeg's)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="audio kept from the start (default 20; VGG-Sound clips are 10 s, kept whole)")
    p.add_argument("--size", type=int, default=256, help="output frame side (default 256; the frame is stretched "
                                                          "to the square: the boxes are normalised to the whole frame)")
    p.add_argument("--workers", type=int, default=2, help="videos processed at once (default 2)")
    p.add_argument("--overwrite", action="store_true", help="redo clips that are already prepared")
    p.add_argument("--skip-bad", action="store_true",
                   help="list malformed entries in failures.csv instead of stopping at the first")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_vggss(args: argparse.Namespace) -> int:
    from soundloc.data.prepare import PrepareConfig
    from soundloc.data.vggss import import_vggss

    cfg = None
    if args.videos is not None:
        if not args.videos.is_dir():
            raise FileNotFoundError(f"--videos {args.videos}: not a folder")
        cfg = PrepareConfig(seconds=args.seconds, size=args.size or None, workers=args.workers, ffmpeg=args.ffmpeg,
                            overwrite=args.overwrite, progress=not args.no_progress)
    result = import_vggss(args.json, args.out, args.videos, cfg, on_error="record" if args.skip_bad else "raise")
    print(result.summary())
    return 0

"""Get and prepare the real data: Flickr-SoundNet videos and the annotated Sound Localization set.

  soundloc data download     --list IDS_OR_URLS --out DIR      videos, resumable, failures.csv (exit 1 if any failed)
  soundloc data prepare      --videos DIR --out DIR            frames/ + audio/ + index.csv
  soundloc data annotations  --xml DIR --out FILE.json         XML boxes -> annotations.json (+ splits)
  soundloc data annotations  --dataset SRC --out DIR           the downloaded annotated set -> prepared layout
  soundloc data vggss        --json vggss.json --out DIR [--videos DIR]   VGG-SS boxes (+ its clips) -> prepared layout
  soundloc data cache        --root DIR                        packed memory-mapped arrays for training
  soundloc data leakage      --train LIST --test LIST          overlap between training and test ids
  soundloc data soundnet     --weights FILE --out FILE.pt      the published SoundNet-8 weights as a state dict

The scripts under data_scripts/ are the same commands (they call the functions below).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from soundloc.commands.data_vggss import configure_vggss, run_vggss

#: The one line of ``soundloc --help``.
HELP = "get and prepare real data (download, prepare, annotations, cache, leakage)"


def _progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def configure_download(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", required=True, type=Path, help="file with one video URL or id per line")
    p.add_argument("--out", required=True, type=Path, help="folder for the videos (and failures.csv)")
    p.add_argument("--url-template", default=None,
                   help="URL for bare ids, with {id}: e.g. 'https://host/videos/{id}.mp4'")
    p.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    p.add_argument("--retries", type=int, default=3, help="extra attempts on transient errors (default 3)")
    p.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubled each time")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a connection may stay silent (default 30)")
    _progress(p)


def run_download(args: argparse.Namespace) -> int:
    from soundloc.data.download import DownloadConfig, download_all, read_items

    items = read_items(args.list, args.url_template)
    cfg = DownloadConfig(workers=args.workers, retries=args.retries, backoff=args.backoff,
                         timeout=args.timeout, progress=not args.no_progress)
    report = download_all(items, args.out, cfg)
    print(report.summary())
    return 1 if report.failed else 0  # failures.csv names them; run again to retry only those


def configure_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", required=True, type=Path, help="folder of downloaded videos (<id>.mp4 ...)")
    p.add_argument("--out", required=True, type=Path, help="prepared folder (frames/, audio/, index.csv)")
    p.add_argument("--ffmpeg", default=None, help="ffmpeg executable (default: PATH, then imageio-ffmpeg's)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio kept from the start (default 20)")
    p.add_argument("--sample-rate", type=int, default=22_050, help="output audio rate (default 22050)")
    p.add_argument("--size", type=int, default=256, help="output frame side in pixels (default 256; 0 keeps the video's size)")
    p.add_argument("--resize", choices=["stretch", "crop"], default="stretch",
                   help="stretch to size×size, or scale the short side and cut the centre (default stretch)")
    p.add_argument("--frames", type=int, default=1, help="evenly spaced frames per video (default 1: the middle one)")
    p.add_argument("--workers", type=int, default=2, help="videos processed at once (default 2)")
    p.add_argument("--keep-silent", action="store_true", help="keep videos whose audio is all zeros")
    p.add_argument("--overwrite", action="store_true", help="redo items that are already prepared")
    _progress(p)


def run_prepare(args: argparse.Namespace) -> int:
    from soundloc.data.prepare import PrepareConfig, prepare_videos

    cfg = PrepareConfig(seconds=args.seconds, sample_rate=args.sample_rate, size=args.size or None,
                        resize=args.resize, frames=args.frames, workers=args.workers, ffmpeg=args.ffmpeg,
                        keep_silent=args.keep_silent, overwrite=args.overwrite, progress=not args.no_progress)
    report = prepare_videos(args.videos, args.out, cfg)
    print(report.summary())
    if report.failed:
        print(f"failures listed in {args.out / 'failures.csv'}")
    return 0


def configure_annotations(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--xml", type=Path, help="folder of <id>.xml files; --out is then the annotations.json to write")
    src.add_argument("--dataset", type=Path,
                     help="the downloaded set (Annotations/, Data/<0-9>/); --out is then a prepared folder")
    p.add_argument("--out", required=True, type=Path, help="annotations.json (with --xml) or a folder (with --dataset)")
    p.add_argument("--test-list", type=Path, default=None, help="the 250-id test list (writes splits/test.txt, train.txt)")
    p.add_argument("--test249-list", type=Path, default=None, help="the 249-id list of later papers (splits/test249.txt)")
    p.add_argument("--grid", type=int, default=None, help="also write ground-truth grid masks for this grid (e.g. 20)")
    p.add_argument("--link", choices=["copy", "hardlink", "symlink"], default="copy",
                   help="with --dataset: how frames/audio are placed (default copy)")
    p.add_argument("--skip-bad", action="store_true",
                   help="record unreadable XML files in failures.csv instead of stopping at the first")
    _progress(p)


def run_annotations(args: argparse.Namespace) -> int:
    from soundloc.data.annotations import import_annotated_set, prepare_annotations

    on_error = "record" if args.skip_bad else "raise"
    if args.xml is not None:
        if args.out.suffix.lower() != ".json":
            print(f"--out {args.out}: with --xml, give the annotations file to write (…/annotations.json)", file=sys.stderr)
            return 2
        report, splits = prepare_annotations(args.xml, args.out, args.test_list, args.test249_list, args.grid,
                                             on_error=on_error, progress=not args.no_progress)
        print(f"{len(report.annotations)} annotated pairs -> {args.out}; annotators per pair: {report.annotator_counts()}")
        if report.failed:
            print(f"{len(report.failed)} file(s) could not be read: see {args.out.parent / 'failures.csv'}")
        if splits is not None:
            print(splits.summary())
        return 0
    imp = import_annotated_set(args.dataset, args.out, args.test_list, args.test249_list, link=args.link,
                               grid=args.grid, on_error=on_error, progress=not args.no_progress)
    print(imp.summary())
    return 0


def configure_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, type=Path, help="prepared folder")
    p.add_argument("--out", type=Path, default=None, help="cache folder (default ROOT/cache/packed_<S>px_<T>s)")
    p.add_argument("--image-size", type=int, default=224, help="stored frame side (the model's input; default 224)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio stored per pair (default 20)")
    p.add_argument("--ids", default=None, help="a split name or id-list file (default: all pairs of the index)")
    p.add_argument("--hash-sources", action="store_true", help="fingerprint sources by sha256 (slow) not size+mtime")
    p.add_argument("--verify", action="store_true", help="recompute the arrays' checksums of an existing cache")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    p.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")
    _progress(p)


def run_cache(args: argparse.Namespace) -> int:
    from soundloc.data.cache import CacheConfig, build_cache, ensure_cache
    from soundloc.data.layout import read_id_list, split_path

    ids = None
    if args.ids:
        p = Path(args.ids)
        ids = read_id_list(p if p.is_file() else split_path(args.root, args.ids))
    cfg = CacheConfig(image_size=args.image_size, clip_seconds=args.seconds, hash_sources=args.hash_sources)
    if args.force:
        path, rebuilt = build_cache(args.root, args.out, cfg, ids, workers=args.workers, progress=not args.no_progress), True
    else:
        path, rebuilt = ensure_cache(args.root, args.out, cfg, ids, verify=args.verify, workers=args.workers,
                                     progress=not args.no_progress)
    print(f"{'built' if rebuilt else 'up to date'}: {path}")
    return 0


def configure_leakage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, type=Path, help="training id list (plain or CSV)")
    p.add_argument("--test", required=True, type=Path, nargs="+", help="test id list(s), e.g. the 250 and 249 lists")
    p.add_argument("--write-clean", type=Path, default=None, help="write the training list without the leaked ids here")
    p.add_argument("--fail", action="store_true", help="exit with status 1 when there is overlap")


def run_leakage(args: argparse.Namespace) -> int:
    from soundloc.data.layout import write_id_list
    from soundloc.data.leakage import normalize_id, read_ids, remove_leakage

    train = read_ids(args.train)
    test = [i for path in args.test for i in read_ids(path)]
    clean, report = remove_leakage(train, test)
    print(report)
    if args.write_clean is not None:
        write_id_list(args.write_clean, [normalize_id(i) for i in clean])
        print(f"{len(clean)} training ids written to {args.write_clean}")
    return 1 if (report.leaked and args.fail) else 0


def configure_soundnet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, type=Path,
                   help="soundnet8_final.t7 (the authors' Torch7 release; needs pip install torchfile) or sound8.npy "
                        "(the TensorFlow port: a pickle, opened only because you name it: use a file you trust)")
    p.add_argument("--out", required=True, type=Path, help="the converted state dict (.pt) for ModelConfig.sound_weights_path")


def run_soundnet(args: argparse.Namespace) -> int:
    from soundloc.models.soundnet_weights import SOUNDNET_INPUT_SCALE, convert_soundnet, save_soundnet_weights

    state = convert_soundnet(args.weights)
    save_soundnet_weights(args.out, state, source=args.weights.name)
    print(f"wrote {args.out}: {len(state)} tensors; feed it waveforms scaled by {SOUNDNET_INPUT_SCALE:g} "
          f"(ModelConfig.paper(sound_weights_path={str(args.out)!r}) does)")
    return 0


SUBCOMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {
    "download": (configure_download, run_download, "download Flickr-SoundNet videos (parallel, resumable)"),
    "prepare": (configure_prepare, run_prepare, "videos -> frames/ + audio/ + index.csv with ffmpeg"),
    "annotations": (configure_annotations, run_annotations, "annotation XML -> annotations.json, splits, grid masks"),
    "vggss": (configure_vggss, run_vggss, "VGG-SS annotation JSON (+ its clips) -> annotations.json, present/missing lists"),
    "cache": (configure_cache, run_cache, "build/verify the packed training cache"),
    "leakage": (configure_leakage, run_leakage, "report test ids inside a training list"),
    "soundnet": (configure_soundnet, run_soundnet, "convert the published SoundNet-8 weights (.t7 or .npy) to a state dict"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="data_command", metavar="STEP")
    for name, (conf, run_fn, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        conf(p)
        p.set_defaults(_data_run=run_fn)


def _call(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a step; a missing or bad input file ends it with its message and status 2, not a traceback."""
    try:
        return int(fn(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "_data_run", None)
    if fn is None:
        print(__doc__)
        return 0
    return _call(fn, args)


def script_main(step: str, argv: list[str] | None = None, description: str | None = None) -> int:
    """Entry point of the ``data_scripts/*.py`` files: the same arguments as ``soundloc data STEP``."""
    conf, run_fn, help_text = SUBCOMMANDS[step]
    parser = argparse.ArgumentParser(description=description or help_text)
    conf(parser)
    return _call(run_fn, parser.parse_args(argv))

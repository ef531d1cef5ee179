"""Localize a sound in your own image or video with a trained model (Senocak et al., CVPR 2018).

Give an image and a sound file (any rate and channel count: converted to the model's mono rate),
or a video (its middle frame and its sound, extracted with ffmpeg as the data scripts do; a
sound file given after it replaces its sound), or a folder of pairs (images with a sound file of
the same name, videos, or a prepared folder with index.csv). Writes the overlay (PNG) and the
raw attention map on the model's grid (.npy, same name); for a folder, one of each per pair in
the --out folder and maps.npz, which `soundloc evaluate --heatmaps` scores: the command to run is
printed, with the list of the pairs that have an annotation (annotated_ids.txt) when some have none.

The overlay shows the map as attention per cell in multiples of the uniform share 1/(h w) (the
colour bar marks the uniform level), on a scale from 0 to 4x uniform, or to the map's peak when
higher: a flat map stays in the low colours. --vmax fixes the top of the scale, to compare several
clips on one scale. Its title names the image, the sound and the checkpoint. The JSON (--format
json) carries them with the peak, the peak as a multiple of uniform, the map's entropy and how far
the sound moved the map from the one the model gives to silence. A sound whose loudest sample is
below -40 dBFS (1% of full scale) gets a warning: the map of silence is not a localization.

Without --checkpoint the bundled model is used (soundloc/assets/synthetic_cpu.pt): the cpu
preset trained semi-supervised on the synthetic world (64x64 scenes, 1 s sounds, seed 0) by

  soundloc train --out asset_run --scheme semi_supervised --labelled 300 --val-size 100 --epochs 8 --temperature 0.1 --threads 1 --quiet

(its config: soundloc/assets/synthetic_cpu.json; how it scores: soundloc/assets/README.md).
It knows the synthetic world's objects and sounds only: for real photos train on real data
first (soundloc train) and pass --checkpoint RUN/best.pt.

  soundloc localize scene.png scene.wav --out overlay.png
  soundloc localize clip.mp4 --checkpoint runs/flickr/best.pt --out overlay.png --format json
  soundloc localize my_pairs/ --checkpoint runs/flickr/best.pt --out maps/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from soundloc.commands.common import UsageError, check_output_dir, check_output_file, fail

#: The one line of ``soundloc --help``.
HELP = "where is the sound? attention map of a trained model on your image/video and sound"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' lines
    parser.add_argument("input", help="an image, a video, or a folder of pairs")
    parser.add_argument("audio", nargs="?", default=None, help="the sound file (for an image; optional for a video)")
    parser.add_argument("--checkpoint", default=None,
                        help="a trained model (a run's best.pt or last.pt); default: the bundled model, trained on "
                             "the synthetic world only (see above)")
    parser.add_argument("--out", required=True, help="overlay PNG (one input) or a folder (a folder of pairs)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="what to print: a line per pair (default) or JSON with the peak and the map")
    parser.add_argument("--pad", action="store_true",
                        help="loop a clip shorter than the sound network's minimum up to it (default: refuse it)")
    parser.add_argument("--seconds", type=float, default=20.0, help="sound taken from a video, in seconds (default 20)")
    parser.add_argument("--ffmpeg", default=None, help="path of ffmpeg for videos (default: found automatically)")
    parser.add_argument("--vmax", type=float, default=None,
                        help="top of the overlay's colour scale, as a multiple of the uniform attention per cell "
                             "(> 1; default the larger of 4 and the map's peak): the same for every figure to compare them")


def _check(args: argparse.Namespace, src: Path) -> None:
    """The checks of the values typed (UsageError)."""
    if not src.exists():
        raise UsageError(f"{src}: no such file or folder")
    if src.is_dir() and args.audio is not None:
        raise UsageError("a folder of pairs takes no audio argument (each image has its own sound file)")
    if not args.seconds > 0:
        raise UsageError(f"--seconds must be > 0, got {args.seconds}")
    if args.vmax is not None and not args.vmax > 1:
        raise UsageError(f"--vmax is a multiple of the uniform level and must be > 1, got {args.vmax}")
    if src.is_dir():
        check_output_dir("--out", args.out)
    elif Path(args.out).suffix.lower() != ".png":
        raise UsageError(f"--out {args.out}: the overlay is a .png file")
    else:
        check_output_file("--out", args.out)


def _print(results: list[dict[str, Any]], as_json: bool, folder: bool) -> None:
    """The results as JSON, or one line per pair."""
    if as_json:
        print(json.dumps(results if folder else results[0], indent=1))
        return
    for r in results:
        p = r["peak"]
        print(f"{r['name']}: peak at grid cell (row {p['row']}, col {p['col']}) of {r['grid'][0]}x{r['grid'][1]}, "
              f"pixel ({p['x']:.0f}, {p['y']:.0f}), mass {p['mass']:.3f} = {p['vs_uniform']:.1f}x uniform, "
              f"entropy {r['entropy'] / r['entropy_of_uniform']:.2f} of uniform's -> {r['files']['overlay']}")


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    try:
        _check(args, src)
    except UsageError as exc:
        return fail("localize", exc)

    import matplotlib

    matplotlib.use("Agg")
    from soundloc.experiments import localize as loc

    checkpoint = args.checkpoint or loc.BUNDLED_CHECKPOINT
    label = args.checkpoint or f"bundled {loc.BUNDLED_CHECKPOINT.name} (synthetic world only)"
    try:
        model = loc.load_localizer(checkpoint)
        pairs = loc.find_pairs(src) if src.is_dir() else [(src.stem, src, Path(args.audio) if args.audio else None)]
    except (ValueError, FileNotFoundError) as exc:
        return fail("localize", exc)

    results, maps, skipped = [], {}, 0
    for name, visual, audio in pairs:
        try:
            pair = loc.read_input(visual, audio, model.config, pad=args.pad, seconds=args.seconds, ffmpeg=args.ffmpeg)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            if not src.is_dir():
                return fail("localize", exc)
            print(f"soundloc localize: warning: skipped {name}: {' '.join(str(exc).split())}", file=sys.stderr)
            skipped += 1
            continue
        pair.name = name
        result = {**loc.localize(model, pair), "checkpoint": label}
        warning = loc.silence_warning(result)
        if warning:
            print(f"soundloc localize: warning: {name} ({result['sound']}): {warning}", file=sys.stderr)
        out = Path(args.out) / f"{name}.png" if src.is_dir() else Path(args.out)
        files = loc.write_outputs(result, pair, out, checkpoint=label, vmax=args.vmax)
        maps[name] = result["attention"]
        results.append(loc.as_json(result, files))
    if src.is_dir() and not results:
        return fail("localize", f"{src}: none of its {len(pairs)} pairs could be read")
    npz = loc.write_maps(Path(args.out) / "maps.npz", maps) if src.is_dir() else None
    _print(results, args.format == "json", src.is_dir())
    if npz is not None:
        print(f"{len(results)} localized, {skipped} skipped; maps in {npz} ({score_them(npz, src, list(maps))})",
              file=sys.stderr)
    return 0


def score_them(npz: Path, folder: Path, ids: list[str]) -> str:
    """How to score the maps of a folder: the ``soundloc evaluate`` command, with ``--ids`` naming
    the pairs that have an annotation when some have none (they cannot be scored: e.g. the
    synthetic world's off-screen sounds); that list is written beside the maps."""
    from soundloc.data.layout import read_annotations, write_id_list

    path = folder / "annotations.json"
    if not path.is_file():
        return f"score them against annotations: soundloc evaluate --heatmaps {npz} --annotations ANNOTATIONS.json"
    annotated = set(read_annotations(path))
    scored = [i for i in ids if i in annotated]
    command = f"score them: soundloc evaluate --heatmaps {npz} --annotations {path}"
    if not scored:
        return f"none has an annotation in {path}: nothing to score"
    if len(scored) < len(ids):
        listed = write_id_list(npz.parent / "annotated_ids.txt", scored)
        return f"{len(ids) - len(scored)} without annotation; {command} --ids {listed}"
    return command

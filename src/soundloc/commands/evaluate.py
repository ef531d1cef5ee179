"""Score saved heatmaps against annotations: cIoU@0.5, AUC, per-annotator IoU, baselines.

Implements the evaluation of Senocak et al. (CVPR 2018, Sec. 5) under the protocol later
work reports on (LVS; see soundloc.metrics.protocol). Prints a table with the model's row
beside the whole-image, centre-prior and random baselines, and the per-annotator scores
(the paper's Table 3); --json writes everything, per-sample cIoU included.

Heatmaps: a .npz file (one array [H, W] per id, keyed by id) or a .pt file holding a dict
id -> tensor [H, W] (read with torch.load(weights_only=True)). Any resolution; higher values
mean "more likely the sound source". Annotations: an annotations.json of the prepared-data
layout. Without --ids every heatmap is scored and each needs an annotation.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundloc.commands.common import UsageError, check_device, check_output_file, fail

#: The one line of ``soundloc --help``.
HELP = "score saved heatmaps against annotations (cIoU, AUC, baselines)"



def _grid(text: str) -> tuple[int, int]:
    """``20`` or ``20x20`` -> (20, 20)."""
    parts = text.lower().split("x")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"grid must be N or HxW, got {text!r}") from None
    if len(vals) == 1:
        vals = (vals[0], vals[0])
    if len(vals) != 2 or min(vals) <= 0:
        raise argparse.ArgumentTypeError(f"grid must be N or HxW with positive sizes, got {text!r}")
    return vals  # type: ignore[return-value]


def _threshold(text: str) -> str | float:
    if text == "median":
        return "median"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold must be 'median' or a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be in [0, 1], got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from soundloc.metrics.protocol import PRESETS

    parser.add_argument("--heatmaps", required=True, type=Path, help=".npz (arrays keyed by id) or .pt (dict id -> tensor [H, W])")
    parser.add_argument("--annotations", required=True, type=Path, help="annotations.json of the prepared-data layout")
    parser.add_argument("--ids", type=Path, default=None, help="file with the ids to score, one per line (default: every heatmap)")
    parser.add_argument("--protocol", choices=list(PRESETS), default="lvs", help="evaluation protocol (default: lvs)")
    parser.add_argument("--threshold", type=_threshold, default=None, help="override the protocol's threshold: 'median' or a fixed tau in [0, 1]")
    parser.add_argument("--random-grid", type=_grid, default=None,
                        help="grid of the random baseline's maps, N or HxW (default: the heatmaps' own grid, "
                             "e.g. 20x20 for the paper's model, 8x8 for the cpu preset's)")
    parser.add_argument("--random-repeats", type=int, default=10, help="draws of the random baseline (default: 10)")
    parser.add_argument("--centre-sigma", type=float, default=None, help="sigma of the centre prior in pixels (default: size/4)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline (default: 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    parser.add_argument("--name", default="model", help="label of the model's row")
    parser.add_argument("--json", type=Path, default=None, help="write the results here (atomically)")


def maps_grid(heatmaps: dict[str, Any], ids: list[str], path: Path) -> tuple[int, int]:
    """The grid the heatmaps were made on (the random baseline draws on the same grid): the
    shape shared by the scored maps; ``ValueError`` when they differ (give --random-grid)."""
    shapes = sorted({tuple(int(n) for n in heatmaps[i].shape) for i in ids if i in heatmaps})
    if len(shapes) > 1:
        raise ValueError(f"{path}: heatmaps of several shapes {shapes[:3]}: give the model's grid with --random-grid")
    return shapes[0] if shapes else (20, 20)  # type: ignore[return-value]


def load_heatmaps(path: Path) -> dict[str, Any]:
    """Read a heatmaps file into ``{id: array or tensor}``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: unknown extension, unreadable file, or content that is not id -> 2-D map
            (the message names the file).
    """
    import numpy as np
    import torch

    from soundloc.utils.files import read_torch_file

    if not path.is_file():
        raise FileNotFoundError(f"{path}: heatmaps file not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                maps: dict[str, Any] = {k: np.array(data[k]) for k in data.files}
        except Exception as exc:  # zipfile/pickle/format errors all mean "not a valid .npz"
            raise ValueError(f"{path}: cannot read as .npz ({type(exc).__name__}: {exc})") from exc
    elif suffix in (".pt", ".pth"):
        obj = read_torch_file(path, "heatmaps file")
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            raise ValueError(f"{path}: expected a dict id -> tensor [H, W]")
        maps = dict(obj)
    else:
        raise ValueError(f"{path}: heatmaps must be a .npz or .pt file")
    if not maps:
        raise ValueError(f"{path}: no heatmaps in the file")
    for key, value in maps.items():
        if value.ndim != 2:
            raise ValueError(f"{path}: heatmap {key!r} must be [H, W], got shape {tuple(value.shape)}")
    return maps


def run(args: argparse.Namespace) -> int:
    from soundloc.data.layout import read_annotations, read_id_list
    from soundloc.metrics import evaluate, format_table, get_protocol
    from soundloc.utils.files import write_json

    try:
        check_device("--device", args.device)
        if args.json is not None:
            check_output_file("--json", args.json)
        protocol = get_protocol(args.protocol)
        if args.threshold is not None:
            protocol = protocol.replace(threshold=args.threshold)
        if args.random_repeats < 1:
            raise ValueError(f"--random-repeats must be >= 1, got {args.random_repeats}")
        heatmaps = load_heatmaps(args.heatmaps)
        annotations = read_annotations(args.annotations)
        ids = read_id_list(args.ids) if args.ids is not None else list(heatmaps)
        if not ids:
            raise ValueError(f"{args.ids}: no ids in the list")
        random_grid = args.random_grid or maps_grid(heatmaps, ids, args.heatmaps)
        try:
            result = evaluate(
                heatmaps,
                annotations,
                protocol,
                ids=ids,
                baselines=not args.no_baselines,
                seed=args.seed,
                random_repeats=args.random_repeats,
                random_grid=random_grid,
                centre_sigma=args.centre_sigma,
                device=args.device,
                name=args.name,
            )
        except ValueError as exc:
            raise ValueError(f"{exc} (heatmaps: {args.heatmaps}, annotations: {args.annotations})") from exc
    except (UsageError, ValueError, TypeError, FileNotFoundError) as exc:
        return fail("evaluate", exc)
    print(format_table(result))
    if args.json is not None:
        doc = result.to_dict()
        doc["inputs"] = {
            "heatmaps": str(args.heatmaps),
            "annotations": str(args.annotations),
            "ids": None if args.ids is None else str(args.ids),
            "seed": args.seed,
            "random_grid": list(random_grid),
            "random_repeats": args.random_repeats,
        }
        write_json(args.json, doc)
        print(f"wrote {args.json}")
    return 0

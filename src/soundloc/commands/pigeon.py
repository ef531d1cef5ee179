"""Reproduce the pigeon superstition on the synthetic world (Senocak et al., CVPR 2018, Sec. 4-5).

Trains the unsupervised, supervised and semi-supervised schemes on the built-in synthetic world
with the same seed and budget, evaluates them on held-out annotated scenes (cIoU@0.5, AUC, and
where the attention goes: on the sounding object or on the co-occurring context), and writes
DIR/results.json, DIR/models/*.pt and the figures DIR/attention.png and DIR/training_curves.png.

  soundloc pigeon --scale smoke --seed 0 --out runs/pigeon-0

With --factorial, the superstition by its cause: per seed, the visual pretraining (neutral or
biased) crossed with the training co-occurrence (1/K or p), the three schemes in each of the four
cells (DIR/results.json); with --seeds, DIR/seed<N>/ each and the tests over seeds in
DIR/summary.md and DIR/summary.json.

  soundloc pigeon --factorial --scale smoke --seed 0 --out runs/factorial/seed0
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Any

from soundloc.commands.common import UsageError, check_device, check_non_negative, check_output_dir, fail, parse_seeds
from soundloc.constants import SCALES

#: PigeonConfig field -> the option that sets it (for error messages)
_OPTIONS = {
    "epochs": "--epochs", "n_train": "--n-train", "n_labelled": "--n-labelled", "n_test": "--n-test",
    "batch_size": "--batch-size", "lr": "--lr", "threads": "--threads", "workers": "--workers",
    "temperature": "--temperature", "context_p": "--context-p",
}

#: The one line of ``soundloc --help``.
HELP = "reproduce the pigeon superstition on the synthetic world"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="smoke",
                        help="tiny (about a minute), smoke (CPU: minutes), full (GPU-sized); default smoke")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world, the initial weights and training (default 0)")
    parser.add_argument("--seeds", default=None, metavar="LIST",
                        help="run several seeds, e.g. 0-4 or 0,2,7: OUT/seed<N>/ each, then OUT/summary.md and "
                             "OUT/summary.json (the targets per seed, counts, means ± std); pretrained visual "
                             "streams are cached in OUT/pretrain_cache unless --pretrain-cache is given")
    parser.add_argument("--out", required=True, help="output folder (results.json, models/, figures)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when visible, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, default=None, help="override the scale's epochs (every scheme)")
    parser.add_argument("--n-train", type=int, default=None, help="override the number of training scenes")
    parser.add_argument("--n-labelled", type=int, default=None, help="override the number of labelled training scenes")
    parser.add_argument("--n-test", type=int, default=None, help="override the number of held-out scenes")
    parser.add_argument("--batch-size", type=int, default=None, help="override the batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the learning rate")
    parser.add_argument("--temperature", type=float, default=None,
                        help="softmax temperature of the attention (the scales use 0.1; the paper's is 1)")
    parser.add_argument("--context-p", type=float, default=None,
                        help="probability that the context shows the sounding class (default 0.9)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="train the visual stream from scratch with the rest of the model, instead of "
                             "pretraining it as an image classifier and freezing it (the paper's setup, the default)")
    parser.add_argument("--fine-tune-visual", action="store_true",
                        help="pretrain the visual stream, then train it with the rest of the model instead of freezing it")
    parser.add_argument("--pretrain-context-p", type=float, default=None,
                        help="context_p of the pretraining images (default: the world's own; 1/K = uninformative context)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that render the world (default 0: none; results do not depend on it)")
    parser.add_argument("--pretrain-cache", default=None,
                        help="folder where pretrained visual streams are kept and reused by identical pretrainings")
    parser.add_argument("--factorial", action="store_true",
                        help="run the 2 x 2 factorial (pretraining neutral/biased x training co-occurrence 1/K or "
                             "--context-p) of each seed instead of one setup")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the numbers are the same)")


def build_config(args: argparse.Namespace) -> Any:
    """The :class:`~soundloc.experiments.pigeon.PigeonConfig` the options ask for."""
    from soundloc.experiments.pigeon import PigeonConfig

    if args.from_scratch and (args.pretrain_context_p is not None or args.fine_tune_visual):
        raise UsageError("--from-scratch excludes --pretrain-context-p and --fine-tune-visual")
    if args.factorial and (args.from_scratch or args.fine_tune_visual or args.pretrain_context_p is not None):
        raise UsageError("--factorial sets the pretraining itself: it excludes --from-scratch, --fine-tune-visual "
                         "and --pretrain-context-p")
    for option in ("context_p", "pretrain_context_p"):
        value = getattr(args, option)
        if value is not None and not 0.0 <= value <= 1.0:
            raise UsageError(f"--{option.replace('_', '-')} must be a probability in [0, 1], got {value:g}")
    fields = {
        "epochs": args.epochs, "n_train": args.n_train, "n_labelled": args.n_labelled, "n_test": args.n_test,
        "batch_size": args.batch_size, "lr": args.lr, "device": args.device, "threads": args.threads,
        "workers": args.workers, "pretrain_cache": args.pretrain_cache,
    }
    kw: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    model: dict[str, Any] = {}
    if args.temperature is not None:
        model["temperature"] = args.temperature
    if args.fine_tune_visual or args.from_scratch:
        model["freeze_visual"] = False
    if model:
        kw["model"] = model
    if args.context_p is not None:
        kw["world"] = {"context_p": args.context_p}
    if args.from_scratch:
        kw["pretraining"] = None
    elif args.pretrain_context_p is not None:
        kw["pretraining"] = {"world": {"context_p": args.pretrain_context_p}}
    return PigeonConfig.at_scale(args.scale, **kw)


def _explain(message: str, args: argparse.Namespace) -> str:
    """Name the options behind the config fields a message mentions, and who set them."""
    notes = []
    for name, option in _OPTIONS.items():
        if re.search(rf"\b{name}\b", message):
            given = getattr(args, option[2:].replace("-", "_"), None)
            notes.append(f"{option}: {'given' if given is not None else f'the {args.scale} scale default'}")
    return f"{message} ({'; '.join(notes)})" if notes else message


def run(args: argparse.Namespace) -> int:
    try:
        check_non_negative("--seed", args.seed)
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        check_output_dir("--out", args.out)
        check_device("--device", args.device)
        config = build_config(args)
    except UsageError as exc:
        return fail("pigeon", exc)
    except (TypeError, ValueError) as exc:
        return fail("pigeon", _explain(str(exc), args))

    import matplotlib

    matplotlib.use("Agg")  # figures are only written to files
    from soundloc.experiments.pigeon import format_results, run_pigeon

    command = "soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["pigeon"] else None
    if args.factorial:
        return _run_factorial(args, config, seeds, command)
    if seeds is None:
        results = run_pigeon(config, args.out, seed=args.seed, command=command, progress=not args.quiet)
        print(format_results(results))
        print(f"wrote {args.out}/results.json")
        return 0
    from soundloc.experiments.pigeon import run_seeds

    summary = run_seeds(config, args.out, seeds, command=command, progress=not args.quiet)
    print(summary["table"])
    for seed, folder in summary["folders"].items():
        print(f"seed {seed}: {folder}")
    print(f"wrote {args.out}/summary.md and {args.out}/summary.json")
    return 0


def _run_factorial(args: argparse.Namespace, config: Any, seeds: list[int] | None, command: str | None) -> int:
    """``--factorial``: one seed into ``--out``, or each of ``--seeds`` into ``OUT/seed<N>``
    (a finished seed of the same experiment is read, not run again) and the summary."""
    import dataclasses
    from pathlib import Path

    from soundloc.experiments.pigeon.factorial import effect_table, load_factorial, run_factorial, write_summary
    from soundloc.utils.files import read_json

    if seeds is None:
        results = run_factorial(config, args.out, args.seed, command=command, progress=not args.quiet)
        for name, e in results["effects"].items():
            print(f"{name}: band density {e['band_density']:+.3f}, object density {e['object_density']:+.3f}")
        print(f"wrote {args.out}/results.json")
        return 0
    if config.pretrain_cache is None:
        config = dataclasses.replace(config, pretrain_cache=str(Path(args.out) / "pretrain_cache"))
    same = {k: v for k, v in config.to_dict().items() if k not in _NOT_RESULTS}
    for seed in seeds:
        folder = Path(args.out) / f"seed{seed}"
        done = folder / "results.json"
        if done.is_file():
            old = read_json(done).get("config", {})
            if {k: v for k, v in old.items() if k not in _NOT_RESULTS} == same:
                print(f"seed {seed}: {folder} (read, already run)")
                continue
        run_factorial(config, folder, seed, command=f"{command} [seed {seed}]" if command else None,
                      progress=not args.quiet)
        print(f"seed {seed}: {folder}")
    if len(seeds) < 2:
        print(f"wrote {args.out}/seed{seeds[0]}/results.json")
        return 0
    summary = write_summary(args.out, load_factorial(args.out, seeds), command=command)
    print(effect_table(summary))
    print(f"primary conclusion (co-occurrence, band density): {summary['conclusion']['cooccurrence']}")
    print(f"wrote {args.out}/summary.md and {args.out}/summary.json")
    return 0


#: PigeonConfig fields that do not change a run's numbers
_NOT_RESULTS = ("device", "threads", "workers", "pretrain_cache", "feature_cache")

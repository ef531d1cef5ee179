"""Train the sound localization model on any data, with any of the paper's schemes
(Senocak et al., CVPR 2018, Sec. 3-4).

Data: the built-in synthetic world (default), a prepared folder (--data DIR, made by
data_scripts/ or soundloc synth) or its packed cache (--data DIR --packed). The annotated set
(--annotated DIR, default the data folder) gives the test list (splits/test.txt, scored once at
the end) and the supervision pool, from which --labelled pairs train L_S and --val-size pairs,
held out of training, pick the best epoch (cIoU@0.5 / AUC).

A config file (--config FILE, JSON or YAML) gives any field of soundloc.experiments.engine's
TrainRunConfig; options override it. The run folder gets config.json (with the thread count the
run trains with), last.pt (resumable), best.pt (the best model by validation), log.csv and
results.json.

  soundloc train --out runs/semi --scheme semi_supervised --labelled 300 --epochs 8
  soundloc train --out runs/flickr --data data/flickr --annotated data/ssl --preset paper --labelled 2500
  soundloc train --resume runs/semi --epochs 12

Ctrl-C stops after the current step, with the checkpoint written there, and prints the resume
command (exit status 130); a second Ctrl-C stops at once (the last checkpoint is kept). --resume
continues with every setting recorded in config.json, threads included, so the run ends as the
uninterrupted one would on the same machine. With it, --epochs (extend the run), --device,
--threads, --checkpoint-every and --workers are applied and recorded; any other option must
repeat the recorded value (a new run is another --out).

On a GPU, --fast turns on the engine's speed settings (bfloat16 autocast, channels-last,
cuDNN autotuning, loss terms synced every 50 steps, persistent workers, uint8 frames from the
packed cache) and --compile adds torch.compile; benchmarks/bench_train.py measures them.

  soundloc train --out runs/flickr --data data/flickr --packed --preset paper --workers 8 --fast

Several GPUs or machines: the same command under torchrun (one process per GPU; the batch size
stays the global batch), e.g. ``torchrun --nproc_per_node=4 -m soundloc train --out runs/semi``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from soundloc.commands.common import UsageError, check_device, check_output_dir, fail
from soundloc.constants import SCHEMES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' lines
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the run folder to create")
    where.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last.pt")
    parser.add_argument("--config", help="a JSON or YAML file of TrainRunConfig fields (options override it)")
    parser.add_argument("--data", default=None, help="'synthetic' (default) or a prepared folder of training pairs")
    parser.add_argument("--packed", action="store_true", help="read --data through its packed cache (PackedDataset)")
    parser.add_argument("--annotated", default=None, help="the prepared annotated set (default: the --data folder)")
    parser.add_argument("--n-unlabelled", type=int, default=None, help="use the first N unlabelled pairs (default all)")
    parser.add_argument("--preset", choices=("paper", "cpu"), default=None,
                        help="model: paper (VGG16 at 320x320 + SoundNet-8 on 20 s) or cpu (small, from scratch; default)")
    parser.add_argument("--scheme", choices=SCHEMES, default=None, help="learning scheme (default semi_supervised)")
    parser.add_argument("--labelled", type=int, default=None, help="labelled pairs drawn from the supervision pool (default 300)")
    parser.add_argument("--val-size", type=int, default=None, help="validation pairs drawn from the pool (default 100)")
    parser.add_argument("--mechanism", choices=("cosine", "relu"), default=None, help="attention mechanism 1 or 2")
    parser.add_argument("--temperature", type=float, default=None, help="softmax temperature of the attention (paper: 1)")
    parser.add_argument("--freeze-visual", action=argparse.BooleanOptionalAction, default=None,
                        help="freeze the visual stream (paper preset: frozen)")
    parser.add_argument("--freeze-sound", action=argparse.BooleanOptionalAction, default=None,
                        help="freeze the sound stream (paper preset: frozen)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs, >= 1 (default 8, paper preset 10; with --resume: extend the run)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 32, paper preset 30)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3, paper preset 1e-4 as the authors)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=None, help="optimizer (default adam)")
    parser.add_argument("--scheduler", choices=("cosine", "step"), default=None, help="LR schedule (default constant)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the weights, the order and the draws (default 0)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="also checkpoint every N steps (default 200)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default 0)")
    parser.add_argument("--n-scenes", type=int, default=None, help="synthetic world: scenes in all (default 1200)")
    parser.add_argument("--n-test", type=int, default=None, help="synthetic world: held-out scenes (default 200)")
    parser.add_argument("--world-seed", type=int, default=None, help="synthetic world: its seed (default 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when visible, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the numbers are the same)")
    parser.add_argument("--fast", action="store_true",
                        help="CUDA speed settings: bf16 autocast, channels-last, cuDNN autotune, loss synced every "
                             "50 steps, persistent workers, uint8 frames with --packed (numbers change by rounding)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (with --fast on a GPU)")


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    """Set ``d[a][b]...`` for ``path`` ``"a.b"`` when ``value`` is given."""
    if value is None:
        return
    *parents, key = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise UsageError(f"config field {p!r} must be a mapping")
    d[key] = value


#: The options that set one field of the run's config: (argparse dest, dotted TrainRunConfig field).
OPTION_FIELDS = (("annotated", "data.annotated"), ("n_unlabelled", "data.n_unlabelled"),
                 ("n_scenes", "data.n_scenes"), ("n_test", "data.n_test"), ("world_seed", "data.world_seed"),
                 ("preset", "preset"), ("labelled", "labelled"), ("val_size", "val_size"),
                 ("mechanism", "model.mechanism"), ("temperature", "model.temperature"),
                 ("freeze_visual", "model.freeze_visual"), ("freeze_sound", "model.freeze_sound"),
                 ("scheme", "train.scheme"), ("epochs", "train.epochs"), ("batch_size", "train.batch_size"),
                 ("lr", "train.lr"), ("optimizer", "train.optimizer"), ("scheduler", "train.scheduler"),
                 ("seed", "train.seed"), ("checkpoint_every", "train.checkpoint_every"),
                 ("workers", "train.num_workers"), ("device", "train.device"), ("threads", "threads"))


def config_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's fields (if any) with the options' values over them."""
    from soundloc.experiments.engine import load_config_file

    d: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if args.data is not None:
        _set(d, "data.source", "synthetic" if args.data == "synthetic" else ("packed" if args.packed else "folder"))
        if args.data != "synthetic":
            _set(d, "data.root", args.data)
    elif args.packed:
        raise UsageError("--packed needs --data DIR")
    for option, path in OPTION_FIELDS:
        _set(d, path, getattr(args, option))
    if getattr(args, "fast", False):
        for path, value in FAST_SETTINGS:
            _set(d, path, value)
        if args.packed:
            _set(d, "data.uint8_frames", True)
    if getattr(args, "compile", False):
        _set(d, "train.compile", True)
    if d.get("train", {}).get("scheme") == "unsupervised":
        d.setdefault("labelled", 0)
    return d


#: What ``--fast`` sets (TrainConfig fields; see soundloc.train.TrainConfig's speed settings).
FAST_SETTINGS = (("train.amp", True), ("train.amp_dtype", "bfloat16"), ("train.channels_last", True),
                 ("train.cudnn_benchmark", True), ("train.sync_every", 50), ("train.persistent_workers", True))


def _cuda(device: str | None) -> bool:
    """Whether the run's device (``--device``, else the default) is a CUDA GPU."""
    import torch

    return torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()


def _command() -> str | None:
    return "soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else None


def _flag(option: str, value: Any) -> str:
    name = option.replace("_", "-")
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    return f"--{name} {value}"


def resume_changes(args: argparse.Namespace, run: str) -> dict[str, Any]:
    """The options given with ``--resume``: those a resume may change (engine.RESUMABLE) as
    changes to record; any other must repeat the value recorded in the run's config.json."""
    from soundloc.experiments import engine

    for option in ("config", "data", "annotated"):
        if getattr(args, option) is not None:
            raise UsageError(f"--resume continues the run as recorded in {run}/config.json: drop --{option}")
    for option in ("packed", "fast", "compile"):
        if getattr(args, option):
            raise UsageError(f"--resume continues the run as recorded in {run}/config.json: drop --{option}")
    recorded = engine.recorded_config(run).to_dict()
    changes: dict[str, Any] = {}
    for option, path in OPTION_FIELDS:
        value = getattr(args, option)
        if value is None:
            continue
        if path in engine.RESUMABLE:
            changes[path] = value
            continue
        was: Any = recorded
        for key in path.split("."):
            was = was[key]
        if was != value:
            raise UsageError(f"{_flag(option, value)}: the run in {run} was made with {path} = {was!r}, and --resume "
                             "continues it as recorded (only --epochs, --device, --threads, --checkpoint-every and "
                             "--workers may change); start a new run with --out to change it")
    return changes


def _interrupted(run: str, position: tuple[int, int] | None) -> int:
    """Ctrl-C: one line saying where the run stands and how to go on; exit status 130."""
    from soundloc.experiments import engine

    if not (Path(run) / engine.CONFIG_FILE).is_file():
        print(f"interrupted before the run started: nothing was written to {run}", file=sys.stderr)
    else:
        epoch, step = position or engine.run_position(run)
        print(f"interrupted at epoch {epoch} step {step}; resume with: soundloc train --resume {shlex.quote(run)}",
              file=sys.stderr)
    return 130


def run(args: argparse.Namespace) -> int:
    try:
        check_device("--device", args.device)
        if args.threads is not None and args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        if args.epochs is not None and args.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
        if args.fast and not _cuda(args.device):
            raise UsageError("--fast: its settings (bf16 autocast, channels-last, cuDNN) are for a CUDA device; "
                             "this run is on the CPU")
        if args.resume is None:
            check_output_dir("--out", args.out)
    except UsageError as exc:
        return fail("train", exc)

    import torch

    from soundloc.experiments import engine
    from soundloc.train import TrainingInterrupted, init_distributed

    rank, world_size = init_distributed()  # torchrun: one process per GPU, the same command
    out: str = args.resume if args.resume is not None else args.out
    try:
        try:
            if args.resume is not None:
                config = engine.open_run(out, resume_changes(args, out))
            else:
                engine.check_new_run(out)
                config = engine.build_run_config(config_dict(args))
            config = engine.use_threads(config)  # before the data: the run's threads from the start
            data = engine.build_data(config)
        except (UsageError, ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            return fail("train", message)

        quiet = args.quiet or rank != 0
        if not quiet:
            print(f"{config.train.scheme} on {config.data.source} data ({config.preset} model): "
                  + ", ".join(f"{k} {v}" for k, v in data.sizes.items()))
        if args.resume is not None:
            results = engine.resume_run(out, config, command=_command(), progress=not quiet, data=data)
        else:
            results = engine.run_training(config, out, command=_command(), progress=not quiet, data=data)
    except KeyboardInterrupt as exc:
        position = (exc.epoch, exc.step) if isinstance(exc, TrainingInterrupted) else None
        return _interrupted(out, position) if rank == 0 else 130
    if world_size > 1:
        torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    test, best = results["test"], results["best"]
    print(f"best epoch {best['epoch']} by {best['select_by']} ({best['score']})")
    print(f"test: cIoU@0.5 {test['ciou_at_0.5']:.3f}  AUC {test['auc']:.3f}  (n = {test['n']})")
    for name, b in test["baselines"].items():
        print(f"  {name}: cIoU@0.5 {b['success']:.3f}  AUC {b['auc']:.3f}")
    written = [f"{out}/{name}" for name in (engine.RESULTS_FILE, engine.BEST_MODEL, engine.LAST_CHECKPOINT,
                                            engine.LOG_FILE) if (Path(out) / name).is_file()]
    print("wrote " + ", ".join(written))
    return 0

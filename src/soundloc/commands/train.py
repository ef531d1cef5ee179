"""Train the sound localization model on any data, with any of the paper's schemes
(Senocak et al., CVPR 2018, Sec. 3-4).

Data: the built-in synthetic world (default), a prepared folder (--data DIR, made by
data_scripts/ or soundloc synth) or its packed cache (--data DIR --packed). The annotated set
(--annotated DIR, default the data folder) gives the test list (splits/test.txt, scored once at
the end) and the supervision pool, from which --labelled pairs train L_S and --val-size pairs,
held out of training, pick the best epoch (cIoU@0.5 / AUC).

A config file (--config FILE, JSON or YAML) gives any field of soundloc.experiments.run.RunConfig
(its model and train fields change the preset's); options override it. The run folder gets
config.json (with the thread count the run trains with), last.pt (resumable), best.pt (the best
model by validation), log.csv and results.json.

  soundloc train --out runs/semi --scheme semi_supervised --labelled 300 --epochs 8
  soundloc train --out runs/flickr --data data/flickr --annotated data/ssl --preset paper --labelled 2500
  soundloc train --resume runs/semi --epochs 12

Ctrl-C stops after the current step, with the checkpoint written there, and prints the resume
command (exit status 130); a second Ctrl-C stops at once (the last checkpoint is kept). --resume
continues with every setting recorded in config.json, threads included, so the run ends as the
uninterrupted one would on the same machine. With it, --epochs (extend the run), --device,
--threads, --checkpoint-every and --workers are applied and recorded; any other option must
repeat the recorded value (a new run is another --out).

On a GPU, --fast turns on the trainer's speed settings (bfloat16 autocast, channels-last,
cuDNN autotuning, loss terms synced every 50 steps, persistent workers, uint8 frames from the
packed cache) and --compile adds torch.compile; benchmarks/bench_train.py measures them.

  soundloc train --out runs/flickr --data data/flickr --packed --preset paper --workers 8 --fast

Several GPUs or machines: the same command under torchrun (one process per GPU; the batch size
stays the global batch), e.g. ``torchrun --nproc_per_node=4 -m soundloc train --out runs/semi``.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

from soundloc.commands.common import UsageError, check_device, check_output_dir, fail
from soundloc.constants import PRESETS, SCHEMES

#: The one line of ``soundloc --help``.
HELP = "train a model on the synthetic world or prepared data; resume a run"


def _default(cpu: Any, paper: Any) -> str:
    """The help's statement of a default that may differ between the presets."""
    return f"default {cpu}" if cpu == paper else f"default {cpu}; {paper} with --preset paper"


def configure(parser: argparse.ArgumentParser) -> None:
    from soundloc.experiments.run import DataConfig, RunConfig
    from soundloc.train import TrainConfig

    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' lines
    cpu, paper, run, data = TrainConfig.cpu(), TrainConfig.paper(), RunConfig(), DataConfig()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the run folder to create")
    where.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last.pt")
    parser.add_argument("--config", help="a JSON or YAML file of RunConfig fields (options override it)")
    parser.add_argument("--data", help=f"'synthetic' or a prepared folder of training pairs (default {data.source})")
    parser.add_argument("--packed", action="store_true", help="read --data through its packed cache (PackedDataset)")
    parser.add_argument("--annotated", help="the prepared annotated set (default: the --data folder)")
    parser.add_argument("--n-unlabelled", type=int, help="use the first N unlabelled pairs (default all)")
    parser.add_argument("--preset", choices=PRESETS, help=f"model and training: paper (VGG16 at 320x320 + SoundNet-8 "
                        f"on 20 s, the authors' training) or cpu (small, from scratch; default {run.preset})")
    parser.add_argument("--scheme", choices=SCHEMES, help=f"learning scheme ({_default(cpu.scheme, paper.scheme)})")
    parser.add_argument("--labelled", type=int,
                        help=f"labelled pairs drawn from the supervision pool (default {run.labelled})")
    parser.add_argument("--val-size", type=int, help=f"validation pairs drawn from the pool (default {run.val_size})")
    parser.add_argument("--mechanism", choices=("cosine", "relu"), help="attention mechanism 1 or 2 (default cosine)")
    parser.add_argument("--temperature", type=float,
                        help="softmax temperature of the attention (default: the paper's 1)")
    parser.add_argument("--freeze-visual", action=argparse.BooleanOptionalAction,
                        help="freeze the visual stream (paper preset: frozen)")
    parser.add_argument("--freeze-sound", action=argparse.BooleanOptionalAction,
                        help="freeze the sound stream (paper preset: frozen)")
    parser.add_argument("--epochs", type=int, help=f"epochs, >= 1 ({_default(cpu.epochs, paper.epochs)}; "
                        "with --resume: extend the run)")
    parser.add_argument("--batch-size", type=int, help=f"pairs per step ({_default(cpu.batch_size, paper.batch_size)})")
    parser.add_argument("--lr", type=float, help=f"learning rate ({_default(cpu.lr, paper.lr)})")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), help=f"optimizer (default {cpu.optimizer})")
    parser.add_argument("--scheduler", choices=("cosine", "step"), help="LR schedule (default constant)")
    parser.add_argument("--seed", type=int, help=f"seed of the weights, the order and the draws (default {cpu.seed})")
    parser.add_argument("--checkpoint-every", type=int,
                        help=f"also checkpoint every N steps (default {cpu.checkpoint_every})")
    parser.add_argument("--workers", type=int, help=f"DataLoader worker processes (default {cpu.num_workers})")
    parser.add_argument("--n-scenes", type=int, help=f"synthetic world: scenes in all (default {data.n_scenes})")
    parser.add_argument("--n-test", type=int, help=f"synthetic world: held-out scenes (default {data.n_test})")
    parser.add_argument("--world-seed", type=int, help=f"synthetic world: its seed (default {data.world_seed})")
    parser.add_argument("--device", help="torch device (default: cuda when visible, else cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the numbers are the same)")
    parser.add_argument("--fast", action="store_true",
                        help="CUDA speed settings: bf16 autocast, channels-last, cuDNN autotune, loss synced every "
                             "50 steps, persistent workers, uint8 frames with --packed (numbers change by rounding)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (with --fast on a GPU)")


def given(**values: Any) -> dict[str, Any]:
    """The values of the options that were given (argparse leaves the others at None)."""
    return {k: v for k, v in values.items() if v is not None}


def with_options(fields: dict[str, Any], args: argparse.Namespace) -> Any:
    """The :class:`~soundloc.experiments.run.RunConfig` of ``fields`` (its typed fields, from
    a config file or a recorded run) with the values the options give; an option left out keeps
    the field's value. The config is built once, from the final values."""
    from soundloc.experiments.run import RunConfig
    from soundloc.train.config import FAST_CHANGES

    a, r = args, dataclasses.replace
    data = r(fields["data"], **given(annotated=a.annotated, n_unlabelled=a.n_unlabelled, n_scenes=a.n_scenes,
                                     n_test=a.n_test, world_seed=a.world_seed),
             **({"uint8_frames": True} if a.fast and a.packed else {}))
    model = r(fields["model"], **given(mechanism=a.mechanism, temperature=a.temperature,
                                       freeze_visual=a.freeze_visual, freeze_sound=a.freeze_sound))
    train = r(fields["train"], **given(scheme=a.scheme, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                       optimizer=a.optimizer, scheduler=a.scheduler, seed=a.seed,
                                       checkpoint_every=a.checkpoint_every, num_workers=a.workers, device=a.device),
              **(FAST_CHANGES if a.fast else {}), **({"compile": True} if a.compile else {}))
    return RunConfig(**{**fields, "data": data, "model": model, "train": train,
                        **given(labelled=a.labelled, val_size=a.val_size, threads=a.threads)})


def run_config(args: argparse.Namespace) -> Any:
    """A new run's config: the config file's fields (if any) over the preset's defaults, and
    the options over them. The preset and the data source are read first: they choose the
    defaults (the synthetic world sizes the model)."""
    from soundloc.experiments.run import RunConfig, load_config_file

    d: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if args.preset is not None:
        d["preset"] = args.preset
    if args.packed and args.data in (None, "synthetic"):
        raise UsageError("--packed needs --data DIR")
    if args.data is not None:
        source = {"source": "synthetic"} if args.data == "synthetic" else \
            {"source": "packed" if args.packed else "folder", "root": args.data}
        d["data"] = {**(d.get("data") or {}), **source}
    return with_options(RunConfig.fields_from(d), args)


def resume_config(args: argparse.Namespace, run: str) -> Any:
    """The config ``--resume`` asks for: the recorded one with the options' values, which
    :func:`~soundloc.experiments.run.open_run` accepts where a resume may change them."""
    from soundloc.experiments.run import recorded_config

    for option in ("config", "data", "annotated"):
        if getattr(args, option) is not None:
            raise UsageError(f"--resume continues the run as recorded in {run}/config.json: drop --{option}")
    for option in ("packed", "fast", "compile"):
        if getattr(args, option):
            raise UsageError(f"--resume continues the run as recorded in {run}/config.json: drop --{option}")
    recorded = recorded_config(run)
    if args.preset not in (None, recorded.preset):
        raise UsageError(f"--preset {args.preset}: the run in {run} was made with the {recorded.preset} preset, and "
                         "--resume continues it as recorded; start a new run with --out to change it")
    wanted = with_options(recorded.fields(), args)
    conflicts = recorded.resume_conflicts(wanted)
    if conflicts:
        raise UsageError(f"--resume {run} continues the run as recorded: {'; '.join(conflicts)}; only --epochs, "
                         "--device, --threads, --checkpoint-every and --workers may change (start a new run with "
                         "--out to change the rest)")
    return wanted


def _cuda(device: str | None) -> bool:
    """Whether the run's device (``--device``, else the default) is a CUDA GPU."""
    import torch

    return torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()


def _command() -> str | None:
    return "soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else None


def _interrupted(run: str, position: tuple[int, int] | None) -> int:
    """Ctrl-C: one line saying where the run stands and how to go on; exit status 130."""
    from soundloc.experiments import run as training_run

    if not (Path(run) / training_run.CONFIG_FILE).is_file():
        print(f"interrupted before the run started: nothing was written to {run}", file=sys.stderr)
    else:
        epoch, step = position or training_run.run_position(run)
        print(f"interrupted at epoch {epoch} step {step}; resume with: soundloc train --resume {shlex.quote(run)}",
              file=sys.stderr)
    return 130


def _check(args: argparse.Namespace) -> None:
    """The checks of the values typed that no config makes (UsageError)."""
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


def _report(results: dict[str, Any], out: str) -> None:
    """The test scores beside the baselines, and the files written."""
    from soundloc.experiments import run as training_run

    test, best = results["test"], results["best"]
    print(f"best epoch {best['epoch']} by {best['select_by']} ({best['score']})")
    print(f"test: cIoU@0.5 {test['ciou_at_0.5']:.3f}  AUC {test['auc']:.3f}  (n = {test['n']})")
    for name, b in test["baselines"].items():
        print(f"  {name}: cIoU@0.5 {b['success']:.3f}  AUC {b['auc']:.3f}")
    names = (training_run.RESULTS_FILE, training_run.BEST_MODEL, training_run.LAST_CHECKPOINT, training_run.LOG_FILE)
    print("wrote " + ", ".join(f"{out}/{name}" for name in names if (Path(out) / name).is_file()))


def run(args: argparse.Namespace) -> int:
    try:
        _check(args)
    except UsageError as exc:
        return fail("train", exc)

    import torch

    from soundloc.experiments import run as training_run
    from soundloc.train import TrainingInterrupted, init_distributed

    rank, world_size = init_distributed()  # torchrun: one process per GPU, the same command
    out: str = args.resume if args.resume is not None else args.out
    try:
        try:
            if args.resume is not None:
                config = training_run.open_run(out, resume_config(args, out))
            else:
                training_run.check_new_run(out)
                config = run_config(args)
            config = training_run.use_threads(config)  # before the data: the run's threads from the start
            data = training_run.build_data(config)
        except (UsageError, ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError) as exc:
            return fail("train", exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        quiet = args.quiet or rank != 0
        if not quiet:
            print(f"{config.train.scheme} on {config.data.source} data ({config.preset} model): "
                  + ", ".join(f"{k} {v}" for k, v in data.sizes.items()))
        if args.resume is not None:
            results = training_run.resume_run(out, config, command=_command(), progress=not quiet, data=data)
        else:
            results = training_run.run_training(config, out, command=_command(), progress=not quiet, data=data)
    except KeyboardInterrupt as exc:
        position = (exc.epoch, exc.step) if isinstance(exc, TrainingInterrupted) else None
        return _interrupted(out, position) if rank == 0 else 130
    if world_size > 1:
        torch.distributed.destroy_process_group()
    if rank == 0:
        _report(results, out)
    return 0

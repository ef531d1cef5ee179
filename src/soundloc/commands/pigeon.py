"""Reproduce the pigeon superstition on the synthetic world (Senocak et al., CVPR 2018, Sec. 4-5).

Trains the unsupervised, supervised and semi-supervised schemes on the built-in synthetic world
with the same seed and budget, evaluates them on held-out annotated scenes (cIoU@0.5, AUC, and
where the attention mass goes: on the sounding object or on the co-occurring context), and
writes DIR/results.json, DIR/models/*.pt and the figures DIR/attention.png and
DIR/training_curves.png.

  soundloc pigeon --scale smoke --seed 0 --out runs/pigeon-0
"""
from __future__ import annotations

import argparse
import shlex
import sys

SCALES = ("tiny", "smoke", "full")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="smoke",
                        help="tiny (under a minute), smoke (CPU, minutes), full (GPU-sized); default smoke")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world, the initial weights and training (default 0)")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # figures are only written to files

    from soundloc.pigeon import PigeonConfig, format_results, run_pigeon

    overrides = {
        "epochs": args.epochs, "n_train": args.n_train, "n_labelled": args.n_labelled, "n_test": args.n_test,
        "batch_size": args.batch_size, "lr": args.lr, "device": args.device, "threads": args.threads,
        "workers": args.workers, "pretrain_cache": args.pretrain_cache,
    }
    base = PigeonConfig.at_scale(args.scale)
    kw = {k: v for k, v in overrides.items() if v is not None}
    if args.temperature is not None:
        kw["model"] = {**base.model, "temperature": args.temperature}
    if args.context_p is not None:
        kw["world"] = {**base.world, "context_p": args.context_p}
    if args.from_scratch and (args.pretrain_context_p is not None or args.fine_tune_visual):
        print("soundloc pigeon: --from-scratch excludes --pretrain-context-p and --fine-tune-visual", file=sys.stderr)
        return 2
    if args.fine_tune_visual:
        kw["model"] = {**kw.get("model", base.model), "freeze_visual": False}
    if args.from_scratch:
        kw["visual_pretraining"] = None
        kw["model"] = {**kw.get("model", base.model), "freeze_visual": False}
    elif args.pretrain_context_p is not None:
        pre = dict(base.visual_pretraining or {})
        pre["world"] = {**pre.get("world", {}), "context_p": args.pretrain_context_p}
        kw["visual_pretraining"] = pre
    try:
        config = PigeonConfig.at_scale(args.scale, **kw)
    except (TypeError, ValueError) as exc:
        print(f"soundloc pigeon: {exc}", file=sys.stderr)
        return 2
    command = "soundloc " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["pigeon"] else None
    results = run_pigeon(config, args.out, seed=args.seed, command=command, progress=not args.quiet)
    print(format_results(results))
    print(f"wrote {args.out}/results.json")
    return 0

"""Training throughput of the paper's model (and of the CPU preset) on one device.

The paper's setup (``ModelConfig.paper()``): VGG16 conv5_3 at 320x320 (20x20 grid) and
SoundNet-8 on 20 s clips (441,000 samples at 22,050 Hz), both frozen as in the authors' code,
so only the localization module learns. One training step = forward of both streams + the
semi-supervised loss (L_U + L_S, Eq. 2-4) + backward + an Adam step. Also measured: the same
step with the visual stream fine-tuned (gradients through VGG16), each in float32 and in
bfloat16 autocast, and the sound stream's share.

Prints pairs per second (median over timed steps, after warm-up, with device
synchronisation) and the peak device memory. Weights are random (``pretrained=False``): the
timing does not depend on them.

Usage: ``python benchmarks/bench_throughput.py [--device cuda] [--batch 32] [--steps 10]``
(``--quick`` shrinks the inputs to check the script on a CPU).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from typing import Any

import torch

from soundloc.losses import semi_supervised_loss, shuffle_negatives
from soundloc.models import ModelConfig, build_model
from soundloc.utils.device import default_device
from soundloc.utils.seeding import seed_everything


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cfg: ModelConfig, batch: int, size: int, samples: int, steps: int, device: torch.device,
            dtype: torch.dtype | None, seed: int = 0) -> dict[str, Any]:
    """Median seconds per training step and pairs per second of ``cfg`` on random inputs."""
    seed_everything(seed)
    model = build_model(cfg).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    image = torch.rand(batch, 3, size, size, device=device)
    wav = torch.randn(batch, samples, device=device) * 0.1
    grid = model.grid_size(size, size)
    gt = torch.zeros(batch, *grid, device=device)
    gt[:, grid[0] // 4: grid[0] // 2, grid[1] // 4: grid[1] // 2] = 1.0
    has_gt = torch.arange(batch, device=device) % 2 == 0
    gen = torch.Generator().manual_seed(seed)
    autocast = (torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            out = model(image, wav)
            loss = semi_supervised_loss(out.f_v.float(), out.f_s.float(), shuffle_negatives(out.f_s.float(), gen),
                                        out.logits.float(), gt, has_gt)
        loss.total.backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)

    with torch.no_grad(), autocast:  # the sound stream alone (forward)
        model.encode_sound(wav)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(max(1, steps // 2)):
            model.encode_sound(wav)
        _sync(device)
        t_sound = (time.perf_counter() - t0) / max(1, steps // 2)
    t = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"batch": batch, "image": size, "samples": samples, "dtype": str(dtype or torch.float32),
            "trainable_params": sum(p.numel() for p in params), "step_ms": t * 1e3,
            "pairs_per_s": batch / t, "sound_forward_ms": t_sound * 1e3, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: cuda when visible, else cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny inputs (checks the script on a CPU)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device or default_device())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name})")
    paper_size, paper_samples = (64, 209_374) if args.quick else (320, 20 * 22_050)
    rows = []
    cases = [
        ("paper: VGG16 + SoundNet-8 frozen (authors' setup)", ModelConfig.paper(pretrained=False), paper_size, paper_samples),
        ("paper, VGG16 fine-tuned", ModelConfig.paper(pretrained=False, freeze_visual=False), paper_size, paper_samples),
        ("cpu preset (SmallCNN + short SoundNet), 64x64, 1 s", ModelConfig.cpu(), 64, 22_050),
    ]
    for label, cfg, size, samples in cases:
        for dtype in (None, torch.bfloat16):
            r = measure(cfg, args.batch, size, samples, args.steps, device, dtype, args.seed)
            r["case"] = label
            rows.append(r)
            peak = f", peak {r['peak_gib']:.1f} GiB" if r["peak_gib"] is not None else ""
            print(f"{label} [{r['dtype']}], batch {r['batch']}: {r['step_ms']:.1f} ms/step, "
                  f"{r['pairs_per_s']:.0f} pairs/s (sound forward {r['sound_forward_ms']:.1f} ms; "
                  f"{r['trainable_params']:,} trainable){peak}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""Parameter counts and CPU forward times of the two model presets.

- ``ModelConfig.paper()`` (VGG16 + SoundNet-8) on a 320x320 image and 5 s of audio. 5 s =
  110,250 samples is shorter than SoundNet-8's minimum (209,374 samples, 9.5 s), so the clip is
  repeat-padded to the minimum (``short_clip_padding="repeat"``, as SoundNet's reference code
  tiles short clips); the forward therefore runs on 209,374 samples. Built with
  ``pretrained=False`` (no internet needed; weights do not change the timing).
- ``ModelConfig.cpu()`` (small CNN + slim short-clip SoundNet) at its default image size and
  clip length, for batch 1 and a training-sized batch, plus one forward+backward step.

Usage: ``python benchmarks/bench_models.py [--repeats 5] [--threads N] [--seed 0]``.
Times are wall-clock medians under ``torch.no_grad()`` (except the training step).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from soundloc.losses import semi_supervised_loss, shuffle_negatives
from soundloc.models import ModelConfig, SoundLocalizer, build_model
from soundloc.utils.seeding import seed_everything


def _count(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _report_params(name: str, model: SoundLocalizer) -> None:
    sound = model.sound
    heads = _count(sound.conv8_objects) + _count(sound.conv8_scenes)
    print(f"[{name}] parameters")
    print(f"  visual network      {_count(model.visual):>12,}")
    print(f"  sound network       {_count(sound):>12,}  (of which conv8 heads {heads:,}; "
          f"scenes head {_count(sound.conv8_scenes):,} unused by the localizer)")
    print(f"  localization module {_count(model.attention):>12,}")
    print(f"  total               {_count(model):>12,}  trainable {_count(model, True):,}")


def bench_paper(repeats: int) -> None:
    cfg = ModelConfig.paper(pretrained=False, short_clip_padding="repeat")
    model = build_model(cfg).eval()
    _report_params("paper: VGG16 + SoundNet-8", model)
    sr = cfg.sample_rate
    samples = 5 * sr
    print(f"  input: 1 x 3 x 320 x 320 image, 5 s audio = {samples:,} samples at {sr} Hz "
          f"-> repeat-padded to SoundNet-8's minimum {model.min_samples:,} samples "
          f"({model.min_samples / sr:.2f} s)")
    image = torch.rand(1, 3, 320, 320)
    wav = torch.randn(1, samples) * 0.1
    with torch.no_grad():
        out = model(image, wav)
        print(f"  output: attention {tuple(out.attention.shape)}, f_v {tuple(out.f_v.shape)}, "
              f"f_s {tuple(out.f_s.shape)}")
        t_img = _median_time(lambda: model.encode_image(image), repeats)
        t_snd = _median_time(lambda: model.encode_sound(wav), repeats)
        t_all = _median_time(lambda: model(image, wav), repeats)
    print(f"  CPU forward, batch 1 (median of {repeats}): visual {t_img * 1e3:.0f} ms, "
          f"sound {t_snd * 1e3:.0f} ms, full model {t_all * 1e3:.0f} ms")


def bench_cpu(repeats: int, batch: int) -> None:
    cfg = ModelConfig.cpu()
    model = build_model(cfg)
    _report_params("cpu: SmallCNN + short SoundNet", model)
    size, samples = cfg.image_size, cfg.clip_samples
    grid = model.grid_size(size, size)
    print(f"  input: {size}x{size} image -> {grid[0]}x{grid[1]} grid, {samples:,} samples "
          f"({samples / cfg.sample_rate:.2f} s; minimum {model.min_samples:,})")
    model.eval()
    for b in (1, batch):
        image, wav = torch.rand(b, 3, size, size), torch.randn(b, samples) * 0.1
        with torch.no_grad():
            t = _median_time(lambda: model(image, wav), repeats)
        print(f"  CPU forward, batch {b} (median of {repeats}): {t * 1e3:.1f} ms")
    model.train()
    image, wav = torch.rand(batch, 3, size, size), torch.randn(batch, samples) * 0.1
    gt = torch.zeros(batch, *grid)
    gt[:, grid[0] // 4: grid[0] // 2, grid[1] // 4: grid[1] // 2] = 1.0
    has_gt = torch.arange(batch) % 2 == 0
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        out = model(image, wav)
        loss = semi_supervised_loss(out.f_v, out.f_s, shuffle_negatives(out.f_s, gen), out.logits, gt, has_gt)
        loss.total.backward()

    t = _median_time(step, repeats)
    print(f"  CPU forward+backward (semi-supervised loss), batch {batch} (median of {repeats}): "
          f"{t * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32, help="training-sized batch for the CPU preset")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-paper", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if not args.skip_paper:
        bench_paper(args.repeats)
    bench_cpu(args.repeats, args.batch)


if __name__ == "__main__":
    main()

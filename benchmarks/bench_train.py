"""Training speed: the plain loop of the authors' scripts against the engine, side by side.

One process, one run, the same model, batch size, loss and number of timed steps (warm-up
steps excluded), in two (or three) ways:

- **(a) plain**: what the authors' and LVS's training scripts do. A ``Dataset`` opens and
  decodes each pair's JPEG frame (Pillow, resized to the model's input) and WAV clip
  (soundfile) at every step, a ``DataLoader`` with as many workers as the machine has cores,
  a float32 eager step (forward, L_U, backward, Adam) on the model of the preset.
- **(b) engine**: :class:`soundloc.train.Trainer` on the packed cache
  (:class:`soundloc.data.PackedDataset`, frames as uint8, divided by 255 on the device) and,
  with a frozen sound stream, the cached sound features (:mod:`soundloc.data.sound_features`),
  as ``soundloc train --packed`` runs it; on CUDA with bfloat16 autocast, channels-last,
  cuDNN autotuning, frozen streams under ``no_grad``, loss terms kept on the device
  (``sync_every``), pinned memory, persistent workers, and ``torch.compile`` with ``--compile``.
- **(b') engine, JPEG on the device** (``--frames jpeg``/``both``): the same, but frames stay
  JPEG files; workers only read their bytes, and ``torchvision.io.decode_jpeg`` decodes the
  batch on the training device (nvJPEG on a GPU) before an antialiased resize there. Which of
  (b) and (b') keeps the GPU busier is what the issue asks to measure.

The data: ``--pairs`` image/sound pairs of the synthetic world written as a prepared folder in
a temporary directory (frames 256x256 JPEG as ``data_scripts/`` prepare them, audio 16-bit
WAV of the model's clip length; scenes rendered once and reused cyclically). The scheme is the
unsupervised one (L_U, paper Sec. 3.2) with Adam, lr 1e-4. Model weights are random
(``pretrained=False``): timing does not depend on them. The packed cache and the sound-feature
cache are built before timing (a one-off preprocessing step; their build time is reported).

Reported per variant: pairs/s (timed steps x batch / wall time, with device synchronisation at
both ends), peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the main process's
peak resident set, ``VmHWM``, reset before each variant: worker processes not included), the
FLOPs of one step really executed (``torch.utils.flop_counter.FlopCounterMode`` on one eager
step: forward only through frozen streams, nothing for a cached sound stream, forward and
backward through trained parts), the achieved FLOP/s, MFU against the device's dense bf16 peak
(CUDA only; ``--peak-tflops`` or the table below) and the speed-up over (a). Then a profile of
(b)'s step: a few extra steps with the device synchronised between phases (data wait, copy to
the device, forward + loss, backward, optimizer), which says where the time goes.

Usage::

    python benchmarks/bench_train.py --device cpu --preset cpu --steps 20 --out benchmarks/train_speed/cpu_2core
    python benchmarks/bench_train.py --device cuda --preset paper --steps 50 --out runs/train_speed_h200

Timings are measurements of this machine at this moment; they live in ``benchmarks/``, never in
tests (``tests/test_train_speed.py`` checks behaviour only).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

import soundloc
from soundloc.data import SyntheticWorld, WorldConfig, io
from soundloc.data.cache import CacheConfig, PackedDataset, ensure_cache
from soundloc.data.layout import write_index
from soundloc.data.sound_features import WithSoundFeatures, ensure_sound_features
from soundloc.data.types import Batch, Sample
from soundloc.losses import sample_negatives, unsupervised_loss
from soundloc.models import ModelConfig, SoundLocalizer, build_model
from soundloc.train import Callback, TrainConfig, Trainer
from soundloc.train.batches import make_loader
from soundloc.train.speed import Speed
from soundloc.utils.files import atomic_open
from soundloc.utils.seeding import seed_everything

#: Dense (no sparsity) bfloat16 tensor-core peaks, FLOP/s, by device-name fragment. NVIDIA's
#: H100 SXM5 datasheet gives 1,979 TFLOPS bf16 "with sparsity", i.e. 989.4 TFLOP/s dense; the
#: H200 (SXM) has the same GH100 compute (its datasheet: the same 1,979 TFLOPS with sparsity).
#: The H100 PCIe is lower (756 TFLOP/s dense). Other devices: pass --peak-tflops.
BF16_DENSE_PEAK = {"H100 PCIe": 756e12, "H100": 989.4e12, "H200": 989.4e12}
FRAME_SIZE = 256  # prepared frames, as data_scripts/ make them (soundloc.data.prepare)
SCENES = 64  # distinct scenes rendered; the pairs reuse them cyclically (decoding costs the same)


class ArgumentError(Exception):
    """A bad command-line argument: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line instead of usage + message
        raise ArgumentError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options (see the module docstring), checked."""
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", choices=["cpu", "paper"], default="cpu",
                   help="cpu: the small model trained end to end; paper: VGG16 + SoundNet-8, both frozen")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="timed steps of each variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (autotuning, compilation)")
    p.add_argument("--frames", choices=["uint8", "jpeg", "both"], default="both",
                   help="the engine's frames: packed uint8, JPEG decoded on the device, or both variants")
    p.add_argument("--compile", action="store_true", help="torch.compile the engine's model")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the plain loop's workers (default: cores)")
    p.add_argument("--engine-workers", type=int, default=None,
                   help="the engine's workers (default 0 on cpu: the cores train; min(8, cores) on cuda)")
    p.add_argument("--profile-steps", type=int, default=5, help="synchronised steps for the profile of (b)")
    p.add_argument("--repeats", type=int, default=1,
                   help="run the variants this many times, alternating their order, and report each one's median "
                        "(a shared machine's other load then falls on all of them alike)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (TFLOP/s) for MFU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for table.md and results.json (written atomically)")
    args = p.parse_args(argv)
    for name in ("batch_size", "steps", "repeats"):
        if getattr(args, name) < (2 if name == "batch_size" else 1):
            raise ArgumentError(f"--{name.replace('_', '-')} must be >= {2 if name == 'batch_size' else 1}, "
                                f"got {getattr(args, name)}")
    for name in ("warmup", "workers", "profile_steps"):
        if getattr(args, name) < 0:
            raise ArgumentError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.profile_steps > args.warmup + args.steps + 1:
        raise ArgumentError(f"--profile-steps must be <= --warmup + --steps + 1 (the pairs on disk), got {args.profile_steps}")
    if args.engine_workers is not None and args.engine_workers < 0:
        raise ArgumentError(f"--engine-workers must be >= 0, got {args.engine_workers}")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        raise ArgumentError(f"--peak-tflops must be positive, got {args.peak_tflops}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ArgumentError("--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is False)")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ArgumentError(f"--out {args.out}: exists and is not a folder")
    return args


# -- the data ------------------------------------------------------------------------------------


def model_config(preset: str) -> ModelConfig:
    """The preset's model with random weights (nothing downloaded)."""
    return ModelConfig.paper(pretrained=False) if preset == "paper" else ModelConfig.cpu()


def write_pairs(root: Path, n: int, clip_samples: int, seed: int) -> list[str]:
    """A prepared folder of ``n`` pairs under ``root``: JPEG frames (256x256, quality 95) and
    16-bit WAV clips of ``clip_samples`` (the synthetic world's 1 s sound tiled), ``index.csv``."""
    world = SyntheticWorld(WorldConfig(image_size=FRAME_SIZE, clip_seconds=1.0), seed=seed)
    scenes = [world.scene(i) for i in range(min(n, SCENES))]
    rows = []
    for i in range(n):
        sc = scenes[i % len(scenes)]
        pid = f"pair{i:05d}"
        frame, audio = f"frames/{pid}.jpg", f"audio/{pid}.wav"
        io.write_image(root / frame, sc.image)
        reps = math.ceil(clip_samples / sc.waveform.numel())
        io.write_wav(root / audio, sc.waveform.repeat(reps)[:clip_samples], world.config.sample_rate)
        rows.append({"id": pid, "frame": frame, "audio": audio})
    write_index(root, rows)
    return [r["id"] for r in rows]


class PlainFiles(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The plain loop's data: each item opens its JPEG (Pillow, RGB, bilinear resize to the
    model's input) and its WAV (soundfile, float32, cut or zero-padded to the clip)."""

    def __init__(self, root: Path, ids: list[str], image_size: int, clip_samples: int) -> None:
        self.root, self.ids, self.size, self.clip = root, ids, image_size, clip_samples

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        import soundfile as sf
        from PIL import Image

        pid = self.ids[index]
        with Image.open(self.root / "frames" / f"{pid}.jpg") as im:
            rgb = im.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        image = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        wav, _ = sf.read(str(self.root / "audio" / f"{pid}.wav"), dtype="float32")
        wav = np.pad(wav[: self.clip], (0, max(0, self.clip - len(wav))))
        return image, torch.from_numpy(wav)


class FramelessPacked(PackedDataset):
    """The packed cache's pairs without their frames (an empty ``image``): the audio or sound
    features of the JPEG variant, whose frames come from the files."""

    def load_image(self, index: int) -> torch.Tensor:
        return torch.zeros(0)


class JpegBytes(Dataset[Sample]):
    """The engine's pairs with the frame left as JPEG bytes: ``extras["jpeg"]`` (uint8, padded
    to the longest file) and ``extras["jpeg_len"]``; ``image`` is empty. ``dataset`` gives the
    rest (sound features or audio) without decoding any frame."""

    def __init__(self, dataset: Any, root: Path, ids: list[str]) -> None:
        self.dataset, self.root, self.ids = dataset, root, ids
        self.longest = max((root / "frames" / f"{i}.jpg").stat().st_size for i in ids)

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        raw = (self.root / "frames" / f"{self.ids[index]}.jpg").read_bytes()
        buf = torch.zeros(self.longest, dtype=torch.uint8)
        buf[: len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        sample.image = torch.zeros(0)
        sample.extras["jpeg"], sample.extras["jpeg_len"] = buf, torch.tensor(len(raw))
        return sample


class DeviceJpegSpeed(Speed):
    """The trainer's :class:`~soundloc.train.speed.Speed` with frames decoded on the training
    device (``torchvision.io.decode_jpeg``, nvJPEG on CUDA) and resized there (bilinear, antialiased)."""

    def __init__(self, config: TrainConfig, device: torch.device, image_size: int) -> None:
        super().__init__(config, device)
        self.image_size = image_size

    def prepare_batch(self, batch: Batch) -> Batch:
        from torchvision.io import decode_jpeg

        data = [b[: int(n)] for b, n in zip(batch.extras.pop("jpeg"), batch.extras.pop("jpeg_len"))]
        frames = torch.stack(decode_jpeg(data, device=self.device))  # [B, 3, 256, 256] uint8
        image = F.interpolate(frames.float(), size=(self.image_size,) * 2, mode="bilinear",
                              antialias=True, align_corners=False).div_(255.0).clamp_(0.0, 1.0)
        batch = super().prepare_batch(batch)
        batch.image = image.contiguous(memory_format=torch.channels_last) if self.config.channels_last else image
        return batch


# -- measuring -----------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    """Start a fresh peak-memory count (CUDA allocator, or the process's VmHWM on Linux)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")


def peak_bytes(device: torch.device) -> float | None:
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) * 1024
    return None


def count_flops(step: Callable[[], Any]) -> int:
    """FLOPs that one call of ``step`` executes (matmuls and convolutions, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


@dataclass
class Result:
    """One variant's measurement."""

    name: str
    pairs_per_s: float
    seconds: float
    steps: int
    peak_bytes: float | None
    flops_per_step: int
    batch_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flops_per_pair(self) -> float:
        return self.flops_per_step / self.batch_size

    @property
    def flops_per_s(self) -> float:
        return self.flops_per_step * self.steps / self.seconds


class _Done(Exception):
    """Raised by the timing hook once the timed steps are done (ends :meth:`Trainer.fit`)."""


class Clock(Callback):
    """Times a trainer's steps from the end of the warm-up to the last timed step (the device
    synchronised at both ends), then stops ``fit``."""

    def __init__(self, warmup: int, timed: int) -> None:
        self.warmup, self.timed = warmup, timed
        self.t0 = self.t1 = 0.0

    def on_step_end(self, trainer: Any, batch: Batch, parts: dict[str, Any]) -> None:
        if trainer.step == self.warmup:
            sync(trainer.device)
            reset_peak(trainer.device)
            self.t0 = time.perf_counter()
        elif trainer.step == self.warmup + self.timed:
            sync(trainer.device)
            self.t1 = time.perf_counter()
            raise _Done


def engine_trainer(cfg: ModelConfig, config: TrainConfig, jpeg: bool, callbacks: list[Callback]) -> Trainer:
    """The trainer of (b), or of (b') with frames decoded on the device."""
    trainer = Trainer(build_model(cfg), config, callbacks=callbacks)
    if jpeg:
        trainer.speed = DeviceJpegSpeed(config, trainer.device, cfg.image_size)
    return trainer


def plain_variant(args: argparse.Namespace, cfg: ModelConfig, root: Path, ids: list[str],
                  device: torch.device) -> Result:
    """(a): the authors'/LVS-style loop (float32, eager, files decoded per step; PyTorch's
    defaults, so no cuDNN autotuning even after an engine run has turned it on)."""
    torch.backends.cudnn.benchmark = False
    seed_everything(args.seed)
    model = build_model(cfg).to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    files = PlainFiles(root, ids, cfg.image_size, cfg.clip_samples)
    t = time.perf_counter()
    for k in range(args.batch_size):  # the CPU work of one batch's decoding, in one process
        files[k]
    decode_ms = (time.perf_counter() - t) * 1e3
    loader = DataLoader(files, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers)
    gen = torch.Generator().manual_seed(args.seed)

    def step(image: torch.Tensor, wav: torch.Tensor) -> None:
        image, wav = image.to(device), wav.to(device)
        out = model(image, wav)
        neg = sample_negatives(len(image), gen, device=device)
        loss = unsupervised_loss(out.f_v, out.f_s, out.f_s[neg])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the authors' scripts log the loss every step

    batches = iter(loader)
    first = next(batches)
    flops = count_flops(lambda: step(*first))
    for _ in range(args.warmup):
        step(*next(batches))
    sync(device)
    reset_peak(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(*next(batches))
    sync(device)
    seconds = time.perf_counter() - t0
    peak = peak_bytes(device)
    del batches
    return Result("(a) plain: fp32 eager, JPEG + WAV decoded per step, "
                  f"{args.workers} workers", args.batch_size * args.steps / seconds, seconds, args.steps, peak,
                  flops, args.batch_size, extra={"decode_batch_ms": decode_ms})


def engine_config(args: argparse.Namespace, device: torch.device, workers: int) -> TrainConfig:
    """The engine's training config for this device: every speed setting on CUDA; on CPU the
    float32 path (autocast and the rest are CUDA settings) with the loss kept lazy."""
    cuda = device.type == "cuda"
    return TrainConfig(
        scheme="unsupervised", batch_size=args.batch_size, lr=1e-4, epochs=10**6, device=str(device),
        progress=False, seed=args.seed, num_workers=workers, persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None, amp=cuda, amp_dtype="bfloat16", channels_last=cuda,
        cudnn_benchmark=cuda, compile=args.compile, sync_every=max(1, args.steps + args.warmup),
    )


def engine_data(args: argparse.Namespace, cfg: ModelConfig, root: Path, ids: list[str], model: SoundLocalizer,
                jpeg: bool) -> tuple[Any, dict[str, float]]:
    """(b)'s training set: the packed cache (uint8 frames) with cached sound features when the
    sound stream is frozen, or its JPEG-bytes variant; and the build times of the caches."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    cache_cfg = CacheConfig(image_size=cfg.image_size, clip_seconds=cfg.clip_samples / cfg.sample_rate,
                            sample_rate=cfg.sample_rate, hash_arrays=False)
    cache, _ = ensure_cache(root, cfg=cache_cfg, workers=os.cpu_count() or 1, progress=False)
    times["packed_cache_s"] = time.perf_counter() - t
    make = FramelessPacked if jpeg else PackedDataset
    data: Any = make(root, ids, image_size=cfg.image_size, clip_seconds=cfg.clip_samples / cfg.sample_rate,
                              sample_rate=cfg.sample_rate, labelled=False, cache=cache, uint8_frames=True)
    if cfg.freeze_sound:
        t = time.perf_counter()
        data = WithSoundFeatures(data, ensure_sound_features(model, data, batch_size=args.batch_size))
        times["sound_feature_cache_s"] = time.perf_counter() - t
    return (JpegBytes(data, root, ids) if jpeg else data), times


def engine_variant(args: argparse.Namespace, cfg: ModelConfig, root: Path, ids: list[str], device: torch.device,
                   jpeg: bool, profile: bool = True) -> tuple[Result, dict[str, Any]]:
    """(b) or (b'): the engine's Trainer, timed; then its FLOPs and a synchronised profile."""
    workers = args.engine_workers if args.engine_workers is not None else (
        0 if device.type == "cpu" else min(8, os.cpu_count() or 1))
    config = engine_config(args, device, workers)
    seed_everything(args.seed)
    clock = Clock(args.warmup, args.steps)
    trainer = engine_trainer(cfg, config, jpeg, [clock])
    data, cache_times = engine_data(args, cfg, root, ids, trainer.model, jpeg)
    try:
        trainer.fit(data)
        raise RuntimeError(f"--pairs too few: the run ended before {args.warmup + args.steps} steps")
    except _Done:
        pass
    seconds = clock.t1 - clock.t0
    peak = peak_bytes(device)
    flops = engine_flops(args, cfg, data, device, workers, jpeg)
    phases = profile_steps(trainer, data, args.profile_steps) if args.profile_steps and profile else {}
    frames = "JPEG decoded on the device" if jpeg else "packed uint8 frames"
    sound = ", cached sound features" if cfg.freeze_sound else ""
    speed = ("bf16 autocast, channels-last, cuDNN autotune" + (", compiled" if args.compile else "")
             if device.type == "cuda" else "fp32" + (", compiled" if args.compile else ""))
    name = f"({'b′' if jpeg else 'b'}) engine: {frames}{sound}, {speed}, {workers} workers"
    result = Result(name, args.batch_size * args.steps / seconds, seconds, args.steps, peak, flops, args.batch_size,
                    extra={"cache_build": cache_times, "train_config": config.to_dict()})
    return result, phases


def engine_flops(args: argparse.Namespace, cfg: ModelConfig, data: Any, device: torch.device, workers: int,
                 jpeg: bool) -> int:
    """FLOPs of one engine step, counted on an eager copy (compiled code hides its operations
    from the counter; the operations are the same)."""
    config = dataclasses.replace(engine_config(args, device, 0), compile=False)
    seed_everything(args.seed)
    counter = engine_trainer(cfg, config, jpeg, [])
    batch = next(iter(make_loader(data, config, counter.generators.shuffle, device.type == "cuda")))
    counter.generators.seed_epoch(0)
    return count_flops(lambda: counter.train_step(batch))


def profile_steps(trainer: Trainer, data: Any, steps: int) -> dict[str, float]:
    """Milliseconds per step in each phase of :meth:`Trainer.train_step`, the device
    synchronised after each (so the phases do not overlap as they do in the timed run): data
    wait (the next batch from the loader), copy to the device (and frame decoding), forward +
    loss, backward, optimizer step."""
    device = trainer.device
    loader = make_loader(data, trainer.config, trainer.generators.shuffle, device.type == "cuda")
    trainer.generators.seed_epoch(1)
    totals = dict.fromkeys(("data wait", "to device", "forward + loss", "backward", "optimizer"), 0.0)
    batches: Iterator[Batch] = iter(loader)
    next(batches)  # starts the workers
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        batch = trainer.speed.prepare_batch(batch)
        sync(device)
        t2 = time.perf_counter()
        with trainer.speed.autocast():
            loss, _ = trainer.compute_loss(batch, trainer.forward(batch), trainer.generators.negative)
        sync(device)
        t3 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        scaler = trainer.speed.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()
        sync(device)
        t4 = time.perf_counter()
        if scaler is not None:
            scaler.step(trainer.optimizer)
            scaler.update()
        else:
            trainer.optimizer.step()
        sync(device)
        t5 = time.perf_counter()
        for key, dt_ in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            totals[key] += dt_
    del batches
    return {k: v / steps * 1e3 for k, v in totals.items()}


# -- reporting -----------------------------------------------------------------------------------


def device_peak(args: argparse.Namespace, device: torch.device) -> tuple[float | None, str]:
    """The dense bf16 peak used for MFU and where it comes from (``None`` on CPU)."""
    if device.type != "cuda":
        return None, "n/a on CPU (no dense bf16 tensor-core peak to compare with)"
    if args.peak_tflops is not None:
        return args.peak_tflops * 1e12, "--peak-tflops"
    name = torch.cuda.get_device_name(device)
    for fragment, peak in BF16_DENSE_PEAK.items():
        if fragment in name:
            return peak, f"{fragment} dense bf16 (NVIDIA datasheet, half the sparse figure)"
    return None, f"unknown for {name!r} (pass --peak-tflops)"


def _gib(x: float | None, device: torch.device) -> str:
    if x is None:
        return "n/a"
    return f"{x / 2**30:.2f} GiB" if device.type == "cuda" else f"{x / 2**20:.0f} MiB RSS"


def table(results: list[Result], device: torch.device, peak: float | None) -> str:
    """The side-by-side Markdown table."""
    base = results[0].pairs_per_s
    flop_unit, scale = ("TFLOP/s", 1e12) if device.type == "cuda" else ("GFLOP/s", 1e9)
    lines = [f"| variant | pairs/s | peak memory | GFLOP/pair executed | achieved {flop_unit} | MFU | vs (a) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        mfu = f"{100 * r.flops_per_s / peak:.1f} %" if peak else "n/a"
        lines.append(f"| {r.name} | {r.pairs_per_s:,.1f} | {_gib(r.peak_bytes, device)} | "
                     f"{r.flops_per_pair / 1e9:.3f} | {r.flops_per_s / scale:,.2f} | {mfu} | "
                     f"{r.pairs_per_s / base:.2f}× |")
    return "\n".join(lines)


def profile_table(profile: dict[str, float]) -> str:
    total = sum(profile.values())
    lines = ["| phase of (b)'s step | ms/step | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.2f} | {100 * v / total:.0f} % |" for k, v in profile.items()]
    lines.append(f"| total (synchronised) | {total:.2f} | 100 % |")
    return "\n".join(lines)


def header(args: argparse.Namespace, device: torch.device, command: str, peak_source: str) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return {
        "command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device), "device_name": name, "cores": os.cpu_count(), "torch": torch.__version__,
        "soundloc": soundloc.__version__, "threads": torch.get_num_threads(), "platform": platform.platform(),
        "preset": args.preset, "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
        "pairs": pairs_needed(args), "compile": args.compile, "repeats": args.repeats, "mfu_peak": peak_source,
    }


def pairs_needed(args: argparse.Namespace) -> int:
    """Pairs on disk: enough for every step to see new files (one epoch, no loader restart)."""
    return (args.warmup + args.steps + 2) * args.batch_size


def median_result(runs: list[Result]) -> Result:
    """One variant over its repeats: the median run's time (pairs/s), the largest peak memory,
    every run's pairs/s in ``extra["runs_pairs_per_s"]``."""
    ordered = sorted(runs, key=lambda r: r.pairs_per_s)
    mid = ordered[len(ordered) // 2] if len(ordered) % 2 else None
    pairs = [r.pairs_per_s for r in runs]
    if mid is None:  # even count: the mean of the two middle runs' times
        a, b = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
        mid = dataclasses.replace(a, seconds=(a.seconds + b.seconds) / 2)
        mid.pairs_per_s = mid.batch_size * mid.steps / mid.seconds
    peaks = [r.peak_bytes for r in runs if r.peak_bytes is not None]
    extra = {**mid.extra, "runs_pairs_per_s": pairs}
    if "decode_batch_ms" in mid.extra:
        extra["decode_batch_ms_runs"] = [r.extra["decode_batch_ms"] for r in runs]
    return dataclasses.replace(mid, peak_bytes=max(peaks) if peaks else None, extra=extra)


def report(info: dict[str, Any], results: list[Result], profile: dict[str, float], device: torch.device,
           peak: float | None) -> str:
    lines = [f"# Training speed, {info['preset']} preset, batch {info['batch_size']}", "",
             f"- command: `{info['command']}`",
             f"- date: {info['date']}; device: {info['device']} ({info['device_name']}), {info['cores']} cores, "
             f"torch {info['torch']} ({info['threads']} threads), soundloc {info['soundloc']}",
             f"- {info['steps']} timed steps after {info['warmup']} warm-up steps, per variant, in one process"
             + (f"; each variant run {info['repeats']} times in alternating order, the median shown "
                f"(every run: {'; '.join(', '.join(f'{x:.1f}' for x in r.extra['runs_pairs_per_s']) for r in results)} pairs/s)"
                if info["repeats"] > 1 else "") + f"; MFU against: {info['mfu_peak']}", "",
             table(results, device, peak), "",
             f"Decoding one batch of (a) (JPEG + WAV of {info['batch_size']} pairs) takes "
             f"{statistics.median(results[0].extra['decode_batch_ms_runs']):.0f} ms of one core (median over the runs); "
             "(a)'s workers do it beside the training step.", ""]
    if profile:
        lines += ["Where (b)'s step goes (extra steps, device synchronised between phases):", "",
                  profile_table(profile), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except ArgumentError as exc:
        print(f"bench_train.py: error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    peak, peak_source = device_peak(args, device)
    cfg = model_config(args.preset)
    info = header(args, device, command, peak_source)
    results: list[Result] = []
    profile: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        ids = write_pairs(root, pairs_needed(args), cfg.clip_samples, args.seed)
        info["write_pairs_s"] = time.perf_counter() - t
        print(f"{len(ids)} pairs written in {info['write_pairs_s']:.1f} s; timing (a) ...", file=sys.stderr, flush=True)
        variants: list[bool | None] = [None] + (
            [False] if args.frames == "uint8" else [True] if args.frames == "jpeg" else [False, True])
        runs: dict[bool | None, list[Result]] = {v: [] for v in variants}
        for repeat in range(args.repeats):
            for jpeg in (variants if repeat % 2 == 0 else variants[::-1]):
                label = "a" if jpeg is None else ("b′" if jpeg else "b")
                print(f"timing ({label}), run {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
                if jpeg is None:
                    runs[jpeg].append(plain_variant(args, cfg, root, ids, device))
                    continue
                result, prof = engine_variant(args, cfg, root, ids, device, jpeg, profile=not profile)
                runs[jpeg].append(result)
                profile = profile or prof
        results = [median_result(runs[v]) for v in variants]
    text = report(info, results, profile, device, peak)
    print(text)
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "table.md", "w", encoding="utf-8") as fh:
            fh.write(text)
        doc = {**info, "profile_ms": profile, "results": [
            {**dataclasses.asdict(r), "flops_per_pair": r.flops_per_pair, "flops_per_s": r.flops_per_s,
             "mfu": (r.flops_per_s / peak) if peak else None, "vs_plain": r.pairs_per_s / results[0].pairs_per_s}
            for r in results]}
        with atomic_open(out / "results.json", "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tests of the trainer's speed settings (``TrainConfig.sync_every``, ``persistent_workers``,
``channels_last``, ``compile``, ``amp_dtype``; ``PackedDataset(uint8_frames=True)``; frozen
streams under ``no_grad``) and of ``benchmarks/bench_train.py``'s argument checks. They test
behaviour only (same numbers, same keys, clear errors): the timings live in
``benchmarks/train_speed/``."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import CLIP, SIZE, tiny_model
from soundloc.data import AVDataset, Sample, SyntheticWorld, WorldConfig, write_world
from soundloc.data.cache import PackedDataset
from soundloc.train import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]


def pairs(n: int) -> list[Sample]:
    """``n`` pairs of flat colours and pure tones, every other one with a one-cell ground truth."""
    g = torch.Generator().manual_seed(1)
    t = torch.arange(CLIP) / 22050
    out = []
    for i in range(n):
        gt = None
        if i % 2 == 0:
            gt = torch.zeros(4, 4)
            gt[i % 4, (i // 4) % 4] = 1.0
        out.append(Sample(id=f"s{i}", image=torch.rand(3, 1, 1, generator=g).expand(3, SIZE, SIZE).clone(),
                          waveform=0.5 * torch.sin(2 * math.pi * 150 * (i + 1) * t), gt_attention=gt))
    return out


def history(config: TrainConfig, data: object, model_seed: int = 0, **model: object) -> list[dict]:
    trainer = Trainer(tiny_model(model_seed, **model), config)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in trainer.fit(data)]


def cfg(**kw: object) -> TrainConfig:
    base: dict = dict(epochs=2, batch_size=4, lr=3e-3, progress=False, scheme="semi_supervised")
    base.update(kw)
    return TrainConfig(**base)


def test_loss_terms_kept_on_the_device_give_the_same_history() -> None:
    data = pairs(24)
    plain = history(cfg(), data)
    deferred = history(cfg(sync_every=4, grad_clip=1.0), data)
    clipped = history(cfg(grad_clip=1.0), data)
    assert deferred == clipped  # every epoch's loss, l_u, l_s and each step's terms, exactly
    assert plain[0]["step"]["loss"][0] == deferred[0]["step"]["loss"][0]
    assert all(isinstance(v, float) for r in deferred for v in r["step"]["loss"])


def test_a_non_finite_loss_still_stops_training_when_synced_late() -> None:
    data = pairs(16)
    data[5].image[:] = float("nan")
    with pytest.raises(FloatingPointError, match="loss became nan"):
        Trainer(tiny_model(), cfg(sync_every=8, epochs=1)).fit(data)


class EpochDraws(torch.utils.data.Dataset):
    """A dataset whose samples depend on the epoch (as annotator draws do): the image's value
    is ``epoch / 10 + index / 100``."""

    def __init__(self, n: int) -> None:
        self.base = pairs(n)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> Sample:
        s = self.base[index]
        return Sample(id=s.id, image=torch.full_like(s.image, self.epoch / 10 + index / 100),
                      waveform=s.waveform, gt_attention=s.gt_attention)


def test_persistent_workers_see_each_epoch_and_keep_the_order() -> None:
    fresh = history(cfg(epochs=3, num_workers=0), EpochDraws(16))
    persistent = history(cfg(epochs=3, num_workers=1, persistent_workers=True), EpochDraws(16))
    assert persistent == fresh


def test_uint8_frames_train_exactly_as_float_frames(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    write_world(SyntheticWorld(WorldConfig(image_size=32, clip_seconds=0.5), seed=4), root, n=16, progress=False)
    common = dict(image_size=32, clip_seconds=0.5, labelled=False, progress=False)
    floats = PackedDataset(root, **common)
    packed = PackedDataset(root, uint8_frames=True, **common)
    assert packed[3].image.dtype == torch.uint8
    assert torch.equal(packed[3].image.float().div(255.0), AVDataset(root, image_size=32, clip_seconds=0.5)[3].image)
    c = cfg(scheme="unsupervised", epochs=1)
    assert history(c, packed, clip_samples=11025) == history(c, floats, clip_samples=11025)


def test_frozen_streams_run_without_autograd_but_inputs_keep_their_gradient() -> None:
    model = tiny_model(freeze_visual=True)
    image = torch.rand(2, 3, SIZE, SIZE)
    assert not model.encode_image(image).requires_grad
    image.requires_grad_(True)
    model.encode_image(image).sum().backward()  # saliency through a frozen backbone still works
    assert image.grad is not None and image.grad.abs().sum() > 0
    trained = tiny_model()
    assert trained.encode_image(torch.rand(2, 3, SIZE, SIZE)).requires_grad


def test_channels_last_and_compile_keep_the_model_and_its_checkpoint_keys() -> None:
    model = tiny_model()
    keys = list(model.state_dict())
    trainer = Trainer(model, cfg(channels_last=True, compile=True))  # compile is lazy: nothing runs yet
    assert list(trainer.model.state_dict()) == keys
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = history(cfg(epochs=1), pairs(16))
    nhwc = history(cfg(epochs=1, channels_last=True), pairs(16))
    assert nhwc[0]["loss"] == pytest.approx(plain[0]["loss"], rel=1e-4)


def test_speed_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="amp_dtype"):
        TrainConfig(amp_dtype="float8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sync_every"):
        TrainConfig(sync_every=0)
    with pytest.raises(ValueError, match="amp"):
        Trainer(tiny_model(), TrainConfig(amp=True, amp_dtype="bfloat16", device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 autocast training needs CUDA")
def test_bfloat16_autocast_trains_without_a_scaler_close_to_float32() -> None:
    data = pairs(16)
    base = dict(epochs=1, device="cuda")
    trainer = Trainer(tiny_model(), cfg(amp=True, amp_dtype="bfloat16", **base))
    assert trainer.speed.scaler is None
    bf16 = [r["loss"] for r in trainer.fit(data)]
    fp32 = [r["loss"] for r in Trainer(tiny_model(), cfg(**base)).fit(data)]
    assert bf16 == pytest.approx(fp32, rel=0.05)


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "CUDA"),
    (["--steps", "0"], "--steps"),
    (["--preset", "gpu"], "--preset"),
])
def test_bench_train_refuses_bad_arguments_in_one_line(args: list[str], message: str) -> None:
    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_train.py"), *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], run.stderr


def test_train_command_fast_settings_need_cuda_and_reach_the_config(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse

    from soundloc.cli import main
    from soundloc.commands import train as train_command

    if not torch.cuda.is_available():
        assert main(["train", "--out", str(tmp_path / "run"), "--fast", "--device", "cpu"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "--fast" in err[0]
    parser = argparse.ArgumentParser()
    train_command.configure(parser)
    args = parser.parse_args(["--out", "x", "--data", str(tmp_path), "--packed", "--fast", "--compile"])
    config = train_command.run_config(args)
    assert config.train.amp_dtype == "bfloat16" and config.train.compile and config.data.uint8_frames

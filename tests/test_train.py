"""Tests of soundloc.train: the schemes, the loss against a hand computation, determinism,
resuming, predict_attention and saving. The tiny model of conftest (4x4 grid, 32x32 images, the
shortest clip of the "short" sound network) keeps every test well under a second or two."""
from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch

from conftest import CLIP, GRID, SIZE, tiny_model, tone_pairs as world
from soundloc.data import AVDataset, Annotation, Sample, collate
from soundloc.data import io
from soundloc.data.layout import write_annotations, write_index
from soundloc.models import load_model
from soundloc.train import (
    Callback,
    StepRecorder,
    TrainConfig,
    Trainer,
    labelled_indices,
    resume_trainer,
    predict_attention,
    save_checkpoint,
    train,
)


def cfg(**kw: object) -> TrainConfig:
    base = dict(epochs=1, batch_size=4, lr=3e-3, progress=False)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def recording(model: torch.nn.Module, config: TrainConfig) -> tuple[Trainer, StepRecorder]:
    """A trainer that records the ids and loss parts of every step."""
    recorder = StepRecorder()
    return Trainer(model, config, callbacks=[recorder]), recorder


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


# -- schemes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["unsupervised", "supervised", "semi_supervised"])
def test_one_epoch_per_scheme(scheme: str) -> None:
    data = world(8, labelled={0, 2, 4, 6})
    model = tiny_model()
    before = params(model)
    tr, steps = recording(model, cfg(scheme=scheme, lam=0.5))
    hist = tr.fit(data)
    assert len(hist) == 1
    rec = hist[0]
    assert rec["epoch"] == 1 and rec["seconds"] >= 0
    assert any(not torch.equal(a, b) for a, b in zip(before, params(model)))
    if scheme == "supervised":
        # only the labelled pairs are loaded, each once
        assert sorted(steps.ids) == ["s0", "s2", "s4", "s6"]
        assert rec["pairs"] == 4 and rec["labelled"] == 4 and rec["steps"] == 1
        assert rec["l_u"] is None and rec["l_s"] == pytest.approx(rec["loss"])
    else:
        assert sorted(steps.ids) == [f"s{i}" for i in range(8)]
        assert rec["pairs"] == 8 and rec["labelled"] == 4 and rec["steps"] == 2
    if scheme == "unsupervised":
        assert rec["l_s"] is None and rec["l_u"] == pytest.approx(rec["loss"])
    if scheme == "semi_supervised":
        for p in steps.parts:
            expected = p["l_u"] + (0.5 * p["l_s"] if p["l_s"] is not None else 0.0)
            assert p["loss"] == pytest.approx(expected, rel=1e-5)
            assert (p["l_s"] is None) == (p["labelled"] == 0)


def test_compute_loss_matches_hand_computation() -> None:
    """Two rows: each row's negative is the other one, so L_U is fixed and computable by hand."""
    data = world(2, labelled={0})
    model = tiny_model().eval()
    batch = collate(data)
    with torch.no_grad():
        out = model(batch.image, batch.waveform)
    f_v, f_s = out.f_v.double(), out.f_s.double()
    l_u_rows = []
    for i, j in ((0, 1), (1, 0)):
        d_pos = math.sqrt(float(((f_v[i] - f_s[i]) ** 2).sum()))
        d_neg = math.sqrt(float(((f_v[i] - f_s[j]) ** 2).sum()))
        p_pos = math.exp(d_pos) / (math.exp(d_pos) + math.exp(d_neg))
        l_u_rows.append(p_pos**2 + ((1 - p_pos) - 1) ** 2)
    l_u = sum(l_u_rows) / 2
    logits0 = out.logits[0].double().flatten()
    l_s = -(logits0[0] - torch.logsumexp(logits0, 0)).item()  # gt is one-hot on cell (0, 0)

    for scheme, reduction, expected in [
        ("unsupervised", "labelled_mean", l_u),
        ("supervised", "labelled_mean", l_s),
        ("semi_supervised", "labelled_mean", l_u + 0.5 * l_s),
        ("semi_supervised", "batch_mean", l_u + 0.5 * l_s / 2),
    ]:
        tr = Trainer(model, cfg(scheme=scheme, batch_size=2, lam=0.5, attention_reduction=reduction))
        loss, parts = tr.compute_loss(batch, out, torch.Generator())
        assert float(loss) == pytest.approx(expected, rel=1e-5), (scheme, reduction)
        assert parts["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scheme", ["unsupervised", "supervised", "semi_supervised"])
def test_loss_goes_down_on_a_learnable_pair(scheme: str) -> None:
    # two pairs, one batch: the negative of each is the other, so the objective is fixed.
    # Temperature 0.1: with the paper's softmax over cosines (tau = 1) L_S cannot go below
    # log(1 + 15 e^-2) = 1.11 on a 4x4 grid, from log(16) = 2.77 at uniform attention.
    data = world(2)
    hist = Trainer(tiny_model(temperature=0.1), cfg(scheme=scheme, epochs=20, batch_size=2)).fit(data)
    losses = [r["loss"] for r in hist]
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.6 * first, losses


def test_lambda_zero_equals_unsupervised() -> None:
    data = world(8, labelled={1, 2, 5})
    m_u, m_s = tiny_model(), tiny_model()
    h_u = Trainer(m_u, cfg(scheme="unsupervised", epochs=2)).fit(data)
    h_s = Trainer(m_s, cfg(scheme="semi_supervised", lam=0.0, epochs=2)).fit(data)
    assert [r["loss"] for r in h_u] == [r["loss"] for r in h_s]
    assert [r["l_u"] for r in h_u] == [r["l_u"] for r in h_s]
    assert all(r["l_s"] is not None for r in h_s)  # L_S was computed, with weight 0
    assert all(torch.equal(a, b) for a, b in zip(params(m_u), params(m_s)))


def test_same_seed_same_history_different_seed_different() -> None:
    data = world(8, labelled={0, 3})
    runs = [Trainer(tiny_model(), cfg(scheme="semi_supervised", epochs=2, seed=s)).fit(data) for s in (7, 7, 8)]
    assert strip_seconds(runs[0]) == strip_seconds(runs[1])
    assert [r["loss"] for r in runs[0]] != [r["loss"] for r in runs[2]]


def test_progress_display_does_not_change_training() -> None:
    # showing progress bars must not draw from the shuffling generator (tqdm.auto iterates
    # what it wraps when it is built): same seed, same weights and history either way
    data = world(16, labelled={0, 5, 9})
    runs = []
    for progress in (False, True):
        model = tiny_model()
        history = Trainer(model, cfg(scheme="semi_supervised", epochs=2, progress=progress, log_every=1)).fit(data)
        runs.append((params(model), strip_seconds(history)))
    assert runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0]))


def test_resume_from_checkpoint_continues_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = world(8, labelled={0, 1, 2})
    full = Trainer(tiny_model(), cfg(scheme="semi_supervised", epochs=2))
    full.fit(data)
    half = Trainer(tiny_model(), cfg(scheme="semi_supervised", epochs=1))
    half.fit(data)
    save_checkpoint(tmp_path / "ckpt.pt", half)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = resume_trainer(tmp_path / "ckpt.pt", config=cfg(scheme="semi_supervised", epochs=2))
    assert resumed.epoch == 1
    resumed.fit(data)
    assert strip_seconds(resumed.history) == strip_seconds(full.history)
    assert all(torch.equal(a, b) for a, b in zip(params(resumed.model), params(full.model)))


class Interrupted(Exception):
    pass


class Dies(Callback):
    """Dies (as a killed job would) after ``stop_after`` optimizer steps."""

    def __init__(self, stop_after: int) -> None:
        self.stop_after = stop_after

    def on_step_end(self, trainer, batch, parts) -> None:  # type: ignore[no-untyped-def]
        if trainer.step == self.stop_after:
            raise Interrupted


class NoisyWorld(torch.utils.data.Dataset):
    """Samples whose image draws from torch's, NumPy's and Python's global generators, so a
    resumed run matches only if every global random state was restored."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        s = self.samples[i]
        noise = 0.05 * torch.rand(()) + 0.05 * float(np.random.rand()) + 0.05 * random.random()
        return dataclasses.replace(s, image=(s.image + noise).clamp(0, 1))


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_resume_mid_epoch_ends_bit_identical(tmp_path, stop_after: int) -> None:  # type: ignore[no-untyped-def]
    # 12 pairs, batches of 4: 3 steps per epoch, 3 epochs; stopped after step 1 (mid epoch 1),
    # 3 (the last batch of epoch 1, before its record) or 5 (mid epoch 2)
    data = NoisyWorld(world(12, labelled={0, 3, 5, 7, 9}))
    val = world(4, seed=5)
    config = cfg(scheme="semi_supervised", epochs=3, scheduler="step", scheduler_gamma=0.5, checkpoint_every=1)
    full = Trainer(tiny_model(), config)
    full.fit(data, val)

    ckpt = tmp_path / "run" / "last.pt"
    first = Trainer(tiny_model(), config, callbacks=[Dies(stop_after)])
    with pytest.raises(Interrupted):
        first.fit(data, val, checkpoint=ckpt)
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # what a new process would have
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == stop_after
    assert len(state["epoch_steps"]) == (stop_after - 1) % 3 + 1 and state["epoch"] == (stop_after - 1) // 3
    assert [p.name for p in ckpt.parent.iterdir()] == ["last.pt"]  # no temporary file left

    resumed = resume_trainer(ckpt)
    resumed.fit(data, val, checkpoint=ckpt)
    assert strip_seconds(resumed.history) == strip_seconds(full.history)
    assert all(torch.equal(a, b) for a, b in zip(params(resumed.model), params(full.model)))
    assert resumed.step == full.step == 9
    for a, b in zip(resumed.optimizer.state_dict()["state"].values(), full.optimizer.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in ("exp_avg", "exp_avg_sq"))
    final = torch.load(ckpt, weights_only=True)
    assert final["epoch"] == 3 and final["epoch_steps"] == []


def test_learning_rate_schedules() -> None:
    data = world(8)
    hist = Trainer(tiny_model(), cfg(epochs=3, lr=0.01, scheduler="step", scheduler_step=2, scheduler_gamma=0.5)).fit(data)
    assert [r["lr"] for r in hist] == pytest.approx([0.01, 0.01, 0.005])
    hist = Trainer(tiny_model(), cfg(epochs=2, lr=0.01, scheduler="cosine")).fit(data)
    assert [r["lr"] for r in hist] == pytest.approx([0.01, 0.005])  # 0.01 * (1 + cos(pi / 2)) / 2
    assert "lr" not in Trainer(tiny_model(), cfg()).fit(data)[0]  # no schedule: the record is unchanged
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig(scheduler="linear")
    with pytest.raises(ValueError, match="scheduler_gamma"):
        TrainConfig(scheduler="step", scheduler_gamma=1.5)
    with pytest.raises(ValueError, match="CUDA"):
        Trainer(tiny_model(), cfg(amp=True, device="cpu"))


def test_supervised_on_an_avdataset_uses_only_its_labelled_pairs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    samples = world(6)
    rows = []
    for s in samples:
        io.write_image(tmp_path / "frames" / f"{s.id}.png", s.image)
        io.write_wav(tmp_path / "audio" / f"{s.id}.wav", s.waveform)
        rows.append({"id": s.id, "frame": f"frames/{s.id}.png", "audio": f"audio/{s.id}.wav"})
    write_index(tmp_path, rows)
    box = Annotation(boxes=(((0, 0, 128, 128),),))
    write_annotations(tmp_path / "annotations.json", {"s1": box, "s3": box, "s4": box})
    ds = AVDataset(tmp_path, image_size=SIZE, grid=GRID, clip_seconds=CLIP / 22050, labelled={"s1", "s4"})
    tr, rec = recording(tiny_model(), cfg(scheme="supervised", epochs=2, batch_size=2))
    assert labelled_indices(ds) == [1, 4]
    tr.fit(ds)
    assert sorted(rec.ids) == ["s1", "s1", "s4", "s4"]
    assert ds.epoch == 1  # set_epoch was called for every epoch
    # without a grid the dataset makes no ground truth: nothing to supervise
    no_grid = AVDataset(tmp_path, image_size=SIZE, grid=None, clip_seconds=CLIP / 22050)
    with pytest.raises(ValueError, match="labelled"):
        Trainer(tiny_model(), cfg(scheme="supervised", batch_size=2)).fit(no_grid)


# -- predictions and saving ------------------------------------------------------------------------
def test_predict_attention() -> None:
    data = world(7)
    model = tiny_model()
    model.train()
    ids, att = predict_attention(model, data, batch_size=3)
    assert ids == [s.id for s in data]
    assert att.shape == (7, *GRID) and att.dtype == torch.float32
    assert torch.allclose(att.sum(dim=(1, 2)), torch.ones(7), atol=1e-5)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        ref = model(torch.stack([s.image for s in data]), torch.stack([s.waveform for s in data])).attention
    # batches of 3 against one batch of 7: other float32 blockings, equal to ~1e-6 of the scores;
    # at temperature 1 a cell's mass (~1/16) moves by <= 2e-6 of itself, ~1e-7 (atol 1e-6)
    assert torch.allclose(att, ref, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        predict_attention(model, data, batch_size=0)


def test_train_saves_a_model_that_reloads_identically(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = world(4)
    model = tiny_model()
    config = cfg(scheme="semi_supervised", epochs=2, batch_size=2)
    history = train(model, data, config, save_to=tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["extra"]["train_config"] == dataclasses.asdict(config)
    assert payload["extra"]["history"] == history
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config == model.config
    _, a = predict_attention(model, data)
    _, b = predict_attention(loaded, data)
    assert torch.equal(a, b)


def test_validation_metrics_in_history() -> None:
    data, val = world(4), world(4, seed=5)
    hist = Trainer(tiny_model(), cfg(scheme="semi_supervised", epochs=2, batch_size=2)).fit(data, val)
    assert {"val_loss", "val_l_u", "val_l_s"} <= set(hist[0])
    # the validation loss is computed with fixed negatives: evaluating twice gives one number
    tr = Trainer(tiny_model(), cfg(scheme="semi_supervised", batch_size=2))
    assert tr.held_out_loss(val) == tr.held_out_loss(val)
    calls = []

    def val_fn(model, ds):  # type: ignore[no-untyped-def]
        calls.append(model.training)
        return {"ciou": 0.25}

    hist = Trainer(tiny_model(), cfg(epochs=2, batch_size=2)).fit(data, val, val_fn)
    assert [r["val_ciou"] for r in hist] == [0.25, 0.25] and calls == [False, False]


# -- bad input -------------------------------------------------------------------------------------
def test_bad_config_and_data_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="scheme"):
        TrainConfig(scheme="weakly")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(scheme="unsupervised", batch_size=1)
    TrainConfig(scheme="supervised", batch_size=1)  # no negatives needed
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="batch_size=4"):
        Trainer(tiny_model(), cfg()).fit(world(3))
    with pytest.raises(ValueError, match="labelled"):
        Trainer(tiny_model(), cfg(scheme="supervised")).fit(world(8, labelled=set()))
    wrong_grid = world(4)
    for s in wrong_grid:
        s.gt_attention = torch.full((3, 3), 1 / 9)
    with pytest.raises(ValueError, match="grid"):
        Trainer(tiny_model(), cfg(scheme="semi_supervised")).fit(wrong_grid)
    with pytest.raises(TypeError, match="config"):
        Trainer(tiny_model(), {"epochs": 1})  # type: ignore[arg-type]


def test_sgd_and_grad_clip() -> None:
    tr, rec = recording(tiny_model(), cfg(optimizer="sgd", grad_clip=1e-3, batch_size=2, epochs=1))
    assert isinstance(tr.optimizer, torch.optim.SGD)
    assert tr.optimizer.param_groups[0]["momentum"] == 0.9
    tr.fit(world(4))
    assert all("grad_norm" in p for p in rec.parts)


class Flaky(torch.utils.data.Dataset):
    """``samples`` where the listed positions raise as a corrupt file would, or are silent."""

    def __init__(self, samples: list[Sample], corrupt: set[int], silent: set[int]) -> None:
        self.samples, self.corrupt, self.silent = samples, corrupt, silent
        self.ids = [s.id for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        if i in self.corrupt:
            raise ValueError(f"audio/{self.ids[i]}.wav: cannot read audio (truncated)")
        s = self.samples[i]
        return dataclasses.replace(s, waveform=torch.zeros_like(s.waveform)) if i in self.silent else s


def test_unreadable_pairs_are_skipped_and_counted() -> None:
    data = Flaky(world(8), corrupt={1, 6}, silent={4})
    with pytest.warns(UserWarning, match=r"skipped pair s1: audio/s1.wav: cannot read audio"):
        tr, rec = recording(tiny_model(), cfg(epochs=2, skip_unreadable=True))
        hist = tr.fit(data)
    assert [r["unreadable"] for r in hist] == [3, 3]
    for e, r in enumerate(hist):  # two batches of 4 per epoch; a batch left with one pair is skipped
        steps = rec.parts[2 * e: 2 * e + 2]
        assert sum(p["pairs"] for p in steps) == 5
        assert r["pairs"] == sum(p["pairs"] for p in steps if not p["skipped"])
    assert sorted(hist[0]["unreadable_ids"]) == ["s1", "s4", "s6"]
    assert sorted(set(rec.ids)) == ["s0", "s2", "s3", "s5", "s7"]
    # a batch left with one readable pair has no negative: the step is skipped, not failed
    lonely = Flaky(world(4), corrupt={0, 1, 2}, silent=set())
    with pytest.warns(UserWarning):
        rec = Trainer(tiny_model(), cfg(skip_unreadable=True)).fit(lonely)[0]
    assert rec["steps"] == 0 and rec["unreadable"] == 3 and rec["loss"] is None
    with pytest.raises(ValueError, match="cannot read audio"):  # without skip_unreadable the error stops the run
        Trainer(tiny_model(), cfg(skip_unreadable=False)).fit(Flaky(world(8), corrupt={1}, silent=set()))

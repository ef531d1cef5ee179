"""Tests of soundloc.experiments.run and ``soundloc train``: the config from a file and
options, the presets, the run folder, splits that keep validation and test out of training,
resume, and one-line errors. The tiny model on a tiny synthetic world keeps each run to seconds."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_MODEL, TINY_WORLD, tiny_run as tiny_dict
from soundloc.cli import main
from soundloc.data import SyntheticWorld, WorldConfig, io, write_world
from soundloc.data.layout import read_id_list, split_path
from soundloc.experiments.run import DataConfig, RunConfig, RunFolder, build_data, load_config_file
from soundloc.models import ModelConfig, load_model
from soundloc.train import TrainConfig


def write_config(path: Path, d: dict) -> Path:
    path.write_text(json.dumps(d))
    return path


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_config_from_a_partial_dict_round_trips_and_rejects_unknown_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = RunConfig.from_dict(tiny_dict())
    # the cpu preset, changed only where asked, sized to the world's images and clips
    assert config.model == ModelConfig.cpu(**TINY_MODEL, image_size=32, clip_samples=11025)
    assert config.train.scheme == "semi_supervised" and config.train.epochs == 2
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    paper = RunConfig.from_dict({"preset": "paper", "data": {"source": "folder", "root": "x"}, "model": {"pretrained": False}})
    assert paper.model == ModelConfig.paper(pretrained=False)
    # the paper preset trains as the authors' README command: Adam, lr 1e-4, batch 30, 10 epochs
    assert (paper.train.optimizer, paper.train.lr, paper.train.batch_size, paper.train.epochs) == ("adam", 1e-4, 30, 10)
    for bad, name in (({"train": {"lrr": 1}}, "lrr"), ({"model": {"colour": 1}}, "colour"), ({"seeds": 3}, "seeds"),
                      ({"preset": "gpu"}, "preset")):
        with pytest.raises(ValueError, match=name):
            RunConfig.from_dict(bad)
    with pytest.raises(ValueError, match="root"):
        RunConfig.from_dict({"data": {"source": "folder"}})
    assert load_config_file(write_config(tmp_path / "c.json", tiny_dict())) == tiny_dict()
    yaml = pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_dict()))
    assert load_config_file(tmp_path / "c.yaml") == tiny_dict()


def test_a_preset_built_directly_is_the_preset() -> None:
    # the authors' README command (PAPER_NOTES): Adam, lr 1e-4, weight decay 0, batch 30, 10 epochs
    paper = RunConfig(preset="paper", data=DataConfig(source="folder", root="x"))
    assert paper.model == ModelConfig.paper()
    t = paper.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs) == ("adam", 1e-4, 0.0, 30, 10)
    assert paper.train == TrainConfig.paper() and RunConfig().train == TrainConfig()
    # the cpu preset: the small model sized to the synthetic world, the training defaults
    cpu = RunConfig()
    assert cpu.model == ModelConfig.cpu(image_size=cpu.data.world.image_size, clip_samples=cpu.data.world.clip_samples)
    assert (cpu.train.lr, cpu.train.batch_size, cpu.train.epochs, cpu.train.scheme) == (1e-3, 32, 8, "semi_supervised")
    # a dictionary names only what it changes, and a complete one is the config it was saved from
    assert RunConfig.from_dict({"preset": "paper", "data": {"source": "folder", "root": "x"}}) == paper
    assert RunConfig.from_dict(paper.to_dict()) == paper
    assert RunConfig(train=TrainConfig(scheme="unsupervised")).labelled == 0  # no labels without L_S


def test_train_help_shows_the_real_defaults(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # the cpu preset's and the authors' values (lr 1e-4, batch 30, 10 epochs: PAPER_NOTES)
    for expected in ("learning rate (default 0.001; 0.0001 with --preset paper)",
                     "pairs per step (default 32; 30 with --preset paper)", "(default 8; 10 with --preset paper",
                     "learning scheme (default semi_supervised)", "(default 300)", "(default 1200)"):
        assert expected in text, expected


def test_synthetic_splits_keep_validation_and_test_out_of_training() -> None:
    config = RunConfig.from_dict(tiny_dict())
    data = build_data(config)
    world = SyntheticWorld(WorldConfig(**TINY_WORLD), seed=0)
    annotated = [i for i in range(120) if world.scene_kind(i) != "offscreen"]
    test = [i for i in annotated if i >= 90]
    assert data.test.indices == test
    val, train = set(data.val.indices), set(data.train.indices)
    assert len(val) == 12 and val <= set(annotated) and not val & train and not val & set(test)
    assert train == set(range(90)) - val
    assert len(data.train.labelled_indices()) == 12
    # nested labelled sets: 12 labelled are the first 12 of the order that gives 20
    more = build_data(RunConfig.from_dict({**tiny_dict(), "labelled": 20}))
    assert set(data.val.indices) == set(more.val.indices)
    lab = {data.train.indices[k] for k in data.train.labelled_indices()}
    assert lab <= {more.train.indices[k] for k in more.train.labelled_indices()}


def test_train_command_writes_a_run_and_resume_continues_it_exactly(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "tiny.json", tiny_dict())
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--config", str(cfg), "--out", str(full), "--quiet", "--epochs", "3"]) == 0
    assert {p.name for p in full.iterdir()} == {"config.json", "last.pt", "best.pt", "log.csv", "results.json"}
    saved = RunConfig.from_dict(json.loads((full / "config.json").read_text()))
    # the config as given, with the thread count the run trained with (the process's: no --threads)
    assert saved == RunConfig.from_dict({**tiny_dict(), "train": {**tiny_dict()["train"], "epochs": 3},
                                      "threads": torch.get_num_threads()})
    log = read_log(full)
    assert [r["epoch"] for r in log] == ["1", "2", "3"]
    results = json.loads((full / "results.json").read_text())
    best = max(log, key=lambda r: float(r["val_auc"]))  # the first epoch of the highest validation AUC
    assert results["best"]["epoch"] == int(best["epoch"])
    assert torch.load(full / "best.pt", weights_only=True)["extra"]["epoch"] == int(best["epoch"])
    assert results["test"]["n"] == results["sizes"]["test"] == 29  # annotated scenes among the last 30
    assert {"random", "whole image", "centre prior"} <= set(results["test"]["baselines"])
    assert load_model(full / "best.pt").config == saved.model
    assert "test: cIoU@0.5" in capsys.readouterr().out

    # two epochs, then resumed to three: the same log (timings aside) and the same weights
    assert main(["train", "--config", str(cfg), "--out", str(part), "--quiet"]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "3", "--quiet"]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(part)) == strip(log)
    a, b = (torch.load(run / "last.pt", weights_only=True)["model"] for run in (full, part))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the extended run's checkpoint and config.json hold its new length
    assert torch.load(part / "last.pt", weights_only=True)["extra"]["run_config"]["train"]["epochs"] == 3
    assert json.loads((part / "config.json").read_text())["train"]["epochs"] == 3
    assert json.loads((part / "results.json").read_text())["test"] == results["test"]


def test_train_on_a_prepared_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    world = SyntheticWorld(WorldConfig(**TINY_WORLD), seed=3)
    write_world(world, root, n=80, n_test=20, progress=False)
    d = tiny_dict()
    d["data"] = {"source": "folder", "root": str(root)}
    d["model"] = {**TINY_MODEL, "image_size": 32, "clip_samples": 11025}
    d["train"]["epochs"] = 1
    config = RunConfig.from_dict(d)
    data = build_data(config)
    test_ids = read_id_list(split_path(root, "test"))
    assert data.test.ids == test_ids and data.sizes["test"] == len(test_ids)
    labelled_part, unlabelled_part = data.train.datasets[1], data.train.datasets[0]
    held = set(data.val.ids) | set(test_ids)
    assert not held & set(unlabelled_part.ids) and not held & set(labelled_part.ids)
    assert not set(labelled_part.ids) & set(unlabelled_part.ids) and len(labelled_part.labelled) == 12
    data.train.set_epoch(3)  # each epoch reaches both parts: fresh annotator draws for the labelled pairs
    assert labelled_part.epoch == 3 and unlabelled_part.epoch == 3
    run = tmp_path / "run"
    assert main(["train", "--config", str(write_config(tmp_path / "c.json", d)), "--out", str(run), "--quiet"]) == 0
    log = read_log(run)
    assert len(log) == 1 and int(log[0]["labelled"]) > 0  # L_S on the labelled pool's pairs


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "TrainConfig.lr must be a number in (0, inf], got -1.0"),
    (["--data", "{tmp}/missing"], "--data '{tmp}/missing' is not a folder"),
    (["--config", "{tmp}/bad.json"], "TrainConfig has no field(s) ['lrr']"),
    (["--labelled", "500"], "fewer than --val-size 12 + --labelled 500"),
    (["--scheme", "supervised", "--labelled", "4"], "labelled = 4 is below train.batch_size = 8"),
    (["--packed"], "--packed needs --data DIR"),
])
def test_bad_input_fails_at_start_with_one_line(tmp_path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    write_config(tmp_path / "bad.json", {"train": {"lrr": 1}})
    cfg = write_config(tmp_path / "tiny.json", tiny_dict())
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--config" not in args:
        args = ["--config", str(cfg), *args]
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("soundloc train: error: ") and "\n" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "run" / "config.json").exists()


def test_resume_refuses_another_model_and_another_preset(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    d = tiny_dict()
    d["train"]["epochs"] = 1
    assert main(["train", "--config", str(write_config(tmp_path / "c.json", d)), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--preset", "paper"]) == 2
    assert "--preset paper: the run in" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "train.lr is 0.003 there, asked 0.5" in err and err.count("\n") == 1
    assert main(["train", "--resume", str(run), "--preset", "cpu", "--quiet"]) == 0  # the recorded value: fine
    capsys.readouterr()
    assert main(["train", "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    # a config.json whose model is not the checkpoint's (as if another preset's run were copied in)
    saved = json.loads((run / "config.json").read_text())
    saved["model"]["temperature"] = 0.5
    (run / "config.json").write_text(json.dumps(saved))
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "['temperature'] differ" in err and err.count("\n") == 1


def test_unreadable_training_pairs_are_skipped_and_counted_bad_test_pairs_stop_the_start(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    write_world(SyntheticWorld(WorldConfig(**TINY_WORLD), seed=3), root, n=80, n_test=20, progress=False)
    d = tiny_dict()
    d["data"] = {"source": "folder", "root": str(root)}
    d["model"] = {**TINY_MODEL, "image_size": 32, "clip_samples": 11025}
    d["train"].update(epochs=1, scheme="unsupervised")
    d["labelled"] = 0
    data = build_data(RunConfig.from_dict(d))
    bad_frame, silent = data.train.ids[3], data.train.ids[10]
    (root / "frames" / f"{bad_frame}.png").write_bytes(b"not an image")
    io.write_wav(root / "audio" / f"{silent}.wav", torch.zeros(11025))
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.json", d)
    with pytest.warns(UserWarning) as caught:
        assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert f"skipped pair {bad_frame}: " in messages and f"{bad_frame}.png: cannot read image" in messages
    assert f"skipped pair {silent}: silent audio" in messages
    log = read_log(run)
    # 8-pair batches over the unlabelled pairs: the two bad ones are counted, not trained on
    n = len(data.train)
    assert log[0]["unreadable"] == "2" and int(log[0]["pairs"]) == (n // 8) * 8 - 2
    history = json.loads((run / "results.json").read_text())["history"]
    assert sorted(history[0]["unreadable_ids"]) == sorted([bad_frame, silent])

    # a test pair that cannot be read stops the run before it trains, naming the file
    test_id = read_id_list(split_path(root, "test"))[0]
    (root / "audio" / f"{test_id}.wav").write_bytes(b"RIFF")
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"test pair {test_id}: " in err and f"{test_id}.wav: cannot read audio" in err and err.count("\n") == 1
    assert not (tmp_path / "run2").exists()


def test_tensorboard_curves_when_it_is_installed(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys
    import types

    written: list[tuple[str, float, int]] = []

    class Writer:  # torch.utils.tensorboard.SummaryWriter as far as a run uses it
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            written.append((tag, value, step))

        def flush(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    run = tmp_path / "run"
    assert main(["train", "--config", str(write_config(tmp_path / "c.json", tiny_dict())), "--out", str(run), "--quiet"]) == 0
    log = read_log(run)
    for row in log:
        epoch = int(row["epoch"])
        got = {tag: value for tag, value, step in written if step == epoch}
        assert got["val_auc"] == pytest.approx(float(row["val_auc"])) and got["loss"] == pytest.approx(float(row["loss"]))
    assert {step for _, _, step in written} == {1, 2}


def test_packed_cache_trains_exactly_as_the_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    write_world(SyntheticWorld(WorldConfig(**TINY_WORLD), seed=4), root, n=60, n_test=12, progress=False)
    d = tiny_dict()
    d["data"] = {"source": "folder", "root": str(root)}
    d["model"] = {**TINY_MODEL, "image_size": 32, "clip_samples": 11025}
    d["train"]["epochs"] = 1
    cfg = write_config(tmp_path / "c.json", d)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "folder"), "--quiet"]) == 0
    assert main(["train", "--config", str(cfg), "--data", str(root), "--packed", "--out", str(tmp_path / "packed"),
                 "--quiet"]) == 0
    assert json.loads((tmp_path / "packed" / "config.json").read_text())["data"]["source"] == "packed"
    assert any((root / "cache").glob("packed_*/index.json"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "packed")) == strip(read_log(tmp_path / "folder"))


def test_a_run_killed_mid_epoch_resumes_to_the_same_end(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "tiny.json", tiny_dict())  # checkpoint every step
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "full"), "--quiet"]) == 0

    class Killed(BaseException):  # not an Exception: nothing on the way may swallow it
        pass

    def die_mid_epoch(self, trainer, batch, parts) -> None:  # type: ignore[no-untyped-def]
        if trainer.step == 13:  # epoch 2 of 2, mid-way (9 steps per epoch)
            raise Killed

    monkeypatch.setattr(RunFolder, "on_step_end", die_mid_epoch)
    with pytest.raises(Killed):
        main(["train", "--config", str(cfg), "--out", str(tmp_path / "part"), "--quiet"])
    assert len(read_log(tmp_path / "part")) == 1 and not (tmp_path / "part" / "results.json").exists()
    assert len(torch.load(tmp_path / "part" / "last.pt", weights_only=True)["epoch_steps"]) == 4
    monkeypatch.undo()
    assert main(["train", "--resume", str(tmp_path / "part"), "--quiet"]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "part")) == strip(read_log(tmp_path / "full"))
    a, b = (torch.load(tmp_path / run / "best.pt", weights_only=True)["state_dict"] for run in ("full", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    full, part = (json.loads((tmp_path / run / "results.json").read_text())["test"] for run in ("full", "part"))
    assert full == part

"""``soundloc train`` under interruption, through the command line: Ctrl-C (a real SIGINT to a
subprocess), an immediate interrupt, a SIGKILL in the middle of a checkpoint write, and the
options given with --resume. Every interrupted run, resumed, must end bit-identical to the
uninterrupted one: same machine, same thread count (recorded with the run and restored by the
resume, even from a process that would use another count), same batching, so every tensor of
its checkpoint and of its best model is compared with torch.equal.

The runs are tiny (a 32x32 synthetic world, 9 steps per epoch, 2 epochs: seconds each)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import tiny_run
from soundloc.cli import main

# checkpoints at epoch ends only: a mid-epoch last.pt can only come from the interrupt
TINY = tiny_run(checkpoint_every=None)
STEPS_PER_EPOCH = 9  # 90 training scenes less 12 validation ones, in batches of 8


def env(threads: int | None) -> dict[str, str]:
    """The environment of a subprocess: torch's default thread count, or ``threads``."""
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        e["OMP_NUM_THREADS"] = str(threads)
    return e


def soundloc(*args: str, threads: int | None = None, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``soundloc ARGS`` in a new process (after ``prelude``, Python run first in it)."""
    code = f"import sys\n{prelude}\nfrom soundloc.cli import main\nsys.argv = ['soundloc', *sys.argv[1:]]\n" \
           "sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env(threads),
                          timeout=300)


def tensors(obj: Any, path: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested checkpoint, by its path."""
    if isinstance(obj, torch.Tensor):
        return {path: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    return {k: v for key, value in items for k, v in tensors(value, f"{path}/{key}").items()}


def log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def assert_same_run(run: Path, reference: Path) -> None:
    """Bit for bit: every tensor of last.pt (weights, optimizer moments, random states) and of
    best.pt, the log (timings aside) and the test scores."""
    for name in ("last.pt", "best.pt"):
        got, want = (tensors(torch.load(r / name, weights_only=True)) for r in (run, reference))
        assert got.keys() == want.keys() and len(want) > 50, name
        differ = [k for k in want if not torch.equal(got[k], want[k])]
        assert not differ, f"{name}: {len(differ)} of {len(want)} tensors differ, e.g. {differ[:3]}"
    assert log_rows(run) == log_rows(reference)
    results = [json.loads((r / "results.json").read_text()) for r in (run, reference)]
    assert results[0]["test"] == results[1]["test"] and results[0]["history"][-1]["val_auc"] is not None


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The uninterrupted run, on one thread (``--threads 1``), and its config file."""
    root = tmp_path_factory.mktemp("train_interrupt")
    config = root / "tiny.json"
    config.write_text(json.dumps(TINY))
    done = soundloc("train", "--config", str(config), "--out", str(root / "full"), "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "full" / "config.json").read_text())["threads"] == 1
    return root / "full", config


@pytest.mark.slow
def test_ctrl_c_stops_after_the_step_and_resume_restores_the_threads(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    full, config = reference
    run = tmp_path / "part"
    stop = STEPS_PER_EPOCH + 4  # mid epoch 2
    ctrl_c = (f"import os, signal\nfrom soundloc.experiments.run import RunFolder\n"
              f"def ctrl_c(self, trainer, batch, parts):\n    if trainer.step == {stop}: os.kill(os.getpid(), signal.SIGINT)\n"
              f"RunFolder.on_step_end = ctrl_c")
    cut = soundloc("train", "--config", str(config), "--out", str(run), "--threads", "1", "--quiet", prelude=ctrl_c)
    assert cut.returncode == 130
    assert cut.stderr == f"interrupted at epoch 2 step {stop}; resume with: soundloc train --resume {run}\n"
    assert cut.stdout == ""
    state = torch.load(run / "last.pt", weights_only=True)  # written at the interrupted step: nothing lost
    assert (state["epoch"], state["step"], len(state["epoch_steps"])) == (1, stop, 4)
    assert not (run / "results.json").exists() and sorted(p.name for p in run.iterdir()) == [
        "best.pt", "config.json", "last.pt", "log.csv"]

    # the documented command, from a process that would run on 2 threads: it runs on the recorded 1
    resumed = soundloc("train", "--resume", str(run), "--quiet", threads=2)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "results.json").read_text())["provenance"]["threads"] == 1
    assert_same_run(run, full)


def test_an_immediate_interrupt_before_the_first_checkpoint_starts_again(reference, tmp_path, monkeypatch,
                                                                          capsys) -> None:  # type: ignore[no-untyped-def]
    from soundloc.experiments.run import RunFolder

    full, config = reference
    run = tmp_path / "part"

    def second_ctrl_c(self, trainer, batch, parts) -> None:  # type: ignore[no-untyped-def]
        if trainer.step == 3:
            raise KeyboardInterrupt  # what a second Ctrl-C raises: no checkpoint on the way out

    monkeypatch.setattr(RunFolder, "on_step_end", second_ctrl_c)
    assert main(["train", "--config", str(config), "--out", str(run), "--threads", "1", "--quiet"]) == 130
    assert capsys.readouterr().err == f"interrupted at epoch 1 step 0; resume with: soundloc train --resume {run}\n"
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]  # no checkpoint yet: it starts over
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert_same_run(run, full)

    # interrupted before anything was written: no run folder, and it says so
    monkeypatch.setattr("soundloc.experiments.run.build_data", lambda config: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "none"), "--quiet"]) == 130
    assert capsys.readouterr().err == f"interrupted before the run started: nothing was written to {tmp_path / 'none'}\n"
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_a_sigkill_during_a_checkpoint_write_leaves_a_part_file_the_next_start_removes(reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    full, config = reference
    run = tmp_path / "part"
    # the second write of last.pt (end of epoch 2) dies half-way, as a SIGKILL would leave it
    kill = ("import os, signal, torch\nreal = torch.save\nwrites = []\n"
            "def save(obj, f, *a, **k):\n"
            "    if os.path.basename(str(f)).startswith('.last.part.'):\n"
            "        writes.append(f)\n"
            "        if len(writes) == 2:\n"
            "            open(f, 'wb').write(b'half a checkpoint')\n"
            "            os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return real(obj, f, *a, **k)\n"
            "torch.save = save")
    killed = soundloc("train", "--config", str(config), "--out", str(run), "--threads", "1", "--quiet", prelude=kill)
    assert killed.returncode == -signal.SIGKILL
    stale = list(run.glob(".last.part.*.pt"))
    assert len(stale) == 1 and torch.load(run / "last.pt", weights_only=True)["epoch"] == 1  # the previous one is whole
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert not list(run.glob(".*")), "the next start removes the part file"
    assert_same_run(run, full)


def test_resume_applies_and_records_what_may_change_and_refuses_the_rest(reference, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    full, _ = reference
    run = tmp_path / "run"
    shutil.copytree(full, run)
    recorded = (run / "config.json").read_text()
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    for argv, message in (
        (["--lr", "0.5"], "continues the run as recorded: train.lr is 0.003 there, asked 0.5; only --epochs"),
        (["--seed", "3"], "train.seed is 0 there, asked 3"),
        (["--no-freeze-visual"], None),  # the recorded value (False): accepted, nothing changes
        (["--scheme", "supervised"], "train.scheme is 'semi_supervised' there, asked 'supervised'"),
        (["--config", str(tmp_path / "c.json")], "drop --config"),
        (["--epochs", "1"], "--epochs 1: the run in"),  # fewer than the 2 it has finished
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
    ):
        code = main(["train", "--resume", str(run), "--quiet", *argv])
        err = capsys.readouterr().err
        if message is None:
            assert code == 0, err
            continue
        assert code == 2, argv
        assert err.startswith("soundloc train: error: ") and err.count("\n") == 1 and message in err, err
        assert (run / "config.json").read_text() == recorded
    assert main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    assert "train.lr is 0.003 there" in capsys.readouterr().err  # the recorded value is named
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != "results.json"} == {
        k: v for k, v in before.items() if k != "results.json"}

    # what a resume may change is applied and recorded: one more epoch, on 2 threads, checkpoints every 4 steps
    assert main(["train", "--resume", str(run), "--epochs", "3", "--threads", "2", "--checkpoint-every", "4",
                 "--quiet"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["train"]["epochs"], saved["threads"], saved["train"]["checkpoint_every"]) == (3, 2, 4)
    assert json.loads((run / "results.json").read_text())["provenance"]["threads"] == 2
    assert len(log_rows(run)) == 3
    assert torch.load(run / "last.pt", weights_only=True)["extra"]["run_config"]["threads"] == 2


def test_epochs_zero_is_refused_and_writes_nothing(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", "--out", str(tmp_path / "run"), "--epochs", "0"]) == 2
    assert capsys.readouterr().err == "soundloc train: error: --epochs must be >= 1, got 0\n"
    config = tmp_path / "zero.json"
    config.write_text(json.dumps({**TINY, "train": {**TINY["train"], "epochs": 0}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.epochs must be >= 1, got 0" in err
    assert not (tmp_path / "run").exists()

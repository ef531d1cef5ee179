"""``soundloc experiment table1|table2|table3`` at the tiny scale on the synthetic world: the
paper's numbers beside ours, the sizes each row trained on, means and stds over seeds, reuse of
finished rows, the not-comparable label and one-line errors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from soundloc.cli import main
from soundloc.experiments.tables import TABLES, TableConfig, TableScale

# Senocak et al. (CVPR 2018), Table 1: cIoU@0.5 / AUC (%), mechanism 1 | mechanism 2
PAPER_TABLE1 = {
    ("unsup_10k", "cosine"): (43.6, 44.9), ("unsup_10k", "relu"): None,
    ("unsup_144k", "cosine"): (66.0, 55.8), ("unsup_144k", "relu"): (52.4, 51.2),
    ("sup_2.5k", "cosine"): (80.4, 60.3), ("sup_2.5k", "relu"): (82.0, 60.7),
    ("semi_2.5k_10k", "cosine"): (82.8, 62.0), ("semi_2.5k_10k", "relu"): (84.0, 61.9),
    ("semi_2.5k_144k", "cosine"): None, ("semi_2.5k_144k", "relu"): None,
}


def test_table1_at_tiny_scale(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t1"
    assert main(["experiment", "table1", "--scale", "tiny", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {(r["key"], r["mechanism"]): r for r in results["rows"]}
    assert set(rows) == set(PAPER_TABLE1)
    for key, paper in PAPER_TABLE1.items():
        assert (None if rows[key]["paper"] is None else tuple(rows[key]["paper"])) == paper
        run = json.loads((out / rows[key]["folders"][0] / "results.json").read_text())
        assert rows[key]["ciou_at_0.5"] == [pytest.approx(100 * run["test"]["ciou_at_0.5"]), None]
        assert rows[key]["auc"] == [pytest.approx(100 * run["test"]["auc"]), None]
    # the scaled sizes: "10k" = 24 and "144k" = 48 unlabelled scenes, "2.5k" = 16 labelled
    assert rows[("unsup_10k", "cosine")]["sizes"]["train"] == 24 and rows[("unsup_144k", "relu")]["sizes"]["train"] == 48
    assert rows[("sup_2.5k", "cosine")]["sizes"]["labelled"] == 16
    assert 24 <= rows[("semi_2.5k_10k", "cosine")]["sizes"]["train"] <= 24 + 16
    # every row is scored on the same test scenes: the baselines agree between runs
    first = json.loads((out / rows[("unsup_10k", "cosine")]["folders"][0] / "results.json").read_text())["test"]
    last = json.loads((out / rows[("semi_2.5k_144k", "relu")]["folders"][0] / "results.json").read_text())["test"]
    assert first["n"] == last["n"] and first["baselines"] == last["baselines"]
    assert results["baselines"]["whole image"]["ciou_at_0.5"][0] == pytest.approx(100 * first["baselines"]["whole image"]["success"])
    md = (out / "table.md").read_text()
    # the title is a bold line, not a heading: shown in a chapter, it does not break the page's outline
    assert md.startswith("**Table 1 of Senocak et al. (CVPR 2018)") and not any(l.startswith("#") for l in md.splitlines())
    assert "Not comparable with the paper's numbers" in md and "| Unsup. 144k | ReLU + softmax (mechanism 2) | 52.4 / 51.2 |" in md
    assert md.count("not run") == 13 and md.count("not reported") == 3 + 2  # 3 rows, 2 baselines
    with open(out / "table.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 13 and table[0]["data"] == "synthetic world" and table[0]["paper_ciou"] == "43.6"
    assert "Table 1" in capsys.readouterr().out

    # finished rows are reused: a second call trains nothing and gives the same table
    stamp = (out / rows[("sup_2.5k", "relu")]["folders"][0] / "results.json").stat().st_mtime_ns
    assert main(["experiment", "table1", "--scale", "tiny", "--out", str(out), "--quiet"]) == 0
    assert (out / rows[("sup_2.5k", "relu")]["folders"][0] / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]


def test_table3_per_annotator_over_two_seeds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t3"
    assert main(["experiment", "table3", "--scale", "tiny", "--seeds", "0-1", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(r["key"], r["mechanism"]) for r in results["rows"]] == [
        ("unsup_144k", "cosine"), ("sup_2.5k", "cosine"), ("semi_2.5k_10k", "cosine")]
    for r in results["rows"]:
        runs = [json.loads((out / f / "results.json").read_text())["test"] for f in r["folders"]]
        ious = np.array([run["per_annotator"]["iou_at_0.5"] for run in runs]) * 100  # [seeds, annotators]
        assert ious.shape == (2, 3)
        for j in range(3):
            assert r["per_annotator"]["iou_at_0.5"][j] == pytest.approx([ious[:, j].mean(), ious[:, j].std(ddof=1)])
        means = ious.mean(axis=1)
        assert r["per_annotator"]["mean_iou_at_0.5"] == pytest.approx([means.mean(), means.std(ddof=1)])
    md = (out / "table.md").read_text()
    assert "| Unsup. 144k | 60.1 / 52.4 |" in md and "±" in md
    c = results["baselines"]["centre prior"]
    assert f"centre prior {c['ciou_at_0.5'][0]:.1f} ± {c['ciou_at_0.5'][1]:.1f} / {c['auc'][0]:.1f}" in md
    assert "Baselines on the same test scenes" in md and "random " in md and "whole image " in md


def test_table2_label_counts_scale_in_proportion() -> None:
    config = TableConfig(table="table2", scale=TableScale.named("tiny"))
    # 0.5k ... 2.5k labels of the paper's 2,500 become 16 * k / 2500 (rounded) at the tiny scale
    assert [config.run_dict(r, "cosine", 0)["labelled"] for r in TABLES["table2"]] == [3, 6, 10, 13, 16]
    assert all(config.run_dict(r, "relu", 0)["data"]["n_unlabelled"] == 24 for r in TABLES["table2"])
    assert [r.paper["relu"] for r in TABLES["table2"]] == [(79.2, 60.3), (82.4, 61.1), (82.8, 61.8), (82.4, 61.4), (84.0, 61.9)]


@pytest.mark.parametrize("argv, message", [
    (["--data", "{tmp}/missing"], "--data '{tmp}/missing' is not a folder"),
    (["--seeds", "3-1"], "--seeds '3-1'"),
    (["--packed"], "--packed needs --data DIR"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--rows", "sup_2.5k,sup_25k"], "TableConfig.rows: ['sup_25k'] not among table1's rows"),
])
def test_bad_input_fails_before_training(tmp_path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["experiment", "table1", "--out", str(tmp_path / "t"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("soundloc experiment: error: ") and "\n" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "t").exists()


def test_a_subset_of_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t"
    assert main(["experiment", "table1", "--scale", "tiny", "--rows", "sup_2.5k", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(r["key"], r["mechanism"]) for r in results["rows"]] == [("sup_2.5k", "cosine"), ("sup_2.5k", "relu")]
    assert results["provenance"]["device"] == "cpu" and results["provenance"]["version"]
    md = (out / "table.md").read_text()
    assert "| Unsup. 10k | softmax (mechanism 1) | 43.6 / 44.9 | not run | not run |" in md
    assert "| Sup. 2.5k | ReLU + softmax (mechanism 2) | 82.0 / 60.7 | not run |" not in md
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["sup_2.5k_cosine_seed0", "sup_2.5k_relu_seed0"]


def test_an_interrupted_table_continues_and_a_folder_of_another_is_refused(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    from soundloc.experiments.run import RunFolder

    command = ["experiment", "table1", "--scale", "tiny", "--rows", "sup_2.5k", "--quiet", "--out"]
    assert main([*command, str(tmp_path / "ref")]) == 0
    out = tmp_path / "t"

    def ctrl_c(self, trainer, batch, parts) -> None:  # type: ignore[no-untyped-def]
        if trainer.step == 1 and self.config.model.mechanism == "relu":  # the second run, mid-epoch
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RunFolder, "on_step_end", ctrl_c)
    capsys.readouterr()
    assert main([*command, str(out)]) == 130
    assert capsys.readouterr().err == (f"interrupted; the rows done and the interrupted one's checkpoint are kept in {out}: "
                                       "run the same command again to continue\n")
    relu = out / "runs" / "sup_2.5k_relu_seed0"
    assert (relu / "last.pt").is_file() and not (relu / "results.json").exists() and not (out / "results.json").exists()
    monkeypatch.undo()
    assert main([*command, str(out)]) == 0  # the same command: the relu run resumes from its checkpoint
    ref = json.loads((tmp_path / "ref" / "results.json").read_text())
    assert json.loads((out / "results.json").read_text())["rows"] == ref["rows"]  # same process and threads: exact

    # a folder holding another table, or this table at other settings, is refused; nothing changes
    def snapshot() -> dict[str, int]:
        return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*")}

    before = snapshot()
    for argv, message in (
        (["experiment", "table2", "--scale", "tiny"], f"--out {out} holds table1 (results.json): give another folder for table2"),
        ([*command[:-1], "--epochs", "2"], f"--out {out} holds table1 made with other settings (scale.epochs differ)"),
    ):
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("soundloc experiment: error: ") and message in err and err.count("\n") == 1, err
    assert snapshot() == before
    # the runs of a table that never finished are enough to tell
    (out / "results.json").unlink()
    assert main(["experiment", "table2", "--scale", "tiny", "--out", str(out)]) == 2
    assert "holds runs/sup_2.5k_cosine_seed0, which is not a run of table2" in capsys.readouterr().err
    # a run whose recorded config is not the one this table gives it
    run_config = out / "runs" / "sup_2.5k_cosine_seed0" / "config.json"
    saved = json.loads(run_config.read_text())
    saved["train"]["lr"] = 0.5
    run_config.write_text(json.dumps(saved))
    assert main([*command, str(out)]) == 2
    assert "runs/sup_2.5k_cosine_seed0 holds a run of another config (train.lr differ)" in capsys.readouterr().err
    # a training run's folder
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert main([*command, str(tmp_path / "run")]) == 2
    assert "holds a training run (config.json), not a table" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]


def test_every_committed_table_loads_and_its_runs_are_the_ones_it_gives_now() -> None:
    # each committed table's config loads, and every run folder it holds has exactly the config the
    # table gives that row today (the presets and the scales name the same training as when it ran;
    # only where and how fast it ran may differ): the table could be continued in place
    from soundloc.experiments.run import RunConfig
    from soundloc.experiments.tables import check_table_folder

    root = Path(__file__).resolve().parents[1] / "benchmarks" / "tables"
    tables = sorted(root.glob("*/results.json"))
    assert tables
    for path in tables:
        config = TableConfig.from_dict(json.loads(path.read_text())["config"])
        check_table_folder(config, path.parent)
        runs = sorted(path.parent.glob("runs/*/config.json"))
        assert runs, path
        for run in runs:
            recorded = RunConfig.from_dict(json.loads(run.read_text()))
            assert RunConfig.from_dict(json.loads(json.dumps(recorded.to_dict()))) == recorded

"""soundloc.experiments.tables.table2 against hand-computed values on a fabricated Table 2 folder:
per-seed scores in %, mean and sample std, the pre-registered Q1-Q3 (including a strict
inequality that fails, a saturation that fails and a row under the centre prior), seeds with
missing runs left out, and the one-seed case where Q1 and Q2 are undecided."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

from soundloc.experiments.tables import table2 as t2

matplotlib.use("Agg")

# cIoU@0.5 (fractions, one per seed 0, 1, 2); AUC 0.6 everywhere except where given
CIOU = {
    (500, "cosine"): (0.60, 0.70, 0.80),    # m 70, s 10
    (1000, "cosine"): (0.75, 0.80, 0.85),   # m 80, s 5
    (1500, "cosine"): (0.80, 0.80, 0.80),
    (2000, "cosine"): (0.80, 0.80, 0.80),
    (2500, "cosine"): (0.80, 0.82, 0.84),   # m 82, s 2
    (500, "relu"): (0.50, 0.60, 0.70),      # m 60, s 10
    (1000, "relu"): (0.60, 0.60, 0.60),     # m 60, s 0
    (1500, "relu"): (0.50, 0.50, 0.50),     # below the centre prior's 55
    (2000, "relu"): (0.70, 0.70, 0.70),
    (2500, "relu"): (0.64, 0.69, 0.74),     # m 69, s 5
}
AUC = {(500, "relu"): (0.50, 0.50, 0.50)}   # below the centre prior's 52
BASELINES = {"random": (0.01, 0.30), "whole image": (0.20, 0.40), "centre prior": (0.55, 0.52)}
LABELLED = {500: 20, 1000: 40, 1500: 60, 2000: 80, 2500: 100}


def write_run(folder: Path, labels: int, mechanism: str, seed: int) -> None:
    run = folder / "runs" / f"semi_{labels}_10k_{mechanism}_seed{seed}"
    run.mkdir(parents=True)
    base = {name: {"success": c, "auc": a} for name, (c, a) in BASELINES.items()}
    base["random"]["success"] += 0.01 * seed  # the random maps differ by seed: 1, 2, 3 %
    test = {"ciou_at_0.5": CIOU[(labels, mechanism)][seed], "auc": AUC.get((labels, mechanism), (0.6,) * 3)[seed],
            "n": 193, "baselines": base}
    sizes = {"labelled": LABELLED[labels], "train": 300 + LABELLED[labels]}
    (run / "results.json").write_text(json.dumps({"test": test, "sizes": sizes, "config": {"data": {"n_unlabelled": 300}}}))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for seed in (0, 1, 2):
        for labels in t2.PAPER_LABELS:
            for mechanism in t2.MECHANISMS:
                write_run(tmp_path, labels, mechanism, seed)
    # seed 3 has one finished run only: it must be left out
    run = tmp_path / "runs" / "semi_500_10k_cosine_seed3"
    run.mkdir(parents=True)
    (run / "results.json").write_text((tmp_path / "runs" / "semi_500_10k_cosine_seed0" / "results.json").read_text())
    (tmp_path / "runs" / "semi_1000_10k_relu_seed3").mkdir()  # started, not finished
    return tmp_path


def test_scores_means_and_stds(folder: Path) -> None:
    report = t2.load_table2(folder)
    assert report.seeds == (0, 1, 2) and report.incomplete == (3,) and report.provisional
    assert report.labelled == LABELLED and report.train[2500] == 400 and report.unlabelled == 300 and report.n_test == 193
    assert report.scores[(500, "cosine")]["ciou_at_0.5"] == pytest.approx([60.0, 70.0, 80.0])
    assert report.mean(500, "cosine") == pytest.approx(70.0) and report.std(500, "cosine") == pytest.approx(10.0)
    assert report.mean(2500, "relu") == pytest.approx(69.0) and report.std(2500, "relu") == pytest.approx(5.0)
    assert report.mean(500, "relu", "auc") == pytest.approx(50.0)
    assert report.baselines["random"]["ciou_at_0.5"] == pytest.approx([1.0, 2.0, 3.0])
    assert report.baseline_mean("random") == pytest.approx(2.0)
    assert report.baseline_mean("centre prior", "auc") == pytest.approx(52.0)
    assert t2.mean_std([1.0]) == (1.0, None)


def test_questions_as_preregistered(folder: Path) -> None:
    answers = t2.answer_questions(t2.load_table2(folder))
    assert answers["n_seeds"] == 3 and answers["provisional"]
    # Q1: cosine 82 - 70 = 12 > max(2, 10) = 10: yes; ReLU 69 - 60 = 9 > max(5, 10) = 10: no
    assert answers["Q1"]["cosine"]["answer"] is True
    assert answers["Q1"]["cosine"]["difference"] == pytest.approx(12.0)
    assert answers["Q1"]["cosine"]["spread"] == pytest.approx(10.0)
    assert answers["Q1"]["relu"]["answer"] is False
    assert answers["Q1"]["relu"]["difference"] == pytest.approx(9.0)
    # Q2: cosine |82 - 80| = 2 <= max(2, 5) = 5: yes; ReLU |69 - 60| = 9 <= max(5, 0) = 5: no
    assert answers["Q2"]["cosine"]["answer"] is True and answers["Q2"]["cosine"]["spread"] == pytest.approx(5.0)
    assert answers["Q2"]["relu"]["answer"] is False and answers["Q2"]["relu"]["spread"] == pytest.approx(5.0)
    # Q3: ReLU 0.5k's AUC (50) is under the centre prior's (52); ReLU 1.5k's cIoU (50) under its 55
    rows = answers["Q3"]["rows"]
    assert rows[(500, "relu")] == {"answer": False, "not_above": {"ciou_at_0.5": [], "auc": ["centre prior"]}}
    assert rows[(1500, "relu")] == {"answer": False, "not_above": {"ciou_at_0.5": ["centre prior"], "auc": []}}
    assert [k for k, r in rows.items() if not r["answer"]] == [(500, "relu"), (1500, "relu")]
    assert answers["Q3"]["all"] is False
    text = t2.format_answers(t2.load_table2(folder), answers)
    assert "CAVEAT" in text and "3 of the pre-registered 5" in text
    assert "Q1 (softmax (mechanism 1)): yes" in text and "Q2 (ReLU + softmax (mechanism 2)): no" in text


def test_one_seed_leaves_q1_and_q2_undecided(tmp_path: Path) -> None:
    for labels in t2.PAPER_LABELS:
        for mechanism in t2.MECHANISMS:
            write_run(tmp_path, labels, mechanism, 0)
    report = t2.load_table2(tmp_path)
    answers = t2.answer_questions(report)
    assert report.seeds == (0,) and answers["Q1"]["cosine"]["answer"] is None
    assert answers["Q2"]["relu"]["answer"] is None and answers["Q2"]["relu"]["difference"] == pytest.approx(4.0)
    assert answers["Q3"]["rows"][(1500, "relu")]["answer"] is False
    assert "undecided" in t2.format_answers(report)


def test_the_tables_own_seeds_when_it_lists_them(folder: Path) -> None:
    # a table written by "--seeds 0-1" while seed 2's runs have finished since: seeds 0 and 1
    (folder / "results.json").write_text(json.dumps({"table": "table2", "config": {"seeds": [0, 1]}}))
    report = t2.load_table2(folder)
    assert report.seeds == (0, 1) and report.incomplete == (2, 3) and report.missing == ()
    assert report.scores[(500, "cosine")]["ciou_at_0.5"] == pytest.approx([60.0, 70.0])


def test_agreement_with_the_engines_table(folder: Path) -> None:
    report = t2.load_table2(folder)
    assert t2.table_agreement(report) is None  # no results.json
    rows = [{"key": f"semi_{k}_10k", "mechanism": m,
             "ciou_at_0.5": list(t2.mean_std(report.scores[(k, m)]["ciou_at_0.5"])),
             "auc": list(t2.mean_std(report.scores[(k, m)]["auc"]))} for k in t2.PAPER_LABELS for m in t2.MECHANISMS]
    rows[3]["auc"][0] += 0.25  # one mean off by a quarter of a point
    (folder / "results.json").write_text(json.dumps({"config": {"seeds": [0, 1, 2]}, "rows": rows}))
    assert t2.table_agreement(t2.load_table2(folder)) == pytest.approx(0.25)
    # a table over seeds 0-3 while seed 3's runs are not all here: it averages other seeds
    (folder / "results.json").write_text(json.dumps({"config": {"seeds": [0, 1, 2, 3]}, "rows": rows}))
    assert t2.table_agreement(t2.load_table2(folder)) is None


def test_seeds_listed_by_the_table_without_their_runs(folder: Path) -> None:
    # a clone where the table lists seeds 0-4 but only the runs of seeds 0-2 (and part of 3) are there
    (folder / "results.json").write_text(json.dumps({"table": "table2", "config": {"seeds": [0, 1, 2, 3, 4]}}))
    report = t2.load_table2(folder)
    assert report.seeds == (0, 1, 2) and report.missing == (3, 4) and report.incomplete == ()


def test_no_runs_yet(tmp_path: Path) -> None:
    report = t2.load_table2(tmp_path)
    assert report.seeds == () and report.provisional
    with pytest.raises(ValueError, match="no seed"):
        t2.answer_questions(report)
    with pytest.raises(FileNotFoundError):
        t2.load_table2(tmp_path / "missing")


def test_table_and_figure_show_the_baselines_and_the_paper(folder: Path) -> None:
    report = t2.load_table2(folder)
    md = t2.markdown_table(report)
    assert "| 0.5k | 20 | softmax (mechanism 1) | 70.0 ± 10.0 / 60.0 ± 0.0 | 60.0, 70.0, 80.0 | 78.0 / 60.5 |" in md
    assert "| Random | – | – | 2.0 ± 1.0 / 30.0 ± 0.0 |" in md and "12.0 / 32.3 (Table 1)" in md
    assert "| Whole image |" in md and "| Centre prior |" in md
    fig = t2.plot_table2(report)
    assert len(fig.axes) == 4
    ours, paper = fig.subfigs  # one legend below each row of panels
    labels = [t.get_text() for t in ours.legends[0].get_texts()]
    assert {"random (baseline)", "whole image (baseline)", "centre prior (baseline)"} <= set(labels)
    assert any("paper" in t.get_text() for t in paper.legends[0].get_texts())
    from soundloc.viz import MIN_TEXT_PX, displayed_text_px

    assert displayed_text_px(fig) >= MIN_TEXT_PX  # its legends read at the book's width

"""``soundloc.experiments.tables`` (config and report): a chapter's parameters give the same
table config as ``soundloc experiment``; a table folder's provenance is read from its runs or from its committed
``provenance.json``; a row localizes only where it beats all three baselines on both metrics;
the committed tables are found, and none of them ran on a GPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundloc.cli import main
from soundloc.config import parse_seeds
from soundloc.experiments import tables as tr
from soundloc.experiments.tables import TableScale
from soundloc.utils.files import json_safe

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seeds, expected", [(0, (0,)), ("0-2", (0, 1, 2)), ("0,3-4", (0, 3, 4)), ([2, 5], (2, 5))])
def test_parse_seeds(seeds, expected) -> None:  # type: ignore[no-untyped-def]
    assert parse_seeds(seeds) == expected


@pytest.mark.parametrize("seeds", ["3-1", "0,0", "", "a", -1, True, [0, -2]])
def test_parse_seeds_rejects(seeds) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        parse_seeds(seeds)


@pytest.mark.slow
def test_table_config_is_the_commands_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t3"
    assert main(["experiment", "table3", "--scale", "tiny", "--rows", "sup_2.5k", "--seeds", "0-1",
                 "--out", str(out), "--quiet"]) == 0
    written = json.loads((out / "results.json").read_text())["config"]
    config = tr.table_config("table3", "tiny", rows="sup_2.5k", seeds="0-1")
    assert json.loads(json.dumps(json_safe(config.to_dict()))) == written


def test_table_config_for_real_data_and_epochs() -> None:
    config = tr.table_config("table2", "full", data="data/flickr", annotated="data/ssl", seeds="0-2",
                             rows=["semi_500_10k"], device="cuda", epochs=3)
    assert config.data.source == "folder" and config.data.root == "data/flickr" and config.data.annotated == "data/ssl"
    assert config.preset == "paper" and config.seeds == (0, 1, 2) and config.rows == ("semi_500_10k",)
    assert config.device == "cuda" and config.scale.epochs == 3 and TableScale.named("full").epochs == 10
    assert config.scale.n_144k == 144_000 and not config.synthetic
    assert tr.table_config(data="data/flickr", packed=True).data.source == "packed"
    synthetic = tr.table_config()
    assert synthetic.synthetic and synthetic.preset == "cpu" and synthetic.rows is None and synthetic.seeds == (0,)
    with pytest.raises(ValueError, match="packed"):
        tr.table_config(packed=True)
    with pytest.raises(ValueError, match="annotated"):
        tr.table_config(annotated="data/ssl")
    with pytest.raises(ValueError, match="rows"):
        tr.table_config(rows="sup_25k")


def _results(rows, baselines) -> dict:  # type: ignore[no-untyped-def]
    return {"table": "table1", "config": {"seeds": [0, 1]}, "comparable_with_paper": False,
            "rows": [{"key": k, "label": k, "scheme": s, "mechanism": "cosine", "paper": None,
                      "ciou_at_0.5": [c, 1.0], "auc": [a, 1.0], "folders": []} for k, s, c, a in rows],
            "baselines": {n: {"ciou_at_0.5": [c, None], "auc": [a, None], "paper": None} for n, (c, a) in baselines.items()}}


def test_a_row_localizes_only_above_every_baseline_on_both_metrics() -> None:
    results = _results(
        [("above", "supervised", 80.0, 60.0), ("only_random", "unsupervised", 20.0, 35.0),
         ("ciou_not_auc", "semi_supervised", 70.0, 50.0), ("tie", "supervised", 63.0, 60.0)],
        {"random": (1.0, 30.0), "whole image": (15.0, 40.0), "centre prior": (63.0, 54.0)})
    check = {c["label"]: c for c in tr.localization_check(results)}
    assert check["above"]["localizes"] and check["above"]["beats"] == ["random", "whole image", "centre prior"]
    assert check["only_random"]["beats"] == ["random"] and not check["only_random"]["localizes"]
    assert check["ciou_not_auc"]["beats"] == ["random", "whole image"] and not check["ciou_not_auc"]["localizes"]
    assert not check["tie"]["localizes"]  # equal is not above
    md = tr.localization_markdown(results)
    assert md.count("| yes |") == 1 and "| Centre prior (baseline) | – | 63.0 | 54.0 |" in md and "2 seed(s)" in md
    # a table without one of the baselines cannot say that a row localizes
    del results["baselines"]["centre prior"]
    assert not any(c["localizes"] for c in tr.localization_check(results))


def test_a_table_against_the_centre_prior_and_more_unlabelled_pairs() -> None:
    results = _results(
        [("unsup_10k", "unsupervised", 30.0, 40.0), ("unsup_144k", "unsupervised", 20.0, 35.0),
         ("sup_2.5k", "supervised", 50.0, 45.0), ("semi_2.5k_10k", "semi_supervised", 63.0, 50.0)],
        {"random": (1.0, 30.0), "whole image": (15.0, 40.0), "centre prior": (63.0, 54.0)})
    read = tr.against_centre_prior(results)
    assert read["best"]["label"] == "semi_2.5k_10k" and read["centre"] == (63.0, 54.0)
    assert (read["boxed"], read["boxed_below"]) == (2, 2)  # 63.0 ties the centre prior: at or below
    assert read["more_pairs"] == {"cosine": -10.0}  # 20.0 - 30.0; no relu rows were run
    results["rows"][3]["ciou_at_0.5"][0] = 63.5
    assert tr.against_centre_prior(results)["boxed_below"] == 1
    assert tr.MECHANISM_SHORT == {"cosine": "mechanism 1", "relu": "mechanism 2"}


def test_plot_table_draws_every_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    results = _results([("a", "supervised", 80.0, 60.0), ("b", "unsupervised", 20.0, 35.0)],
                       {"random": (1.0, 30.0), "whole image": (15.0, 40.0), "centre prior": (63.0, 54.0)})
    results["rows"][0]["paper"] = [80.4, 60.3]
    fig = tr.plot_table(results, title="t")
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a (mech. 1)", "b (mech. 1)"]
    assert fig.axes[0].get_xlabel() == "cIoU@0.5 (%)" and fig.axes[1].get_xlabel() == "AUC (%)"
    from soundloc.viz import MIN_TEXT_PX, displayed_text_px

    assert displayed_text_px(fig) >= MIN_TEXT_PX  # legend and row labels read at the book's width (were 6.4 px)
    plt.close(fig)
    with pytest.raises(ValueError):
        tr.plot_table({**results, "rows": []})


def _table_folder(folder: Path, runs: dict[str, str | None]) -> None:
    """A table folder whose results name ``runs`` (run name -> date, None: no run folder)."""
    names = list(runs)
    results = _results([("sup_2.5k", "supervised", 80.0, 60.0)], {"random": (1.0, 30.0)})
    results["rows"][0]["folders"] = [f"runs/{n}" for n in names]
    results["command"] = "soundloc experiment table1 --out T"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    for name, date in runs.items():
        if date is not None:
            (folder / "runs" / name).mkdir(parents=True)
            prov = {"version": "0.1.0", "torch": "2.x", "device": "cuda:0", "device_name": "NVIDIA H200",
                    "threads": 4, "platform": "Linux", "date": date, "command": "soundloc experiment table1"}
            (folder / "runs" / name / "results.json").write_text(json.dumps({"provenance": prov}))
    (folder / "runs" / "stray_seed9").mkdir(parents=True)  # a run the results do not average
    (folder / "runs" / "stray_seed9" / "results.json").write_text(json.dumps({"provenance": {"date": "2030-01-01", "device": "cpu"}}))


def test_provenance_from_the_runs_then_from_the_committed_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "t"
    _table_folder(folder, {"sup_2.5k_cosine_seed0": "2026-11-30T10:00:00+00:00",
                           "sup_2.5k_cosine_seed1": "2026-12-01T09:00:00+00:00"})
    prov = tr.table_provenance(folder)
    assert prov["source"] == "runs" and prov["runs"] == 2 and prov["devices"] == ["cuda:0"]
    assert (prov["first_date"], prov["last_date"]) == ("2026-11-30T10:00:00+00:00", "2026-12-01T09:00:00+00:00")
    line = tr.format_provenance(prov)
    assert "soundloc experiment table1 --out T" in line and "2026-11-30 to 2026-12-01" in line
    assert "cuda:0 (NVIDIA H200)" in line and "soundloc 0.1.0" in line

    # a clone has no run folders (git-ignored): the committed provenance.json stands in for them
    tr.write_provenance(folder)
    import shutil

    shutil.rmtree(folder / "runs")
    committed = tr.table_provenance(folder)
    assert committed["source"] == "provenance.json" and committed["uncovered"] == []
    assert tr.format_provenance(committed) == line
    # results grown by a seed after provenance.json was written: the line says so
    results = json.loads((folder / "results.json").read_text())
    results["rows"][0]["folders"].append("runs/sup_2.5k_cosine_seed2")
    (folder / "results.json").write_text(json.dumps(results))
    assert "1 later run(s) without a committed provenance" in tr.format_provenance(tr.table_provenance(folder))
    (folder / "provenance.json").unlink()
    none = tr.table_provenance(folder)
    assert none["source"] == "none" and "not committed" in tr.format_provenance(none)
    with pytest.raises(FileNotFoundError):
        tr.write_provenance(folder)


def test_a_table_still_running_has_no_results_but_its_runs_provenance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "t"
    _table_folder(folder, {"sup_2.5k_cosine_seed0": "2026-11-30T10:00:00+00:00"})
    (folder / "results.json").unlink()
    assert tr.load_table(folder) is None and tr.load_table(tmp_path / "missing") is None
    assert tr.table_provenance(folder)["runs"] == 2  # every run folder there is


def test_the_committed_tables_are_found_and_none_ran_on_a_gpu() -> None:
    found = tr.find_table_results(ROOT / "benchmarks")
    assert ROOT / "benchmarks" / "tables" / "table1_smoke" in found
    assert all("runs" not in f.relative_to(ROOT).parts for f in found)
    assert tr.find_table_results(ROOT / "benchmarks" / "gpu") == []
    assert tr.find_table_results(ROOT / "no_such_folder") == []
    prov = tr.table_provenance(ROOT / "benchmarks" / "tables" / "table1_smoke")
    table = json.loads((ROOT / "benchmarks" / "tables" / "table1_smoke" / "results.json").read_text())
    expected = sum(len(row["seeds"]) for row in table["rows"])  # one run per row, mechanism and seed
    assert prov["source"] in ("runs", "provenance.json") and prov["devices"] == ["cpu"] and prov["runs"] == expected


def _run_config(folder: Path, name: str, model: dict, world: dict | None) -> None:
    run = folder / "runs" / name
    run.mkdir(parents=True)
    data = {"source": "synthetic", "world": world} if world is not None else {"source": "flickr"}
    (run / "config.json").write_text(json.dumps({"model": model, "data": data}))


def test_a_table_folder_names_its_world_and_how_its_streams_learn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from soundloc.data.synthetic import WorldConfig

    scratch = {"pretrained": False, "freeze_visual": False, "sound_weights_path": None, "freeze_sound": False}
    world = WorldConfig(n_ground_objects=1, n_distractors=2, num_classes=6)
    _run_config(tmp_path / "a", "unsup_10k_cosine_seed0", scratch, json_safe(world.to_dict()))
    assert tr.table_world(tmp_path / "a") == world
    assert tr.describe_world(world) == ("the sounding object and 1 silent object(s) as large beside it, "
                                        "2 small silent object(s) in the sky; 6 classes")
    assert tr.describe_world(WorldConfig(n_ground_objects=0, n_distractors=0)) == "one large sounding object; 4 classes"
    assert tr.describe_streams(tmp_path / "a") == "both streams from scratch, trained by the row's loss"
    # the authors' setup: both pretrained streams frozen
    paper = {"pretrained": True, "freeze_visual": True, "sound_weights_path": "soundnet.pt", "freeze_sound": True}
    _run_config(tmp_path / "b", "sup_2.5k_cosine_seed0", paper, None)
    assert tr.table_world(tmp_path / "b") is None and tr.describe_world(None) == "no synthetic world"
    assert tr.describe_streams(tmp_path / "b") == "both streams pretrained, frozen"
    mixed = {**scratch, "pretrained": True, "freeze_visual": True}
    _run_config(tmp_path / "c", "sup_2.5k_cosine_seed0", mixed, None)
    assert tr.describe_streams(tmp_path / "c") == ("the visual stream pretrained, frozen; "
                                                   "the sound stream from scratch, trained")
    assert tr.describe_streams(tmp_path / "empty") == "no runs" and tr.table_world(tmp_path / "empty") is None

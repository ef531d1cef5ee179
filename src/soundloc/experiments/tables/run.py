"""The paper's tables by one call: every row a training run, for every seed.

:func:`run_table` trains every row with :func:`soundloc.experiments.run.run_training` (each row
a run folder under ``runs/``, reused when its ``results.json`` exists and resumed from its
checkpoint when it was interrupted, so an interrupted table continues) and writes
``results.json``, ``table.md`` and ``table.csv``: our numbers (mean ± std over seeds) beside the
paper's, with the random, whole-image and centre-prior baselines. A folder that holds anything
else (another table, a run of another config, a training run) is refused
(:func:`check_table_folder`): nothing of it is overwritten or mixed in. On the synthetic world the
numbers are *not comparable* with the paper's: the table says so.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from soundloc.experiments.provenance import provenance
from soundloc.experiments.run import (CONFIG_FILE, RESULTS_FILE, RunConfig, build_data, open_run, resume_run,
                                      run_training)
from soundloc.experiments.run.config import RESUMABLE_TRAIN, differences
from soundloc.experiments.tables.config import BASELINES, PAPER_RANDOM, TABLES, Row, TableConfig
from soundloc.experiments.tables.report import csv_table, markdown_table
from soundloc.utils.device import default_device
from soundloc.utils.files import atomic_open, json_safe, read_json, write_json
from soundloc.utils.summary import mean_std

#: What may differ between a row's recorded run and the table's: where and how fast it ran.
RUN_PLACE = ("threads", *(f"train.{name}" for name in RESUMABLE_TRAIN if name != "epochs"))


def percent_mean_std(values: list[float]) -> tuple[float, float | None]:
    """:func:`~soundloc.utils.summary.mean_std` of fractions, in % (the paper's tables)."""
    return mean_std([100.0 * v for v in values])


def run_folder(row: Row, mechanism: str, seed: int) -> str:
    """The run folder of a row, mechanism and seed, relative to the table's folder."""
    return f"runs/{row.key}_{mechanism}_seed{seed}"


def check_table(config: TableConfig) -> None:
    """Build every row's config and data once (nothing trains), so that a missing folder, too
    small a supervision pool or a bad value fails before the first row runs."""
    for row in config.selected():
        for mechanism in config.mechanisms():
            build_data(RunConfig.from_dict(config.run_dict(row, mechanism, config.seeds[0])))


def _check_held_results(config: TableConfig, out: Path) -> None:
    """``out/results.json``, when there, is this table's with the same settings."""
    held = read_json(out / "results.json")
    if not (isinstance(held, dict) and held.get("table") in TABLES and isinstance(held.get("config"), dict)):
        raise ValueError(f"--out {out} holds the results.json of another experiment: give another folder")
    if held["table"] != config.table:
        raise ValueError(f"--out {out} holds {held['table']} (results.json): give another folder for {config.table}")
    changed = [name for name, _, _ in differences(TableConfig.from_dict(held["config"]), config)
               if name not in ("seeds", "rows", "device")]
    if changed:
        raise ValueError(f"--out {out} holds {config.table} made with other settings ({', '.join(changed[:4])} "
                         "differ): give another folder")


def check_table_folder(config: TableConfig, out: str | os.PathLike[str]) -> None:
    """``out`` holds this table or nothing of another experiment: no training run of its own
    (``config.json``), no ``results.json`` of another table or of another scale, data or model,
    and under ``runs/`` no run of another table's rows nor a run whose config is not the one
    this table gives it (another scale, epochs...). The same table with more seeds or rows, or
    on another device or thread count, continues in it. ``ValueError`` naming what is there."""
    out = Path(out)
    if (out / CONFIG_FILE).is_file():
        raise ValueError(f"--out {out} holds a training run ({CONFIG_FILE}), not a table: give another folder")
    if (out / "results.json").is_file():
        _check_held_results(config, out)
    keys = {r.key for r in TABLES[config.table]}
    for folder in sorted((out / "runs").iterdir()) if (out / "runs").is_dir() else []:
        if folder.is_dir() and folder.name.rsplit("_", 2)[0] not in keys:
            raise ValueError(f"--out {out} holds {folder.relative_to(out)}, which is not a run of {config.table}: "
                             "give another folder")
    for row in config.selected():
        for mechanism in config.mechanisms():
            for seed in config.seeds:
                folder = out / run_folder(row, mechanism, seed)
                if not (folder / CONFIG_FILE).is_file():
                    continue
                wanted = RunConfig.from_dict(config.run_dict(row, mechanism, seed))
                held = RunConfig.from_dict(read_json(folder / CONFIG_FILE))
                changed = [name for name, _, _ in differences(held, wanted) if name not in RUN_PLACE]
                if changed:
                    raise ValueError(f"--out {out}: {folder.relative_to(out)} holds a run of another config "
                                     f"({', '.join(changed[:4])} differ): give another folder")


def run_row(config: TableConfig, out: Path, row: Row, mechanism: str, seed: int, progress: bool,
            command: str | None) -> dict[str, Any]:
    """One row's run for one seed: read when finished, resumed when interrupted, else trained."""
    folder = out / run_folder(row, mechanism, seed)
    if (folder / RESULTS_FILE).is_file():
        return read_json(folder / RESULTS_FILE)
    if (folder / CONFIG_FILE).is_file():  # interrupted: from its last checkpoint
        return resume_run(folder, open_run(folder), command=command, progress=progress)
    return run_training(RunConfig.from_dict(config.run_dict(row, mechanism, seed)), folder, command=command,
                        progress=progress)


def row_record(config: TableConfig, row: Row, mechanism: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A row's line of ``results.json``: its test scores in %, mean ± std over the seeds."""
    tests = [r["test"] for r in runs]
    record: dict[str, Any] = {
        "key": row.key, "label": row.label, "scheme": row.scheme, "mechanism": mechanism,
        "paper": row.paper.get(mechanism), "sizes": runs[0]["sizes"], "seeds": list(config.seeds),
        "ciou_at_0.5": percent_mean_std([t["ciou_at_0.5"] for t in tests]),
        "auc": percent_mean_std([t["auc"] for t in tests]),
        "folders": [run_folder(row, mechanism, s) for s in config.seeds],
    }
    if config.table == "table3":
        per = [t["per_annotator"] for t in tests]
        record["per_annotator"] = {
            "iou_at_0.5": [percent_mean_std([p["iou_at_0.5"][j] for p in per]) for j in range(len(per[0]["iou_at_0.5"]))],
            "auc": [percent_mean_std([p["auc"][j] for p in per]) for j in range(len(per[0]["auc"]))],
            "mean_iou_at_0.5": percent_mean_std([p["mean_iou_at_0.5"] for p in per]),
            "mean_auc": percent_mean_std([p["mean_auc"] for p in per]),
        }
    return record


def run_table(config: TableConfig, out: str | os.PathLike[str], progress: bool = False,
              command: str | None = None) -> dict[str, Any]:
    """Train and score every row of ``config.table`` for every seed under ``out/runs/``, then
    write ``out/results.json``, ``out/table.md`` and ``out/table.csv``; returns the results.
    A finished row is read, an interrupted one resumed; ``out`` must pass :func:`check_table_folder`."""
    out = Path(out)
    check_table_folder(config, out)
    rows: list[dict[str, Any]] = []
    baselines: dict[str, list[tuple[float, float]]] = {}
    for row in config.selected():
        for mechanism in config.mechanisms():
            runs = [run_row(config, out, row, mechanism, seed, progress, command) for seed in config.seeds]
            rows.append(row_record(config, row, mechanism, runs))
            if not baselines:  # one test set for all rows
                baselines = {name: [(r["test"]["baselines"][name]["success"], r["test"]["baselines"][name]["auc"])
                                    for r in runs] for name in BASELINES}
    results = {
        "table": config.table, "config": config.to_dict(), "rows": rows,
        "baselines": {name: {"ciou_at_0.5": percent_mean_std([c for c, _ in v]), "auc": percent_mean_std([a for _, a in v]),
                             "paper": PAPER_RANDOM if name == "random" and config.table == "table1" else None}
                      for name, v in baselines.items() if v},
        "comparable_with_paper": not config.synthetic,
        "command": command,
        # this process (the rows' own runs, possibly older and reused, keep theirs in runs/*/)
        "provenance": provenance(config.device or default_device(), command or ""),
    }
    write_json(out / "results.json", json_safe(results))
    with atomic_open(out / "table.md", "w", encoding="utf-8") as fh:
        fh.write(markdown_table(results))
    with atomic_open(out / "table.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write(csv_table(results))
    return results


__all__ = ["RUN_PLACE", "check_table", "check_table_folder", "percent_mean_std", "row_record", "run_folder", "run_row",
           "run_table"]

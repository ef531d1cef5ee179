"""The paper's Tables 1-3 by one command, at a scale that fits the machine.

Senocak et al. (CVPR 2018) report on the 250 annotated Flickr-SoundNet test pairs (cIoU@0.5 and
AUC, in %):

- Table 1: unsupervised (10k, 144k unlabelled pairs), supervised (2.5k labelled) and
  semi-supervised (2.5k labelled + 10k unlabelled) models, each with attention mechanism 1
  (softmax over cosines) and 2 (softmax over ReLU of the cosines); the paper does not report
  mechanism 2 at 10k unsupervised, nor semi-supervised with 144k unlabelled pairs;
- Table 2: semi-supervised with 10k unlabelled pairs and 0.5k...2.5k labels;
- Table 3: IoU@0.5 and AUC against each of the three annotators (the paper prints their means).

:func:`run_table` trains every row with :func:`soundloc.experiments.engine.run_training` (each
row a run folder, reused when its ``results.json`` exists and resumed from its checkpoint when
it was interrupted, so an interrupted table continues), for every seed, and writes
``results.json``, ``table.md`` and ``table.csv``: our numbers (mean ± std over seeds) beside the
paper's, with the random, whole-image and centre-prior baselines. A folder that holds anything
else (another table, a run of another config, a training run) is refused
(:func:`check_table_folder`): nothing of it is overwritten or mixed in.
Sizes scale down with the :class:`TableScale` (``tiny`` for the test suite, ``smoke`` for a few
CPU minutes per row, ``full`` the paper's counts), and the table says which pairs "10k" meant.
On the synthetic world the numbers are *not comparable* with the paper's: the table says so,
and the real-data column reads "not run" until a run on Flickr-SoundNet fills it.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


from soundloc.config import ConfigMixin, check_choice, check_int, check_number
from soundloc.constants import Scale, Scheme
from soundloc.experiments.engine import (
    CONFIG_FILE,
    RESULTS_FILE,
    RESUMABLE,
    DataConfig,
    Preset,
    TrainRunConfig,
    build_data,
    build_run_config,
    open_run,
    resume_run,
    run_training,
)
from soundloc.experiments.provenance import provenance
from soundloc.utils import atomic_open, default_device, format_pair, json_safe, mean_std, read_json, write_json

TableName = Literal["table1", "table2", "table3"]
Mechanism = Literal["cosine", "relu"]
MECHANISM_LABEL = {"cosine": "softmax (mechanism 1)", "relu": "ReLU + softmax (mechanism 2)"}
BASELINES = ("random", "whole image", "centre prior")
#: The paper's random baseline in Table 1 (its text prints the cIoU as "0.12 ± 0.2": 12.0 %).
PAPER_RANDOM = (12.0, 32.3)


@dataclass(frozen=True)
class Row:
    """One row: its label, scheme, the paper's counts of unlabelled ("10k"/"144k") and labelled
    pairs, and the paper's numbers per mechanism (``None``: not reported)."""

    key: str
    label: str
    scheme: Scheme
    unlabelled: str | None
    labelled: int
    paper: dict[str, tuple[float, float] | None]


TABLES: dict[str, tuple[Row, ...]] = {
    "table1": (
        Row("unsup_10k", "Unsup. 10k", "unsupervised", "10k", 0, {"cosine": (43.6, 44.9), "relu": None}),
        Row("unsup_144k", "Unsup. 144k", "unsupervised", "144k", 0, {"cosine": (66.0, 55.8), "relu": (52.4, 51.2)}),
        Row("sup_2.5k", "Sup. 2.5k", "supervised", None, 2500, {"cosine": (80.4, 60.3), "relu": (82.0, 60.7)}),
        Row("semi_2.5k_10k", "Semi-sup. 2.5k + 10k", "semi_supervised", "10k", 2500,
            {"cosine": (82.8, 62.0), "relu": (84.0, 61.9)}),
        Row("semi_2.5k_144k", "Semi-sup. 2.5k + 144k", "semi_supervised", "144k", 2500, {"cosine": None, "relu": None}),
    ),
    "table2": tuple(
        Row(f"semi_{k}_10k", f"Semi-sup. {k / 1000:g}k + 10k", "semi_supervised", "10k", k, paper)
        for k, paper in (
            (500, {"cosine": (78.0, 60.5), "relu": (79.2, 60.3)}),
            (1000, {"cosine": (82.4, 61.1), "relu": (82.4, 61.1)}),
            (1500, {"cosine": (82.0, 61.3), "relu": (82.8, 61.8)}),
            (2000, {"cosine": (82.0, 61.5), "relu": (82.4, 61.4)}),
            (2500, {"cosine": (82.8, 62.0), "relu": (84.0, 61.9)}),
        )
    ),
    # the paper prints Table 3's means over the three annotators
    "table3": (
        Row("unsup_144k", "Unsup. 144k", "unsupervised", "144k", 0, {"cosine": (60.1, 52.4)}),
        Row("sup_2.5k", "Sup. 2.5k", "supervised", None, 2500, {"cosine": (72.5, 55.6)}),
        Row("semi_2.5k_10k", "Semi-sup. 2.5k + 10k", "semi_supervised", "10k", 2500, {"cosine": (75.2, 57.2)}),
    ),
}


@dataclass
class TableScale(ConfigMixin):
    """How many pairs the paper's counts become, and how long each row trains.

    Attributes:
        name: the scale's name (stated in the table).
        n_10k, n_144k: unlabelled pairs standing for the paper's 10k and 144k.
        n_2_5k: labelled pairs standing for 2.5k (Table 2's 0.5k-2.0k scale with it).
        val_size: validation pairs from the supervision pool (held out; picks the best epoch).
        n_test: test scenes of the synthetic world (real data: its test list).
        epochs, batch_size, lr: training of every row.
        temperature: the attention's softmax temperature (the paper: 1).
        model: changes to the ``cpu`` preset's model (small streams for ``tiny``; the ``paper``
            preset is used as it is).
        world: changes to the synthetic world (smaller images and clips for ``tiny``).
    """

    name: str = "tiny"
    n_10k: int = 24
    n_144k: int = 48
    n_2_5k: int = 16
    val_size: int = 8
    n_test: int = 24
    epochs: int = 1
    batch_size: int = 8
    lr: float = 3e-3
    temperature: float = 0.1
    model: dict[str, Any] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_int(self, "n_10k", "n_144k", "n_2_5k", "val_size", "n_test", "epochs", "batch_size")
        check_number(self, "lr", "temperature", low_open=True)

    def unlabelled(self, count: str | None) -> int | None:
        return {"10k": self.n_10k, "144k": self.n_144k, None: None}[count]

    def labelled(self, paper_count: int) -> int:
        """The labelled pairs standing for ``paper_count`` (at least one when any)."""
        return 0 if paper_count == 0 else max(1, round(self.n_2_5k * paper_count / 2500))

    @classmethod
    def named(cls, scale: Scale) -> "TableScale":
        """The preset scales: ``tiny`` (the test suite, seconds per row, a tiny model),
        ``smoke`` (a CPU, minutes per row) and ``full`` (the paper's counts)."""
        tiny_model = dict(visual_width=4, visual_dim=8, visual_stride=8, sound_width=0.0625, sound_dim=8,
                          sound_hidden=8, visual_hidden=8)
        presets: dict[str, TableScale] = {
            "quick": cls(name="quick", model=tiny_model, world=dict(image_size=32, clip_seconds=0.5)),
            "tiny": cls(name="tiny", model=tiny_model, world=dict(image_size=32, clip_seconds=0.5)),
            "smoke": cls(name="smoke", n_10k=300, n_144k=1200, n_2_5k=100, val_size=50, n_test=200, epochs=4,
                         batch_size=32, lr=1e-3, world=dict(clip_seconds=0.5)),
            "full": cls(name="full", n_10k=10_000, n_144k=144_000, n_2_5k=2500, val_size=36, n_test=1000, epochs=10,
                        batch_size=30, lr=1e-4, temperature=1.0),
        }
        return presets[scale]


@dataclass
class TableConfig(ConfigMixin):
    """One table's run: which table, at which scale, on which data, with which seeds, and
    optionally which rows (``rows``: their keys; ``None``: all). A row left out reads "not run"
    in the table: a GPU's few minutes hold one or two rows at the ``full`` scale, not a table."""

    table: TableName = "table1"
    scale: TableScale = field(default_factory=TableScale)
    data: DataConfig = field(default_factory=DataConfig)
    preset: Preset = "cpu"
    seeds: tuple[int, ...] = (0,)
    device: str | None = None
    rows: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_choice(self, "table", "preset")
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"TableConfig.seeds must be non-negative ints, got {self.seeds!r}")
        keys = [r.key for r in TABLES[self.table]]
        unknown = [k for k in self.rows or () if k not in keys]
        if unknown or self.rows == ():
            raise ValueError(f"TableConfig.rows: {unknown or 'none'} not among {self.table}'s rows {keys}")

    def selected(self) -> list[Row]:
        """The rows to run, in the table's order."""
        return [r for r in TABLES[self.table] if self.rows is None or r.key in self.rows]

    @property
    def synthetic(self) -> bool:
        return self.data.source == "synthetic"

    def mechanisms(self) -> tuple[str, ...]:
        return ("cosine",) if self.table == "table3" else ("cosine", "relu")

    def run_dict(self, row: Row, mechanism: str, seed: int) -> dict[str, Any]:
        """The :func:`~soundloc.experiments.engine.build_run_config` dictionary of one row."""
        s = self.scale
        data = self.data.to_dict()
        if self.synthetic:
            data["world"] = {**data["world"], **s.world}
            margin = (s.n_144k + s.n_2_5k + s.val_size) // 5  # room for the scenes without a box
            data.update(n_scenes=s.n_144k + s.n_2_5k + s.val_size + margin + s.n_test, n_test=s.n_test)
        data["n_unlabelled"] = s.unlabelled(row.unlabelled)
        return {
            "preset": self.preset,
            "model": {**(s.model if self.preset == "cpu" else {}), "mechanism": mechanism, "temperature": s.temperature},
            "data": data,
            "train": {"scheme": row.scheme, "epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr,
                      "seed": seed, "checkpoint_every": None, "device": self.device},
            "labelled": s.labelled(row.labelled),
            "val_size": s.val_size,
            "split_seed": seed,
        }


def percent_mean_std(values: list[float]) -> tuple[float, float | None]:
    """:func:`~soundloc.utils.mean_std` of fractions, in % (the paper's tables)."""
    return mean_std([100.0 * v for v in values])


def _cell(mean: float, std: float | None) -> str:
    return format_pair(mean, std, digits=1)


def check_table(config: TableConfig) -> None:
    """Build every row's config and data once (nothing trains), so that a missing folder, too
    small a supervision pool or a bad value fails before the first row runs."""
    for row in config.selected():
        for mechanism in config.mechanisms():
            build_data(build_run_config(config.run_dict(row, mechanism, config.seeds[0])))


def _leaves(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dictionary's values by dotted path (an empty one is a value)."""
    if not isinstance(d, dict) or not d:
        return {prefix: d}
    return {k: v for key, value in d.items() for k, v in _leaves(value, f"{prefix}.{key}" if prefix else key).items()}


def _differences(a: ConfigMixin, b: ConfigMixin, ignore: tuple[str, ...] = ()) -> list[str]:
    """The dotted fields where two configs differ, ``ignore``'s left out (compared as JSON)."""
    fa, fb = (_leaves(json_safe(c.to_dict())) for c in (a, b))
    return sorted(k for k in set(fa) | set(fb) if k not in ignore and fa.get(k) != fb.get(k))


def _run_folder(row: Row, mechanism: str, seed: int) -> str:
    return f"runs/{row.key}_{mechanism}_seed{seed}"


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
        held = read_json(out / "results.json")
        if not (isinstance(held, dict) and held.get("table") in TABLES and isinstance(held.get("config"), dict)):
            raise ValueError(f"--out {out} holds the results.json of another experiment: give another folder")
        if held["table"] != config.table:
            raise ValueError(f"--out {out} holds {held['table']} (results.json): give another folder for {config.table}")
        changed = _differences(TableConfig.from_dict(held["config"]), config, ignore=("seeds", "rows", "device"))
        if changed:
            raise ValueError(f"--out {out} holds {config.table} made with other settings ({', '.join(changed[:4])} "
                             "differ): give another folder")
    keys = {r.key for r in TABLES[config.table]}
    runs = out / "runs"
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        key = folder.name.rsplit("_", 2)[0]
        if folder.is_dir() and key not in keys:
            raise ValueError(f"--out {out} holds {folder.relative_to(out)}, which is not a run of {config.table}: "
                             "give another folder")
    ignore = tuple(k for k in RESUMABLE if k != "train.epochs")  # where and how fast it ran, not what
    for row in config.selected():
        for mechanism in config.mechanisms():
            for seed in config.seeds:
                folder = out / _run_folder(row, mechanism, seed)
                if (folder / CONFIG_FILE).is_file():
                    wanted = build_run_config(config.run_dict(row, mechanism, seed))
                    changed = _differences(TrainRunConfig.from_dict(read_json(folder / CONFIG_FILE)), wanted, ignore)
                    if changed:
                        raise ValueError(f"--out {out}: {folder.relative_to(out)} holds a run of another config "
                                         f"({', '.join(changed[:4])} differ): give another folder")


def run_table(config: TableConfig, out: str | os.PathLike[str], progress: bool = False,
              command: str | None = None) -> dict[str, Any]:
    """Train and score every row of ``config.table`` for every seed under ``out/runs/``, then
    write ``out/results.json``, ``out/table.md`` and ``out/table.csv``; returns the results.
    A finished row is read, an interrupted one resumed; ``out`` must pass :func:`check_table_folder`."""
    out = Path(out)
    check_table_folder(config, out)
    rows: list[dict[str, Any]] = []
    baselines: dict[str, list[tuple[float, float]]] = {b: [] for b in BASELINES}
    for row in config.selected():
        for mechanism in config.mechanisms():
            runs = []
            for seed in config.seeds:
                folder = out / _run_folder(row, mechanism, seed)
                if (folder / RESULTS_FILE).is_file():
                    result = read_json(folder / RESULTS_FILE)
                elif (folder / CONFIG_FILE).is_file():  # interrupted: from its last checkpoint
                    result = resume_run(folder, open_run(folder), command=command, progress=progress)
                else:
                    run_config = build_run_config(config.run_dict(row, mechanism, seed))
                    result = run_training(run_config, folder, command=command, progress=progress)
                runs.append(result)
            tests = [r["test"] for r in runs]
            record: dict[str, Any] = {
                "key": row.key, "label": row.label, "scheme": row.scheme, "mechanism": mechanism,
                "paper": row.paper.get(mechanism), "sizes": runs[0]["sizes"], "seeds": list(config.seeds),
                "ciou_at_0.5": percent_mean_std([t["ciou_at_0.5"] for t in tests]), "auc": percent_mean_std([t["auc"] for t in tests]),
                "folders": [_run_folder(row, mechanism, s) for s in config.seeds],
            }
            if config.table == "table3":
                per = [t["per_annotator"] for t in tests]
                record["per_annotator"] = {
                    "iou_at_0.5": [percent_mean_std([p["iou_at_0.5"][j] for p in per]) for j in range(len(per[0]["iou_at_0.5"]))],
                    "auc": [percent_mean_std([p["auc"][j] for p in per]) for j in range(len(per[0]["auc"]))],
                    "mean_iou_at_0.5": percent_mean_std([p["mean_iou_at_0.5"] for p in per]),
                    "mean_auc": percent_mean_std([p["mean_auc"] for p in per]),
                }
            rows.append(record)
            if row is config.selected()[0] and mechanism == "cosine":  # one test set for all rows
                for name in BASELINES:
                    baselines[name] = [(t["baselines"][name]["success"], t["baselines"][name]["auc"]) for t in tests]
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


def _data_label(config: TableConfig) -> str:
    return "synthetic world" if config.synthetic else "Flickr-SoundNet"


def _row_line(row: Row, mechanism: str, r: dict[str, Any] | None, config: TableConfig) -> str:
    """One Markdown line: the paper's numbers and ours (``r``; ``None``: the row was not run)."""
    pair = row.paper.get(mechanism)
    paper = "not reported" if pair is None else f"{pair[0]:.1f} / {pair[1]:.1f}"
    if config.table == "table3":
        if r is None:
            cells = ["not run"] * 4
        else:
            pa = r["per_annotator"]
            cells = [f"{_cell(*i)} / {_cell(*a)}" for i, a in zip(pa["iou_at_0.5"], pa["auc"])]
            cells.append(f"{_cell(*pa['mean_iou_at_0.5'])} / {_cell(*pa['mean_auc'])}")
        return "| " + " | ".join([row.label, paper, *cells, "not run"]) + " |"
    ours = "not run" if r is None else f"{_cell(*r['ciou_at_0.5'])} / {_cell(*r['auc'])}"
    syn, real = (ours, "not run") if config.synthetic else ("not run", ours)
    return f"| {row.label} | {MECHANISM_LABEL[mechanism]} | {paper} | {syn} | {real} |"


def markdown_table(results: dict[str, Any]) -> str:
    """The table in Markdown: the paper's numbers beside ours, the sizes, the baselines, and
    whether the two can be compared. Its title is a bold line, not a heading, so that the table
    sits under the section that shows it (a chapter, a report) without breaking its outline."""
    config = TableConfig.from_dict(results["config"])
    s = config.scale
    ours_syn = f"Ours: synthetic world ({s.name})"
    ours_real = f"Ours: Flickr-SoundNet ({s.name})"
    title = {"table1": "Table 1", "table2": "Table 2", "table3": "Table 3 (IoU@0.5 / AUC per annotator)"}[config.table]
    lines = [f"**{title} of Senocak et al. (CVPR 2018): cIoU@0.5 / AUC in %**", ""]
    lines.append(f"Data: {_data_label(config)}; scale `{s.name}`: \"10k\" = {s.n_10k} and \"144k\" = {s.n_144k} "
                 f"unlabelled pairs, \"2.5k\" = {s.n_2_5k} labelled pairs (Table 2's counts in proportion), "
                 f"{s.val_size} validation pairs from the supervision pool, {s.epochs} epoch(s), softmax temperature "
                 f"{s.temperature:g}; seeds {', '.join(map(str, config.seeds))} (mean ± std over seeds when several).")
    if config.synthetic:
        lines.append("")
        lines.append("**Not comparable with the paper's numbers**: these are scores on the library's synthetic "
                     "world, not on the Flickr-SoundNet test set; they show the experiment runs end to end and how "
                     "the rows order, nothing more.")
    lines.append("")
    paper_note = "Paper (mean of annotators)" if config.table == "table3" else "Paper"
    if config.table == "table3":
        header = ["Method", paper_note, f"{ours_syn if config.synthetic else ours_real}: annotator 1", "annotator 2",
                  "annotator 3", "mean", ours_real if config.synthetic else ours_syn]
    else:
        header = ["Method", "Attention", paper_note, ours_syn, ours_real]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    done = {(r["key"], r["mechanism"]): r for r in results["rows"]}
    for row in TABLES[config.table]:
        for mechanism in config.mechanisms():
            lines.append(_row_line(row, mechanism, done.get((row.key, mechanism)), config))
    if config.table != "table3":
        for name, b in results["baselines"].items():
            paper = "not reported" if b["paper"] is None else f"{b['paper'][0]:.1f} / {b['paper'][1]:.1f}"
            ours = f"{_cell(*b['ciou_at_0.5'])} / {_cell(*b['auc'])}"
            syn, real = (ours, "not run") if config.synthetic else ("not run", ours)
            lines.append(f"| {name.capitalize()} | – | {paper} | {syn} | {real} |")
    elif results["baselines"]:  # scored against the consensus, not per annotator: beside the table
        scores = "; ".join(f"{name} {_cell(*b['ciou_at_0.5'])} / {_cell(*b['auc'])}" for name, b in results["baselines"].items())
        lines += ["", f"Baselines on the same test scenes, scored against the annotators' consensus (cIoU@0.5 / AUC): "
                      f"{scores}."]
    lines.append("")
    return "\n".join(lines)


def csv_table(results: dict[str, Any]) -> str:
    """One CSV line per row and mechanism (and per baseline), numbers in %."""
    config = TableConfig.from_dict(results["config"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "method", "mechanism", "data", "scale", "train_pairs", "labelled", "seeds", "paper_ciou",
                "paper_auc", "ciou_mean", "ciou_std", "auc_mean", "auc_std"])
    for r in [*results["rows"], *({"label": k, "mechanism": "", "sizes": {}, **v} for k, v in results["baselines"].items())]:
        paper = r["paper"] or ("", "")
        w.writerow([config.table, r["label"], r["mechanism"], _data_label(config), config.scale.name,
                    r["sizes"].get("train", ""), r["sizes"].get("labelled", ""), len(config.seeds), *paper,
                    r["ciou_at_0.5"][0], "" if r["ciou_at_0.5"][1] is None else r["ciou_at_0.5"][1],
                    r["auc"][0], "" if r["auc"][1] is None else r["auc"][1]])
    return buf.getvalue()


__all__ = ["TABLES", "Row", "TableConfig", "TableScale", "check_table", "check_table_folder", "csv_table", "markdown_table",
           "run_table"]

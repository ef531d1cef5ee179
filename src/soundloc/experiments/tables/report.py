"""Reporting the paper's tables: Markdown and CSV beside the paper's numbers, provenance, which
rows *localize*, and the chart.

:func:`~soundloc.experiments.tables.run_table` writes a table folder (``results.json``,
``table.md``, ``table.csv`` and one run folder per row and seed under ``runs/``). This module
reads a committed table folder with where, when and on what it was run (:func:`load_table`,
:func:`table_provenance`), says which rows beat every baseline on the same test scenes
(:func:`localization_check`), and draws a table's rows beside the paper's numbers and the
baselines (:func:`plot_table`). The run folders are git-ignored (``runs/``: checkpoints are
large), so :func:`write_provenance` summarises them into a small committed ``provenance.json``.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundloc.experiments.run import RESULTS_FILE
from soundloc.experiments.tables.config import BASELINES, MECHANISM_LABEL, TABLES, Row, TableConfig
from soundloc.utils.files import read_json, write_json
from soundloc.utils.summary import format_pair
from soundloc.viz import MAX_WIDTH, scheme_colour, styled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The file :func:`write_provenance` writes into a table folder.
PROVENANCE_FILE = "provenance.json"


def _cell(mean: float, std: float | None) -> str:
    return format_pair(mean, std, digits=1)


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


def load_table(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A table folder's ``results.json`` (what :func:`run_table` wrote), or ``None`` when the
    folder or the file does not exist yet (e.g. a table whose seeds are still running)."""
    path = Path(folder) / "results.json"
    return read_json(path) if path.is_file() else None


def _run_provenances(folder: Path) -> list[dict[str, Any]]:
    """The provenance of every run folder that the table's ``results.json`` averages (every run
    folder under ``runs/`` where there is no ``results.json`` yet)."""
    results = load_table(folder)
    if results is not None:
        paths = [folder / f / RESULTS_FILE for r in results["rows"] for f in r.get("folders", [])]
        paths = [p for p in paths if p.is_file()]
    else:
        paths = sorted((folder / "runs").glob(f"*/{RESULTS_FILE}"))
    out = []
    for path in paths:
        prov = read_json(path).get("provenance")
        if prov:
            out.append({**prov, "run": path.parent.name})
    return out


def _summary(provs: list[dict[str, Any]]) -> dict[str, Any]:
    def values(key: str) -> list[Any]:
        return sorted({p[key] for p in provs if p.get(key) is not None}, key=str)

    dates = values("date")
    return {
        "runs": len(provs), "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None,
        "devices": values("device"), "device_names": values("device_name"), "versions": values("version"),
        "torch": values("torch"), "threads": values("threads"), "platforms": values("platform"),
        "commands": values("command"), "run_folders": sorted(p["run"] for p in provs),
    }


def table_world(folder: str | os.PathLike[str]) -> Any:
    """The synthetic world a table folder's runs were trained and scored on (a
    :class:`~soundloc.data.synthetic.WorldConfig`, read from the first run's ``config.json``:
    a world saved before a field existed loads as it was), or ``None`` for runs on real data or
    a folder without runs."""
    from soundloc.data.synthetic import WorldConfig

    config = _first_run_config(folder)
    data = config.get("data", {}) if config else {}
    return WorldConfig.from_dict(data["world"]) if data.get("source") == "synthetic" else None


def _first_run_config(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``config.json`` of a table folder's first run (runs of one table share their world
    and model), or ``None`` for a folder without runs."""
    for path in sorted(Path(folder).glob("runs/*/config.json")):
        return read_json(path)
    return None


def describe_streams(folder: str | os.PathLike[str]) -> str:
    """How a table folder's runs treat the two streams, in a few words, read from the first
    run's ``config.json`` (its :class:`~soundloc.models.ModelConfig`): whether each stream starts
    from pretrained weights and whether the row's loss trains it or it stays frozen. The authors'
    code keeps both pretrained streams frozen (VGG16 frozen, SoundNet features precomputed), so
    a table whose streams learn from scratch is not their learner; the chapter says which."""
    config = _first_run_config(folder)
    if config is None:
        return "no runs"
    model = config.get("model", {})
    visual = ("pretrained" if model.get("pretrained") else "from scratch",
              "frozen" if model.get("freeze_visual") else "trained")
    sound = ("pretrained" if model.get("sound_weights_path") else "from scratch",
             "frozen" if model.get("freeze_sound") else "trained")
    if visual == sound:
        return f"both streams {visual[0]}, {visual[1]}" + (" by the row's loss" if visual[1] == "trained" else "")
    return f"the visual stream {visual[0]}, {visual[1]}; the sound stream {sound[0]}, {sound[1]}"


def describe_world(world: Any) -> str:
    """A world's scenes in a few words: the objects it shows and its classes."""
    if world is None:
        return "no synthetic world"
    objects = (f"the sounding object and {world.n_ground_objects} silent object(s) as large beside it"
               if world.n_ground_objects else "one large sounding object")
    if world.n_distractors:
        objects += f", {world.n_distractors} small silent object(s) in the sky"
    return f"{objects}; {world.num_classes} classes"


def table_provenance(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Where, when and on what a table folder's runs were made.

    Read from the run folders' ``results.json`` (``runs/*/results.json``, each with its
    ``provenance``) when they are there, else from the folder's committed ``provenance.json``
    (:func:`write_provenance`). Returns ``source`` (``"runs"``, ``"provenance.json"`` or
    ``"none"``), ``runs`` (how many run folders), ``first_date``/``last_date`` (ISO 8601, UTC),
    ``devices``, ``device_names``, ``versions``, ``torch``, ``threads``, ``platforms`` and
    ``commands`` (each the distinct values), ``run_folders`` (the runs' names), and ``command``
    from ``results.json``; from ``provenance.json`` also ``uncovered``, the runs of the results
    that it does not cover (it was written before they finished).
    """
    folder = Path(folder)
    results = load_table(folder)
    command = None if results is None else results.get("command")
    provs = _run_provenances(folder)
    if provs:
        return {"source": "runs", **_summary(provs), "command": command}
    if (folder / PROVENANCE_FILE).is_file():
        prov = read_json(folder / PROVENANCE_FILE)
        named = {Path(f).name for r in (results or {}).get("rows", []) for f in r.get("folders", [])}
        return {**prov, "source": PROVENANCE_FILE, "command": command,
                "uncovered": sorted(named - set(prov.get("run_folders", [])))}
    return {"source": "none", **_summary([]), "command": command}


def write_provenance(folder: str | os.PathLike[str]) -> Path:
    """Summarise the run folders' provenance into ``folder/provenance.json`` (committed with
    the table; the run folders are not). Raises ``FileNotFoundError`` where no run has any."""
    folder = Path(folder)
    provs = _run_provenances(folder)
    if not provs:
        raise FileNotFoundError(f"{folder}/runs/*/{RESULTS_FILE}: no run with a provenance")
    path = folder / PROVENANCE_FILE
    write_json(path, _summary(provs))
    return path


def format_provenance(prov: dict[str, Any]) -> str:
    """One line for a table's caption: the command, the dates, the device, the library."""
    if prov["source"] == "none":
        where = "per-run provenance not committed (run folders are git-ignored)"
    else:
        first, last = (prov["first_date"] or "?")[:10], (prov["last_date"] or "?")[:10]
        dates = first if first == last else f"{first} to {last}"
        device = ", ".join(prov["devices"]) or "?"
        names = [n for n in prov["device_names"] if n not in prov["devices"]]
        if names:
            device += f" ({', '.join(names)})"
        threads = "/".join(map(str, prov["threads"])) or "?"
        where = (f"{prov['runs']} run(s) dated {dates}; device {device}, {threads} thread(s); soundloc "
                 f"{', '.join(prov['versions']) or '?'}, torch {', '.join(prov['torch']) or '?'}")
        if prov.get("uncovered"):
            where += f"; {len(prov['uncovered'])} later run(s) without a committed provenance"
    command = prov.get("command") or (prov["commands"][0] if prov.get("commands") else None)
    return f"command: `{command or 'not recorded'}`; {where}"


def find_table_results(root: str | os.PathLike[str]) -> list[Path]:
    """Every table folder under ``root`` (a ``results.json`` naming one of the paper's tables),
    sorted; an empty list where ``root`` does not exist. Used to say, from what is committed,
    which tables were run where (e.g. none under ``benchmarks/gpu``)."""
    root = Path(root)
    found = []
    for path in sorted(root.rglob("results.json")) if root.is_dir() else []:
        if "runs" in path.relative_to(root).parts[:-1]:
            continue
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("table") in TABLES:
            found.append(path.parent)
    return found


def localization_check(results: dict[str, Any]) -> list[dict[str, Any]]:
    """For every row run: its mean cIoU@0.5 and AUC (in %, over seeds), the baselines it beats
    and whether it **localizes**: both its means exceed those of the random, whole-image and
    centre-prior baselines on the same test scenes (against the consensus of the annotators, in
    Table 3 too). A row that only beats random does better than chance, not than a map that
    ignores the sound.

    Returns one dict per row run, in the table's order: ``label``, ``mechanism``, ``scheme``,
    ``ciou``, ``auc``, ``ciou_std``, ``auc_std``, ``beats`` (names) and ``localizes``.
    """
    base = results["baselines"]
    out = []
    for r in results["rows"]:
        (ciou, ciou_std), (auc, auc_std) = r["ciou_at_0.5"], r["auc"]
        beats = [name for name in BASELINES if name in base
                 and ciou > base[name]["ciou_at_0.5"][0] and auc > base[name]["auc"][0]]
        out.append({"label": r["label"], "mechanism": r["mechanism"], "scheme": r["scheme"], "ciou": ciou,
                    "auc": auc, "ciou_std": ciou_std, "auc_std": auc_std, "beats": beats,
                    "localizes": len(beats) == len(BASELINES) and all(b in base for b in BASELINES)})
    return out


def against_centre_prior(results: dict[str, Any]) -> dict[str, Any]:
    """A table read against its strongest simple baseline and the paper's claim about more data:
    ``best`` (the row run of :func:`localization_check` with the highest mean cIoU@0.5),
    ``centre`` (the centre prior's mean cIoU@0.5 and AUC), ``boxed`` and ``boxed_below`` (the
    supervised and semi-supervised row runs, and how many of them stay at or below the centre
    prior's cIoU@0.5) and ``more_pairs`` (per mechanism, the unsupervised 144k row's mean
    cIoU@0.5 minus the 10k row's, where both ran: Table 1 of the paper has it rise)."""
    check = localization_check(results)
    centre = results["baselines"]["centre prior"]
    centre_ciou = centre["ciou_at_0.5"][0]
    boxed = [c for c in check if c["scheme"] != "unsupervised"]
    ciou = {(r["key"], r["mechanism"]): r["ciou_at_0.5"][0] for r in results["rows"]}
    more = {m: ciou["unsup_144k", m] - ciou["unsup_10k", m] for m in MECHANISM_LABEL
            if ("unsup_144k", m) in ciou and ("unsup_10k", m) in ciou}
    return {"best": max(check, key=lambda c: c["ciou"]), "centre": (centre_ciou, centre["auc"][0]),
            "boxed": len(boxed), "boxed_below": sum(c["ciou"] <= centre_ciou for c in boxed), "more_pairs": more}


def localization_markdown(results: dict[str, Any]) -> str:
    """:func:`localization_check` as a Markdown table, the three baselines' rows below the
    models' (so that a table whose own layout has no baseline rows, Table 3, shows them too)."""
    def cell(mean: float, std: float | None) -> str:
        return format_pair(mean, std, digits=1)

    seeds = len(results["config"]["seeds"])
    lines = [f"cIoU@0.5 / AUC in % against the annotators' consensus, mean over {seeds} seed(s); a row "
             "*localizes* where both exceed every baseline's.", "",
             "| Method | Attention | cIoU@0.5 | AUC | beats | localizes |", "|---|---|---|---|---|---|"]
    for c in localization_check(results):
        lines.append(f"| {c['label']} | {MECHANISM_LABEL[c['mechanism']]} | {cell(c['ciou'], c['ciou_std'])} | "
                     f"{cell(c['auc'], c['auc_std'])} | {', '.join(c['beats']) or 'none'} | "
                     f"{'yes' if c['localizes'] else 'no'} |")
    for name in BASELINES:
        if name in results["baselines"]:
            b = results["baselines"][name]
            lines.append(f"| {name.capitalize()} (baseline) | – | {cell(*b['ciou_at_0.5'])} | {cell(*b['auc'])} | – | – |")
    return "\n".join(lines) + "\n"


@styled
def plot_table(results: dict[str, Any], title: str | None = None) -> "Figure":
    """A dot chart of a table: one line per row run (label and mechanism), our mean cIoU@0.5 and
    AUC (filled dots in the scheme's colour, circles mechanism 1, squares mechanism 2, bars: std
    over seeds), the paper's numbers (open diamonds, where reported) and the three baselines
    (dashed vertical lines in their colours). Table 3's paper numbers are means of per-annotator
    IoUs, not the consensus cIoU drawn here, so they are left out of its chart."""
    import matplotlib.pyplot as plt

    rows = results["rows"]
    if not rows:
        raise ValueError("results has no rows to plot")
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH - 0.3, 2.2 + 0.34 * len(rows)), sharey=True,
                             layout="constrained")
    y = list(range(len(rows)))[::-1]
    for ax, key, j, xlabel in ((axes[0], "ciou_at_0.5", 0, "cIoU@0.5 (%)"), (axes[1], "auc", 1, "AUC (%)")):
        for yi, r in zip(y, rows):
            mean, std = r[key]
            ax.errorbar(mean, yi, xerr=std, fmt="o" if r["mechanism"] == "cosine" else "s",
                        color=scheme_colour(r["scheme"]), capsize=3, ms=6)
            if r.get("paper") and results["table"] != "table3":
                ax.plot(r["paper"][j], yi, "D", mfc="none", mec="black", ms=6)
        for name in BASELINES:
            if name in results["baselines"]:
                ax.axvline(results["baselines"][name][key][0], color=scheme_colour(name), ls="--", lw=1.2)
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, 100)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([f"{r['label']} ({'mech. 1' if r['mechanism'] == 'cosine' else 'mech. 2'})"
                             for r in rows])
    handles = [plt.Line2D([], [], ls="none", marker="o", color=scheme_colour(scheme), label=scheme.replace("_", "-"))
               for scheme in dict.fromkeys(r["scheme"] for r in rows)]
    handles += [plt.Line2D([], [], ls="none", marker="o", mfc="none", mec="black", label="mechanism 1"),
                plt.Line2D([], [], ls="none", marker="s", mfc="none", mec="black", label="mechanism 2")]
    if results["table"] != "table3":
        handles.append(plt.Line2D([], [], ls="none", marker="D", mfc="none", mec="black", label="paper"))
    handles += [plt.Line2D([], [], ls="--", color=scheme_colour(n), label=n) for n in BASELINES if n in results["baselines"]]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


__all__ = ["PROVENANCE_FILE", "csv_table", "find_table_results", "format_provenance", "load_table",
           "localization_check", "localization_markdown", "markdown_table", "plot_table", "table_provenance",
           "write_provenance"]

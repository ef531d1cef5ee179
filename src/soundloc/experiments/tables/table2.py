"""Table 2 of Senocak et al. (CVPR 2018), "how many labels?", read back from its run folders.

The paper's Table 2 trains the semi-supervised objective ``L = L_U + λ L_S`` (Sec. 3.3) with 10k
unlabelled pairs and 0.5k, 1k, 1.5k, 2k or 2.5k labelled ones, for both attention mechanisms,
and finds that the cIoU@0.5 rises from 0.5k to 1k labels and then saturates. ``soundloc
experiment table2`` (:func:`soundloc.experiments.tables.run_table`) runs the same rows at a
smaller scale, one folder per row, mechanism and seed (``runs/<row>_<mechanism>_seed<N>/``).

This module reads those folders, seed by seed, so that a table can be reported while its seeds
are still being run and committed one at a time:

- :func:`load_table2`: the per-seed cIoU@0.5 and AUC (in %) of every row and mechanism, and of
  the random, whole-image and centre-prior baselines, for the seeds whose ten runs are all
  finished (a seed with a missing row is left out, never averaged in part);
- :func:`answer_questions`: the three pre-registered questions of
  ``benchmarks/tables/PREREGISTRATION_table2.md``, computed exactly as written there (means and
  sample standard deviations over the seeds, ``ddof = 1`` as in
  :func:`~soundloc.experiments.tables.run_table`):

  - Q1, more labels help: ``m(2.5k) − m(0.5k) > max(s(2.5k), s(0.5k))``;
  - Q2, it saturates: ``|m(2.5k) − m(1k)| ≤ max(s(2.5k), s(1k))``;
  - Q3, every row localizes: its mean cIoU@0.5 and its mean AUC each exceed the means of the
    three baselines on the same test scenes.

  With fewer than the pre-registered five seeds the answers are *provisional*, and with one seed
  Q1 and Q2 are undecided (one seed has no spread);
- :func:`markdown_table` and :func:`plot_table2`: the table and the figure of chapter 8.

Numbers on the synthetic world are not comparable with the paper's (Flickr-SoundNet).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any


from soundloc.experiments.run import RESULTS_FILE
from soundloc.experiments.tables.config import BASELINES, MECHANISM_LABEL, PAPER_RANDOM, TABLES
from soundloc.utils.files import read_json
from soundloc.utils.summary import format_pair, mean_std

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The paper's label counts of Table 2, in its order.
PAPER_LABELS = (500, 1000, 1500, 2000, 2500)
#: The two attention mechanisms (1: softmax over cosines, 2: softmax over ReLU of the cosines).
MECHANISMS = ("cosine", "relu")
#: The seeds the pre-registration decides on.
PREREGISTERED_SEEDS = (0, 1, 2, 3, 4)
#: The two scores, as named in the runs' ``results.json`` (``success`` for a baseline's cIoU).
METRICS = ("ciou_at_0.5", "auc")
QUESTIONS = {
    "Q1": "more labels help: m(2.5k) - m(0.5k) > max(s(2.5k), s(0.5k))",
    "Q2": "it saturates as in the paper: |m(2.5k) - m(1k)| <= max(s(2.5k), s(1k))",
    "Q3": "every row localizes: mean cIoU@0.5 and mean AUC above each baseline's mean",
}


def _row_key(labels: int) -> str:
    return f"semi_{labels}_10k"


def _paper(labels: int, mechanism: str) -> tuple[float, float] | None:
    row = next(r for r in TABLES["table2"] if r.labelled == labels)
    return row.paper.get(mechanism)


@dataclass
class Table2Report:
    """The per-seed scores of a Table 2 folder (all in %).

    Attributes:
        folder: the table's folder (holding ``runs/``).
        seeds: the seeds whose runs are all finished, sorted.
        incomplete: seeds with some but not all of their runs finished (left out).
        missing: seeds that the table's ``results.json`` lists but whose runs are not all in
            ``runs/`` (e.g. not committed yet; left out).
        scores: ``(paper labels, mechanism) -> {"ciou_at_0.5": [...], "auc": [...]}``, one value
            per seed of ``seeds``.
        baselines: ``name -> {"ciou_at_0.5": [...], "auc": [...]}`` per seed, from the test of
            the first row (every row of a seed is scored on the same test scenes).
        labelled: ``paper labels -> labelled pairs`` the runs trained with.
        train: ``paper labels -> training pairs`` (the unlabelled ones and the labelled ones).
        unlabelled: the unlabelled pairs standing for the paper's 10k.
        n_test: the number of annotated test scenes scored.
    """

    folder: Path
    seeds: tuple[int, ...] = ()
    incomplete: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    scores: dict[tuple[int, str], dict[str, list[float]]] = field(default_factory=dict)
    baselines: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    labelled: dict[int, int] = field(default_factory=dict)
    train: dict[int, int] = field(default_factory=dict)
    unlabelled: int | None = None
    n_test: int | None = None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def provisional(self) -> bool:
        """Fewer seeds than the pre-registered five: every answer is provisional."""
        return not set(PREREGISTERED_SEEDS) <= set(self.seeds)

    def mean(self, labels: int, mechanism: str, metric: str = "ciou_at_0.5") -> float:
        return mean_std(self.scores[(labels, mechanism)][metric])[0]

    def std(self, labels: int, mechanism: str, metric: str = "ciou_at_0.5") -> float | None:
        return mean_std(self.scores[(labels, mechanism)][metric])[1]

    def baseline_mean(self, name: str, metric: str = "ciou_at_0.5") -> float:
        return mean_std(self.baselines[name][metric])[0]


def _run_folder(folder: Path, labels: int, mechanism: str, seed: int) -> Path:
    return folder / "runs" / f"{_row_key(labels)}_{mechanism}_seed{seed}"


def _seeds_present(folder: Path) -> set[int]:
    seeds = set()
    for run in (folder / "runs").glob("semi_*_10k_*_seed*"):
        tail = run.name.rsplit("_seed", 1)[-1]
        if tail.isdigit() and (run / RESULTS_FILE).is_file():
            seeds.add(int(tail))
    return seeds


def load_table2(folder: str | os.PathLike[str]) -> Table2Report:
    """Read the finished runs of a Table 2 folder (``soundloc experiment table2 --out FOLDER``).

    A seed counts when all ten of its runs (five label counts, two mechanisms) have a
    ``results.json`` and, where the folder holds the table's own ``results.json`` (written when
    the command finishes), when that table lists it: the report then shows the seeds of the
    committed table, not a seed whose runs have finished while the table is still being run.
    The other seeds with a run are listed in ``incomplete``. A folder without any run gives a
    report with no seeds.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no Table 2 folder")
    present = _seeds_present(folder)
    complete = sorted(s for s in present if all((_run_folder(folder, k, m, s) / RESULTS_FILE).is_file()
                                                for k in PAPER_LABELS for m in MECHANISMS))
    missing: list[int] = []
    if (folder / "results.json").is_file():
        listed = read_json(folder / "results.json", "table results").get("config", {}).get("seeds")
        if listed is not None:
            missing = sorted(set(listed) - set(complete))
            complete = [s for s in complete if s in set(listed)]
    report = Table2Report(folder=folder, seeds=tuple(complete), missing=tuple(missing),
                          incomplete=tuple(sorted(present - set(complete) - set(missing))))
    for labels in PAPER_LABELS:
        for mechanism in MECHANISMS:
            report.scores[(labels, mechanism)] = {m: [] for m in METRICS}
    report.baselines = {name: {m: [] for m in METRICS} for name in BASELINES}
    for seed in complete:
        for labels in PAPER_LABELS:
            for mechanism in MECHANISMS:
                run = read_json(_run_folder(folder, labels, mechanism, seed) / RESULTS_FILE, "run results")
                test = run["test"]
                for metric in METRICS:
                    report.scores[(labels, mechanism)][metric].append(100.0 * float(test[metric]))
                report.labelled.setdefault(labels, int(run["sizes"]["labelled"]))
                report.train.setdefault(labels, int(run["sizes"].get("train", 0)))
                if labels == PAPER_LABELS[0] and mechanism == MECHANISMS[0]:
                    report.n_test = int(test["n"])
                    report.unlabelled = run["config"]["data"].get("n_unlabelled")
                    for name in BASELINES:
                        b = test["baselines"][name]
                        report.baselines[name]["ciou_at_0.5"].append(100.0 * float(b["success"]))
                        report.baselines[name]["auc"].append(100.0 * float(b["auc"]))
    return report


def table_agreement(report: Table2Report) -> float | None:
    """The largest difference (in points) between the report's means and stds and those the
    run wrote in the table's ``results.json`` (:func:`soundloc.experiments.tables.run_table`),
    or ``None`` where that file is absent or averages other seeds: a check that the per-seed
    reading and the table agree."""
    path = report.folder / "results.json"
    if not path.is_file() or not report.seeds:
        return None
    table = read_json(path, "table results")
    if tuple(table.get("config", {}).get("seeds", ())) != report.seeds:
        return None
    worst = 0.0
    for row in table["rows"]:
        labels = next(r.labelled for r in TABLES["table2"] if r.key == row["key"])
        for metric in METRICS:
            mine = mean_std(report.scores[(labels, row["mechanism"])][metric])
            for a, b in zip(mine, row[metric]):
                if (a is None) != (b is None):
                    return math.inf
                if a is not None:
                    worst = max(worst, abs(a - b))
    return worst


def _compare(report: Table2Report, mechanism: str, high: int, low: int, saturate: bool) -> dict[str, Any]:
    m_high, s_high = mean_std(report.scores[(high, mechanism)]["ciou_at_0.5"])
    m_low, s_low = mean_std(report.scores[(low, mechanism)]["ciou_at_0.5"])
    diff = m_high - m_low
    spread = None if s_high is None or s_low is None else max(s_high, s_low)
    if spread is None:
        answer = None
    else:
        answer = abs(diff) <= spread if saturate else diff > spread
    return {"answer": answer, "difference": diff, "spread": spread, "means": (m_low, m_high)}


def answer_questions(report: Table2Report) -> dict[str, Any]:
    """Q1-Q3 of the pre-registration, per mechanism, on the report's seeds.

    Returns ``{"n_seeds", "provisional", "Q1": {mechanism: {...}}, "Q2": {...}, "Q3": {...}}``:
    for Q1 and Q2 each mechanism's ``answer`` (``True``/``False``; ``None`` with one seed),
    the ``difference`` of the two means and the ``spread`` it is compared with (the larger of
    the two stds); for Q3 each ``(labels, mechanism)`` row's ``answer`` and the baselines it does
    ``not_above`` (by metric), and ``all`` (every row localizes). cIoU@0.5 and AUC in %.

    Raises:
        ValueError: the report has no finished seed.
    """
    if not report.seeds:
        raise ValueError(f"{report.folder}: no seed with all of its Table 2 runs finished")
    out: dict[str, Any] = {"n_seeds": report.n_seeds, "seeds": report.seeds, "provisional": report.provisional}
    out["Q1"] = {m: _compare(report, m, 2500, 500, saturate=False) for m in MECHANISMS}
    out["Q2"] = {m: _compare(report, m, 2500, 1000, saturate=True) for m in MECHANISMS}
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for labels in PAPER_LABELS:
        for mechanism in MECHANISMS:
            not_above = {metric: [name for name in BASELINES
                                  if not report.mean(labels, mechanism, metric) > report.baseline_mean(name, metric)]
                         for metric in METRICS}
            rows[(labels, mechanism)] = {"answer": not any(not_above.values()), "not_above": not_above}
    out["Q3"] = {"rows": rows, "all": all(r["answer"] for r in rows.values())}
    return out


def _yes_no(answer: bool | None) -> str:
    return "undecided (one seed has no spread)" if answer is None else ("yes" if answer else "no")


def format_answers(report: Table2Report, answers: dict[str, Any] | None = None) -> str:
    """The answers in words, one line per question and mechanism, with the caveat when fewer
    than the pre-registered five seeds are finished."""
    answers = answer_questions(report) if answers is None else answers
    lines = [f"Seeds: {', '.join(map(str, report.seeds))} ({report.n_seeds} of the pre-registered "
             f"{len(PREREGISTERED_SEEDS)})"]
    if report.provisional:
        lines.append(f"CAVEAT: the pre-registration decides on {len(PREREGISTERED_SEEDS)} seeds; these answers rest "
                     f"on {report.n_seeds} and are provisional.")
    for q, (high, low) in (("Q1", ("2.5k", "0.5k")), ("Q2", ("2.5k", "1k"))):
        for mechanism in MECHANISMS:
            a = answers[q][mechanism]
            spread = "no std" if a["spread"] is None else f"max std {a['spread']:.1f}"
            lines.append(f"{q} ({MECHANISM_LABEL[mechanism]}): {_yes_no(a['answer'])}; m({high}) - m({low}) = "
                         f"{a['difference']:+.1f} points, {spread}")
    for (labels, mechanism), r in answers["Q3"]["rows"].items():
        why = "; ".join(f"{metric} not above {', '.join(names)}" for metric, names in r["not_above"].items() if names)
        lines.append(f"Q3 {labels / 1000:g}k ({MECHANISM_LABEL[mechanism]}): {'yes' if r['answer'] else 'no'}"
                     + (f" ({why})" if why else ""))
    lines.append(f"Q3, every row: {'yes' if answers['Q3']['all'] else 'no'}")
    return "\n".join(lines)


def _cell(values: list[float]) -> str:
    return format_pair(*mean_std(values), digits=1)


def markdown_table(report: Table2Report) -> str:
    """Mean ± std over the seeds (cIoU@0.5 / AUC, %) of every row and mechanism, each seed's
    cIoU@0.5, the paper's numbers (real data, not comparable) and the three baselines."""
    if not report.seeds:
        raise ValueError(f"{report.folder}: no seed with all of its Table 2 runs finished")
    seeds = ", ".join(f"seed {s}" for s in report.seeds)
    lines = [f"| Labels (paper) | Labelled pairs (ours) | Attention | Ours: cIoU@0.5 / AUC | cIoU@0.5 by seed ({seeds}) "
             "| Paper, Flickr-SoundNet (not comparable) |", "|---|---|---|---|---|---|"]
    for labels in PAPER_LABELS:
        for mechanism in MECHANISMS:
            s = report.scores[(labels, mechanism)]
            paper = _paper(labels, mechanism)
            lines.append(f"| {labels / 1000:g}k | {report.labelled.get(labels, '')} | {MECHANISM_LABEL[mechanism]} | "
                         f"{_cell(s['ciou_at_0.5'])} / {_cell(s['auc'])} | "
                         f"{', '.join(f'{v:.1f}' for v in s['ciou_at_0.5'])} | "
                         f"{'not reported' if paper is None else f'{paper[0]:.1f} / {paper[1]:.1f}'} |")
    for name in BASELINES:
        b = report.baselines[name]
        paper = f"{PAPER_RANDOM[0]:.1f} / {PAPER_RANDOM[1]:.1f} (Table 1)" if name == "random" else "not reported"
        lines.append(f"| {name.capitalize()} | – | – | {_cell(b['ciou_at_0.5'])} / {_cell(b['auc'])} | "
                     f"{', '.join(f'{v:.1f}' for v in b['ciou_at_0.5'])} | {paper} |")
    return "\n".join(lines) + "\n"


def plot_table2(report: Table2Report) -> "Figure":
    """cIoU@0.5 and AUC against the number of labelled pairs: top, ours on the synthetic world
    (mean ± std over the seeds as error bars, single seeds as dots, the three baselines as
    horizontal lines); bottom, the paper's Table 2 on Flickr-SoundNet (its random baseline from
    Table 1), on its own axes because the two are not comparable. Returns the Figure."""
    import matplotlib.pyplot as plt

    from soundloc.viz import MAX_WIDTH, scheme_colour, style_context

    with style_context():
        return _plot_table2(report, plt, scheme_colour, MAX_WIDTH)


def _plot_table2(report: Table2Report, plt: Any, scheme_colour: Any, width: float) -> "Figure":

    if not report.seeds:
        raise ValueError(f"{report.folder}: no seed with all of its Table 2 runs finished")
    style = {"cosine": ("o", "-"), "relu": ("s", "--")}
    colour = scheme_colour("semi_supervised")
    ours_x = [report.labelled[k] for k in PAPER_LABELS]
    fig = plt.figure(figsize=(width, 8.4), layout="constrained")
    rows = fig.subfigures(2, 1, hspace=0.04)
    axes = {(i, j): ax for i, sub in enumerate(rows) for j, ax in enumerate(sub.subplots(1, 2))}
    names = {"ciou_at_0.5": "cIoU@0.5 (%)", "auc": "AUC (%)"}
    for j, metric in enumerate(METRICS):
        ax = axes[0, j]
        for i, mechanism in enumerate(MECHANISMS):
            marker, line = style[mechanism]
            shift = (i - 0.5) * 1.2  # a small sideways shift so that the two sets of bars do not hide each other
            stats = [mean_std(report.scores[(k, mechanism)][metric]) for k in PAPER_LABELS]
            means = [m for m, _ in stats]
            stds = [0.0 if s is None else s for _, s in stats]
            xs = [x + shift for x in ours_x]
            ax.errorbar(xs, means, yerr=stds if report.n_seeds > 1 else None, marker=marker, linestyle=line,
                        color=colour, markerfacecolor="white", capsize=3,
                        label=f"semi-supervised, {MECHANISM_LABEL[mechanism]}")
            for x, k in zip(xs, PAPER_LABELS):
                vals = report.scores[(k, mechanism)][metric]
                ax.plot([x] * len(vals), vals, ".", color="black", alpha=0.6, ms=4, zorder=3)
        for name in BASELINES:
            ax.axhline(report.baseline_mean(name, metric), color=scheme_colour(name), linestyle=":", linewidth=1.5,
                       label=f"{name} (baseline)")
        ax.set_xticks(ours_x)
        ax.set_xlabel(f"labelled pairs (with {report.unlabelled} unlabelled ones)")
        ax.set_ylabel(names[metric])
        ax.set_title(f"ours, synthetic world: {report.n_seeds} seed(s),\nmean ± std, dots: seeds")
        ax.grid(alpha=0.3)
        ax = axes[1, j]
        for mechanism in MECHANISMS:
            marker, line = style[mechanism]
            pts = [(k, _paper(k, mechanism)) for k in PAPER_LABELS]
            ax.plot([k for k, p in pts if p], [p[j] for _, p in pts if p], marker=marker, linestyle=line, color="black",
                    markerfacecolor="white", label=f"paper, {MECHANISM_LABEL[mechanism]}")
        ax.axhline(PAPER_RANDOM[j], color=scheme_colour("random"), linestyle=":", linewidth=1.5,
                   label="paper's random baseline (Table 1)")
        ax.set_xticks(PAPER_LABELS)
        ax.set_xlabel("labelled pairs (with 10k unlabelled ones)")
        ax.set_ylabel(names[metric])
        ax.set_title("the paper's Table 2, Flickr-SoundNet:\nNOT comparable")
        ax.grid(alpha=0.3)
    for i, sub in enumerate(rows):  # one legend per row, below its panels, where it hides no line
        sub.legend(*axes[i, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False)
    return fig


__all__ = ["MECHANISMS", "PAPER_LABELS", "PREREGISTERED_SEEDS", "QUESTIONS", "Table2Report", "answer_questions",
           "format_answers", "load_table2", "table_agreement", "markdown_table", "mean_std", "plot_table2"]

"""Markdown tables of committed pigeon runs (for benchmarks/pigeon_smoke_results.md).

Usage: ``python benchmarks/pigeon_tables.py book/results/pigeon_smoke [more folders ...]``

For every folder: one row per run (``seed*`` and ``control_*`` subfolders) and scheme, with
cIoU@0.5, AUC, attention masses and densities on the object and the context, and training
seconds; then the kept-pixel baselines and the targets each run meets.
"""
from __future__ import annotations

import sys
from pathlib import Path

from soundloc.pigeon import PRINTED_BASELINES, SCHEMES, load_results


def table(folder: Path) -> str:
    runs = sorted(p.parent for p in folder.glob("*/results.json"))
    lines = [
        f"### `{folder}`",
        "",
        "| run | visual stream | scheme | cIoU@0.5 | AUC | mass obj | mass ctx | dens obj | dens ctx | train s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for run in runs:
        r = load_results(run)
        stream = r.get("visual_stream", "from scratch")
        for name in (*SCHEMES, "random"):
            x = r["schemes"][name]
            secs = x.get("train_seconds")
            lines.append(
                f"| {run.name} | {stream} | {name} | {x['ciou_at_0.5']:.3f} | {x['auc']:.3f} | "
                f"{x['attention_on_object']:.3f} | {x['attention_on_context']:.3f} | {x['object_density']:.2f} | "
                f"{x['context_density']:.2f} | {'-' if secs is None else f'{secs:.0f}'} |"
            )
        base = ", ".join(f"{b} {r['baselines'][b]['success']:.3f} / {r['baselines'][b]['auc']:.3f}"
                         for b in PRINTED_BASELINES if b in r.get("baselines", {}))
        missed = [k for k, v in r["targets"].items() if not v]
        pre = r.get("visual_pretraining") or {}
        total = r["timings"].get("total")
        notes.append(
            f"- {run.name}: {len(r['targets']) - len(missed)}/{len(r['targets'])} targets"
            + (f" (not met: {', '.join(missed)})" if missed else "")
            + f"; baselines (cIoU@0.5 / AUC): {base}"
            + (f"; pretraining accuracy {pre['test_accuracy']:.3f}" if pre else "")
            + (f"; total {total / 60:.1f} min" if total else "")
            + f"; `{r.get('command')}`, {r.get('date')}, {r.get('device')}, {r.get('threads')} threads"
        )
    return "\n".join(lines + [""] + notes)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["book/results/pigeon_smoke"]:
        print(table(Path(arg)))
        print()

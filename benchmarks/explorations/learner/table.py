"""The exploration's table: every lever's runs (``runs/<lever>/seed<N>.json``) in one Markdown
table, written to ``table.md`` beside this script and printed.

    python benchmarks/explorations/learner/table.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASES = ("random", "whole image", "centre prior")


def _f(x: float) -> str:
    return f"{x:.2f}"


def rows() -> list[str]:
    out = ["| lever | seed | U free cIoU@0.5 | U free AUC | random | whole image | centre prior | margin cIoU / AUC "
           "| U bound cIoU@0.5 | U density free: object / band / silent / rest | U density bound: object / band "
           "| match acc. (other class): attention / uniform | match acc. (random): attention / uniform | pretraining acc. |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(HERE.glob("runs/*/seed*.json")):
        r = json.loads(path.read_text())
        u, flat = r["schemes"]["unsupervised"], r["schemes"]["unsupervised_uniform"]
        free, bound = u["free"], u["context_bound"]
        b = free["baselines"]
        best_c = max(b[k]["ciou_at_0.5"] for k in BASES)
        best_a = max(b[k]["auc"] for k in BASES)
        df, db = u["density"]["free"], u["density"]["context_bound"]
        out.append(
            f"| {r['lever']} | {r['seed']} | {_f(free['ciou_at_0.5'])} | {_f(free['auc'])} | "
            + " | ".join(f"{_f(b[k]['ciou_at_0.5'])} / {_f(b[k]['auc'])}" for k in BASES)
            + f" | {free['ciou_at_0.5'] - best_c:+.2f} / {free['auc'] - best_a:+.2f} | {_f(bound['ciou_at_0.5'])} | "
            f"{_f(df['object'])} / {_f(df['band'])} / {_f(df['silent_objects'])} / {_f(df['rest'])} | "
            f"{_f(db['object'])} / {_f(db['band'])} | "
            f"{_f(u['match_acc_other_class'])} / {_f(flat['match_acc_other_class'])} | "
            f"{_f(u['match_acc_random'])} / {_f(flat['match_acc_random'])} | {r['pretrain_test_accuracy']:.3f} |")
    return out


def main() -> None:
    text = "\n".join(rows())
    (HERE / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

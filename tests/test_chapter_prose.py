"""Every measured figure a chapter states is computed by a cell (printed, or inline with myst-nb's
``glue``), never typed into its prose: no decimal with two or more places and no percentage in a
chapter's Markdown outside equations ($...$) and code (`...`, fenced blocks, glue roles)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

_STRIP = [
    re.compile(r"```.*?```", re.S),         # fenced blocks (code, directives' options)
    re.compile(r"\$\$.*?\$\$", re.S),       # display equations
    re.compile(r"\$[^$\n]*\$"),             # inline equations
    re.compile(r"\{[\w:-]+\}`[^`]*`"),      # roles: {glue:text}`name:.2f`, {cite:p}`key`
    re.compile(r"`[^`\n]*`"),               # inline code
    re.compile(r"\]\([^)]*\)"),             # link targets
]
FIGURE = re.compile(r"(?<![\w.])\d+\.\d{2,}(?![\w.])|(?<![\w.])\d+(?:\.\d+)?\s?%")


def typed_figures(markdown: str) -> list[str]:
    for pattern in _STRIP:
        markdown = pattern.sub(" ", markdown)
    return FIGURE.findall(markdown)


def test_the_check_finds_typed_figures_and_ignores_equations_and_code() -> None:
    text = "It scored 0.42 and 61 % of pairs; $\\alpha = 0.125$, `lr = 0.001`, {glue:text}`auc:.2f`, 0.5."
    assert typed_figures(text) == ["0.42", "61 %"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_prose_has_no_typed_figures(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = [f for c in nb["cells"] if c["cell_type"] == "markdown" for f in typed_figures("".join(c["source"]))]
    assert not found, f"{path.name}: figures typed in prose (compute them in a cell): {found}"


@pytest.mark.slow
def test_pigeon_chapter_from_the_repository_root_finds_the_committed_runs(tmp_path) -> None:
    # papermill run from the root, as the README shows: the committed runs are found (not "no
    # committed runs"), and the chapter's own run is not written into the working directory
    import os
    import subprocess
    import sys

    out = tmp_path / "out.ipynb"
    env = {**os.environ, "SOUNDLOC_QUICK": "1", "OMP_NUM_THREADS": "1"}
    before = {p.name for p in ROOT.iterdir()}
    subprocess.run([sys.executable, "-m", "papermill", "chapters/07_pigeon_superstition.ipynb", str(out),
                    "-p", "seed", "0", "--no-progress-bar"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                   for o in c.get("outputs", []))
    assert "no committed runs under" not in text and "T1" in text
    assert {p.name for p in ROOT.iterdir()} == before

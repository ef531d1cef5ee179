"""Chapter 10 (the full experiments) run as researchers run it: papermill from the repository
root with a parameter (``-p scale tiny``), at full size for that scale (not ``SOUNDLOC_QUICK``).
It shows its own table beside the paper's, labelled not comparable, with the baselines, and the
committed tables; it writes nothing into the working directory and leaves nothing in the
temporary directory (its own run goes to a folder removed when the kernel stops)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_full_experiments_chapter_at_the_tiny_scale_from_the_repository_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out.ipynb"
    env = {k: v for k, v in os.environ.items() if k not in ("SOUNDLOC_QUICK", "MPLBACKEND")}  # inline figures
    env["OMP_NUM_THREADS"] = "1"
    env["TMPDIR"] = str(tmp_path / "tmp")  # the kernel's temporary directory, looked at afterwards
    (tmp_path / "tmp").mkdir()
    before = {p.name for p in ROOT.iterdir()}
    subprocess.run([sys.executable, "-m", "papermill", "chapters/10_full_experiments.ipynb", str(out),
                    "-p", "scale", "tiny", "-p", "threads", "1", "--no-progress-bar"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "scale `tiny`" in text and "| Random | – | 12.0 / 32.3 |" in text and "| Centre prior |" in text
    assert "Not comparable with the paper's numbers" in text and "comparable with the paper's numbers: no" in text
    assert "rows that localize:" in text
    assert re.search(r"table1_smoke: \d+ seed\(s\)", text) and "device cpu" in text  # committed Table 1, provenance
    assert "tables run on a GPU:" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert {p.name for p in ROOT.iterdir()} == before
    assert "written to " + str(tmp_path / "tmp") in text  # the run went to the temporary directory...
    assert not list((tmp_path / "tmp").glob("soundloc-*"))  # ...and was removed with the kernel

"""The library's layering (pyproject.toml, [tool.importlinter]): metrics, losses and models at the
bottom, data above them, train / pretrain / viz above data, experiments above those, the command
line on top; no import cycles. Checked with import-linter on the installed package."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_and_no_cycles() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (it is in requirements.txt)"
    proc = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_the_command_line_imports_no_torch() -> None:
    # `soundloc --help` lists the subcommands without configuring them: no torch (a subcommand's
    # own --help reads the library's configs for its defaults, which may import it)
    code = "import sys, soundloc.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr

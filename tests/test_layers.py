"""The library's structure: its layering (pyproject.toml, [tool.importlinter]: metrics, losses and
models at the bottom, data above them, train / pretrain / viz / book above data, experiments above
those, the command line on top; no import cycles, checked with import-linter), its size limits
(no function over 60 lines, no class over 300) and its module tree (src/soundloc/README.md)."""
from __future__ import annotations

import ast
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


def _definitions(path: Path) -> list[tuple[str, int, int]]:
    """``(name, lines, limit)`` of every function and class in a file, decorators and
    docstrings included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top = min([node.lineno] + [d.lineno for d in node.decorator_list])
            limit = 300 if isinstance(node, ast.ClassDef) else 60
            out.append((node.name, node.end_lineno - top + 1, limit))  # type: ignore[operator]
    return out


def test_no_function_over_60_lines_and_no_class_over_300() -> None:
    package = ROOT / "src" / "soundloc"
    too_long = [f"{path.relative_to(package)}::{name} ({n} lines)" for path in sorted(package.rglob("*.py"))
                for name, n, limit in _definitions(path) if n > limit]
    assert too_long == []


def test_the_module_tree_names_every_module() -> None:
    # src/soundloc/README.md: one line per module, "- `soundloc/path.py`: what it is"
    package = ROOT / "src" / "soundloc"
    listed = {line.split("`")[1] for line in (package / "README.md").read_text(encoding="utf-8").splitlines()
              if line.lstrip().startswith("- `soundloc/")}
    modules = {f"soundloc/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert listed == modules

"""The project's foundation: package metadata, CLI, book configuration, notebooks, CI wiring."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import soundloc
from soundloc.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def chapter_paths() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [root for root in [toc["root"]]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    out = []
    for f in files:
        candidates = [ROOT / f"{f}.ipynb", ROOT / f"{f}.md"]
        found = [c for c in candidates if c.is_file()]
        assert found, f"_toc.yml lists {f}, which does not exist"
        out.append(found[0])
    return out


def test_console_script_help_and_version() -> None:
    exe = BIN / "soundloc"
    assert exe.is_file(), "the console script is not installed (pip install -e .)"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: soundloc" in out
    ver = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert ver.strip() == f"soundloc {soundloc.__version__}"


def test_python_m_soundloc_matches_console_script() -> None:
    out = subprocess.run([sys.executable, "-m", "soundloc", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"soundloc {soundloc.__version__}"


def test_every_registered_command_has_a_module_with_configure_and_run() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS), "a registered command's module is missing"
    for name, module in COMMANDS.items():
        assert callable(module.configure) and callable(module.run) and module.HELP
        help_text = next(a for a in build_parser(name)._actions if a.dest == "command").choices[name].format_help()
        assert f"soundloc {name}" in help_text and "-h, --help" in help_text


def test_main_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_version_is_single_sourced() -> None:
    meta = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('soundloc'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert meta == soundloc.__version__


def test_every_requirement_has_a_pin_that_satisfies_its_range() -> None:
    from packaging.requirements import Requirement
    from packaging.version import Version

    reqs = [Requirement(l) for l in (ROOT / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = Version(ver.strip())
    for req in reqs:
        assert not any(s.operator == "==" for s in req.specifier), f"{req} is pinned in requirements.txt"
        key = req.name.lower().replace("_", "-")
        assert key in pins, f"{req.name} has no exact pin in constraints.txt"
        assert pins[key] in req.specifier, f"pin {req.name}=={pins[key]} violates the range {req}"


def test_book_config_links_the_repository_and_colab() -> None:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["repository"]["url"] == "https://github.com/soundloc/soundloc"
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert cfg["html"]["use_repository_button"] is True
    assert cfg["execute"]["execute_notebooks"] in {"cache", "force", "auto"}
    assert cfg["execute"]["timeout"] > 0
    bib = ROOT / cfg["bibtex_bibfiles"][0]
    text = bib.read_text()
    for key in ("senocak2018learning", "aytar2016soundnet", "simonyan2015vgg"):
        assert f"{{{key}," in text


def test_the_book_serves_its_own_mathjax() -> None:
    """The pages load MathJax from the book's _static (book/_ext/local_mathjax.py), never a CDN:
    the equations render with no network and wherever the HTML is published."""
    import importlib.util

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-mml-chtml.js"
    assert cfg["sphinx"]["local_extensions"]["local_mathjax"] == "book/_ext"
    spec = importlib.util.spec_from_file_location("local_mathjax", ROOT / "book" / "_ext" / "local_mathjax.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)  # type: ignore[union-attr]
    source = ext.mathjax_source()  # the django-static-mathjax wheel of requirements.txt
    assert (source / "tex-mml-chtml.js").is_file() and (source / "input" / "tex" / "extensions").is_dir()
    assert cfg["sphinx"]["config"]["mathjax_path"] == f"{ext.TARGET}/{ext.BUNDLE}"


def test_ci_runs_the_readme_test_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    cmd = re.search(r"(make|bash|\./)[^`]*test[^`]*", readme).group(0)
    assert cmd == "make test"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_clean_and_in_the_toc(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a code cell has stored outputs"
            assert cell.get("execution_count") is None, f"{path.name}: a code cell has an execution count"
    assert path in chapter_paths(), f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_first_cell_installs_only_in_colab(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(first["source"])
    assert "google.colab" in src and "git+https://github.com/soundloc/soundloc" in src
    calls: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    # Here soundloc is importable: the cell must do nothing.
    exec(compile(src, "first-cell", "exec"), {})
    assert calls == []
    # In "Colab" without soundloc installed, the cell must call pip.
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __builtins__.__import__
    state = {"installed": False}

    def fake_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "soundloc" and not state["installed"]:
            raise ImportError("No module named 'soundloc'")
        return real_import(name, *args, **kwargs)

    def fake_run(cmd, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(cmd)
        state["installed"] = True

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr("builtins.__import__", fake_import)
    exec(compile(src, "first-cell", "exec"), {})
    assert len(calls) == 1 and "pip" in calls[0] and "install" in calls[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_goals_summary_and_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    goals = r"(^#+ .*Learning goals)|(\{admonition\} Learning goals)"
    assert re.search(goals, text, flags=re.M | re.I), "no learning goals"
    assert re.search(r"^#+ Summary", text, flags=re.M), "no summary"
    assert "```{exercise}" in text or ":::{exercise}" in text, "no exercises"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one papermill 'parameters' cell expected"

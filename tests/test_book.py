"""Tests of soundloc.book's notebook helpers: glue uses myst-nb's glue when it is importable and
prints otherwise; interactive_frontend is true only with ipywidgets and a person's front-end
(Colab, a Jupyter server's session), never under papermill, nbval or the book build."""
from __future__ import annotations

import builtins
import sys
import types

import pytest

from soundloc import book


def test_glue_prints_without_myst_nb(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ImportError("no myst_nb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    book.glue("auc", 0.5, display=False)
    assert capsys.readouterr().out == "auc = 0.5\n"


def test_glue_calls_myst_nb_when_importable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append((name, value, display))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    book.glue("peak", 3, display=False)
    book.glue("shown", "x")
    assert calls == [("peak", 3, False), ("shown", "x", True)]
    assert capsys.readouterr().out == ""


def test_glue_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        book.glue("", 1)


def test_interactive_frontend(monkeypatch: pytest.MonkeyPatch) -> None:
    # ipywidgets present or not as the test says (find_spec answers for it), whatever is installed
    widgets = {"installed": True}
    monkeypatch.setattr(book.notebook.importlib.util, "find_spec",
                        lambda name: object() if name == "ipywidgets" and widgets["installed"] else None)
    for var in book.notebook.FRONTEND_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("JPY_PARENT_PID", "1")  # every jupyter_client kernel has it: no sign of a person
    assert book.interactive_frontend() is False
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/chapter.ipynb")  # a Jupyter server's notebook
    assert book.interactive_frontend() is True
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))  # Colab
    assert book.interactive_frontend() is True
    widgets["installed"] = False  # a person is looking, but there are no widgets to show
    assert book.interactive_frontend() is False


def test_show_markdown_displays_markdown_or_prints(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    book.show_markdown("| a |\n|---|\n| 1 |\n")
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Markdown)
    assert shown[0].data == "| a |\n|---|\n| 1 |\n" and capsys.readouterr().out == ""
    real_import = builtins.__import__

    def no_ipython(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("IPython"):
            raise ImportError("no IPython here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ipython)
    book.show_markdown("**x**")
    assert capsys.readouterr().out == "**x**\n" and len(shown) == 1
    with pytest.raises(TypeError, match="str"):
        book.show_markdown(3)  # type: ignore[arg-type]


def test_adjacent_printed_blocks_of_a_cell_are_joined_and_nothing_else() -> None:
    """book/_ext/output_streams.py: two stdout blocks that the page shows next to each other become
    one (text in order); a block separated by a figure, a stderr block, or another cell's block
    stays apart."""
    import importlib.util
    from pathlib import Path

    from docutils import nodes

    path = Path(__file__).resolve().parents[1] / "book" / "_ext" / "output_streams.py"
    spec = importlib.util.spec_from_file_location("output_streams", path)
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)  # type: ignore[union-attr]

    def stream(text: str, kind: str = "stream") -> nodes.literal_block:
        return nodes.literal_block(text, text, classes=["output", kind])

    root = nodes.section()
    cell = nodes.container(classes=["cell_output"])
    cell += [stream("a 1\n"), stream("a 2\n"), nodes.image(uri="f.png"), stream("b\n"), stream("e\n", "stderr"),
             stream("c\n")]
    other = nodes.container(classes=["cell_output"])
    other += stream("d\n")
    root += [cell, other]
    assert ext.merge_adjacent_streams(root) == 1
    texts = [(c.astext(), c["classes"][-1]) for c in cell.children if isinstance(c, nodes.literal_block)]
    assert texts == [("a 1\na 2\n", "stream"), ("b\n", "stream"), ("e\n", "stderr"), ("c\n", "stream")]
    assert cell.children[0].rawsource == "a 1\na 2\n" and other.children[0].astext() == "d\n"


def test_the_front_pages_key_figure_says_what_its_committed_run_measured() -> None:
    """The caption of the key figure (book/index.md) makes claims about a committed run and about
    the factorial's summary; they are checked here against those files, so a new run that changes
    them fails until the caption is changed too."""
    import json
    from pathlib import Path

    from soundloc.experiments.benchmark import same_experiment
    from soundloc.experiments.pigeon import PigeonConfig

    root = Path(__file__).resolve().parents[1]
    page = (root / "book" / "index.md").read_text(encoding="utf-8")
    run = root / "benchmarks" / "pigeon" / "showcase" / "seed0"
    assert "```{figure} ../benchmarks/pigeon/showcase/seed0/attention.png" in page
    assert (run / "attention.png").stat().st_size > 10_000
    results = json.loads((run / "results.json").read_text())
    # the run is the pigeon experiment's CPU scale on the present default world, seed 0
    assert results["seed"] == 0 and same_experiment(results["config"], PigeonConfig.at_scale("smoke"))
    bound = {s: results["schemes"][s]["groups"]["context_bound"] for s in ("unsupervised", "supervised", "semi_supervised")}
    # "over all the test scenes ... still lies denser on the bound classes' objects than on their band"
    assert bound["unsupervised"]["object_density"] > bound["unsupervised"]["context_density"]
    # "a few labelled boxes move it onto the object"
    for scheme in ("supervised", "semi_supervised"):
        assert bound[scheme]["object_density"] > bound[scheme]["context_density"]
        assert bound[scheme]["context_density"] < bound["unsupervised"]["context_density"]
    # "neither ... on its own; the two together do"
    summary = json.loads((root / "benchmarks" / "pigeon" / "factorial" / "summary.json").read_text())
    assert summary["conclusion"] == {"cooccurrence": "null", "pretraining": "null", "interaction": "positive"}

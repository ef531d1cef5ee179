"""What a chapter's cells use besides the library: quoting a measured figure in the prose,
showing a table, running small, keeping nothing behind.

Every figure a chapter states is computed by a cell and *glued* into the Markdown with myst-nb
(``{glue:text}`name:.3f```). :func:`glue` is myst-nb's ``glue`` when myst-nb is installed (the
book build) and otherwise prints ``name = value`` (Colab, a plain Jupyter kernel), so a chapter
imports one name and runs everywhere. :func:`interactive_frontend` tells a chapter whether a
person is looking (Colab or a Jupyter server's kernel), so that widgets are built only there
and never under papermill, nbval or the book build. :func:`show_markdown` shows a Markdown
table (or any Markdown) as the front-end renders Markdown: a real table in Jupyter, Colab and
the HTML book (which reads a cell's Markdown as GitHub-flavoured Markdown, ``_config.yml``),
and :func:`pipe_table` writes one. :func:`quick_mode` says whether the chapter runs at its quick
scale (the test suite), :func:`scratch_dir` where a run's files go when none was asked for.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Environment variables that a Jupyter server sets in the kernel of a notebook session
#: (jupyter_server names the session's notebook in ``JPY_SESSION_NAME``). nbclient, papermill
#: and nbval do not set it; ``JPY_PARENT_PID`` is no sign of a front-end (jupyter_client sets it
#: for every kernel it launches).
FRONTEND_VARIABLES = ("JPY_SESSION_NAME",)


def _myst_glue() -> Any:
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return None
    return myst_glue


def glue(name: str, value: Any, display: bool = True) -> None:
    """Record ``value`` under ``name`` for the prose: myst-nb's ``glue`` when importable
    (``display`` as there: show the value in the cell's output too), else print
    ``name = value``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    myst_glue = _myst_glue()
    if myst_glue is None:
        print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown (IPython's ``Markdown``) in a notebook; print it where
    IPython is not installed. Headings in ``text`` would become headings of the page: a table's
    title is a bold line or a caption, not a ``#`` heading."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str of Markdown, got {type(text).__name__}")
    try:
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
        return
    display(Markdown(text))


def interactive_frontend() -> bool:
    """Whether widgets can be used and someone can see them: ``ipywidgets`` is importable and
    the kernel runs in Colab or in a Jupyter server's notebook session (JupyterLab, Notebook 7);
    ``False`` under papermill, nbval, nbclient (the book build) and plain Python. A chapter lets
    its reader force widgets on or off elsewhere (a ``widgets`` parameter)."""
    if importlib.util.find_spec("ipywidgets") is None:
        return False
    if "google.colab" in sys.modules:
        return True
    return any(os.environ.get(v) for v in FRONTEND_VARIABLES)


def quick_mode() -> bool:
    """True when ``SOUNDLOC_QUICK`` is set to a true value (chapters shrink their runs)."""
    return os.environ.get("SOUNDLOC_QUICK", "").strip().lower() not in {"", "0", "false", "no"}


#: The file in a :func:`scratch_dir` folder that names the process that made it.
SCRATCH_OWNER = ".soundloc-owner-pid"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def scratch_dir(prefix: str = "soundloc-") -> Path:
    """A new empty folder in the temporary directory (``TMPDIR``) that is removed, with its
    contents, when the Python process exits: where a run's files go when the caller asked for
    no output folder (a chapter's kernel under papermill or the book build), so that repeated
    runs leave nothing behind.

    A process that is killed (nbval stops its kernels so) runs no exit handler: each folder
    names its process in :data:`SCRATCH_OWNER`, and every call first removes the folders of
    ``prefix`` whose process is gone. Folders without that file are never touched."""
    import atexit
    import shutil

    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((old / SCRATCH_OWNER).read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _process_alive(owner):
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    (folder / SCRATCH_OWNER).write_text(str(os.getpid()))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def pipe_table(header: Any, rows: Any, align: str | None = None) -> str:
    """A Markdown pipe table (GitHub-flavoured, as Jupyter, Colab and the HTML book render it):
    ``header`` names the columns, each row gives one cell per column (``None`` is written as an
    en dash), ``align`` is one letter per column (``l``, ``r`` or ``c``; default: left). A ``|``
    inside a cell is escaped, so a cell never splits a row."""
    header = [str(h) for h in header]
    if not header:
        raise ValueError("pipe_table: no columns")
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set("lrc"):
        raise ValueError(f"pipe_table: align must be one of l, r, c per column ({len(header)}), got {align!r}")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [line(header), "|" + "|".join(marks[a] for a in align) + "|"]
    for i, row in enumerate(rows):
        cells = ["–" if c is None else str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"pipe_table: row {i} has {len(cells)} cells for {len(header)} columns")
        out.append(line(cells))
    return "\n".join(out) + "\n"


__all__ = ["FRONTEND_VARIABLES", "SCRATCH_OWNER", "glue", "interactive_frontend", "pipe_table", "quick_mode",
           "scratch_dir", "show_markdown"]

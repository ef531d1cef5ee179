"""Small helpers for the book's notebooks: quoting a measured figure in the prose, showing a
table.

Every figure a chapter states is computed by a cell and *glued* into the Markdown with myst-nb
(``{glue:text}`name:.3f```). :func:`glue` is myst-nb's ``glue`` when myst-nb is installed (the
book build) and otherwise prints ``name = value`` (Colab, a plain Jupyter kernel), so a chapter
imports one name and runs everywhere. :func:`interactive_frontend` tells a chapter whether a
person is looking (Colab or a Jupyter server's kernel), so that widgets are built only there
and never under papermill, nbval or the book build. :func:`show_markdown` shows a Markdown
table (or any Markdown) as the front-end renders Markdown: a real table in Jupyter, Colab and
the HTML book (which reads a cell's Markdown as GitHub-flavoured Markdown, ``_config.yml``).
"""
from __future__ import annotations

import importlib.util
import os
import sys
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


__all__ = ["FRONTEND_VARIABLES", "glue", "interactive_frontend", "show_markdown"]

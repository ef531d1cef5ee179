"""Sphinx extension: the book serves its own MathJax, so that its equations render with no
network (a reader offline, the browser test) and wherever the HTML is published.

MathJax 3 comes from the ``django-static-mathjax`` wheel (requirements.txt; it installs
MathJax's distribution as package data, with no dependency). After an HTML build its ``es5``
components (the ``tex-mml-chtml.js`` bundle that Sphinx loads by default, the TeX extensions
it loads on demand, the CHTML fonts, the menu and the accessibility parts) are copied to
``_static/mathjax/`` of the output, and ``mathjax_path`` points there; Sphinx writes that path
relative to each page, so the published site loads MathJax from itself too. A missing wheel
stops the build with one line saying what to install.
"""
from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path
from typing import Any

from sphinx.errors import ExtensionError

#: Where the files go, under the output's ``_static``, and the bundle the pages load.
TARGET = "mathjax"
BUNDLE = "tex-mml-chtml.js"
#: Other single-file bundles of the distribution: the pages load none of them.
_UNUSED = ("tex-chtml*.js", "tex-svg*.js", "tex-mml-svg.js", "mml-*.js", "node-main.js", "latest.js")


def mathjax_source() -> Path:
    """The ``es5`` folder of the installed MathJax distribution."""
    try:
        root = importlib.resources.files("mathjax") / "static" / "mathjax" / "es5"
    except ModuleNotFoundError:
        root = None
    if root is None or not (Path(str(root)) / BUNDLE).is_file():
        raise ExtensionError("MathJax is not installed: pip install django-static-mathjax "
                             "(it is in requirements.txt; the book serves MathJax from it)")
    return Path(str(root))


def _check(app: Any) -> None:
    if app.builder.format == "html":
        mathjax_source()  # fail at the start of the build, not after executing every chapter
        if app.config.mathjax_path != f"{TARGET}/{BUNDLE}":
            raise ExtensionError(f"mathjax_path must be {TARGET}/{BUNDLE} (the copy this extension serves), "
                                 f"got {app.config.mathjax_path!r}")


def _copy(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / TARGET
    unused = shutil.ignore_patterns(*_UNUSED)
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=lambda folder, names: unused(folder, names) if Path(folder) == source else set())
    licence = source.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, target / "LICENSE")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _check)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

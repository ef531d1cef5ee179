"""Showing the library's own code in the book: a definition, highlighted, under a caption.

The chapters never copy code; they show the library's. A listing is keyed on a *definition*,
never on the text of a line, so that editing a line of the library cannot break a chapter:
:func:`show_source` shows a function, method, class or module, or, with ``name``, one definition
inside it (a function or class, or a constant assigned at the top of a module or a class, with
the ``#:`` comment lines just above it). ``docstring=False`` leaves the docstring out and
``signature=False`` the ``def`` line(s), so that a listing can show just the computation. When a
chapter wants a part of a long function, the library gives that part a name of its own.

The result displays in a notebook as a highlighted ``python`` code block (Markdown; Jupyter Book
renders it with the theme's highlighting), dedented, under a caption that names the definition,
its file and the line numbers shown.
"""
from __future__ import annotations

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class SourceListing:
    """The source lines of a definition, displayable in a notebook.

    Attributes:
        code: the listing (dedented).
        name: the definition's qualified name, e.g. ``soundloc.losses.unsupervised_loss``.
        path: its source file, relative to the folder that holds the ``soundloc`` package when
            it lies inside it.
        line_numbers: the file's line number of every shown line.
        complete: every line of the definition is shown (its docstring and header included).
    """

    code: str
    name: str
    path: str
    line_numbers: tuple[int, ...]
    complete: bool = True

    @property
    def caption(self) -> str:
        """``name`` and where the shown lines are (``path``, first and last line numbers)."""
        lines = self.line_numbers
        where = f"{self.path}, lines {lines[0]}-{lines[-1]}" if lines else self.path
        return f"{self.name} ({where}{'' if self.complete else ', excerpt'})"

    def _repr_markdown_(self) -> str:
        fence = "```"
        while fence in self.code:  # a listing that itself contains a fence
            fence += "`"
        return f"`{self.caption}`\n\n{fence}python\n{self.code}\n{fence}\n"

    def __str__(self) -> str:
        return self.code

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text repr
        printer.text(f"# {self.caption}\n{self.code}")


def _qualified_name(obj: Any) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None) or ""
    qual = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{module}.{qual}" if module else str(qual)


def _display_path(path: str) -> str:
    parts = os.path.normpath(path).split(os.sep)
    if "soundloc" in parts:
        i = len(parts) - 1 - parts[::-1].index("soundloc")
        return "/".join(parts[i:])
    return os.path.basename(path)


def _defines(node: ast.stmt, name: str) -> bool:
    """Whether ``node`` defines ``name`` (a ``def``, a ``class`` or an assignment to it)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def _definition(source: str, name: str | None, module: bool, label: str) -> Any:
    """The definition of ``name`` in the body of the (dedented) ``source``'s module or class (a
    ``def``, a ``class`` or an assignment) or function (a nested ``def`` or ``class``), or,
    without ``name``, the definition (or the module) ``source`` is; ``label`` names it in errors."""
    tree = ast.parse(source)
    outer: Any = tree if module else tree.body[0]
    if name is None:
        return outer
    in_function = isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef))  # its assignments are no definitions
    for node in outer.body:
        if _defines(node, name) and not (in_function and isinstance(node, (ast.Assign, ast.AnnAssign))):
            return node
    raise ValueError(f"{label} has no definition named {name!r} (a def or a class in its body; in a module's "
                     "or a class's, also an assignment)")


def _docstring_lines(node: Any) -> set[int]:
    """0-based line indices of the definition's docstring (none for an assignment)."""
    body = getattr(node, "body", None)
    if not body or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
        return set()
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return set(range(first.lineno - 1, first.end_lineno))  # type: ignore[arg-type]
    return set()


def _header_lines(node: Any) -> set[int]:
    """0-based line indices of a function's or class's decorators and ``def``/``class`` line(s)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return set()
    top = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return set(range(top - 1, node.body[0].lineno - 1))


def _span(node: Any, text: list[str]) -> range:
    """0-based line indices of the definition, with the ``#:`` comment lines just above it."""
    if isinstance(node, ast.Module):
        return range(len(text))
    top = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while top > 0 and text[top - 1].strip().startswith("#:"):
        top -= 1
    return range(top, node.end_lineno)


def source_listing(obj: Any, name: str | None = None, *, docstring: bool = True,
                   signature: bool = True) -> SourceListing:
    """The :class:`SourceListing` of ``obj`` (a function, method, class or module) or of the
    definition ``name`` in its body (a ``def``, a ``class`` or an assignment: a module's
    constant, a class's method).

    ``docstring=False`` leaves the docstring out, ``signature=False`` the decorators and the
    ``def``/``class`` line(s). ``TypeError`` for an object without Python source (a built-in),
    ``ValueError`` when ``obj`` has no definition ``name``.
    """
    try:
        raw, first_line = inspect.getsourcelines(obj)
    except (TypeError, OSError) as exc:
        raise TypeError(f"no Python source for {_qualified_name(obj)}: {exc}") from None
    module = inspect.ismodule(obj)
    first_line = 1 if module else first_line
    text = [line.rstrip("\n").rstrip() for line in raw]
    qualified = _qualified_name(obj)
    node = _definition(textwrap.dedent("\n".join(text)), name, module, qualified)
    span = _span(node, text)
    keep = set(span)
    if not docstring:
        keep -= _docstring_lines(node)
    if not signature:
        keep -= _header_lines(node)
    shown = [i for i in span if i in keep]
    while shown and not text[shown[0]].strip():  # a docstring left out may leave a blank line first
        shown.pop(0)
    code = textwrap.dedent("\n".join(text[i] for i in shown)).strip("\n")
    target = inspect.unwrap(obj) if callable(obj) else obj  # decorated functions: their own file
    path = inspect.getsourcefile(target) or "<unknown>"
    return SourceListing(code=code, name=qualified if name is None else f"{qualified}.{name}",
                         path=_display_path(path), line_numbers=tuple(first_line + i for i in shown),
                         complete=len(shown) == len(span))


#: The name the chapters use: a notebook cell that ends with ``show_source(...)`` displays the
#: listing as a highlighted ``python`` block under its caption (Jupyter and Jupyter Book).
show_source = source_listing


__all__ = ["SourceListing", "show_source", "source_listing"]

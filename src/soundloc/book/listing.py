"""Showing the library's own code in the book: highlighted listings of selected lines.

The chapters never copy code; they show the library's. ``print(inspect.getsource(f))`` prints
plain text, cut at the page's right edge, and a public function's mathematics often sits
under a screen of argument checks. :func:`show_source` returns a listing that a notebook
displays as a highlighted ``python`` code block (Markdown; Jupyter Book renders it with the
theme's highlighting), optionally only some of the object's lines:

- ``lines``: line ranges counted from the object's first line (1 = its ``def``/``class`` line,
  inclusive at both ends), e.g. ``lines=[(1, 3), (20, 24)]``;
- ``start`` / ``end``: the lines from the first one containing ``start`` to the first one at or
  after it containing ``end`` (both kept; without ``end``, to the object's last line), e.g.
  ``start="d_pos, d_neg =", end="return"``;
- ``signature``: with a selection, put the function's header (its ``def`` line(s)) on top;
- ``docstring=False``: leave the docstring out.

Skipped lines are shown as one ``...`` line, indented like the line after the gap (a gap at
the end: like its first line); a gap of blank or docstring lines only is left out silently. The result
is dedented, and the caption names the object, its file and the line numbers shown.
"""
from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

LineRange = Union[int, tuple[int, int], range]

#: The text that stands for skipped lines.
ELISION = "..."


@dataclass(frozen=True)
class SourceListing:
    """Selected source lines of a Python object, displayable in a notebook.

    Attributes:
        code: the listing (dedented; ``...`` lines stand for skipped lines).
        name: the object's qualified name, e.g. ``soundloc.losses.unsupervised_loss``.
        path: its source file, relative to the folder that holds the ``soundloc`` package when
            it lies inside it.
        line_numbers: the file's line number of every shown line (``None`` for ``...`` lines).
        complete: every line of the object's source is shown.
    """

    code: str
    name: str
    path: str
    line_numbers: tuple[int | None, ...]
    complete: bool = True

    @property
    def caption(self) -> str:
        """``name`` and where the shown lines are (``path``, first and last line numbers)."""
        shown = [n for n in self.line_numbers if n is not None]
        where = f"{self.path}, lines {shown[0]}-{shown[-1]}" if shown else self.path
        excerpt = ", excerpt" if not self.complete else ""
        return f"{self.name} ({where}{excerpt})"

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


def _as_ranges(lines: LineRange | Sequence[LineRange], n: int) -> list[tuple[int, int]]:
    """Normalise ``lines`` to sorted ``(first, last)`` pairs, 1-based and inclusive."""
    items: Iterable[Any]
    if isinstance(lines, (int, range)) or (
        isinstance(lines, tuple) and len(lines) == 2 and all(isinstance(v, int) for v in lines)
    ):
        items = [lines]
    else:
        items = lines
    out = []
    for item in items:
        if isinstance(item, bool):
            raise TypeError(f"lines: {item!r} is not a line number or range")
        if isinstance(item, int):
            first, last = item, item
        elif isinstance(item, range):
            if item.step != 1 or len(item) == 0:
                raise ValueError(f"lines: {item!r} must be a non-empty range with step 1")
            first, last = item.start, item.stop - 1
        elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(v, int) for v in item):
            first, last = item
        else:
            raise TypeError(f"lines: {item!r} is not a line number, a (first, last) pair or a range")
        if not 1 <= first <= last <= n:
            raise ValueError(f"lines: ({first}, {last}) is outside the object's {n} lines (1-based, inclusive)")
        out.append((first, last))
    if not out:
        raise ValueError("lines is empty")
    return sorted(out)


def _find(lines: list[str], marker: str, begin: int, what: str, name: str) -> int:
    for i in range(begin, len(lines)):
        if marker in lines[i]:
            return i
    raise ValueError(f"{what} marker {marker!r} not found in the source of {name}"
                     + (f" at or after its line {begin + 1}" if begin else ""))


def _def_node(source: str) -> ast.AST | None:
    """The first function or class definition of a (dedented) source, if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return node
    return None


def _docstring_lines(first: ast.stmt) -> range:
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return range(first.lineno - 1, first.end_lineno)  # type: ignore[arg-type]
    return range(0)


def _header_and_docstring(source: str, module: bool = False) -> tuple[range, range]:
    """0-based line indices of a definition's header (decorators and ``def`` line(s)) and of
    its docstring (empty ranges when there is none); a module has no header."""
    if module:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return range(0), range(0)
        return range(0), (_docstring_lines(tree.body[0]) if tree.body else range(0))
    node = _def_node(source)
    if node is None:
        return range(0), range(0)
    body = node.body  # type: ignore[attr-defined]
    top = min([node.lineno] + [d.lineno for d in node.decorator_list])  # type: ignore[attr-defined]
    return range(top - 1, body[0].lineno - 1), _docstring_lines(body[0])


def source_listing(
    obj: Any,
    lines: LineRange | Sequence[LineRange] | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    signature: bool = False,
    docstring: bool = True,
) -> SourceListing:
    """The :class:`SourceListing` of ``obj`` (a function, method, class or module).

    Args:
        obj: what to show; its source must be available (:func:`inspect.getsourcelines`).
        lines: 1-based inclusive line numbers counted from the object's first line: an int,
            a ``(first, last)`` pair, a ``range`` or a list of them.
        start: keep the lines from the first one containing this text ...
        end: ... to the first one at or after it containing this text (default: to the
            object's last line). ``lines`` and ``start`` may be combined (their union is shown).
        signature: with a selection, also show the definition's header (``def`` line(s)).
        docstring: show the docstring (only matters when everything is shown or the
            selection includes it).

    Raises:
        ValueError: a line number outside the object, a marker that is not found, or ``end``
            without ``start``.
        TypeError: an object without Python source (a built-in, a C extension...).
    """
    if end is not None and start is None:
        raise ValueError("end needs start")
    try:
        raw, first_line = inspect.getsourcelines(obj)
    except (TypeError, OSError) as exc:
        raise TypeError(f"no Python source for {_qualified_name(obj)}: {exc}") from None
    if inspect.ismodule(obj):
        first_line = 1
    text = [line.rstrip("\n").rstrip() for line in raw]
    n = len(text)
    name = _qualified_name(obj)
    header, doc = _header_and_docstring(textwrap.dedent("\n".join(text)), inspect.ismodule(obj))

    keep: set[int] = set()
    if lines is None and start is None:
        keep = set(range(n))
    if lines is not None:
        for first, last in _as_ranges(lines, n):
            keep.update(range(first - 1, last))
    if start is not None:
        i = _find(text, start, 0, "start", name)
        j = n - 1 if end is None else _find(text, end, i, "end", name)
        keep.update(range(i, j + 1))
    selected = lines is not None or start is not None
    if selected and signature:
        keep.update(header)
    if not docstring:
        keep.difference_update(doc)
    if not keep:
        raise ValueError(f"nothing left to show of {name}")

    skipped_silently = set(doc) | {k for k in range(n) if not text[k].strip()}

    def elide(gap: range, like: str | None) -> None:
        """One ``...`` line for a gap with anything but blank or docstring lines in it,
        indented like ``like`` (default: the gap's first such line)."""
        hidden = [k for k in gap if k not in skipped_silently]
        if hidden:
            like = text[hidden[0]] if like is None else like
            shown.append(like[: len(like) - len(like.lstrip())] + ELISION)
            numbers.append(None)

    shown: list[str] = []
    numbers: list[int | None] = []
    previous = -1
    for i in sorted(keep):
        elide(range(previous + 1, i), text[i])
        shown.append(text[i])
        numbers.append(first_line + i)
        previous = i
    elide(range(previous + 1, n), None)
    # Blank lines carry no indentation; dedent ignores them.
    code = textwrap.dedent("\n".join(shown)).strip("\n")
    target = inspect.unwrap(obj) if callable(obj) else obj  # decorated functions: their own file
    path = inspect.getsourcefile(target) or "<unknown>"
    return SourceListing(code=code, name=name, path=_display_path(path), line_numbers=tuple(numbers),
                         complete=len(keep) == n)


#: The name the chapters use: a notebook cell that ends with ``show_source(...)`` displays the
#: listing as a highlighted ``python`` block under its caption (Jupyter and Jupyter Book).
show_source = source_listing


__all__ = ["ELISION", "SourceListing", "show_source", "source_listing"]

"""Tests of soundloc.book.listing: the lines a listing shows are exactly the selected lines of the
object's source (checked against the file itself), gaps become one indented ``...`` line, the
result is dedented, and the Markdown is a ``python`` code block under a caption."""
from __future__ import annotations

import functools
import inspect
import textwrap
from pathlib import Path

import pytest

from soundloc import losses
from soundloc.book.listing import ELISION, SourceListing, show_source, source_listing


def _sample(x: float, y: float) -> float:
    """A docstring
    over two lines."""
    if x < 0:
        raise ValueError("x must be >= 0")
    # --- the core
    s = x + y
    t = s * 2
    # --- end
    return t


class _Holder:
    def method(self, a: int) -> int:
        """Doc."""
        b = a + 1
        if b > 3:
            b = 3
        return b


def _decorator(f):  # type: ignore[no-untyped-def]
    @functools.wraps(f)
    def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
        return f(*args, **kwargs)

    return inner


@_decorator
def _decorated(v: int) -> int:
    return v + 1


def _file_lines(obj: object) -> tuple[list[str], int]:
    """The object's lines read from its file, and the file line number of the first."""
    lines, first = inspect.getsourcelines(obj)
    return [line.rstrip("\n") for line in lines], first


def test_whole_function_is_its_source():
    listing = show_source(_sample)
    assert isinstance(listing, SourceListing)
    assert listing.code == inspect.getsource(_sample).rstrip("\n")
    assert listing.complete
    lines, first = _file_lines(_sample)
    assert listing.line_numbers == tuple(range(first, first + len(lines)))


def test_markers_select_exactly_the_lines_between_them():
    listing = show_source(_sample, start="# --- the core", end="# --- end")
    lines, first = _file_lines(_sample)
    i = next(k for k, line in enumerate(lines) if "# --- the core" in line)
    j = next(k for k, line in enumerate(lines) if "# --- end" in line)
    expected = textwrap.dedent("\n".join(lines[i:j + 1]))
    # the lines before and after the selection are elided with one "..." each
    assert listing.code.splitlines() == [ELISION, *expected.splitlines(), ELISION]
    assert listing.line_numbers == (None, *range(first + i, first + j + 1), None)
    assert not listing.complete
    # the shown lines are the file's lines at the recorded numbers
    file_text = Path(inspect.getsourcefile(_sample)).read_text().splitlines()
    assert [file_text[n - 1].strip() for n in listing.line_numbers if n is not None] == [
        line.strip() for line in expected.splitlines()
    ]


def test_library_function_core_lines_match_its_file():
    listing = show_source(losses.unsupervised_loss, start="d_pos, d_neg =", end="return")
    path = Path(inspect.getsourcefile(losses.unsupervised_loss))
    text = path.read_text().splitlines()
    numbers = [n for n in listing.line_numbers if n is not None]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))
    assert "d_pos, d_neg =" in text[numbers[0] - 1] and "return" in text[numbers[-1] - 1]
    assert not any("return" in text[n - 1] for n in range(numbers[0], numbers[-1]))
    shown = [line for line in listing.code.splitlines() if line != ELISION]
    assert shown == textwrap.dedent("\n".join(text[n - 1] for n in numbers)).splitlines()
    assert listing.path == "soundloc/losses.py"
    assert listing.name == "soundloc.losses.unsupervised_loss"


def test_line_ranges_elide_gaps_with_the_next_lines_indentation():
    listing = show_source(_sample, lines=[1, (8, 9)])
    lines, _ = _file_lines(_sample)
    assert listing.code.splitlines() == [lines[0], "    " + ELISION, lines[7], lines[8], "    " + ELISION]
    with pytest.raises(ValueError, match="outside"):
        show_source(_sample, lines=(5, 99))
    with pytest.raises(ValueError, match="outside"):
        show_source(_sample, lines=0)
    with pytest.raises(TypeError):
        show_source(_sample, lines=[(1, 2, 3)])


def test_signature_and_docstring_options():
    listing = show_source(_sample, start="s = x + y", end="t = s * 2", signature=True)
    assert listing.code.splitlines() == [
        "def _sample(x: float, y: float) -> float:",
        "    " + ELISION,
        "    s = x + y",
        "    t = s * 2",
        "    " + ELISION,
    ]
    without_doc = show_source(_sample, docstring=False)
    assert "A docstring" not in without_doc.code and "over two lines" not in without_doc.code
    # a gap made only of the docstring is left out silently, but the listing is an excerpt
    assert ELISION not in without_doc.code.splitlines()
    assert not without_doc.complete


def test_methods_are_dedented():
    listing = show_source(_Holder.method, start="b = a + 1", end="b = 3", signature=True)
    assert listing.code.splitlines() == [
        "def method(self, a: int) -> int:",
        "    b = a + 1",
        "    if b > 3:",
        "        b = 3",
        "    " + ELISION,
    ]
    assert listing.name.endswith("_Holder.method")


def test_decorated_function_names_its_own_file():
    listing = show_source(_decorated)
    assert listing.code.splitlines()[0] == "@_decorator"
    assert listing.path == "test_listing.py"


def test_start_without_end_runs_to_the_last_line():
    listing = show_source(_sample, start="s = x + y")
    lines, first = _file_lines(_sample)
    i = next(k for k, line in enumerate(lines) if "s = x + y" in line)
    assert listing.code.splitlines() == [ELISION, *textwrap.dedent("\n".join(lines[i:])).splitlines()]
    assert listing.line_numbers[-1] == first + len(lines) - 1


def test_markdown_is_a_python_block_under_a_caption():
    listing = show_source(_sample, start="s = x + y")
    md = listing._repr_markdown_()
    caption, block = md.split("\n\n", 1)
    assert caption.startswith("`") and "test_listing.py, lines" in caption and "excerpt" in caption
    assert block.startswith("```python\n") and block.endswith("\n```\n")
    assert block[len("```python\n"):-len("\n```\n")] == listing.code
    assert str(listing) == listing.code
    fenced = SourceListing(code='s = """\n```\n"""', name="x", path="x.py", line_numbers=(1, 2, 3))
    assert fenced._repr_markdown_().split("\n\n", 1)[1].startswith("````python\n")


def test_errors():
    with pytest.raises(ValueError, match="not found"):
        show_source(_sample, start="no such text")
    with pytest.raises(ValueError, match="not found"):
        show_source(_sample, start="s = x + y", end="raise ValueError")  # only before start
    with pytest.raises(ValueError, match="end needs start"):
        source_listing(_sample, end="return")
    with pytest.raises(TypeError, match="no Python source"):
        show_source(len)

"""Tests of soundloc.book.listing: a listing is keyed on a definition (an object, or a name defined
in its body) and shows exactly its lines of the file (checked against the file itself), without
the docstring or the header when asked, dedented, as a ``python`` code block under a caption."""
from __future__ import annotations

import functools
import inspect
from pathlib import Path

import pytest

from soundloc import losses
from soundloc.book.listing import SourceListing, show_source


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


#: A documented constant
#: over two lines.
_CONSTANT = (1,
             2)


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


def test_a_named_definition_of_a_module_with_its_comment_lines():
    # losses' module defines objective(); the listing is its lines of the file, counted here by hand
    file_text = Path(inspect.getsourcefile(losses)).read_text().splitlines()
    first = file_text.index("def objective(l_u: torch.Tensor | None, l_s: torch.Tensor | None, lam: float) -> torch.Tensor:")
    last = next(k for k in range(first + 1, len(file_text)) if file_text[k].startswith("    return l_u + lam * l_s"))
    listing = show_source(losses, "objective")
    assert listing.code.splitlines() == file_text[first:last + 1]
    assert listing.line_numbers == tuple(range(first + 1, last + 2)) and listing.complete
    assert listing.name == "soundloc.losses.objective" and listing.path == "soundloc/losses.py"
    # a constant, with the "#:" lines just above it (this file's _CONSTANT)
    constant = show_source(inspect.getmodule(_sample), "_CONSTANT")
    assert constant.code.splitlines() == ["#: A documented constant", "#: over two lines.", "_CONSTANT = (1,", "             2)"]


def test_signature_and_docstring_options():
    without_doc = show_source(_sample, docstring=False)
    assert without_doc.code.splitlines() == [
        "def _sample(x: float, y: float) -> float:",
        "    if x < 0:",
        '        raise ValueError("x must be >= 0")',
        "    # --- the core",
        "    s = x + y",
        "    t = s * 2",
        "    # --- end",
        "    return t",
    ]
    assert not without_doc.complete
    lines, first = _file_lines(_sample)
    assert without_doc.line_numbers == (first, *range(first + 3, first + len(lines)))
    body = show_source(_sample, docstring=False, signature=False)
    assert body.code.splitlines() == [line[4:] for line in without_doc.code.splitlines()[1:]]


def test_methods_by_name_and_dedented():
    listing = show_source(_Holder, "method", docstring=False)
    assert listing.code.splitlines() == [
        "def method(self, a: int) -> int:",
        "    b = a + 1",
        "    if b > 3:",
        "        b = 3",
        "    return b",
    ]
    assert listing.name.endswith("_Holder.method")
    assert show_source(_Holder.method).code == show_source(_Holder, "method").code


def test_decorated_function_names_its_own_file():
    listing = show_source(_decorated)
    assert listing.code.splitlines()[0] == "@_decorator"
    assert listing.path == "test_listing.py"
    assert show_source(_decorated, signature=False).code == "return v + 1"


def test_markdown_is_a_python_block_under_a_caption():
    listing = show_source(_sample, docstring=False)
    md = listing._repr_markdown_()
    caption, block = md.split("\n\n", 1)
    assert caption.startswith("`") and "test_listing.py, lines" in caption and "excerpt" in caption
    assert block.startswith("```python\n") and block.endswith("\n```\n")
    assert block[len("```python\n"):-len("\n```\n")] == listing.code
    assert str(listing) == listing.code
    fenced = SourceListing(code='s = """\n```\n"""', name="x", path="x.py", line_numbers=(1, 2, 3))
    assert fenced._repr_markdown_().split("\n\n", 1)[1].startswith("````python\n")


def test_errors():
    with pytest.raises(ValueError, match="no definition named 'no_such_name'"):
        show_source(losses, "no_such_name")
    with pytest.raises(ValueError, match="no definition named 'b'"):
        show_source(_Holder.method, "b")  # an assignment inside a function is no definition of its own
    with pytest.raises(TypeError, match="no Python source"):
        show_source(len)

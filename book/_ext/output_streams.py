"""Sphinx extension: a cell's printed lines in one block.

A cell that prints, glues a number for the prose (``glue(..., display=False)``) and prints again
stores several stream outputs with an invisible display output between them, and myst-nb draws
each stream as its own grey block: a printed table falls apart into a stack of boxes. myst-nb's
``nb_merge_streams`` is no cure: it moves every print of a cell into its first block, above the
tables and figures the cell displays in between. This joins only the blocks that the page shows
next to each other: after the output formats are chosen (``doctree-resolved``, when the glue
outputs have rendered to nothing), consecutive stdout blocks, or consecutive stderr blocks, of
one cell become one.
"""
from __future__ import annotations

from typing import Any

from docutils import nodes


def _stream_kind(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.literal_block):
        for kind in ("stream", "stderr"):
            if kind in node.get("classes", []):
                return kind
    return None


def merge_adjacent_streams(doctree: nodes.Node) -> int:
    """Join consecutive stream blocks inside every cell output; returns how many were joined."""
    joined = 0
    for output in list(doctree.findall(nodes.container)):
        if "cell_output" not in output.get("classes", []):
            continue
        children = list(output.children)
        keep: list[nodes.Node] = []
        for child in children:
            kind = _stream_kind(child)
            if kind is not None and keep and _stream_kind(keep[-1]) == kind:
                first = keep[-1]
                text = first.astext()
                text = text + ("" if text.endswith("\n") else "\n") + child.astext()
                first.rawsource = text
                first.children = []
                first += nodes.Text(text)
                output.remove(child)
                joined += 1
            else:
                keep.append(child)
    return joined


def _resolved(app: Any, doctree: nodes.Node, docname: str) -> None:
    merge_adjacent_streams(doctree)


def setup(app: Any) -> dict[str, Any]:
    app.connect("doctree-resolved", _resolved)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

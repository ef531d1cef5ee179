"""The book's helpers: what a chapter uses to show the library and its results.

- :mod:`~soundloc.book.notebook`   - glue a measured figure into the prose, show a Markdown table,
  the quick scale, a scratch folder, whether a person is looking (widgets)
- :mod:`~soundloc.book.listing`    - :func:`show_source`: a definition of the library, highlighted
- :mod:`~soundloc.book.repository` - the repository's committed results, from a clone or (Colab)
  its archive

A chapter imports from here (``from soundloc.book import glue, show_source``).
"""
from soundloc.book.listing import show_source
from soundloc.book.notebook import (glue, interactive_frontend, pipe_table, quick_mode, scratch_dir,
                                    show_markdown)
from soundloc.book.repository import committed_path, repository_root

__all__ = ["committed_path", "glue", "interactive_frontend", "pipe_table", "quick_mode", "repository_root",
           "scratch_dir", "show_markdown", "show_source"]

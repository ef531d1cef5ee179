"""Sphinx extension: each page's scripts once.

Jupyter Book 1.0.4 with sphinx-thebe adds sphinx-thebe's inline configuration script twice to
every page (``const THEBE_JS_URL = ...``), and the second copy throws "Identifier
'THEBE_JS_URL' has already been declared" in the browser's console. This drops repeated script
entries from each page's context before the page is written.
"""
from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[str] = set()
    kept = []
    for js in scripts:
        # an inline script's filename is None or "", depending on who added it
        key = f"{getattr(js, 'filename', js) or ''}|{getattr(js, 'attributes', {}).get('body', '')}"
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

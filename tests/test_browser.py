"""The built book, opened in a real browser: every page loads without console errors (other than
the offline CDN ones), its images load, and the interactive chapter's static figure is there.

Serves ``_build/html`` on 127.0.0.1 and drives Debian's Chromium (``/usr/bin/chromium``) with
Playwright. It runs after the book is built (``make browser``, part of ``make test``, sets
``SOUNDLOC_BROWSER_TEST=1``); elsewhere it skips, saying why. Screenshots of two pages are
written to ``_build/screenshots/`` (beside the HTML; ``SOUNDLOC_BOOK_HTML`` names another build).
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("SOUNDLOC_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    os.environ.get("SOUNDLOC_BROWSER_TEST") != "1",
    reason="runs after the book build: `make browser` (needs Chromium: `apt-get install chromium`)",
)


def pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    found = [p for p in HTML.rglob("*.html") if p.name not in skip and "_static" not in p.parts
             and "_sources" not in p.parts]
    # the root index only redirects to the book's first page (a meta refresh)
    return sorted(p for p in found if 'http-equiv="refresh"' not in p.read_text(errors="ignore").lower())


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no built book: run `make book` first")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed: `apt-get install chromium` (Debian), as .ci/run does")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-quic"])
        yield b
        b.close()


#: Console messages that are no error of the book: the theme logs this one on a first visit
#: (nothing stored yet for its light/dark mode); a failed load is reported by the HTTP status.
_BENIGN = ("Got invalid theme mode", "Failed to load resource")


def _offline(text: str, local: str) -> bool:
    """A console error about a resource of another host (a CDN the offline machine cannot reach)."""
    hosts = [urlparse(w).netloc for w in text.split() if w.startswith(("http://", "https://"))]
    return bool(hosts) and all(h and h != urlparse(local).netloc for h in hosts)


def test_every_page_loads_with_its_images_and_no_console_errors(server: str, browser: object) -> None:
    found = pages()
    assert len(found) >= 10, f"only {len(found)} pages built"
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    for path in found:
        url = f"{server}/{path.relative_to(HTML).as_posix()}"
        errors.clear()
        page.goto(url, wait_until="load")
        page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=20_000)
        broken = page.evaluate(
            "Array.from(document.images).filter(i => i.naturalWidth === 0 && !/^https?:/.test(i.getAttribute('src') || '') )"
            ".map(i => i.getAttribute('src'))")
        local_errors = [e for e in errors if not _offline(e, server) and "net::ERR_" not in e
                        and not e.startswith(_BENIGN)]
        if broken:
            problems.append(f"{path.relative_to(HTML)}: images that did not load: {broken}")
        if local_errors:
            problems.append(f"{path.relative_to(HTML)}: console errors: {local_errors[:3]}")
    assert not problems, "\n".join(problems)


def test_figures_and_screenshots(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})  # type: ignore[attr-defined]
    shots = HTML.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for name in ("book/index", "chapters/07_pigeon_superstition"):
        page.goto(f"{server}/{name}.html", wait_until="load")
        page.screenshot(path=str(shots / f"{name.split('/')[-1]}.png"))
        assert (shots / f"{name.split('/')[-1]}.png").stat().st_size > 10_000
    # every chapter page shows at least one figure that loaded; the interactive chapter's static
    # grid stands in for its widgets in the HTML book
    for path in sorted((HTML / "chapters").glob("*.html")):
        page.goto(f"{server}/chapters/{path.name}", wait_until="load")
        page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=20_000)
        shown = page.evaluate("Array.from(document.querySelectorAll('article img, main img'))"
                              ".filter(i => i.naturalWidth > 100).length")
        assert shown >= 1, f"{path.name}: no figure shown"

"""The built book, opened as a reader opens it: in a real browser with no network.

Serves ``_build/html`` on 127.0.0.1 and drives Debian's Chromium (``/usr/bin/chromium``) with
Playwright; every request to another host is aborted (and reported), so the book must carry
what it shows, MathJax included. It runs after the book is built (``make browser``, part of
``make test``, sets ``SOUNDLOC_BROWSER_TEST=1``); elsewhere it skips, saying why.

What a reader would stumble on, page by page:

- a page that does not load, an image that does not, a console error, a request off the machine;
- a results table that arrives as a paragraph of pipes instead of a ``<table>`` (every table that
  a chapter's cells display, counted in the executed notebooks of ``_build/jupyter_execute``);
- an equation left as raw LaTeX (MathJax's output missing, ``\\(`` or ``\\[`` in the text);
- a code listing or printed output whose right edge is cut off: wider than its block and
  neither wrapped nor scrolling with a visible, styled scrollbar (the book's stylesheet keeps
  scrollbars drawn where the system would hide idle ones);
- a level-1 heading below the chapter's title.

A full-page screenshot of every chapter goes to ``_build/screenshots/`` (beside the HTML;
``SOUNDLOC_BOOK_HTML`` names another build): look at them.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("SOUNDLOC_BOOK_HTML", ROOT / "_build" / "html"))
EXECUTED = HTML.parent / "jupyter_execute"
SHOTS = HTML.parent / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The reader's window (the book's text column is then about 750 px wide).
VIEWPORT = {"width": 1280, "height": 900}

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


def chapter_pages() -> list[Path]:
    return sorted((HTML / "chapters").glob("*.html"))


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
        # scrollbars drawn (Playwright hides them by default): the screenshots show what a reader sees
        b = p.chromium.launch(executable_path=CHROMIUM, ignore_default_args=["--hide-scrollbars"], args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-quic"])
        yield b
        b.close()


class Reader:
    """One browser tab with the network cut off: requests to any host but the local server are
    aborted and remembered in ``off_machine``."""

    def __init__(self, browser: object, server: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
        self.off_machine: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def _route(self, route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlparse(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:", "about:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            self.off_machine.append(url)
            route.abort()  # type: ignore[attr-defined]

    def open(self, path: Path) -> None:
        """Load a page as a reader would, and wait until its images and equations are there."""
        self.errors.clear()
        self.off_machine.clear()
        self.page.goto(f"{self.server}/{path.relative_to(HTML).as_posix()}", wait_until="load")
        self.page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        self.page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=20_000)
        # MathJax 3 typesets after the load event; its startup promise settles when it is done
        self.page.evaluate("async () => { const s = window.MathJax && window.MathJax.startup;"
                           " if (s && s.promise) { await s.promise; } }")

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def reader(browser: object, server: str) -> Iterator[Reader]:
    r = Reader(browser, server)
    yield r
    r.close()


#: Console messages that are no error of the book: the theme logs this one on a first visit
#: (nothing stored yet for its light/dark mode); a failed load is reported by its HTTP status
#: or, for another host, by the route that aborted it.
_BENIGN = ("Got invalid theme mode", "Failed to load resource")


def test_every_page_loads_with_its_images_and_needs_no_network(reader: Reader) -> None:
    found = pages()
    assert len(found) >= 10, f"only {len(found)} pages built"
    problems: list[str] = []
    for path in found:
        reader.open(path)
        broken = reader.page.evaluate(
            "Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.getAttribute('src'))")
        errors = [e for e in reader.errors if not e.startswith(_BENIGN)]
        name = path.relative_to(HTML)
        if broken:
            problems.append(f"{name}: images that did not load: {broken}")
        if errors:
            problems.append(f"{name}: console errors: {errors[:3]}")
        if reader.off_machine:
            problems.append(f"{name}: requests off the machine (blocked): {sorted(set(reader.off_machine))[:3]}")
    assert not problems, "\n".join(problems)


# -- tables ---------------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.M)


def displayed_tables(notebook: Path) -> tuple[int, list[str]]:
    """How many Markdown tables the cells of an executed notebook display, and the cells that
    print one as text instead (a pipe table in a stream output is no table on the page)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    shown, printed = 0, []
    for k, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            md = out.get("data", {}).get("text/markdown", "")
            shown += len(_SEPARATOR.findall(md if isinstance(md, str) else "".join(md)))
            text = out.get("text", "")
            if _SEPARATOR.search(text if isinstance(text, str) else "".join(text)):
                printed.append(f"cell {k}")
    return shown, printed


def test_the_displayed_tables_are_tables(reader: Reader) -> None:
    if not EXECUTED.is_dir():
        pytest.fail(f"{EXECUTED} is missing: the book build writes the executed notebooks there")
    problems: list[str] = []
    checked = 0
    for path in chapter_pages():
        notebook = EXECUTED / "chapters" / f"{path.stem}.ipynb"
        if not notebook.is_file():
            problems.append(f"{path.name}: no executed notebook {notebook.name}")
            continue
        expected, printed = displayed_tables(notebook)
        if printed:
            problems.append(f"{path.name}: pipe tables printed as text in {', '.join(printed)}")
        reader.open(path)
        found = reader.page.evaluate("""() => {
            const a = document.querySelector('article.bd-article');
            return {tables: a.querySelectorAll('div.cell_output table').length,
                    pipes: Array.from(a.querySelectorAll('p')).map(p => p.textContent.trim())
                                .filter(t => t.startsWith('|')).map(t => t.slice(0, 60))};
        }""")
        checked += expected > 0
        if found["tables"] < expected:
            problems.append(f"{path.name}: the cells display {expected} table(s), the page has "
                            f"{found['tables']} <table> in its outputs")
        if found["pipes"]:
            problems.append(f"{path.name}: paragraphs of pipes instead of tables: {found['pipes'][:2]}")
    assert checked >= 4, f"only {checked} chapters display tables: did the executed notebooks lose their outputs?"
    assert not problems, "\n".join(problems)


# -- equations ------------------------------------------------------------------------------------

_MATH = """() => {
    const a = document.querySelector('article.bd-article');
    const maths = Array.from(a.querySelectorAll('.math'));
    const raw = maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 40));
    // delimiters left in the text a reader sees (code, listings and MathJax's output aside)
    const walker = document.createTreeWalker(a, NodeFilter.SHOW_TEXT);
    const left = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (n.parentElement.closest('pre, code, script, style, mjx-container, mjx-assistive-mml')) continue;
        if (/\\\\[\\(\\[]/.test(n.textContent)) left.push(n.textContent.trim().slice(0, 40));
    }
    return {maths: maths.length, typeset: a.querySelectorAll('mjx-container').length, raw, left};
}"""


def test_every_equation_is_typeset_offline(reader: Reader) -> None:
    problems: list[str] = []
    total = 0
    for path in pages():
        reader.open(path)
        found = reader.page.evaluate(_MATH)
        total += found["maths"]
        name = path.relative_to(HTML)
        if found["raw"]:
            problems.append(f"{name}: {len(found['raw'])} of {found['maths']} math elements not typeset, "
                            f"e.g. {found['raw'][:2]}")
        if found["left"]:
            problems.append(f"{name}: raw LaTeX in the text: {found['left'][:2]}")
    assert total >= 100, f"only {total} math elements in the whole book: is the math still marked up?"
    assert not problems, "\n".join(problems)


# -- nothing cut off ------------------------------------------------------------------------------

_CUT = """() => {
    document.querySelectorAll('article details').forEach(d => { d.open = true; });  // folded cells too
    const a = document.querySelector('article.bd-article');
    const right = a.getBoundingClientRect().right;
    // selectors of the stylesheets' scrollbar rules: such a scrollbar is drawn at all times
    const styled = [];
    for (const sheet of Array.from(document.styleSheets)) {
        let rules = [];
        try { rules = Array.from(sheet.cssRules); } catch (e) { continue; }
        for (const r of rules) {
            if (r.selectorText && r.selectorText.includes('::-webkit-scrollbar')) {
                r.selectorText.split(',').filter(s => /::-webkit-scrollbar\\s*$/.test(s))
                    .forEach(s => styled.push(s.replace(/::-webkit-scrollbar\\s*$/, '')));
            }
        }
    }
    const isStyled = el => styled.some(s => { try { return el.matches(s); } catch (e) { return false; } });
    const blocks = a.querySelectorAll('pre, div.highlight, div.cell_output > div.output, div.math, table, img');
    const cut = [];
    for (const el of blocks) {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.height === 0) continue;  // not shown
        const what = (el.textContent || el.getAttribute('src') || '').trim().slice(0, 50);
        const css = getComputedStyle(el);
        if (el.scrollWidth > el.clientWidth + 1) {
            const bar = el.offsetHeight - el.clientHeight - parseFloat(css.borderTopWidth) - parseFloat(css.borderBottomWidth);
            const scrolls = css.overflowX === 'auto' || css.overflowX === 'scroll';
            if (!scrolls) cut.push(`${el.tagName.toLowerCase()} cut (overflow-x ${css.overflowX}): ${what}`);
            else if (bar <= 0 || !isStyled(el)) cut.push(`${el.tagName.toLowerCase()} scrolls without a visible scrollbar: ${what}`);
        }
        // a block that sticks out of the column (inside no scrolling block) loses its right edge
        let inScroller = false;
        for (let p = el.parentElement; p && p !== a; p = p.parentElement) {
            const o = getComputedStyle(p).overflowX;
            if (o === 'auto' || o === 'scroll') { inScroller = true; break; }
        }
        if (!inScroller && box.right > right + 1) cut.push(`${el.tagName.toLowerCase()} wider than the column: ${what}`);
    }
    return cut;
}"""


def test_no_listing_or_output_is_cut_off(reader: Reader) -> None:
    problems: list[str] = []
    for path in pages():
        reader.open(path)
        cut = reader.page.evaluate(_CUT)
        if cut:
            problems.append(f"{path.relative_to(HTML)}: {len(cut)} block(s): " + "; ".join(cut[:3]))
    assert not problems, "\n".join(problems)


# -- headings -------------------------------------------------------------------------------------

def test_one_level_1_heading_per_page(reader: Reader) -> None:
    problems: list[str] = []
    for path in pages():
        reader.open(path)
        found = reader.page.evaluate("""() => {
            const a = document.querySelector('article.bd-article');
            const hs = Array.from(a.querySelectorAll('h1, h2, h3, h4, h5, h6'));
            return {first: hs.length ? hs[0].tagName : null,
                    h1: hs.filter(h => h.tagName === 'H1').map(h => h.textContent.replace('#', '').trim().slice(0, 60))};
        }""")
        name = path.relative_to(HTML)
        if found["first"] != "H1":
            problems.append(f"{name}: the page does not open with its title (first heading {found['first']})")
        if len(found["h1"]) > 1:
            problems.append(f"{name}: level-1 headings below the title: {found['h1'][1:4]}")
    assert not problems, "\n".join(problems)


# -- figures and screenshots ----------------------------------------------------------------------

def test_figures_and_a_screenshot_of_every_chapter(reader: Reader) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    reader.open(HTML / "book" / "index.html")
    reader.page.screenshot(path=str(SHOTS / "index.png"))
    assert (SHOTS / "index.png").stat().st_size > 10_000
    chapters = chapter_pages()
    assert len(chapters) >= 12, f"only {len(chapters)} chapter pages"
    for path in chapters:
        reader.open(path)
        # every chapter page shows at least one figure that loaded; the interactive chapter's
        # static grid stands in for its widgets in the HTML book
        shown = reader.page.evaluate("Array.from(document.querySelectorAll('article img'))"
                                     ".filter(i => i.naturalWidth > 100).length")
        assert shown >= 1, f"{path.name}: no figure shown"
        shot = SHOTS / f"{path.stem}.png"
        # the whole page in one window (a full-page capture of a 900-pixel window would leave out
        # the scrollbars of the blocks below the first screen, which a reader sees)
        height = reader.page.evaluate("document.documentElement.scrollHeight")
        reader.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        reader.page.screenshot(path=str(shot))
        reader.page.set_viewport_size(VIEWPORT)
        assert shot.stat().st_size > 50_000, f"{shot}: an empty screenshot?"

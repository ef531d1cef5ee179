"""Downloading Flickr-SoundNet videos: parallel, resumable, with retries and a failure list.

The paper trains on 10k and 144k Flickr-SoundNet pairs (Senocak et al., 2018, Sec. 4); the
authors publish the 144k id list. At that scale a download is interrupted and many links are
dead, so this module:

- downloads each item to ``<name>.part`` and renames it onto its final name only when the
  byte count matches what the server announced (no truncated file ever has a final name);
- continues a ``.part`` file with an HTTP ``Range`` request (a server that ignores ``Range`` and
  answers 200 makes it start again from byte 0);
- skips items whose final file exists;
- retries transient errors (connection reset or dropped, timeout, 5xx, 408, 429) a bounded
  number of times with exponential backoff; 4xx answers such as 404 are final;
- records what failed in ``OUT/failures.csv`` (columns id, reason), written atomically.

Only the standard library (``urllib``) and threads are used.
"""
from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from soundloc.data.layout import FAILURES_FILE, write_failures
from soundloc.data.leakage import normalize_id

#: Characters allowed in an item id (it becomes a file name).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: Statuses worth retrying; any other HTTP error status is final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "soundloc-downloader/1.0 (+research; urllib)"


@dataclass(frozen=True)
class DownloadItem:
    """One thing to download: its id (file stem), URL and target file name."""

    id: str
    url: str
    filename: str


@dataclass
class DownloadConfig:
    """Settings of :func:`download_all`.

    Attributes:
        workers: parallel downloads (threads).
        retries: extra attempts after the first, for transient errors.
        backoff: seconds before the first retry; doubled each time.
        timeout: seconds a connection may stay silent before it is abandoned.
        chunk_size: bytes read per ``read`` call.
        progress: show a tqdm progress bar.
    """

    workers: int = 8
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 30.0
    chunk_size: int = 1 << 16
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")


@dataclass
class DownloadReport:
    """What :func:`download_all` did: ids downloaded, already present, failed (with reasons)."""

    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    failures_csv: Path | None = None

    def summary(self) -> str:
        return (
            f"{len(self.downloaded)} downloaded, {len(self.skipped)} already present, "
            f"{len(self.failed)} failed" + (f" (see {self.failures_csv})" if self.failed else "")
        )


class _Transient(Exception):
    """An error worth another attempt."""


class _Final(Exception):
    """An error no retry will fix (e.g. 404)."""


def parse_items(lines: Iterable[str], url_template: str | None = None, default_ext: str = ".mp4") -> list[DownloadItem]:
    """Turn list lines (URLs or bare ids) into :class:`DownloadItem` objects.

    - A line with ``://`` is a URL; the id is the stem of its path's last part and the file name
      keeps the URL's extension (``default_ext`` when it has none).
    - Any other line is an id (a media extension such as the ``.wav`` of the authors' 144k list
      is dropped), turned into a URL with ``url_template`` (``"https://host/{id}.mp4"``).
    - Blank lines and ``#`` comments are skipped; a CSV line uses its first field; repeated ids
      are kept once.

    Raises:
        ValueError: a bare id without ``url_template``, a non-http(s) URL, or an id that is not
        a safe file name (the message quotes the line).
    """
    items: list[DownloadItem] = []
    seen: set[str] = set()
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.split(",")[0].strip()
        if "://" in line:
            url = line
            name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
            stem, ext = os.path.splitext(name)
            ext = ext or default_ext
        else:
            stem = normalize_id(line)  # the authors' list names files: "5692223126.wav" -> "5692223126"
            if url_template is None:
                raise ValueError(f"line {n}: {line!r} is a bare id; pass url_template (e.g. 'https://host/{{id}}.mp4')")
            if "{id}" not in url_template:
                raise ValueError(f"url_template must contain '{{id}}', got {url_template!r}")
            url = url_template.format(id=stem)
            ext = os.path.splitext(urllib.parse.urlparse(url).path)[1] or default_ext
        scheme = urllib.parse.urlparse(url).scheme.lower()
        if scheme not in {"http", "https"}:
            raise ValueError(f"line {n}: only http(s) URLs are downloaded, got {url!r}")
        if not _SAFE_ID.match(stem) or ".." in stem:
            raise ValueError(f"line {n}: id {stem!r} is not a safe file name")
        if stem in seen:
            continue
        seen.add(stem)
        items.append(DownloadItem(stem, url, stem + ext))
    return items


def read_items(path: str | os.PathLike[str], url_template: str | None = None) -> list[DownloadItem]:
    """:func:`parse_items` on a list file (one URL or id per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: download list not found")
    try:
        return parse_items(path.read_text(encoding="utf-8").splitlines(), url_template)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _fetch_once(item: DownloadItem, part: Path, cfg: DownloadConfig) -> None:
    """One attempt: continue ``part`` from its current size; raise _Transient/_Final on error."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(item.url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=cfg.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # the .part is at least as long as the file, or the server disagrees: start afresh
            part.unlink(missing_ok=True)
            raise _Transient(f"HTTP 416 for a range from byte {offset}; restarting") from exc
        if exc.code in RETRY_STATUSES:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise _Final(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(f"connection error: {reason}") from exc
    with resp:
        status = resp.status
        length_header = resp.headers.get("Content-Length")
        expected_body = int(length_header) if length_header and length_header.isdigit() else None
        if status == 206 and offset:
            mode = "ab"
            start = offset
            content_range = resp.headers.get("Content-Range", "")
            m = re.match(r"bytes\s+(\d+)-", content_range)
            if m and int(m.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Transient(f"server sent range {content_range!r} for a request from byte {offset}; restarting")
        elif status == 200:
            mode = "wb"  # a server that ignores Range: start again from byte 0
            start = 0
        else:
            raise _Final(f"unexpected HTTP status {status}")
        received = 0
        try:
            with open(part, mode) as fh:
                while True:
                    chunk = resp.read(cfg.chunk_size)
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
        except (OSError, http.client.HTTPException, socket.timeout) as exc:
            raise _Transient(f"connection lost after {start + received} bytes: {exc!r}") from exc
    if expected_body is not None and received != expected_body:
        raise _Transient(f"connection lost: got {received} of {expected_body} bytes")
    if start + received == 0:
        part.unlink(missing_ok=True)
        raise _Final("empty response (0 bytes)")


def download_one(
    item: DownloadItem, out: str | os.PathLike[str], cfg: DownloadConfig, sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, str]:
    """Download one item into ``out``; return ``(status, reason)``.

    ``status`` is ``"downloaded"``, ``"skipped"`` (final file already present) or ``"failed"``
    (``reason`` says why). The file appears under its final name only when complete.
    """
    out = Path(out)
    final = out / item.filename
    if final.is_file():
        return "skipped", ""
    part = out / (item.filename + ".part")
    last = ""
    for attempt in range(cfg.retries + 1):
        if attempt:
            sleep(cfg.backoff * 2 ** (attempt - 1))
        try:
            _fetch_once(item, part, cfg)
        except _Final as exc:
            return "failed", str(exc)
        except _Transient as exc:
            last = str(exc)
            continue
        os.replace(part, final)
        return "downloaded", ""
    return "failed", f"{last} (after {cfg.retries + 1} attempts)"


def download_all(
    items: Sequence[DownloadItem], out: str | os.PathLike[str], cfg: DownloadConfig | None = None,
) -> DownloadReport:
    """Download ``items`` into ``out`` in parallel; write ``out/failures.csv``; return a report.

    ``failures.csv`` lists the items that failed in this run (it is rewritten every run, so an
    item that succeeds on a later run leaves it).
    """
    cfg = cfg or DownloadConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()
    results: dict[str, tuple[str, str]] = {}
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = {pool.submit(download_one, it, out, cfg): it for it in items}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="download", disable=not cfg.progress):
            it = futures[fut]
            try:
                results[it.id] = fut.result()
            except Exception as exc:  # a bug or a disk error: record it, keep going
                results[it.id] = ("failed", f"unexpected error: {exc!r}")
    for it in items:  # keep list order in the report
        status, reason = results[it.id]
        if status == "downloaded":
            report.downloaded.append(it.id)
        elif status == "skipped":
            report.skipped.append(it.id)
        else:
            report.failed.append((it.id, reason))
    report.failures_csv = write_failures(out / FAILURES_FILE, report.failed)
    return report

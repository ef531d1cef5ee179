"""The downloader against a local HTTP server on 127.0.0.1 that the test starts."""
from __future__ import annotations

import csv
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from soundloc.data.download import DownloadConfig, DownloadItem, download_all, download_one, parse_items, read_items

PAYLOAD = bytes((i * 7 + 3) % 251 for i in range(50_000))


class Server:
    """Routes: /ok/<name> (honours Range), /norange/<name> (ignores Range), /drop/<name> (first
    request sends half the body then closes), /flaky/<name> (first request 503), /missing/<name>
    (404), /slow/<name> (waits longer than the client's timeout), /empty/<name> (0 bytes)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str | None]] = []
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                with outer.lock:
                    outer.log.append((self.path, rng))
                    n = outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                route = self.path.split("/")[1]
                if route == "missing":
                    self.send_error(404, "Not Found")
                    return
                if route == "flaky" and n == 1:
                    self.send_error(503, "Busy")
                    return
                if route == "slow":
                    time.sleep(1.0)
                body, status = PAYLOAD, 200
                if route == "empty":
                    body = b""
                start = 0
                if rng and route in {"ok", "drop", "flaky"}:
                    m = re.match(r"bytes=(\d+)-$", rng)
                    assert m, rng
                    start = int(m.group(1))
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Type", "video/mp4")
                self.end_headers()
                if route == "drop" and n == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                try:
                    self.wfile.write(body[start:])
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, route: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def fast(**kw: object) -> DownloadConfig:
    base = dict(workers=4, retries=2, backoff=0.01, timeout=5.0, chunk_size=4096, progress=False)
    base.update(kw)
    return DownloadConfig(**base)  # type: ignore[arg-type]


def read_failures_csv(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "reason"]
    return {r[0]: r[1] for r in rows[1:]}


def test_parse_items_urls_ids_and_errors() -> None:
    items = parse_items(
        ["# comment", "", "https://h.org/a/v1.mp4", "v2", "v2.wav", "http://h.org/x/v3.webm?sig=1", "v4,extra"],
        url_template="https://cdn.example/{id}.mp4",
    )
    assert items == [
        DownloadItem("v1", "https://h.org/a/v1.mp4", "v1.mp4"),
        DownloadItem("v2", "https://cdn.example/v2.mp4", "v2.mp4"),
        DownloadItem("v3", "http://h.org/x/v3.webm?sig=1", "v3.webm"),
        DownloadItem("v4", "https://cdn.example/v4.mp4", "v4.mp4"),
    ]
    with pytest.raises(ValueError, match="bare id"):
        parse_items(["12345"])
    with pytest.raises(ValueError, match="only http"):
        parse_items(["file:///etc/passwd"])
    with pytest.raises(ValueError, match="safe file name"):
        parse_items(["bad id!"], url_template="https://h/{id}")
    with pytest.raises(ValueError, match="safe file name"):
        parse_items(["https://h.org/..%2Fx/..mp4"])
    assert parse_items(["../evil"], url_template="https://h/{id}.mp4")[0].filename == "evil.mp4"  # no path escapes


def test_read_items_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nolist.txt"):
        read_items(tmp_path / "nolist.txt")


def test_download_all_mixed_list(server: Server, tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text(
        "\n".join(
            [server.url("ok", "a.mp4"), server.url("missing", "b.mp4"), server.url("drop", "c.mp4"),
             server.url("flaky", "d.mp4"), server.url("norange", "e.mp4")]
        )
    )
    out = tmp_path / "videos"
    report = download_all(read_items(lst), out, fast())
    assert sorted(report.downloaded) == ["a", "c", "d", "e"]
    assert [i for i, _ in report.failed] == ["b"]
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    for name in "acde":
        assert hashlib.sha256((out / f"{name}.mp4").read_bytes()).hexdigest() == digest
    assert not (out / "b.mp4").exists() and not list(out.glob("*.part"))
    fails = read_failures_csv(out / "failures.csv")
    assert list(fails) == ["b"] and "404" in fails["b"]
    # the dropped download was continued from the bytes it had, with a Range request
    drop_ranges = [r for p, r in server.log if p == "/drop/c.mp4"]
    assert drop_ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]
    # 404 is final: asked once, not retried
    assert server.hits["/missing/b.mp4"] == 1
    # a second run skips the finished files without asking the server
    before = len(server.log)
    again = download_all(read_items(lst), out, fast())
    assert sorted(again.skipped) == ["a", "c", "d", "e"] and again.downloaded == []
    assert [p for p, _ in server.log[before:]] == ["/missing/b.mp4"]


def test_dropped_connection_without_retries_leaves_only_part(server: Server, tmp_path: Path) -> None:
    item = parse_items([server.url("drop", "v.mp4")])[0]
    status, reason = download_one(item, tmp_path, fast(retries=0))
    assert status == "failed" and "connection lost" in reason
    assert not (tmp_path / "v.mp4").exists()
    part = tmp_path / "v.mp4.part"
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]
    # resuming later continues the part file
    status, _ = download_one(item, tmp_path, fast(retries=0))
    assert status == "downloaded" and (tmp_path / "v.mp4").read_bytes() == PAYLOAD
    assert server.log[-1] == ("/drop/v.mp4", f"bytes={len(PAYLOAD) // 2}-")


def test_server_ignoring_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    (tmp_path / "v.mp4.part").write_bytes(b"garbage-prefix-not-the-file")
    item = parse_items([server.url("norange", "v.mp4")])[0]
    assert download_one(item, tmp_path, fast())[0] == "downloaded"
    assert (tmp_path / "v.mp4").read_bytes() == PAYLOAD
    assert server.log == [("/norange/v.mp4", "bytes=27-")]


def test_partial_file_continued_with_range(server: Server, tmp_path: Path) -> None:
    (tmp_path / "v.mp4.part").write_bytes(PAYLOAD[:12_345])
    item = parse_items([server.url("ok", "v.mp4")])[0]
    assert download_one(item, tmp_path, fast())[0] == "downloaded"
    assert (tmp_path / "v.mp4").read_bytes() == PAYLOAD
    assert server.log == [("/ok/v.mp4", "bytes=12345-")]


def test_timeout_and_empty_are_failures(server: Server, tmp_path: Path) -> None:
    items = parse_items([server.url("slow", "s.mp4"), server.url("empty", "z.mp4")])
    report = download_all(items, tmp_path, fast(retries=1, timeout=0.3))
    reasons = dict(report.failed)
    assert set(reasons) == {"s", "z"}
    assert "after 2 attempts" in reasons["s"]
    assert server.hits["/slow/s.mp4"] == 2
    assert "empty" in reasons["z"]
    assert not (tmp_path / "s.mp4").exists() and not (tmp_path / "z.mp4").exists()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="workers"):
        DownloadConfig(workers=0)
    with pytest.raises(ValueError, match="retries"):
        DownloadConfig(retries=-1)


def test_download_cli_with_url_template(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundloc.cli import main

    (tmp_path / "ids.txt").write_text("v1\nv2\n")
    rc = main(["data", "download", "--list", str(tmp_path / "ids.txt"), "--out", str(tmp_path / "v"),
               "--url-template", f"http://127.0.0.1:{server.port}/ok/{{id}}.mp4", "--backoff", "0.01", "--no-progress"])
    assert rc == 0 and "2 downloaded" in capsys.readouterr().out
    assert (tmp_path / "v/v1.mp4").read_bytes() == PAYLOAD


@pytest.mark.parametrize("routes, downloaded", [(("missing", "missing"), 0), (("ok", "missing"), 1)])
def test_download_cli_fails_when_any_download_failed(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     routes: tuple[str, str], downloaded: int) -> None:
    from soundloc.cli import main

    (tmp_path / "list.txt").write_text("\n".join(server.url(r, f"v{k}.mp4") for k, r in enumerate(routes)))
    rc = main(["data", "download", "--list", str(tmp_path / "list.txt"), "--out", str(tmp_path / "v"), "--retries", "0",
               "--no-progress"])
    out = capsys.readouterr().out
    failed = [f"v{k}" for k, r in enumerate(routes) if r == "missing"]
    assert rc == 1 and f"{downloaded} downloaded, 0 already present, {len(failed)} failed" in out
    assert str(tmp_path / "v" / "failures.csv") in out
    assert list(read_failures_csv(tmp_path / "v" / "failures.csv")) == failed
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == sorted(
        ["failures.csv", *(f"v{k}.mp4" for k, r in enumerate(routes) if r == "ok")])

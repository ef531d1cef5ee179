"""soundloc.utils (atomic writes, seeding, summaries over runs) and the book's quick mode, scratch folders,
committed results and Markdown tables (soundloc.book)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundloc.book import quick_mode
from soundloc.utils.files import atomic_open, atomic_path, read_torch_file, stale_parts, write_json
from soundloc.utils.seeding import seed_everything


def test_atomic_open_writes_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    with atomic_open(target, "w") as fh:
        fh.write("hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_open_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_open_refuses_read_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writing"):
        with atomic_open(tmp_path / "x", "r"):
            pass


def test_atomic_path_keeps_suffix_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "arr.npy"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npy" and tmp != target
        np.save(tmp, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2]
    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "b.npy") as tmp:
            np.save(tmp, np.arange(2))
            raise KeyError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arr.npy"]


def test_write_json_round_trip(tmp_path: Path) -> None:
    write_json(tmp_path / "r.json", {"a": [1, 2.5], "b": None})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1, 2.5], "b": None}


def test_seed_everything_repeats_torch_and_numpy() -> None:
    seed_everything(3)
    a = (torch.rand(4), np.random.rand(4))
    seed_everything(3)
    b = (torch.rand(4), np.random.rand(4))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    seed_everything(4)
    assert not torch.equal(torch.rand(4), a[0])
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("value,expected", [("", False), ("0", False), ("false", False), ("1", True), ("yes", True)])
def test_quick_mode_reads_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("SOUNDLOC_QUICK", value)
    assert quick_mode() is expected


def test_read_json_names_the_file(tmp_path: Path) -> None:
    from soundloc.utils.files import read_json

    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_json(good) == {"a": 1}
    with pytest.raises(FileNotFoundError, match="missing.json: results file not found"):
        read_json(tmp_path / "missing.json", "results file")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)


def test_committed_results_are_found_from_any_working_directory(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    from soundloc.book import committed_path, repository_root

    root = Path(__file__).resolve().parents[1]
    for where in (root, root / "chapters", root / "src" / "soundloc"):
        monkeypatch.chdir(where)
        assert repository_root() == root
        assert committed_path("benchmarks/pigeon/PREREGISTRATION.md") == root / "benchmarks/pigeon/PREREGISTRATION.md"
    monkeypatch.chdir(tmp_path)  # outside the checkout: found through the installed (editable) package
    assert committed_path("benchmarks/pigeon/PREREGISTRATION.md").is_file()
    import pytest

    with pytest.raises(FileNotFoundError, match="fetch=True"):
        committed_path("benchmarks/no_such_folder", fetch=False)


def test_committed_results_fetched_from_an_archive_once_whole(tmp_path) -> None:
    # a GitHub-style archive served on 127.0.0.1: asking for a file first and its folder later
    # must find the folder's other files too (the whole archive is unpacked once)
    import io
    import threading
    import zipfile
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from soundloc.book import committed_path

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("soundloc-main/", "")
        z.writestr("soundloc-main/benchmarks/archived_only/a/one.json", "1")
        z.writestr("soundloc-main/benchmarks/archived_only/b/two.json", "2")
        z.writestr("soundloc-main/benchmarks/archived_only_too/three.json", "3")
    served = tmp_path / "served"
    served.mkdir()
    (served / "main.zip").write_bytes(buf.getvalue())
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/main.zip"
        cache = tmp_path / "cache"
        one = committed_path("benchmarks/archived_only/a/one.json", fetch=True, archive_url=url, cache=cache)
        assert one.read_text() == "1"
        (served / "main.zip").unlink()  # a second call must not download again
        folder = committed_path("benchmarks/archived_only", fetch=True, archive_url=url, cache=cache)
        assert sorted(p.name for p in folder.rglob("*.json")) == ["one.json", "two.json"]
        with pytest.raises(FileNotFoundError, match="benchmarks/missing"):
            committed_path("benchmarks/missing", fetch=True, archive_url=url, cache=cache)
    finally:
        httpd.shutdown()


def test_mean_std_is_the_sample_deviation() -> None:
    import pytest

    from soundloc.utils.summary import format_mean_std, mean_std

    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32, sample variance 32 / 7
    assert mean_std([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx((5.0, (32 / 7) ** 0.5))
    assert mean_std([0.3]) == (0.3, None)
    assert format_mean_std([1.0, 2.0], 2) == "1.50 ± 0.71" and format_mean_std([1.0], 1) == "1.0 (one run)"
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_format_pair_by_hand() -> None:
    from soundloc.utils.summary import format_pair

    assert format_pair(12.345, 1.25, digits=1) == "12.3 ± 1.2"  # 1.25 rounds half to even
    assert format_pair(12.345, None, digits=1) == "12.3"
    assert format_pair(0.5, None, digits=2, single=" (one run)") == "0.50 (one run)"
    assert format_pair(-0.05, 0.2121, digits=2, signed=True) == "-0.05 ± 0.21"
    assert format_pair(0.4, None, digits=2, signed=True) == "+0.40"


def test_stale_parts_are_the_temporary_files_of_the_atomic_writers(tmp_path: Path) -> None:
    # what a process killed inside the block leaves: the writers' own temporary names
    (tmp_path / "last.pt").write_bytes(b"whole")
    (tmp_path / ".other.part.x.pt").write_bytes(b"another file's")
    with atomic_path(tmp_path / "last.pt") as tmp:
        tmp.write_bytes(b"half")
        assert stale_parts(tmp_path / "last.pt") == [tmp]
    with atomic_open(tmp_path / "log.csv", "w") as fh:
        fh.write("half")
        (temporary,) = set(tmp_path.glob(".*")) - {tmp_path / ".other.part.x.pt"}
        assert stale_parts(tmp_path / "log.csv") == [temporary] and temporary.name.startswith(".log.csv.")
    assert stale_parts(tmp_path / "last.pt") == [] and stale_parts(tmp_path / "log.csv") == []


def test_read_torch_file_names_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(read_torch_file(tmp_path / "ok.pt", "model file")["a"], torch.ones(2))
    (tmp_path / "text.jpg").write_text("some text")  # torch.load's own message: "pop from empty list"
    with pytest.raises(ValueError, match=r"model file '.*text.jpg' is not a file written by torch.save$"):
        read_torch_file(tmp_path / "text.jpg", "model file")
    with pytest.raises(FileNotFoundError, match="none.pt"):
        read_torch_file(tmp_path / "none.pt", "model file")


def test_pipe_table_by_hand() -> None:
    from soundloc.book import pipe_table

    md = pipe_table(["model", "|f_v|", "R@1"], [["semi", None, 0.5], ["a|b", "x", 1]], align="lcr")
    assert md == ("| model | \\|f_v\\| | R@1 |\n|:---|:---:|---:|\n| semi | – | 0.5 |\n| a\\|b | x | 1 |\n")
    assert pipe_table(["a"], []) == "| a |\n|:---|\n"
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        pipe_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align"):
        pipe_table(["a", "b"], [], align="lx")


def test_scratch_dir_is_removed_when_the_process_exits(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = ("from soundloc.book import scratch_dir\n"
            "d = scratch_dir('soundloc-tables-')\n"
            "(d / 'runs').mkdir(); (d / 'runs' / 'results.json').write_text('{}')\n"
            "print(d)\n")
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    made = Path(out.strip())
    assert made.parent == tmp and made.name.startswith("soundloc-tables-")
    assert not made.exists() and list(tmp.iterdir()) == []
    # a killed process runs no exit handler (os._exit stands for it): its folder stays until the
    # next call, which removes it; a folder that names no process, or a live one, is left alone
    killed = subprocess.run([sys.executable, "-c", code + "import os; os._exit(0)\n"], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()
    assert Path(killed).is_dir()
    foreign = tmp / "soundloc-tables-not-ours"
    foreign.mkdir()
    alive = tmp / "soundloc-tables-alive"
    alive.mkdir()
    (alive / ".soundloc-owner-pid").write_text(str(os.getpid()))
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert sorted(p.name for p in tmp.iterdir()) == ["soundloc-tables-alive", "soundloc-tables-not-ours"]

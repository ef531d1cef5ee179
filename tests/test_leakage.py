"""Train/test leakage checks and the id-list reader."""
from __future__ import annotations

from pathlib import Path

import pytest

from soundloc.data.leakage import (
    LeakageError,
    check_leakage,
    enforce_no_leakage,
    normalize_id,
    parse_ids,
    read_ids,
    remove_leakage,
)


def test_normalize_id() -> None:
    assert normalize_id(" 123.mp4 ") == "123"
    assert normalize_id("https://h.org/v/123.mp4?x=1") == "123"
    assert normalize_id("frames/123.jpg") == "123"
    assert normalize_id("abc_def") == "abc_def"
    assert normalize_id("v1.5") == "v1.5"  # not a media extension: kept


def test_parse_ids_plain_csv_header_comments() -> None:
    assert parse_ids(["# list", "", "1", "2.jpg", "3,extra", "\t"]) == ["1", "2", "3"]
    assert parse_ids(["file,label", "10,a", "11,b"]) == ["10", "11"]
    assert parse_ids(["'12'", '"13"']) == ["12", "13"]


def test_read_ids_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        read_ids(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="empty.txt: no ids"):
        read_ids(tmp_path / "empty.txt")


def test_check_and_remove_leakage() -> None:
    train = ["a.mp4", "b", "c", "d.mp4", "b", "e"]
    test = ["d", "x", "b.jpg"]
    rep = check_leakage(train, test)
    assert rep.overlap == ["b", "d"] and rep.n_train == 5 and rep.n_test == 3 and rep.leaked
    assert "2 of the 3 test ids" in str(rep)
    clean, rep2 = remove_leakage(train, test)
    assert clean == ["a.mp4", "c", "e"] and rep2.overlap == rep.overlap
    ok = check_leakage(["a"], ["b"])
    assert not ok.leaked and str(ok).startswith("no leakage")


def test_enforce_policies() -> None:
    logged: list[str] = []
    assert enforce_no_leakage(["1", "2", "3"], ["2"], log=logged.append) == ["1", "3"]
    assert "LEAKAGE" in logged[0] and "removed 1" in logged[1]
    assert enforce_no_leakage(["1", "2"], ["2"], policy="keep", log=None) == ["1", "2"]
    with pytest.raises(LeakageError, match="1 of the 1 test ids"):
        enforce_no_leakage(["1", "2"], ["2"], policy="error", log=None)
    with pytest.raises(ValueError, match="policy"):
        enforce_no_leakage(["1"], ["2"], policy="warn")
    assert enforce_no_leakage(["1"], ["2"], log=None) == ["1"]


def test_leakage_cli_and_scripts_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    from soundloc.cli import main
    from soundloc.data.layout import read_id_list

    (tmp_path / "train.txt").write_text("1.wav\n2.wav\n3.wav\n")
    (tmp_path / "test250.txt").write_text("2\n")
    (tmp_path / "test249.csv").write_text("3,x\n")
    clean = tmp_path / "clean.txt"
    rc = main(["data", "leakage", "--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test250.txt"),
               str(tmp_path / "test249.csv"), "--write-clean", str(clean), "--fail"])
    out = capsys.readouterr().out
    assert rc == 1 and "LEAKAGE: 2 of the 2 test ids" in out
    assert read_id_list(clean) == ["1"]
    root = Path(__file__).resolve().parents[1] / "data_scripts"
    for script in ["download_flickr.py", "prepare_flickr.py", "prepare_annotations.py", "build_cache.py", "check_leakage.py"]:
        proc = subprocess.run([sys.executable, str(root / script), "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "usage:" in proc.stdout, script

"""VGG-SS import (soundloc.data.vggss, ``soundloc data vggss``) on files the tests make: a JSON in
the published format, a few ffmpeg-made clips, missing and broken ones, malformed entries."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from soundloc.cli import main
from soundloc.data.ffmpeg import find_ffmpeg
from soundloc.data.layout import read_annotations, read_failures, read_id_list, read_index
from soundloc.data.prepare import PrepareConfig
from soundloc.data.vggss import VGGSS_FRAME, VGGSSError, import_vggss, parse_vggss
from soundloc.metrics import gt_map

try:
    FFMPEG: str | None = find_ffmpeg()
except FileNotFoundError:  # pragma: no cover - the venv ships imageio-ffmpeg
    FFMPEG = None

# entries copied in form from the published vggss.json (ids made up)
ENTRIES = [
    {"file": "zpWuikVorYg_000032", "class": "elk bugling", "bbox": [[0.403125, 0.253125, 0.6, 0.75]]},
    {"file": "ORaz-32_Q29k_000130", "class": "coyote howling",
     "bbox": [[0.121875, 0.171875, 0.6, 0.853125], [0.765625, 0.275, 0.984375, 0.565625]]},
    {"file": "gg6yoeBoYxg_000000", "class": "children shouting", "bbox": [[0.13125, 0, 1.0, 0.31875]]},
    {"file": "UyCw7pCgYg8_000055", "class": "tap dancing",
     "bbox": [[0.503125, 0.403125, 0.6468750000000001, 0.6625000000000001], [0.00625, 0.015625, 0.00625, 0.015625]]},
    {"file": "M1P1xla8rg0_000000", "class": "playing tambourine", "bbox": [[-0.01, 0.5, 0.753125, 1.02]]},
]


def write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_boxes_go_to_the_224_frame_by_truncation(tmp_path: Path) -> None:
    parsed = parse_vggss(write(tmp_path / "vggss.json", ENTRIES))
    a = parsed.annotations
    assert list(a) == [e["file"] for e in ENTRIES] and parsed.entries == 5
    # 224 * (0.403125, 0.253125, 0.6, 0.75) = (90.3, 56.7, 134.4, 168.0) -> truncated
    assert a["zpWuikVorYg_000032"].boxes == (((90, 56, 134, 168),),)
    assert a["zpWuikVorYg_000032"].frame_size == VGGSS_FRAME == 224
    assert a["zpWuikVorYg_000032"].category == "elk bugling" and a["zpWuikVorYg_000032"].tags == ("",)
    # several boxes: one annotator holding both; 224 * 0.765625 = 171.5 -> 171
    assert a["ORaz-32_Q29k_000130"].boxes == (((27, 38, 134, 191), (171, 61, 220, 126)),)
    # an integer 0 is a coordinate like any other; the degenerate box is kept (it covers nothing)
    assert a["gg6yoeBoYxg_000000"].boxes == (((29, 0, 224, 71),),)
    assert a["UyCw7pCgYg8_000055"].boxes[0][1] == (1, 3, 1, 3)
    # outside [0, 1]: clipped (as the community's code does) and counted, not silently
    assert a["M1P1xla8rg0_000000"].boxes == (((0, 112, 168, 224),),)
    assert parsed.clipped == {"M1P1xla8rg0_000000": 2}
    assert parsed.box_counts() == {1: 3, 2: 2} and parsed.empty_boxes() == 1
    assert parsed.classes == sorted(e["class"] for e in ENTRIES)
    assert "2 coordinate(s) outside [0, 1] clipped" in parsed.summary()


def test_ground_truth_matches_the_community_rasterisation(tmp_path: Path) -> None:
    # a second implementation of EZ-VSL/SLAVC's VGG-SS ground truth, with NumPy:
    # boxes = (clip(bbox, 0, 1) * 224).astype(int); gt[y1:y2, x1:x2] += 1; gt[gt > 0] = 1
    parsed = parse_vggss(write(tmp_path / "vggss.json", ENTRIES))
    for entry in ENTRIES:
        ref = np.zeros((224, 224))
        for box in entry["bbox"]:
            x1, y1, x2, y2 = (np.clip(np.array(box), 0, 1) * 224).astype(int)
            ref[y1:y2, x1:x2] += 1
        ref[ref > 0] = 1
        got = gt_map(parsed.annotations[entry["file"]], "vggss").numpy()
        assert np.array_equal(got, ref), entry["file"]


@pytest.mark.parametrize("entry, message", [
    (["a"], "expected an object"),
    ({"class": "x", "bbox": [[0, 0, 1, 1]]}, "no 'file'"),
    ({"file": "bad name.mp4", "class": "x", "bbox": [[0, 0, 1, 1]]}, "is not '<YouTube id>_<start>'"),
    ({"file": "abc_1", "bbox": [[0, 0, 1, 1]]}, "no 'class'"),
    ({"file": "abc_1", "class": "x", "bbox": []}, "non-empty list"),
    ({"file": "abc_1", "class": "x", "bbox": [[0, 0, 1]]}, "not four numbers"),
    ({"file": "abc_1", "class": "x", "bbox": [[0, "0", 1, 1]]}, "not four numbers"),
    ({"file": "abc_1", "class": "x", "bbox": [[0.5, 0, 0.2, 1]]}, "x2 < x1"),
    ({"file": "zpWuikVorYg_000032", "class": "x", "bbox": [[0, 0, 1, 1]]}, "listed twice (first at entry 0)"),
])
def test_malformed_entries_give_one_line_naming_entry_and_file(tmp_path: Path, entry: object, message: str) -> None:
    path = write(tmp_path / "vggss.json", [ENTRIES[0], entry])
    with pytest.raises(VGGSSError) as err:
        parse_vggss(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "entry 1" in text and message in text
    if isinstance(entry, dict) and "file" in entry:
        assert repr(entry["file"]) in text
    # recorded instead of raised: the good entry stays, the bad one is listed
    rec = parse_vggss(path, on_error="record")
    assert list(rec.annotations) == ["zpWuikVorYg_000032"] and len(rec.failed) == 1
    assert message in rec.failed[0][1]


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        parse_vggss(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    with pytest.raises(VGGSSError, match="not valid JSON"):
        parse_vggss(tmp_path / "broken.json")
    with pytest.raises(VGGSSError, match="non-empty JSON list"):
        parse_vggss(write(tmp_path / "obj.json", {"file": "a_1"}))
    with pytest.raises(VGGSSError, match="empty list"):
        parse_vggss(write(tmp_path / "empty.json", []))


def _clip(path: Path, seconds: float = 1.0) -> Path:
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(seconds),
                    "-y", str(path)], check=True)
    return path


@pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg available")
def test_import_counts_present_missing_failed_and_unlisted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    _clip(videos / "zpWuikVorYg_000032.mp4")
    _clip(videos / "gg6yoeBoYxg_000000.mp4")
    _clip(videos / "notInList_000001.mp4")  # on disk, not listed: ignored, counted
    (videos / "UyCw7pCgYg8_000055.mp4").write_bytes(b"not a video")  # listed, broken
    js = write(tmp_path / "vggss.json", ENTRIES)
    out = tmp_path / "vggss"
    res = import_vggss(js, out, videos, PrepareConfig(size=32, progress=False, workers=1))
    assert res.present == ["zpWuikVorYg_000032", "gg6yoeBoYxg_000000"] and res.prepared_now == 2
    assert res.missing == ["ORaz-32_Q29k_000130", "M1P1xla8rg0_000000"]
    assert [f[0] for f in res.failed] == ["UyCw7pCgYg8_000055"] and res.unlisted == ["notInList_000001"]
    assert read_id_list(out / "splits" / "vggss_present.txt") == res.present
    assert read_id_list(out / "splits" / "vggss_missing.txt") == res.missing
    assert read_id_list(out / "splits" / "vggss_listed.txt") == [e["file"] for e in ENTRIES]
    assert [r["id"] for r in read_index(out)] == sorted(res.present)
    assert [f[0] for f in read_failures(out / "failures.csv")] == ["UyCw7pCgYg8_000055"]
    anns = read_annotations(out / "annotations.json")
    assert len(anns) == 5 and anns["gg6yoeBoYxg_000000"].category == "children shouting"
    assert json.loads((out / "annotations.json").read_text())["classes"] == sorted(e["class"] for e in ENTRIES)
    # a second run without videos counts what is prepared, prepares nothing
    again = import_vggss(js, out)
    assert again.present == res.present and again.prepared_now == 0 and again.missing == res.missing
    assert [f[0] for f in again.failed] == ["UyCw7pCgYg8_000055"]
    # the command line: same counts printed
    rc = main(["data", "vggss", "--json", str(js), "--out", str(out), "--videos", str(videos), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "2 of 5 listed clips present" in text and "2 missing" in text and "1 video(s) in the folder" in text


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "vggss.json", [ENTRIES[0], {"file": "abc_1", "class": "x", "bbox": [[0.5, 0, 0.2, 1]]}])
    rc = main(["data", "vggss", "--json", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "entry 1" in err and "'abc_1'" in err
    rc = main(["data", "vggss", "--json", str(bad), "--out", str(tmp_path / "out"), "--skip-bad"])
    assert rc == 0 and "1 malformed entry left out" in capsys.readouterr().out
    assert read_failures(tmp_path / "out" / "failures.csv")[0][0] == "abc_1"
    rc = main(["data", "vggss", "--json", str(tmp_path / "nope.json"), "--out", str(tmp_path / "out")])
    assert rc == 2 and "nope.json" in capsys.readouterr().err
    rc = main(["data", "vggss", "--json", str(bad), "--out", str(tmp_path / "out"), "--videos", str(tmp_path / "none")])
    assert rc == 2 and "--videos" in capsys.readouterr().err

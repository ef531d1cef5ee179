"""Parsing the Sound Source Localization XML files, splits, grid masks, importing the download."""
from __future__ import annotations

import json
import xml.etree.ElementTree as StdET
from pathlib import Path

import numpy as np
import pytest
import torch

from soundloc.data import AVDataset
from soundloc.data.annotations import (
    AnnotationError,
    grid_masks,
    import_annotated_set,
    make_splits,
    parse_annotation_dir,
    parse_annotation_xml,
    prepare_annotations,
)
from soundloc.data.io import write_image, write_wav
from soundloc.data.layout import read_annotations, read_failures, read_id_list, read_index
from soundloc.data.types import Annotation

BOXES = [(10, 20, 100, 120), (0, 0, 256, 128), (30, 40, 50, 60)]
TAGS = ["object", "object", "ambient"]


def lvs_style(boxes=BOXES, tags=TAGS) -> str:
    """The shape later repositories assume: root > child > bbox > (tag, xmin, ymin, xmax, ymax)."""
    parts = ["<annotation>"]
    for (x1, y1, x2, y2), t in zip(boxes, tags):
        parts.append(f"<object><bbox><type>{t}</type><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bbox></object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def positional_reader(path: Path) -> list[list[int]]:
    """A second implementation: the positional rule of later repositories (skip the first
    sub-element of each bbox, take the next four), on the standard library parser."""
    root = StdET.parse(path).getroot()
    out = []
    for child in root:
        for el in child:
            if el.tag == "bbox":
                out.append([int(c.text) for c in list(el)[1:5]])
    return out


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_lvs_style_file_matches_positional_reader(tmp_path: Path) -> None:
    p = write(tmp_path, "123.xml", lvs_style())
    ann = parse_annotation_xml(p)
    assert ann.boxes == tuple((b,) for b in BOXES)
    assert ann.tags == tuple(TAGS)
    assert ann.frame_size == 256
    assert [list(b[0]) for b in ann.boxes] == positional_reader(p)


def test_element_order_case_namespace_and_attributes_do_not_matter(tmp_path: Path) -> None:
    swapped = "<annotation>" + "".join(
        f"<annotator><bbox><YMAX>{y2}</YMAX><xmax>{x2}</xmax><Label>{t.upper()}</Label><ymin>{y1}</ymin>"
        f"<xmin>{x1}.0</xmin></bbox></annotator>"
        for (x1, y1, x2, y2), t in zip(BOXES, TAGS)
    ) + "</annotation>"
    namespaced = '<a:ann xmlns:a="urn:x">' + "".join(
        f'<a:person kind="{t}"><a:bndbox x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/></a:person>'
        for (x1, y1, x2, y2), t in zip(BOXES, TAGS)
    ) + "</a:ann>"
    xywh = "<r>" + "".join(
        f"<p><box><x>{x1}</x><y>{y1}</y><width>{x2 - x1}</width><height>{y2 - y1}</height></box><tag>{t}</tag></p>"
        for (x1, y1, x2, y2), t in zip(BOXES, TAGS)
    ) + "</r>"
    expected = parse_annotation_xml(write(tmp_path, "ref.xml", lvs_style()))
    for name, text in {"swapped.xml": swapped, "ns.xml": namespaced, "xywh.xml": xywh}.items():
        assert parse_annotation_xml(write(tmp_path, name, text)) == expected, name


def test_two_boxes_of_one_annotator_and_untagged(tmp_path: Path) -> None:
    text = ("<a><who><bbox><xmin>0</xmin><ymin>0</ymin><xmax>10</xmax><ymax>10</ymax></bbox>"
            "<bbox><xmin>20</xmin><ymin>20</ymin><xmax>30</xmax><ymax>30</ymax></bbox></who></a>")
    ann = parse_annotation_xml(write(tmp_path, "x.xml", text))
    assert ann.boxes == (((0, 0, 10, 10), (20, 20, 30, 30)),) and ann.tags == ("",)


@pytest.mark.parametrize(
    "text, match",
    [
        ("<a><o><bbox><t>object</t><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bbox></o></a>", r"missing coordinate\(s\) \['ymax'\]"),
        ("<a><o><bbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax></ymax></bbox></o></a>", "ymax is empty"),
        ("<a><o><bbox><xmin>1.5</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>", "not an integer"),
        ("<a><o><bbox><xmin>one</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>", "not a number"),
        ("<a><o><bbox><xmin>1</xmin><ymin>2</ymin><xmax>300</xmax><ymax>4</ymax></bbox></o></a>", "outside the 256"),
        ("<a><o><bbox><xmin>9</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>", "xmax < xmin"),
        ("<a><o><bbox><xmin>1</xmin><x1>1</x1><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>", "given twice"),
        ("<a><o><t>object</t><bbox><t>ambient</t><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>", "conflicting tags"),
        ("<a><o><name>dog</name></o></a>", "no bbox element"),
        ("<a><o><bbox><xmin>1</xmin>", "malformed XML"),
    ],
)
def test_bad_files_fail_loudly_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    p = write(tmp_path, "bad_777.xml", text)
    with pytest.raises(AnnotationError, match=match) as info:
        parse_annotation_xml(p)
    assert "bad_777.xml" in str(info.value)


def test_entity_expansion_and_external_entities_are_refused(tmp_path: Path) -> None:
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
              '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
              "<a><o><bbox><t>&lol3;</t><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>")
    external = ('<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY ext SYSTEM "file:///etc/passwd">]>\n'
                "<a><o><bbox><t>&ext;</t><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>")
    for name, text in {"laughs.xml": laughs, "external.xml": external}.items():
        with pytest.raises(AnnotationError, match=f"{name}: refused unsafe XML"):
            parse_annotation_xml(write(tmp_path, name, text))


def test_parse_dir_raise_or_record(tmp_path: Path) -> None:
    write(tmp_path, "1.xml", lvs_style())
    write(tmp_path, "2.xml", "<a><o/></a>")
    with pytest.raises(AnnotationError, match="2.xml"):
        parse_annotation_dir(tmp_path, progress=False)
    rep = parse_annotation_dir(tmp_path, on_error="record", progress=False)
    assert list(rep.annotations) == ["1"] and rep.failed[0][0] == "2"
    assert rep.annotator_counts() == {3: 1}


def test_make_splits_pool_is_everything_but_both_test_lists() -> None:
    annotated = [f"{i}" for i in range(10)]
    s = make_splits(annotated, test_ids=["1", "2", "3", "404"], test249_ids=["1", "2", "7"])
    assert s.test == ["1", "2", "3"] and s.test249 == ["1", "2", "7"]
    assert s.train == ["0", "4", "5", "6", "8", "9"]
    assert s.missing_test == ["404"]


def test_grid_masks_by_hand() -> None:
    ann = Annotation(boxes=(((0, 0, 128, 128),), ((0, 0, 128, 128),), ((128, 128, 256, 256),)), tags=("object",) * 3)
    col = Annotation(boxes=(((0, 0, 64, 256),),))
    g = grid_masks({"a": ann, "b": col}, 2)
    assert list(g["ids"]) == ["a", "b"] and g["n_annotators"].tolist() == [3, 1]
    np.testing.assert_allclose(g["per_annotator"][0, 0], [[1, 0], [0, 0]])
    np.testing.assert_allclose(g["per_annotator"][0, 2], [[0, 0], [0, 1]])
    np.testing.assert_allclose(g["per_annotator"][1, 0], [[0.5, 0], [0.5, 0]])  # half of each left cell
    assert g["per_annotator"][1, 1:].sum() == 0
    # consensus min(Σ b_j / 2, 1): top-left 1, bottom-right 0.5 → normalised 2/3, 1/3
    np.testing.assert_allclose(g["consensus"][0], [[2 / 3, 0], [0, 1 / 3]], rtol=1e-6)
    g4 = grid_masks({"b": col}, 4)
    np.testing.assert_allclose(g4["per_annotator"][0, 0], np.tile([0.25, 0, 0, 0], (4, 1)))


def test_prepare_annotations_writes_json_splits_and_masks(tmp_path: Path) -> None:
    xml = tmp_path / "Annotations"
    xml.mkdir()
    for i in range(6):
        write(xml, f"{1000 + i}.xml", lvs_style())
    (tmp_path / "test250.txt").write_text("1000\n1001.jpg\n")
    (tmp_path / "test249.csv").write_text("file,x\n1000,a\n1005,b\n")
    out = tmp_path / "out" / "annotations.json"
    report, splits = prepare_annotations(xml, out, tmp_path / "test250.txt", tmp_path / "test249.csv", grid=4, progress=False)
    anns = read_annotations(out)
    assert sorted(anns) == [str(1000 + i) for i in range(6)]
    assert anns["1003"] == parse_annotation_xml(xml / "1003.xml")
    assert read_id_list(out.parent / "splits/test.txt") == ["1000", "1001"]
    assert read_id_list(out.parent / "splits/test249.txt") == ["1000", "1005"]
    assert read_id_list(out.parent / "splits/train.txt") == ["1002", "1003", "1004"]
    npz = np.load(out.parent / "grid_masks_4x4.npz")
    assert npz["per_annotator"].shape == (6, 3, 4, 4)


def make_download(tmp_path: Path) -> Path:
    """A miniature of the downloaded set: Annotations/ and Data/<0-9>/ with one stereo WAV,
    one XML without data and one pair without XML."""
    src = tmp_path / "SoundLocalization"
    (src / "Annotations").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n, item in enumerate(["11", "22", "33", "44", "55"]):
        sub = src / "Data" / str(n % 2)
        sub.mkdir(parents=True, exist_ok=True)
        write_image(sub / f"{item}.jpg", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
        if item == "44":
            import soundfile as sf

            sf.write(sub / f"{item}.wav", np.zeros((22050, 2), np.float32), 22050, subtype="PCM_16")
        else:
            write_wav(sub / f"{item}.wav", rng.uniform(-0.5, 0.5, 22050 * 2).astype(np.float32))
        if item != "55":
            boxes = [(0, 0, 128, 128), (0, 0, 128, 128), (128, 128, 256, 256)]
            write(src / "Annotations", f"{item}.xml", lvs_style(boxes))
    write(src / "Annotations", "66.xml", lvs_style())
    return src


def test_import_annotated_set_reads_download_as_it_comes(tmp_path: Path) -> None:
    src = make_download(tmp_path)
    (tmp_path / "test.txt").write_text("11\n66\n")
    out = tmp_path / "prepared"
    rep = import_annotated_set(src, out, test_list=tmp_path / "test.txt", grid=2, progress=False)
    assert rep.ids == ["11", "22", "33", "55"]
    assert rep.annotated == 3 and rep.unannotated == ["55"]
    fails = dict(read_failures(out / "failures.csv"))
    assert set(fails) == {"44", "66"}
    assert "2 channel" in fails["44"] and "44.wav" in fails["44"]
    assert "no frame or audio" in fails["66"]
    assert [r["id"] for r in read_index(out)] == ["11", "22", "33", "55"]
    assert read_id_list(out / "splits/test.txt") == ["11"]
    assert read_id_list(out / "splits/train.txt") == ["22", "33"]
    assert rep.splits is not None and rep.splits.missing_test == ["66"]
    assert (out / "frames/22.jpg").read_bytes() == (src / "Data/1/22.jpg").read_bytes()
    doc = json.loads((out / "annotations.json").read_text())
    assert doc["frame_size"] == 256 and sorted(doc["items"]) == ["11", "22", "33"]
    # the prepared folder loads: consensus ground truth on a 2×2 grid is (2/3, 0; 0, 1/3)
    ds = AVDataset(out, ids="train", image_size=64, grid=2, clip_seconds=1.0, annotator="consensus")
    s = ds[0]
    assert s.id == "22" and s.image.shape == (3, 64, 64) and s.waveform.shape == (22050,)
    torch.testing.assert_close(s.gt_attention, torch.tensor([[2 / 3, 0.0], [0.0, 1 / 3]]))
    # a second import is a no-op on the files (same sizes are not copied again)
    mtime = (out / "audio/22.wav").stat().st_mtime_ns
    import_annotated_set(src, out, test_list=tmp_path / "test.txt", progress=False)
    assert (out / "audio/22.wav").stat().st_mtime_ns == mtime


def test_import_symlink_and_missing_folders(tmp_path: Path) -> None:
    src = make_download(tmp_path)
    out = tmp_path / "linked"
    import_annotated_set(src, out, link="symlink", progress=False)
    assert (out / "audio/11.wav").is_symlink()
    with pytest.raises(FileNotFoundError, match="Annotations"):
        import_annotated_set(tmp_path / "nothing", out, progress=False)


def test_annotations_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundloc.cli import main

    src = make_download(tmp_path)
    (tmp_path / "t.txt").write_text("22\n")
    out_json = tmp_path / "a" / "annotations.json"
    assert main(["data", "annotations", "--xml", str(src / "Annotations"), "--out", str(out_json),
                 "--test-list", str(tmp_path / "t.txt"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "5 annotated pairs" in text and "supervision pool (train): 4 ids" in text
    assert main(["data", "annotations", "--dataset", str(src), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    assert "3 annotated" in capsys.readouterr().out
    assert main(["data", "annotations", "--xml", str(src / "Annotations"), "--out", str(tmp_path / "dir")]) == 2


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundloc.cli import main

    write(tmp_path, "9.xml", "<a><o><bbox><xmin>1</xmin></bbox></o></a>")
    assert main(["data", "annotations", "--xml", str(tmp_path), "--out", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "9.xml: box 0: missing coordinate" in err and "Traceback" not in err

"""Tests of ``soundloc evaluate``: files in, table out, JSON equal to the library's numbers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundloc.cli import main
from soundloc.data.layout import write_annotations, write_id_list
from soundloc.data.types import Annotation
from soundloc.metrics import evaluate

ANNS = {
    # two annotators on the left half, one on the right (256 frame -> 224: 128 -> 112)
    "left": Annotation(boxes=(((0, 0, 128, 256),), ((0, 0, 128, 256),), ((128, 0, 256, 256),)), tags=("object",) * 3),
    "centre": Annotation(boxes=(((64, 64, 192, 192),), ((60, 70, 200, 190),), ((70, 60, 190, 200),)), tags=("object",) * 3),
    "other": Annotation(boxes=(((0, 0, 20, 20),),), tags=("ambient",)),
}


def _step() -> np.ndarray:
    # 20x20 step, left 10 columns high: keeps columns 0..110 of 224 (see test_metrics) ->
    # against "left" (g = 1 on columns 0..111, 0.5 on 112..223): Σ_A g = 111*224,
    # Σ g = 112*224 + 0.5*112*224, |A \ G| = 0 -> 111 / 168
    h = np.zeros((20, 20), dtype=np.float32)
    h[:, :10] = 1.0
    return h


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    write_annotations(tmp_path / "annotations.json", ANNS)
    gen = np.random.default_rng(0)
    maps = {"left": _step(), "centre": gen.random((20, 20)).astype(np.float32)}
    np.savez(tmp_path / "maps.npz", **maps)
    torch.save({k: torch.from_numpy(v) for k, v in maps.items()}, tmp_path / "maps.pt")
    return {"ann": tmp_path / "annotations.json", "npz": tmp_path / "maps.npz", "pt": tmp_path / "maps.pt", "dir": tmp_path}


def test_cli_prints_table_and_writes_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / "res" / "scores.json"
    rc = main(["evaluate", "--heatmaps", str(files["npz"]), "--annotations", str(files["ann"]),
               "--random-repeats", "2", "--seed", "3", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for word in ("model", "whole image [baseline]", "centre prior [baseline]", "random [baseline]", "±", "annotator 1"):
        assert word in text
    doc = json.loads(out.read_text())
    assert doc["ids"] == ["left", "centre"] and doc["n"] == 2
    assert doc["ciou"][0] == pytest.approx(111 / 168, abs=1e-12)
    # the same numbers as the library called directly
    with np.load(files["npz"]) as d:
        maps = {k: d[k] for k in d.files}
    ref = evaluate(maps, ANNS, seed=3, random_repeats=2)
    assert doc["ciou"] == ref.ciou.tolist()
    assert doc["auc"] == ref.auc and doc["success"] == ref.success
    assert doc["baselines"]["random"]["auc"] == ref.baselines["random"].auc
    assert doc["protocol"]["name"] == "lvs" and doc["inputs"]["seed"] == 3
    assert not list(out.parent.glob("*.part*"))  # written atomically, no leftovers


def test_cli_pt_file_ids_and_threshold(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ids = write_id_list(files["dir"] / "ids.txt", ["left"])
    out = files["dir"] / "s.json"
    rc = main(["evaluate", "--heatmaps", str(files["pt"]), "--annotations", str(files["ann"]), "--ids", str(ids),
               "--threshold", "0.5", "--no-baselines", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    # τ = 0.5 on the normalised step keeps columns with value > 0.5: 0..111 (column 111 is
    # 0.5446, column 112 is 0.4554): Σ_A g = 112*224, |A \ G| = 0 -> 112 / 168 = 2/3
    assert doc["ids"] == ["left"] and doc["ciou"][0] == pytest.approx(2 / 3, abs=1e-12)
    assert doc["protocol"]["threshold"] == 0.5 and doc["protocol"]["name"] == "fixed-0.5"
    assert doc["baselines"] == {}


def test_cli_errors_name_the_problem(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ids = write_id_list(files["dir"] / "ids.txt", ["left", "missing1", "other"])
    rc = main(["evaluate", "--heatmaps", str(files["npz"]), "--annotations", str(files["ann"]), "--ids", str(ids)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "without heatmap" in err and "missing1" in err and "other" in err
    np.savez(files["dir"] / "extra.npz", left=_step(), unknown=_step())
    rc = main(["evaluate", "--heatmaps", str(files["dir"] / "extra.npz"), "--annotations", str(files["ann"])])
    assert rc == 2 and "without annotation" in capsys.readouterr().err
    bad = files["dir"] / "broken.npz"
    bad.write_bytes(b"not a zip file")
    rc = main(["evaluate", "--heatmaps", str(bad), "--annotations", str(files["ann"])])
    assert rc == 2 and "broken.npz" in capsys.readouterr().err
    nan = files["dir"] / "nan.npz"
    np.savez(nan, left=np.full((20, 20), np.nan, dtype=np.float32))
    rc = main(["evaluate", "--heatmaps", str(nan), "--annotations", str(files["ann"])])
    assert rc == 2 and "NaN" in capsys.readouterr().err
    rc = main(["evaluate", "--heatmaps", str(files["dir"] / "nope.npz"), "--annotations", str(files["ann"])])
    assert rc == 2 and "nope.npz" in capsys.readouterr().err
    np.savez(files["dir"] / "three_d.npz", left=np.zeros((1, 20, 20)))
    rc = main(["evaluate", "--heatmaps", str(files["dir"] / "three_d.npz"), "--annotations", str(files["ann"])])
    assert rc == 2 and "[H, W]" in capsys.readouterr().err


def test_random_baseline_draws_on_the_heatmaps_grid(files: dict[str, Path]) -> None:
    # maps on the cpu preset's 8x8 grid: the random baseline draws 8x8 maps unless told otherwise
    gen = np.random.default_rng(1)
    np.savez(files["dir"] / "small.npz", left=gen.random((8, 8)), centre=gen.random((8, 8)))
    out = files["dir"] / "small.json"
    args = ["evaluate", "--heatmaps", str(files["dir"] / "small.npz"), "--annotations", str(files["ann"]),
            "--random-repeats", "3", "--json", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["inputs"]["random_grid"] == [8, 8]
    with np.load(files["dir"] / "small.npz") as d:
        maps = {k: d[k] for k in d.files}
    assert doc["baselines"]["random"]["auc"] == evaluate(maps, ANNS, random_repeats=3, random_grid=(8, 8)).baselines["random"].auc
    assert main([*args, "--random-grid", "20"]) == 0
    assert json.loads(out.read_text())["inputs"]["random_grid"] == [20, 20]
    np.savez(files["dir"] / "mixed.npz", left=gen.random((8, 8)), centre=gen.random((20, 20)))
    assert main(["evaluate", "--heatmaps", str(files["dir"] / "mixed.npz"), "--annotations", str(files["ann"])]) == 2


def test_a_device_or_json_path_it_cannot_use_is_one_line_and_writes_nothing(files: dict[str, Path],
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = ["evaluate", "--heatmaps", str(files["npz"]), "--annotations", str(files["ann"]), "--ids",
            str(write_id_list(files["dir"] / "ids.txt", ["left", "centre"]))]
    (files["dir"] / "FILE").write_text("a file, not a folder")
    before = sorted(p.name for p in files["dir"].iterdir())
    cases = [(["--device", "cuda:99"], "--device cuda:99: this machine has"),  # more GPUs than any machine has
             (["--device", "tpu"], "--device 'tpu' is not a torch device"),
             (["--json", str(files["dir"] / "FILE" / "x.json")], f"{files['dir'] / 'FILE'} is a file, not a folder"),
             (["--json", str(files["dir"])], "is a folder: give a file name")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "--device cuda: this machine has no CUDA GPU (use --device cpu)"))
    for argv, message in cases:
        assert main([*base, *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("soundloc evaluate: error: ") and message in captured.err
        assert captured.err.count("\n") == 1, captured.err
    assert sorted(p.name for p in files["dir"].iterdir()) == before
    assert (files["dir"] / "FILE").read_text() == "a file, not a folder"

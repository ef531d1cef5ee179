"""AVDataset, the prepared layout and the file readers, on small folders made here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundloc.data import AVDataset, annotation_attention, collate
from soundloc.data.io import fit_length, read_image, read_wav, write_image, write_wav
from soundloc.data.layout import read_index, write_annotations, write_id_list, write_index
from soundloc.data.types import Annotation

SR = 22_050


def make_root(tmp: Path) -> Path:
    """Three pairs: a (labelled, two annotators), b (labelled), c (unlabelled); extras label + mask."""
    rng = np.random.default_rng(0)
    rows = []
    for n, key in enumerate("abc"):
        write_image(tmp / f"frames/{key}.jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        write_wav(tmp / f"audio/{key}.wav", np.linspace(-0.5, 0.5, SR // 2 + n * 100, dtype=np.float32))
        mask = np.zeros((48, 64, 3), np.uint8)
        mask[:, :32] = 255
        write_image(tmp / f"masks/{key}.png", mask)
        rows.append({"id": key, "frame": f"frames/{key}.jpg", "audio": f"audio/{key}.wav",
                     "label": str(n), "context_mask": f"masks/{key}.png" if key != "c" else ""})
    write_index(tmp, rows)
    write_annotations(tmp / "annotations.json", {
        "a": Annotation(boxes=(((0, 0, 192, 128),), ((128, 128, 256, 256),)), tags=("object", "ambient")),
        "b": Annotation(boxes=(((0, 0, 96, 64),),)),
    })
    write_id_list(tmp / "splits/train.txt", ["c", "a"])
    return tmp


def test_shapes_and_extras(tmp_path: Path) -> None:
    ds = AVDataset(make_root(tmp_path), image_size=32, grid=2, clip_seconds=1.0)
    assert len(ds) == 3 and ds.ids == ["a", "b", "c"]
    s = ds[0]
    assert s.image.shape == (3, 32, 32) and s.image.dtype == torch.float32
    assert 0 <= float(s.image.min()) and float(s.image.max()) <= 1
    assert s.waveform.shape == (SR,) and s.gt_attention.shape == (2, 2)
    assert s.extras["label"].item() == 0 and s.extras["context_mask"].shape == (32, 32)
    assert torch.equal(s.extras["context_mask"][:, :16], torch.ones(32, 16))
    assert "context_mask" not in ds[2].extras  # empty cell: no field
    batch = collate([ds[i] for i in range(3)])
    assert batch.has_gt.tolist() == [True, True, False]
    assert "context_mask" not in batch.extras and batch.extras["label"].tolist() == [0, 1, 2]
    whole = AVDataset(tmp_path, clip_seconds=None)
    assert whole[1].waveform.shape == (SR // 2 + 100,)
    with pytest.raises(IndexError):
        ds[3]


def test_grid_ground_truth_by_hand(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    # a, annotator 0: box x 0..192, y 0..128 in 256 px; 2×2 cells of 128 px: top-left covered
    # fully, top-right half → (1, 0.5; 0, 0) / 1.5
    ds0 = AVDataset(root, image_size=32, grid=2, annotator=0)
    torch.testing.assert_close(ds0[0].gt_attention, torch.tensor([[2 / 3, 1 / 3], [0.0, 0.0]]))
    ds1 = AVDataset(root, image_size=32, grid=2, annotator=1)
    torch.testing.assert_close(ds1[0].gt_attention, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    # b: box 96×64 on a 4×4 grid of 64-px cells: cell (0,0) full, (0,1) half
    ds4 = AVDataset(root, image_size=32, grid=4, annotator=0)
    expected = torch.zeros(4, 4)
    expected[0, 0], expected[0, 1] = 2 / 3, 1 / 3
    torch.testing.assert_close(ds4[1].gt_attention, expected)
    # consensus of a: min((b0 + b1)/2, 1) = 0.5 on both boxes' cells → (0.5, 0.25; 0, 0.5) / 1.25
    dsc = AVDataset(root, image_size=32, grid=2, annotator="consensus")
    torch.testing.assert_close(dsc[0].gt_attention, torch.tensor([[0.4, 0.2], [0.0, 0.4]]))
    assert AVDataset(root, image_size=32, grid=None)[0].gt_attention is None


def test_random_annotator_is_seeded_per_epoch(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    first = torch.tensor([[2 / 3, 1 / 3], [0.0, 0.0]])
    picks = []
    for epoch in range(20):
        ds = AVDataset(root, image_size=16, grid=2, seed=7)
        ds.set_epoch(epoch)
        g = ds[0].gt_attention
        again = AVDataset(root, image_size=16, grid=2, seed=7)
        again.set_epoch(epoch)
        assert torch.equal(g, again[0].gt_attention)  # same seed and epoch → same draw
        picks.append(0 if torch.allclose(g, first) else 1)
    assert set(picks) == {0, 1}
    rng = np.random.default_rng(0)
    ann = Annotation(boxes=(((0, 0, 10, 10),),))
    assert annotation_attention(ann, (2, 2), "random", rng).shape == (2, 2)
    with pytest.raises(ValueError, match="annotator"):
        annotation_attention(ann, (2, 2), annotator=3)


def test_labelled_subsets_and_split_names(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    only_b = AVDataset(root, image_size=16, grid=2, labelled=["b", "c"])
    assert [only_b[i].gt_attention is not None for i in range(3)] == [False, True, False]
    assert only_b[0].annotation is not None  # the boxes stay; only the supervision is withheld
    unsup = AVDataset(root, image_size=16, grid=2, labelled=False)
    assert all(unsup[i].gt_attention is None for i in range(3))
    assert AVDataset(root, ids="train").ids == ["c", "a"]
    (tmp_path / "mine.txt").write_text("b\n# comment\na.jpg\n")
    assert AVDataset(root, ids=tmp_path / "mine.txt").ids == ["b", "a"]
    assert AVDataset(root, ids=["b"]).ids == ["b"]
    with pytest.raises(KeyError, match="index.csv"):
        AVDataset(root, ids=["zzz"])
    with pytest.raises(FileNotFoundError, match="splits/test.txt"):
        AVDataset(root, ids="test")


def test_fit_length_by_hand() -> None:
    w = torch.tensor([1.0, 2.0, 3.0])
    assert fit_length(w, 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert fit_length(w, 5, mode="zeros").tolist() == [1, 2, 3, 0, 0]
    assert fit_length(torch.arange(10.0), 4, offset=5).tolist() == [5, 6, 7, 8]
    assert fit_length(torch.arange(10.0), 4, offset=9).tolist() == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="mode"):
        fit_length(w, 5, mode="mirror")


def test_bad_files_raise_errors_naming_the_file(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    ds = AVDataset(root, image_size=16, clip_seconds=0.1)
    (root / "frames/a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="frames/a.jpg"):
        ds[0]
    (root / "frames/a.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(ValueError, match="frames/a.jpg: cannot read image"):
        ds[0]
    write_image(root / "frames/a.jpg", np.zeros((8, 8, 3), np.uint8))
    sf.write(root / "audio/a.wav", np.zeros((SR, 2), np.float32), SR, subtype="PCM_16")
    with pytest.raises(ValueError, match="audio/a.wav: 2 channels"):
        ds[0]
    assert read_wav(root / "audio/a.wav", mono="mix").shape == (SR,)
    sf.write(root / "audio/a.wav", np.zeros(SR, np.float32), 44_100, subtype="PCM_16")
    with pytest.raises(ValueError, match="audio/a.wav: sample rate 44100 Hz, expected 22050"):
        ds[0]
    sf.write(root / "audio/a.wav", np.zeros(0, np.float32), SR, subtype="PCM_16")
    with pytest.raises(ValueError, match="audio/a.wav: audio has no samples"):
        ds[0]
    (root / "audio/a.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ValueError, match="audio/a.wav: cannot read audio"):
        ds[0]
    (root / "audio/a.wav").unlink()
    with pytest.raises(FileNotFoundError, match="audio/a.wav"):
        ds[0]
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_image(tmp_path / "nothing.png")


def test_layout_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index.csv"):
        AVDataset(tmp_path)
    (tmp_path / "index.csv").write_text("id,frame\nx,frames/x.jpg\n")
    with pytest.raises(ValueError, match=r"index.csv: missing column\(s\) \['audio'\]"):
        read_index(tmp_path)
    (tmp_path / "index.csv").write_text("id,frame,audio\nx,f,a\nx,f,a\n")
    with pytest.raises(ValueError, match="line 3: id 'x' appears twice"):
        read_index(tmp_path)
    (tmp_path / "index.csv").write_text("id,frame,audio\nx,f,a\n")
    (tmp_path / "annotations.json").write_text(json.dumps({"items": {"x": {"annotators": [{"boxes": [[1, 2, 3]]}]}}}))
    with pytest.raises(ValueError, match="annotations.json: item 'x' is malformed"):
        AVDataset(tmp_path)
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(ValueError, match="annotations.json: not valid JSON"):
        AVDataset(tmp_path)

"""The packed cache: identical samples, checksums, rebuilds, atomic builds, errors naming files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundloc.data import AVDataset, collate
from soundloc.data.cache import (
    CacheConfig,
    CacheError,
    PackedArrays,
    PackedDataset,
    build_cache,
    default_cache_dir,
    ensure_cache,
    stale_reason,
    verify_cache,
)
from soundloc.data.io import write_image, write_wav
from soundloc.data.layout import write_annotations, write_id_list, write_index
from soundloc.data.types import Annotation

SR = 22_050


def make_root(tmp: Path, n: int = 5) -> Path:
    """A prepared folder: JPEG and PNG frames of odd sizes, WAVs shorter and longer than 1 s."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        ext = ".png" if i % 2 else ".jpg"
        write_image(tmp / f"frames/{i}{ext}", rng.integers(0, 256, (30 + i, 41, 3), dtype=np.uint8))
        write_wav(tmp / f"audio/{i}.wav", rng.uniform(-0.9, 0.9, int(SR * (0.5 + 0.3 * i))).astype(np.float32))
        rows.append({"id": str(i), "frame": f"frames/{i}{ext}", "audio": f"audio/{i}.wav", "label": str(i % 3)})
    write_index(tmp, rows)
    write_annotations(tmp / "annotations.json", {"1": Annotation(boxes=(((0, 0, 128, 256),), ((0, 0, 256, 256),)))})
    return tmp


def assert_same_samples(a: AVDataset, b: AVDataset) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.id == y.id
        assert torch.equal(x.image, y.image), f"image {x.id}"  # exact: max |Δ| = 0
        assert torch.equal(x.waveform, y.waveform), f"waveform {x.id}"
        assert (x.gt_attention is None) == (y.gt_attention is None)
        if x.gt_attention is not None:
            assert torch.equal(x.gt_attention, y.gt_attention)
        assert x.extras.keys() == y.extras.keys() and all(torch.equal(x.extras[k], y.extras[k]) for k in x.extras)


@pytest.mark.parametrize("offset, seconds, pad", [("start", 1.0, "repeat"), ("center", 3.0, "zeros"), ("random", 0.6, "repeat")])
def test_packed_equals_unpacked(tmp_path: Path, offset: str, seconds: float, pad: str) -> None:
    root = make_root(tmp_path)
    kw = dict(image_size=24, grid=3, clip_seconds=seconds, clip_offset=offset, pad_mode=pad, seed=5)
    cache = build_cache(root, cfg=CacheConfig(image_size=24, clip_seconds=2.0), progress=False)
    plain = AVDataset(root, **kw)
    packed = PackedDataset(root, cache=cache, **kw)
    assert_same_samples(plain, packed)
    packed.set_epoch(3)
    plain.set_epoch(3)
    assert_same_samples(plain, packed)
    batch = collate([packed[i] for i in range(len(packed))])
    assert batch.image.shape == (5, 3, 24, 24) and batch.waveform.shape == (5, int(round(seconds * SR)))


def test_cache_arrays_layout(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    cache = build_cache(root, cfg=CacheConfig(image_size=16, clip_seconds=1.0), progress=False)
    assert cache == default_cache_dir(root, CacheConfig(image_size=16, clip_seconds=1.0))
    arr = PackedArrays(cache)
    assert arr.frames.dtype == np.uint8 and arr.frames.shape == (5, 16, 16, 3)
    assert arr.audio.dtype == np.int16 and arr.audio.shape == (5, SR)
    lengths = [int(SR * (0.5 + 0.3 * i)) for i in range(5)]
    assert arr.file_lengths.tolist() == lengths
    assert arr.lengths.tolist() == [min(SR, n) for n in lengths]
    # the stored PCM is the file's own 16-bit samples; the padding is zero
    pcm, _ = sf.read(root / "audio/0.wav", dtype="int16")
    assert np.array_equal(arr.audio[0, : len(pcm)], pcm) and not arr.audio[0, len(pcm):].any()
    assert isinstance(arr.frames, np.memmap)


def test_default_cache_via_packed_dataset_and_reuse(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    ds = PackedDataset(root, image_size=20, clip_seconds=2.0, progress=False)
    cfg = CacheConfig(image_size=20, clip_seconds=2.0)
    cache = default_cache_dir(root, cfg)
    assert (cache / "index.json").is_file()
    assert_same_samples(AVDataset(root, image_size=20, clip_seconds=2.0), ds)
    stamp = (cache / "index.json").stat().st_mtime_ns
    assert ensure_cache(root, cfg=cfg, progress=False) == (cache, False)
    assert (cache / "index.json").stat().st_mtime_ns == stamp


def test_rebuilt_when_inputs_or_parameters_change(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    cfg = CacheConfig(image_size=16, clip_seconds=1.0)
    cache, rebuilt = ensure_cache(root, cfg=cfg, progress=False)
    assert rebuilt and stale_reason(root, cache, cfg) is None
    # a changed source file: the fingerprint differs, the cache is rebuilt with the new audio
    new = np.full(SR // 2, 0.25, dtype=np.float32)
    write_wav(root / "audio/2.wav", new)
    os.utime(root / "audio/2.wav", ns=(1, 1))  # also a different mtime, whatever the clock
    assert "source files of '2' changed" in stale_reason(root, cache, cfg)
    cache2, rebuilt = ensure_cache(root, cfg=cfg, progress=False)
    assert rebuilt and cache2 == cache
    assert np.all(PackedArrays(cache).audio[2, : SR // 2] == 8192)  # 0.25 · 32768
    # other parameters, other id list
    assert "parameters changed" in stale_reason(root, cache, CacheConfig(image_size=16, clip_seconds=1.0, sample_rate=16000))
    assert stale_reason(root, cache, cfg, ids=["0", "1"]) == "the id list changed"
    # no temporary or old folders left next to the cache
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]


def test_verify_detects_corruption(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    cfg = CacheConfig(image_size=16, clip_seconds=1.0)
    cache = build_cache(root, cfg=cfg, progress=False)
    verify_cache(cache)
    with open(cache / "frames.npy", "r+b") as fh:
        fh.seek(-10, os.SEEK_END)
        b = fh.read(1)
        fh.seek(-10, os.SEEK_END)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(CacheError, match="frames.npy: checksum mismatch"):
        verify_cache(cache)
    _, rebuilt = ensure_cache(root, cfg=cfg, verify=True, progress=False)
    assert rebuilt
    verify_cache(cache)


def test_failed_build_names_file_and_keeps_old_cache(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    cfg = CacheConfig(image_size=16, clip_seconds=1.0)
    cache = build_cache(root, cfg=cfg, progress=False)
    before = (cache / "audio.npy").read_bytes()
    (root / "frames/3.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"frames/3.png: cannot read image"):
        build_cache(root, cfg=cfg, progress=False)
    assert (cache / "audio.npy").read_bytes() == before
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]
    write_image(root / "frames/3.png", np.zeros((8, 8, 3), np.uint8))
    sf.write(root / "audio/4.wav", np.zeros((100, 2), np.float32), SR, subtype="PCM_16")
    with pytest.raises(ValueError, match=r"audio/4.wav: 2 channels"):
        build_cache(root, cfg=cfg, progress=False)
    sf.write(root / "audio/4.wav", np.zeros(100, np.float32), SR, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"audio/4.wav: FLOAT audio"):
        build_cache(root, cfg=cfg, progress=False)


def test_packed_dataset_refuses_mismatched_cache(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    cache = build_cache(root, cfg=CacheConfig(image_size=16, clip_seconds=1.0), ids=["0", "1"], progress=False)
    with pytest.raises(CacheError, match="frames are 16 px"):
        PackedDataset(root, cache=cache, image_size=24, clip_seconds=1.0)
    with pytest.raises(CacheError, match=r"id\(s\) not in the cache"):
        PackedDataset(root, cache=cache, image_size=16, clip_seconds=1.0)
    ds = PackedDataset(root, ids=["1", "0"], cache=cache, image_size=16, clip_seconds=1.0)
    assert ds[0].id == "1"
    # file 1 (0.8 s) fits, but a 2 s cache request over the 1 s cache with a cut file does not
    cache_all = build_cache(root, cfg=CacheConfig(image_size=16, clip_seconds=1.0), progress=False)
    with pytest.raises(CacheError, match="files are longer"):
        PackedDataset(root, cache=cache_all, image_size=16, clip_seconds=1.0, clip_offset="center")
    with pytest.raises(CacheError, match="no cache index"):
        PackedArrays(tmp_path / "nowhere")


def test_cache_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundloc.cli import main

    root = make_root(tmp_path)
    args = ["data", "cache", "--root", str(root), "--image-size", "16", "--seconds", "1", "--no-progress"]
    assert main(args) == 0 and "built:" in capsys.readouterr().out
    assert main([*args, "--verify"]) == 0 and "up to date:" in capsys.readouterr().out
    write_id_list(root / "splits/few.txt", ["3", "1"])
    assert main([*args, "--ids", "few"]) == 0 and "built:" in capsys.readouterr().out
    assert PackedArrays(default_cache_dir(root, CacheConfig(image_size=16, clip_seconds=1.0))).ids == ["3", "1"]


def test_pickling_reopens_the_memory_maps(tmp_path: Path) -> None:
    import pickle

    root = make_root(tmp_path)
    cache = build_cache(root, cfg=CacheConfig(image_size=16, clip_seconds=1.0), progress=False)
    ds = PackedDataset(root, cache=cache, image_size=16, clip_seconds=1.0)
    blob = pickle.dumps(ds.packed)
    assert len(blob) < 2_000  # the folder, not the arrays
    clone = pickle.loads(pickle.dumps(ds))
    assert isinstance(clone.packed.frames, np.memmap)
    assert torch.equal(clone[2].image, ds[2].image) and torch.equal(clone[2].waveform, ds[2].waveform)


def test_synthetic_world_folder_packs_identically(tmp_path: Path) -> None:
    """The synthetic world is written in the same layout; its packed cache gives the same samples."""
    from soundloc.data.synthetic import SyntheticWorld, write_world

    root = write_world(SyntheticWorld(seed=3), tmp_path / "world", n=6, n_test=2, n_labelled=2, progress=False)
    kw = dict(ids="train", image_size=32, grid=4, clip_seconds=1.0, seed=1)
    plain = AVDataset(root, **kw)
    packed = PackedDataset(root, progress=False, **kw)
    assert_same_samples(plain, packed)
    assert packed[0].extras["context_mask"].shape == (32, 32)

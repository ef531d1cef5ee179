"""A packed cache of a prepared folder for training speed, and :class:`PackedDataset`.

Decoding 144k JPEGs and WAVs every epoch costs more than the model's forward pass on the
paper's frozen-backbone setting (Senocak et al., 2018, Sec. 4: VGG16 and SoundNet features are
fixed, only the attention and FC layers train). The cache decodes each pair once:

::

    ROOT/cache/packed_<S>px_<T>s/
      frames.npy        uint8 [N, S, S, 3]  frames already resized to the training size S
      audio.npy         int16 [N, L]        the first L = T·22,050 samples (zero-padded)
      lengths.npy       int64 [N]           samples stored per row (≤ L)
      file_lengths.npy  int64 [N]           samples in the source WAV
      index.json        ids, parameters, a fingerprint of every source file, array checksums

Frames are decoded and resized by :func:`soundloc.data.io.read_image` exactly as
:class:`~soundloc.data.dataset.AVDataset` does, then stored as uint8; since ``read_image``
returns ``uint8 / 255`` the round trip is exact. Audio is the WAV's own 16-bit PCM. So a
:class:`PackedDataset` yields *bit-identical* samples to an :class:`AVDataset` on the same
folder (the tests check equality, not closeness).

The cache is built in a temporary folder and renamed into place, verified by checksums
(sha256 of each array; size + modification time of each source file, optionally sha256 of
their contents), and rebuilt by :func:`ensure_cache` when the sources, the id list or the
parameters change. The arrays are opened as read-only memory maps: N workers share one copy in
the page cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundloc.data import io
from soundloc.data.dataset import AVDataset
from soundloc.data.layout import read_index
from soundloc.data.types import SAMPLE_RATE
from soundloc.utils.files import read_json, write_json

CACHE_VERSION = 1
INDEX_NAME = "index.json"
ARRAYS = ("frames.npy", "audio.npy", "lengths.npy", "file_lengths.npy")


class CacheError(ValueError):
    """A cache is missing, stale, corrupt or does not fit the dataset (the message names the file)."""


@dataclass(frozen=True)
class CacheConfig:
    """Parameters of a packed cache.

    Attributes:
        image_size: side S of the stored frames (the model's input size).
        clip_seconds: audio stored per pair (from the start).
        sample_rate: the prepared audio's rate.
        hash_sources: also fingerprint every source file by the sha256 of its contents (slow;
            by default size + modification time are compared).
        hash_arrays: store sha256 checksums of the arrays (checked by :func:`verify_cache`).
    """

    image_size: int = 224
    clip_seconds: float = 20.0
    sample_rate: int = SAMPLE_RATE
    hash_sources: bool = False
    hash_arrays: bool = True

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    def params(self) -> dict[str, Any]:
        """What the stored arrays depend on (a change means a rebuild)."""
        return {"image_size": self.image_size, "clip_samples": self.clip_samples,
                "sample_rate": self.sample_rate, "hash_sources": self.hash_sources}


def default_cache_dir(root: str | os.PathLike[str], cfg: CacheConfig) -> Path:
    """``ROOT/cache/packed_<S>px_<T>s``."""
    return Path(root) / "cache" / f"packed_{cfg.image_size}px_{cfg.clip_seconds:g}s"


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fingerprint(path: Path, contents: bool) -> list[Any]:
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: file not found") from exc
    return [st.st_size, st.st_mtime_ns, sha256_file(path) if contents else None]


def _source_table(root: Path, rows: Sequence[dict[str, str]], contents: bool) -> dict[str, list[Any]]:
    return {
        r["id"]: [r["frame"], *_fingerprint(root / r["frame"], contents), r["audio"], *_fingerprint(root / r["audio"], contents)]
        for r in rows
    }


def _select_rows(root: Path, ids: Sequence[str] | None) -> list[dict[str, str]]:
    rows = read_index(root)
    if ids is None:
        return rows
    by_id = {r["id"]: r for r in rows}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"{len(missing)} id(s) not in {root / 'index.csv'}: {missing[:5]}")
    return [by_id[i] for i in ids]


def read_pcm16(path: Path, sample_rate: int, max_samples: int) -> tuple[np.ndarray, int]:
    """The first ``max_samples`` of a mono 16-bit PCM WAV as int16, and the file's total length.

    Raises:
        FileNotFoundError, ValueError: missing, unreadable, non-PCM16, wrong-rate, multi-channel
        or empty files; the message names the file.
    """
    import soundfile as sf

    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: cannot read audio ({exc})") from exc
    if info.samplerate != sample_rate:
        raise ValueError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz")
    if info.channels != 1:
        raise ValueError(f"{path}: {info.channels} channels, expected mono")
    if info.subtype != "PCM_16":
        raise ValueError(f"{path}: {info.subtype} audio; the packed cache stores 16-bit PCM (prepared data)")
    if info.frames == 0:
        raise ValueError(f"{path}: audio has no samples")
    try:
        data, _ = sf.read(str(path), dtype="int16", frames=max_samples, always_2d=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read audio ({exc})") from exc
    return data[:, 0], int(info.frames)


def _frame_uint8(path: Path, size: int) -> np.ndarray:
    """``[S, S, 3]`` uint8, exactly the pixels ``io.read_image(path, size)`` returns ×255."""
    img = io.read_image(path, size)
    return torch.round(img.mul(255.0)).to(torch.uint8).permute(1, 2, 0).numpy()


def _write_arrays(folder: Path, root: Path, rows: list[dict[str, str]], cfg: CacheConfig, workers: int,
                  progress: bool) -> None:
    """Decode every pair into ``folder``'s arrays: frames (uint8), audio (int16), the samples
    read and each file's own length, on ``workers`` threads."""
    n, s, length = len(rows), cfg.image_size, cfg.clip_samples
    frames = np.lib.format.open_memmap(folder / "frames.npy", mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
    audio = np.lib.format.open_memmap(folder / "audio.npy", mode="w+", dtype=np.int16, shape=(n, length))
    lengths = np.zeros(n, dtype=np.int64)
    file_lengths = np.zeros(n, dtype=np.int64)

    def fill(i: int) -> None:
        frames[i] = _frame_uint8(root / rows[i]["frame"], s)
        pcm, total = read_pcm16(root / rows[i]["audio"], cfg.sample_rate, length)
        audio[i, : len(pcm)] = pcm
        lengths[i], file_lengths[i] = len(pcm), total

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in tqdm(pool.map(fill, range(n)), total=n, desc="cache", disable=not progress):
            pass
    frames.flush()
    audio.flush()
    del frames, audio
    np.save(folder / "lengths.npy", lengths)
    np.save(folder / "file_lengths.npy", file_lengths)


def build_cache(
    root: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    cfg: CacheConfig | None = None,
    ids: Sequence[str] | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Decode every pair of ``root`` (or the given ``ids``) into a packed cache; return its folder.

    Built in a temporary folder beside ``cache_dir`` and renamed into place, replacing an older
    cache only once the new one is complete.

    Raises:
        FileNotFoundError, ValueError: a source file is missing or unreadable (named).
    """
    cfg = cfg or CacheConfig()
    root = Path(root)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(root, cfg)
    rows = _select_rows(root, ids)
    if not rows:
        raise ValueError(f"{root}: no pairs to cache")
    sources = _source_table(root, rows, cfg.hash_sources)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.build-", dir=cache_dir.parent))
    try:
        _write_arrays(tmp, root, rows, cfg, workers, progress)
        arrays = {name: {"sha256": sha256_file(tmp / name) if cfg.hash_arrays else None,
                         "bytes": (tmp / name).stat().st_size} for name in ARRAYS}
        write_json(tmp / INDEX_NAME, {"version": CACHE_VERSION, "params": cfg.params(), "config": asdict(cfg),
                                      "root": str(root.resolve()), "ids": [r["id"] for r in rows], "arrays": arrays,
                                      "sources": sources})
        old = None
        if cache_dir.exists():
            old = cache_dir.parent / f".{cache_dir.name}.old-{os.getpid()}"
            os.replace(cache_dir, old)
        os.replace(tmp, cache_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cache_dir


def read_cache_index(cache_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(cache_dir) / INDEX_NAME
    try:
        doc = read_json(path, "cache index")
    except (FileNotFoundError, ValueError) as exc:
        raise CacheError(f"no cache index: {exc}") from exc
    if doc.get("version") != CACHE_VERSION:
        raise CacheError(f"{path}: cache version {doc.get('version')!r}, expected {CACHE_VERSION}")
    return doc


def stale_reason(
    root: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    cfg: CacheConfig,
    ids: Sequence[str] | None = None,
) -> str | None:
    """Why the cache at ``cache_dir`` does not match ``root`` and ``cfg`` (``None``: it is current).

    Compares the parameters, the id list, each source file's path and fingerprint, and the
    arrays' sizes (not their checksums: see :func:`verify_cache`).
    """
    root, cache_dir = Path(root), Path(cache_dir)
    try:
        doc = read_cache_index(cache_dir)
    except CacheError as exc:
        return str(exc)
    if doc.get("params") != cfg.params():
        return f"parameters changed: {doc.get('params')} -> {cfg.params()}"
    rows = _select_rows(root, ids)
    if doc.get("ids") != [r["id"] for r in rows]:
        return "the id list changed"
    try:
        current = _source_table(root, rows, cfg.hash_sources)
    except FileNotFoundError as exc:
        return str(exc)
    old = doc.get("sources", {})
    for key, fp in current.items():
        if old.get(key) != fp:
            return f"source files of {key!r} changed"
    for name, meta in doc.get("arrays", {}).items():
        p = cache_dir / name
        if not p.is_file() or p.stat().st_size != meta.get("bytes"):
            return f"{p}: missing or of the wrong size"
    return None


def verify_cache(cache_dir: str | os.PathLike[str]) -> None:
    """Recompute the arrays' sha256 and compare with the index.

    Raises:
        CacheError: a checksum differs or is missing (the message names the array file).
    """
    cache_dir = Path(cache_dir)
    doc = read_cache_index(cache_dir)
    for name in ARRAYS:
        meta = doc["arrays"].get(name, {})
        p = cache_dir / name
        if not p.is_file():
            raise CacheError(f"{p}: missing")
        if not meta.get("sha256"):
            raise CacheError(f"{p}: no checksum recorded (built with hash_arrays=False)")
        if sha256_file(p) != meta["sha256"]:
            raise CacheError(f"{p}: checksum mismatch (corrupt cache; rebuild it)")


def ensure_cache(
    root: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    cfg: CacheConfig | None = None,
    ids: Sequence[str] | None = None,
    verify: bool = False,
    workers: int = 2,
    progress: bool = True,
) -> tuple[Path, bool]:
    """Return ``(cache folder, rebuilt?)``: reuse a current cache, else build it.

    With ``verify=True`` a current cache's array checksums are also recomputed, and a cache
    that fails them is rebuilt.
    """
    cfg = cfg or CacheConfig()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(root, cfg)
    reason = stale_reason(root, cache_dir, cfg, ids)
    if reason is None and verify:
        try:
            verify_cache(cache_dir)
        except CacheError as exc:
            reason = str(exc)
    if reason is None:
        return cache_dir, False
    return build_cache(root, cache_dir, cfg, ids, workers=workers, progress=progress), True


class PackedArrays:
    """A packed cache opened as read-only memory maps."""

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(cache_dir)
        doc = read_cache_index(self.dir)
        self.params: dict[str, Any] = doc["params"]
        self.ids: list[str] = doc["ids"]
        self.row = {k: i for i, k in enumerate(self.ids)}
        arrays = {}
        for name in ARRAYS:
            p = self.dir / name
            try:
                arrays[name] = np.load(p, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CacheError(f"{p}: cannot open ({exc})") from exc
        self.frames, self.audio = arrays["frames.npy"], arrays["audio.npy"]
        self.lengths, self.file_lengths = np.asarray(arrays["lengths.npy"]), np.asarray(arrays["file_lengths.npy"])
        n, s = len(self.ids), self.params["image_size"]
        expected = {"frames.npy": (self.frames.shape, (n, s, s, 3)), "audio.npy": (self.audio.shape, (n, self.params["clip_samples"])),
                    "lengths.npy": (self.lengths.shape, (n,)), "file_lengths.npy": (self.file_lengths.shape, (n,))}
        for name, (got, want) in expected.items():
            if tuple(got) != want:
                raise CacheError(f"{self.dir / name}: shape {tuple(got)}, index says {want}")

    def __getstate__(self) -> dict[str, Any]:
        # a pickled np.memmap becomes a full in-memory copy: DataLoader workers started with
        # "spawn" would each copy the whole cache. Send the folder and reopen it instead.
        return {"dir": self.dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dir"])  # type: ignore[misc]

    def image_uint8(self, row: int) -> torch.Tensor:
        """``[3, S, S]`` uint8: the stored frame, channels first (``image`` is it ÷ 255)."""
        return torch.from_numpy(np.array(self.frames[row])).permute(2, 0, 1)

    def image(self, row: int) -> torch.Tensor:
        """``[3, S, S]`` float32 in [0, 1], as :func:`soundloc.data.io.read_image` returns it."""
        return torch.from_numpy(np.array(self.frames[row])).permute(2, 0, 1).float().div_(255.0)

    def waveform(self, row: int) -> torch.Tensor:
        """The stored samples of a row as float32 in [-1, 1) (16-bit PCM / 32768, as soundfile reads it)."""
        pcm = np.array(self.audio[row, : int(self.lengths[row])])
        return torch.from_numpy(pcm.astype(np.float32) / np.float32(32768.0))


class PackedDataset(AVDataset):
    """:class:`AVDataset` whose frames and audio come from a packed cache.

    Same arguments as :class:`AVDataset`, plus ``cache`` (a cache folder; ``None`` builds or
    reuses ``ROOT/cache/packed_<S>px_<T>s`` for all pairs of the index with
    :func:`ensure_cache`) and ``workers`` / ``progress`` for that build. Samples equal those of
    an :class:`AVDataset` with the same arguments bit for bit.

    With ``uint8_frames=True`` a sample's ``image`` is the stored uint8 frame ``[3, S, S]``
    instead of floats: a quarter of the bytes through the loader, pinned memory and the copy
    to the GPU; :meth:`soundloc.train.Trainer.prepare_batch` divides by 255 on the device (the
    same numbers). For training only: models take float images.

    Raises:
        CacheError: the cache lacks some ids, was made for another image size or sample rate,
            or holds too little audio for the requested clips.
    """

    def __init__(self, root: str | os.PathLike[str], *args: Any, cache: str | os.PathLike[str] | None = None,
                 workers: int = 2, progress: bool = True, uint8_frames: bool = False, **kwargs: Any) -> None:
        super().__init__(root, *args, **kwargs)
        self.uint8_frames = bool(uint8_frames)
        if cache is None:
            if self.clip_samples is None:
                raise CacheError("a packed cache stores fixed-length clips: pass clip_seconds or an explicit cache")
            cfg = CacheConfig(image_size=self.image_size, clip_seconds=self.clip_samples / self.sample_rate,
                              sample_rate=self.sample_rate)
            cache, _ = ensure_cache(self.root, cfg=cfg, workers=workers, progress=progress)
        self.packed = PackedArrays(cache)
        p = self.packed.params
        where = self.packed.dir / INDEX_NAME
        if p["image_size"] != self.image_size:
            raise CacheError(f"{where}: frames are {p['image_size']} px, the dataset wants {self.image_size}")
        if p["sample_rate"] != self.sample_rate:
            raise CacheError(f"{where}: audio at {p['sample_rate']} Hz, the dataset wants {self.sample_rate}")
        missing = [i for i in self.ids if i not in self.packed.row]
        if missing:
            raise CacheError(f"{where}: {len(missing)} id(s) not in the cache (rebuild it): {missing[:5]}")
        self._rows = np.array([self.packed.row[i] for i in self.ids], dtype=np.int64)
        cut = self.packed.file_lengths[self._rows] > self.packed.lengths[self._rows]
        if cut.any() and (self.clip_samples is None or self.clip_offset != "start" or self.clip_samples > p["clip_samples"]):
            raise CacheError(
                f"{where}: the cache keeps {p['clip_samples']} samples per pair and {int(cut.sum())} files are longer; "
                "that only fits clip_offset='start' with clip_seconds no longer than the cache's"
            )

    def load_image(self, index: int) -> torch.Tensor:
        row = int(self._rows[index])
        return self.packed.image_uint8(row) if self.uint8_frames else self.packed.image(row)

    def load_waveform(self, index: int) -> torch.Tensor:
        wav = self.packed.waveform(int(self._rows[index]))
        if self.clip_samples is None:
            return wav
        # same crop/pad as AVDataset.load_waveform, on the whole file (or its first part, see __init__)
        total = int(self.packed.file_lengths[self._rows[index]])
        extra = max(0, total - self.clip_samples)
        offset = {"start": 0, "center": extra // 2}.get(self.clip_offset)
        if offset is None:  # random
            offset = int(self._rng(index).integers(extra + 1))
        return io.fit_length(wav, self.clip_samples, mode=self.pad_mode, offset=offset)

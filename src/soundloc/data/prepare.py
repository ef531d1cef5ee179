"""Flickr-SoundNet videos → the prepared layout (frames/, audio/, index.csv, failures.csv).

The paper pairs one frame of each video with the video's sound (Senocak et al., 2018, Sec. 4);
SoundNet hears raw mono audio at 22,050 Hz and was trained on 20 s clips (PAPER_NOTES, Model).
For every video this module, with ffmpeg (:mod:`soundloc.data.ffmpeg`):

- reads its duration and streams from ``ffmpeg -i``;
- extracts the middle frame to ``frames/<id>.jpg``, resized to ``size × size`` (256 by default,
  the frame size of the annotated set); with ``frames=N > 1`` also N evenly spaced frames
  ``frames/<id>_<k>.jpg`` at times (k + ½)·D/N, k = 0..N−1 (for odd N the middle one is the
  frame of ``<id>.jpg``);
- extracts the audio to ``audio/<id>.wav``: the first ``seconds`` (20) of the first audio
  stream, mixed to mono, resampled to 22,050 Hz, 16-bit PCM;
- checks the result (audio present, not all zeros, not much shorter than the video says: a
  truncated file decodes only its first part) and records any problem in ``failures.csv``
  instead of stopping.

Every output is written under a temporary name and renamed when the whole item succeeded, so an
interrupted run leaves no half-made item; a finished item (all its files present) is skipped.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from soundloc.data.ffmpeg import FFmpegError, MediaInfo, find_ffmpeg, probe, run_ffmpeg, stderr_tail
from soundloc.data.layout import (
    AUDIO_DIR,
    FAILURES_FILE,
    FRAMES_DIR,
    INDEX_FILE,
    read_failures,
    read_index,
    write_failures,
    write_index,
)
from soundloc.data.types import SAMPLE_RATE
from soundloc.utils.files import atomic_path

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".3gp", ".mpg", ".mpeg", ".wmv", ".ogv", ".ts"}
)


@dataclass
class PrepareConfig:
    """Settings of :func:`prepare_videos`.

    Attributes:
        seconds: audio kept from the start of each video (SoundNet's 20 s clips).
        sample_rate: audio rate of the output (SoundNet: 22,050 Hz).
        size: side of the square output frame; ``None`` keeps the video's own size.
        resize: ``"stretch"`` (scale to size × size, ignoring the aspect ratio) or ``"crop"``
            (scale the short side to ``size``, then cut the centre square).
        frames: number of evenly spaced frames; the middle one is always written as ``<id>.jpg``.
        jpeg_quality: ffmpeg's ``-q:v`` (2 = best, 31 = worst).
        min_coverage: fraction of the expected audio length (min(seconds, duration)) that the
            decoded audio must reach; less means a truncated or damaged file.
        keep_silent: keep items whose audio is all zeros (default: record them as failures).
        workers: videos processed at once (each runs its own ffmpeg processes).
        ffmpeg: path of ffmpeg (``None``: see :func:`soundloc.data.ffmpeg.find_ffmpeg`).
        timeout: seconds one ffmpeg call may take.
        overwrite: redo items whose outputs exist.
        progress: show a tqdm progress bar.
    """

    seconds: float = 20.0
    sample_rate: int = SAMPLE_RATE
    size: int | None = 256
    resize: str = "stretch"
    frames: int = 1
    jpeg_quality: int = 2
    min_coverage: float = 0.9
    keep_silent: bool = False
    workers: int = 2
    ffmpeg: str | None = None
    timeout: float = 300.0
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be positive or None, got {self.size}")
        if self.resize not in {"stretch", "crop"}:
            raise ValueError(f"resize must be 'stretch' or 'crop', got {self.resize!r}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if not 0 <= self.min_coverage <= 1:
            raise ValueError(f"min_coverage must be in [0, 1], got {self.min_coverage}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass
class PrepareReport:
    """What :func:`prepare_videos` did."""

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    index_rows: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.prepared)} prepared, {len(self.skipped)} already done, {len(self.failed)} failed; "
            f"index has {self.index_rows} rows"
        )


class ItemFailure(Exception):
    """One video could not be prepared (the message is the reason written to failures.csv)."""


def find_videos(videos: str | os.PathLike[str]) -> list[Path]:
    """Video files directly in ``videos`` (by extension; hidden and ``.part`` files ignored), sorted."""
    root = Path(videos)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: videos folder not found")
    found = [
        p for p in sorted(root.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
    ]
    stems: dict[str, Path] = {}
    for p in found:
        if p.stem in stems:
            raise ValueError(f"two videos with id {p.stem!r}: {stems[p.stem].name} and {p.name}")
        stems[p.stem] = p
    return found


def frame_times(duration: float, n: int) -> list[float]:
    """Times (s) of ``n`` evenly spaced frames: (k + ½)·duration/n, k = 0..n−1."""
    return [(k + 0.5) * duration / n for k in range(n)]


def output_paths(out: Path, item_id: str, n_frames: int) -> dict[str, Path]:
    """Files one item produces: ``frame`` (middle), ``frame_<k>`` (when n_frames > 1), ``audio``."""
    paths = {"frame": out / FRAMES_DIR / f"{item_id}.jpg", "audio": out / AUDIO_DIR / f"{item_id}.wav"}
    if n_frames > 1:
        for k in range(n_frames):
            paths[f"frame_{k}"] = out / FRAMES_DIR / f"{item_id}_{k}.jpg"
    return paths


def _scale_filter(cfg: PrepareConfig) -> list[str]:
    if cfg.size is None:
        return []
    s = cfg.size
    if cfg.resize == "stretch":
        vf = f"scale={s}:{s}:flags=bicubic,setsar=1"
    else:
        vf = f"scale={s}:{s}:force_original_aspect_ratio=increase:flags=bicubic,crop={s}:{s},setsar=1"
    return ["-vf", vf]


def _extract_frame(ffmpeg: str, video: Path, t: float, dest: Path, cfg: PrepareConfig) -> None:
    args = ["-v", "error", "-ss", f"{t:.3f}", "-i", str(video), "-map", "0:v:0", "-frames:v", "1",
            *_scale_filter(cfg), "-q:v", str(cfg.jpeg_quality), "-f", "image2", "-y", str(dest)]
    proc = run_ffmpeg(ffmpeg, args, timeout=cfg.timeout)
    if proc.returncode != 0:
        raise ItemFailure(f"no frame decoded at {t:.2f} s (damaged or truncated video): {stderr_tail(proc.stderr, 1)}")
    if not dest.is_file() or dest.stat().st_size == 0:
        raise ItemFailure(f"no frame decoded at {t:.2f} s (damaged or truncated video)")


def _extract_audio(ffmpeg: str, video: Path, dest: Path, cfg: PrepareConfig, info: MediaInfo) -> None:
    import numpy as np
    import soundfile as sf

    args = ["-v", "error", "-i", str(video), "-map", "0:a:0", "-vn", "-t", f"{cfg.seconds:g}",
            "-ac", "1", "-ar", str(cfg.sample_rate), "-c:a", "pcm_s16le", "-f", "wav", "-y", str(dest)]
    proc = run_ffmpeg(ffmpeg, args, timeout=cfg.timeout)
    if proc.returncode != 0:
        raise ItemFailure(f"audio extraction failed: {stderr_tail(proc.stderr)}")
    try:
        data, rate = sf.read(str(dest), dtype="int16", always_2d=True)
    except Exception as exc:
        raise ItemFailure(f"extracted audio is unreadable: {exc}") from exc
    if rate != cfg.sample_rate or data.shape[1] != 1:
        raise ItemFailure(f"extracted audio is {rate} Hz with {data.shape[1]} channels")
    n = data.shape[0]
    if n == 0:
        raise ItemFailure("audio stream decodes to zero samples")
    expected = min(cfg.seconds, info.duration or 0.0) * cfg.sample_rate
    if n < cfg.min_coverage * expected:
        raise ItemFailure(
            f"audio stops at {n / cfg.sample_rate:.2f} s of an expected {expected / cfg.sample_rate:.2f} s "
            "(truncated or damaged file)"
        )
    if not cfg.keep_silent and not np.any(data):
        raise ItemFailure("audio is silent (all samples zero)")


def prepare_one(video: str | os.PathLike[str], out: str | os.PathLike[str], cfg: PrepareConfig, ffmpeg: str) -> tuple[str, str]:
    """Prepare one video; return ``(status, reason)`` with status prepared/skipped/failed."""
    video, out = Path(video), Path(out)
    item_id = video.stem
    paths = output_paths(out, item_id, cfg.frames)
    if not cfg.overwrite and all(p.is_file() for p in paths.values()):
        return "skipped", ""
    try:
        if video.stat().st_size == 0:
            raise ItemFailure("zero-length file")
        try:
            info = probe(video, ffmpeg, timeout=cfg.timeout)
        except FFmpegError as exc:
            raise ItemFailure(f"corrupt or unreadable file: {str(exc).split(': ', 1)[-1]}") from exc
        if not info.has_video:
            raise ItemFailure("no video stream")
        if not info.has_audio:
            raise ItemFailure("no audio stream")
        if not info.duration or info.duration <= 0:
            raise ItemFailure("zero or unknown duration")
        times = {"frame": info.duration / 2}
        if cfg.frames > 1:
            times.update({f"frame_{k}": t for k, t in enumerate(frame_times(info.duration, cfg.frames))})
        with contextlib.ExitStack() as stack:
            tmps = {key: stack.enter_context(atomic_path(p)) for key, p in paths.items()}
            # audio first: its length check is what tells a truncated file
            _extract_audio(ffmpeg, video, tmps["audio"], cfg, info)
            for key, t in times.items():
                _extract_frame(ffmpeg, video, t, tmps[key], cfg)
            # leaving the stack renames every temporary file onto its final name
    except ItemFailure as exc:
        return "failed", str(exc)
    except FFmpegError as exc:
        return "failed", str(exc)
    return "prepared", ""


def prepare_videos(
    videos: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: PrepareConfig | None = None,
) -> PrepareReport:
    """Prepare every video of a folder (or a list of files) into the layout at ``out``.

    ``index.csv`` afterwards lists every item of ``out`` whose files exist (earlier runs'
    items are kept), sorted by id; ``failures.csv`` gets this run's failures, replacing older
    entries for the same ids. Returns a :class:`PrepareReport`.
    """
    cfg = cfg or PrepareConfig()
    ffmpeg = find_ffmpeg(cfg.ffmpeg)
    files = find_videos(videos) if isinstance(videos, (str, os.PathLike)) else [Path(v) for v in videos]
    stems = [v.stem for v in files]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"several videos share the id(s) {dup[:5]}; ids are file names without extension")
    out = Path(out)
    (out / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    results: dict[str, tuple[str, str]] = {}
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = {pool.submit(prepare_one, v, out, cfg, ffmpeg): v for v in files}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="prepare", disable=not cfg.progress):
            v = futures[fut]
            try:
                results[v.stem] = fut.result()
            except Exception as exc:  # unexpected (disk full, a bug): record, keep going
                results[v.stem] = ("failed", f"unexpected error: {exc!r}")
    report = PrepareReport()
    for v in files:
        status, reason = results[v.stem]
        if status == "prepared":
            report.prepared.append(v.stem)
        elif status == "skipped":
            report.skipped.append(v.stem)
        else:
            report.failed.append((v.stem, reason))

    # index: previous rows (whose files still exist) + this run's successes, minus this run's failures
    rows: dict[str, dict[str, str]] = {}
    if (out / INDEX_FILE).is_file():
        for row in read_index(out):
            if (out / row["frame"]).is_file() and (out / row["audio"]).is_file():
                rows[row["id"]] = row
    failed_now = {i for i, _ in report.failed}
    for item_id in report.prepared + report.skipped:
        rows[item_id] = {"id": item_id, "frame": f"{FRAMES_DIR}/{item_id}.jpg", "audio": f"{AUDIO_DIR}/{item_id}.wav"}
    for item_id in failed_now:
        rows.pop(item_id, None)
    ordered = [rows[k] for k in sorted(rows)]
    write_index(out, ordered)
    report.index_rows = len(ordered)
    handled = {v.stem for v in files}
    old = [(i, r) for i, r in read_failures(out / FAILURES_FILE) if i not in handled]
    write_failures(out / FAILURES_FILE, old + report.failed)
    return report

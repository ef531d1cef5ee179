"""Finding and calling ffmpeg, the one external program the real-data pipeline needs.

Flickr-SoundNet comes as videos; the paper's model sees one frame and the clip's audio
(Senocak et al., 2018, Sec. 4: "a frame and the clip's audio per video"; SoundNet takes the
raw mono waveform at 22,050 Hz). ffmpeg turns one into the other.

Which ffmpeg is used, in this order:

1. an explicit path (``--ffmpeg PATH`` on the command line);
2. ``ffmpeg`` on ``PATH`` (e.g. Debian/Ubuntu ``apt-get install ffmpeg``, macOS
   ``brew install ffmpeg``, conda ``conda install -c conda-forge ffmpeg``);
3. the static binary shipped by the ``imageio-ffmpeg`` wheel (``pip install imageio-ffmpeg``),
   found with ``imageio_ffmpeg.get_ffmpeg_exe()``.

The wheel has no ``ffprobe``, so streams are probed by parsing what ``ffmpeg -i FILE`` prints
(see :func:`probe`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "install ffmpeg (Debian/Ubuntu: `sudo apt-get install ffmpeg`; macOS: `brew install ffmpeg`; "
    "conda: `conda install -c conda-forge ffmpeg`) or the imageio-ffmpeg wheel "
    "(`pip install imageio-ffmpeg`, which bundles a static binary), or pass --ffmpeg PATH"
)


class FFmpegError(RuntimeError):
    """ffmpeg failed, could not be found, or could not read a file (the message says which)."""


def find_ffmpeg(explicit: str | os.PathLike[str] | None = None) -> str:
    """Return the path of the ffmpeg executable to use (see the module docstring for the order).

    Raises:
        FileNotFoundError: ``explicit`` does not exist / is not executable, or no ffmpeg is found.
    """
    if explicit:
        p = Path(explicit)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
        found = shutil.which(str(explicit))
        if found:
            return found
        raise FileNotFoundError(f"--ffmpeg {explicit}: not an executable file")
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return str(exe)
    except Exception:  # the wheel is missing or has no binary for this platform
        pass
    raise FileNotFoundError(f"no ffmpeg found: {INSTALL_HINT}")


@dataclass(frozen=True)
class MediaInfo:
    """What ``ffmpeg -i`` says about a file (``None`` where it says nothing)."""

    duration: float | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    audio_rate: int | None = None
    audio_channels: str | None = None


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?:\s*(Video|Audio):\s*(.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_RATE = re.compile(r"\b(\d+)\s*Hz\b")
_FATAL = ("Invalid data found when processing input", "moov atom not found", "Error opening input")


def parse_probe_output(text: str) -> MediaInfo:
    """Parse the stderr of ``ffmpeg -hide_banner -i FILE`` into a :class:`MediaInfo`.

    Raises:
        ValueError: ffmpeg could not open the input (the message quotes its last line).
    """
    if any(f in text for f in _FATAL) and "Input #" not in text:
        last = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        raise ValueError(last[-1] if last else "ffmpeg could not open the input")
    duration = None
    m = _DURATION.search(text)
    if m:
        h, mi, s = m.groups()
        duration = int(h) * 3600 + int(mi) * 60 + float(s)
    has_video = has_audio = False
    width = height = rate = None
    channels = None
    for sm in _STREAM.finditer(text):
        kind, rest = sm.groups()
        if kind == "Video":
            # cover art (attached pictures) is not a video stream
            if "attached pic" in rest:
                continue
            if not has_video:
                size = _SIZE.search(rest)
                if size:
                    width, height = int(size.group(1)), int(size.group(2))
            has_video = True
        else:
            if not has_audio:
                r = _RATE.search(rest)
                rate = int(r.group(1)) if r else None
                parts = [p.strip() for p in rest.split(",")]
                channels = parts[2] if len(parts) > 2 else None
            has_audio = True
    return MediaInfo(duration, has_video, has_audio, width, height, rate, channels)


def run_ffmpeg(ffmpeg: str, args: Sequence[str], timeout: float | None = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``ffmpeg -nostdin -hide_banner ARGS`` and return the finished process (never raises on rc).

    Raises:
        FFmpegError: the process could not start or ran past ``timeout`` seconds.
    """
    cmd = [ffmpeg, "-nostdin", "-hide_banner", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"ffmpeg timed out after {timeout:.0f} s") from exc
    except OSError as exc:
        raise FFmpegError(f"cannot run {ffmpeg}: {exc}") from exc


def probe(path: str | os.PathLike[str], ffmpeg: str | None = None, timeout: float | None = 60.0) -> MediaInfo:
    """Streams and duration of a media file, from ``ffmpeg -i`` (no ffprobe needed).

    Raises:
        FFmpegError: the file cannot be opened as media (the message names the file).
    """
    exe = ffmpeg or find_ffmpeg()
    proc = run_ffmpeg(exe, ["-i", str(path)], timeout=timeout)
    try:
        return parse_probe_output(proc.stderr)
    except ValueError as exc:
        raise FFmpegError(f"{path}: {exc}") from exc


def stderr_tail(text: str, lines: int = 2) -> str:
    """The last non-empty lines of an ffmpeg log, joined (for failure reasons)."""
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) if kept else "(no message)"

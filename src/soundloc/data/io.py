"""Reading and writing the prepared files: WAV audio (via soundfile) and frames (via Pillow).

torchaudio 2.11's ``load`` needs torchcodec, so audio goes through ``soundfile``; every
error names the file it is about.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from soundloc.data.types import SAMPLE_RATE
from soundloc.utils.files import atomic_path


def _read_frames(path: Path) -> tuple[np.ndarray, int]:
    """``(float32 [T, channels], rate)`` of an audio file; errors name the file."""
    import soundfile as sf

    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError on corrupt files
        raise ValueError(f"{path}: cannot read audio ({exc})") from exc
    if data.shape[0] == 0:
        raise ValueError(f"{path}: audio has no samples")
    return data, int(rate)


def read_wav(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    mono: str = "error",
) -> torch.Tensor:
    """Read a WAV file as a float32 ``[T]`` tensor in [-1, 1].

    Args:
        path: the file.
        sample_rate: the rate the file must have (prepared data is 22,050 Hz; convert with
            :func:`read_audio` or the preparation scripts, never silently here).
        mono: what to do with several channels: ``"error"`` (default: prepared data is mono),
            or ``"mix"`` (average the channels).

    Raises:
        FileNotFoundError, ValueError: missing, unreadable, empty, wrong-rate or multi-channel
        files; the message names the file.
    """
    path = Path(path)
    data, rate = _read_frames(path)
    if rate != sample_rate:
        raise ValueError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz")
    if data.shape[1] > 1:
        if mono == "mix":
            data = data.mean(axis=1, keepdims=True)
        else:
            raise ValueError(f"{path}: {data.shape[1]} channels, expected mono (or pass mono='mix')")
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if not torch.isfinite(wav).all():
        raise ValueError(f"{path}: audio contains NaN or inf")
    return wav


def read_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Read any audio file soundfile opens (WAV, FLAC, OGG...), at any rate and with any number
    of channels, as a mono float32 ``[T]`` tensor at ``sample_rate``: channels averaged, then
    resampled with ``torchaudio.functional.resample`` (band-limited sinc interpolation).

    For a user's own recordings (``soundloc localize``); prepared data stays exact with
    :func:`read_wav`, which refuses another rate instead of converting it.

    Raises:
        FileNotFoundError, ValueError: missing, unreadable, empty or non-finite audio (the
        message names the file).
    """
    path = Path(path)
    data, rate = _read_frames(path)
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if not torch.isfinite(wav).all():
        raise ValueError(f"{path}: audio contains NaN or inf")
    if rate != sample_rate:
        import torchaudio.functional as taf

        wav = taf.resample(wav, int(rate), int(sample_rate))
    return wav


def write_wav(path: str | os.PathLike[str], waveform: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono float waveform in [-1, 1] as 16-bit PCM WAV, atomically (values are clipped)."""
    import soundfile as sf

    wav = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if wav.ndim != 1:
        raise ValueError(f"waveform must be 1-D (mono), got shape {tuple(wav.shape)}")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0).astype(np.float32), sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def read_image(path: str | os.PathLike[str], size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image as ``[3, H, W]`` float32 in [0, 1], optionally resized to ``size``.

    Grey, palette, RGBA and CMYK images are converted to RGB. ``size`` is an int (square) or
    ``(height, width)``; resizing is bilinear with antialiasing (Pillow).

    Raises:
        FileNotFoundError, ValueError: missing or unreadable files (the message names the file).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from exc
    if rgb.width < 1 or rgb.height < 1:
        raise ValueError(f"{path}: empty image")
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if (rgb.height, rgb.width) != (h, w):
            rgb = rgb.resize((w, h), Image.BILINEAR)
    arr = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def read_mask(path: str | os.PathLike[str], size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read a grey PNG mask as ``[H, W]`` float32 in {0, 1} (nearest-neighbour resize)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mask file not found")
    try:
        with Image.open(path) as im:
            grey = im.convert("L")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot read mask ({exc})") from exc
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if (grey.height, grey.width) != (h, w):
            grey = grey.resize((w, h), Image.NEAREST)
    return torch.from_numpy((np.asarray(grey) > 127).astype(np.float32))


def write_image(path: str | os.PathLike[str], image: torch.Tensor | np.ndarray, quality: int = 95) -> Path:
    """Write ``[3, H, W]`` float in [0, 1] (or ``[H, W, 3]`` uint8) as JPEG/PNG by suffix, atomically."""
    from PIL import Image

    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8:
        if arr.ndim != 3 or arr.shape[0] != 3:
            raise ValueError(f"image must be [3, H, W] float or [H, W, 3] uint8, got {arr.shape} {arr.dtype}")
        arr = (np.clip(arr, 0.0, 1.0).transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.ndim == 2:
        pass
    elif arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"uint8 image must be [H, W, 3] or [H, W], got {arr.shape}")
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality} if Path(path).suffix.lower() in {".jpg", ".jpeg"} else {}
        Image.fromarray(arr).save(tmp, **kwargs)
    return Path(path)


def fit_length(waveform: torch.Tensor, length: int, mode: str = "repeat", offset: int = 0) -> torch.Tensor:
    """Crop ``waveform`` ([T]) to ``length`` samples from ``offset``, or pad it when too short.

    ``mode="repeat"`` tiles the clip (what a 20 s-trained SoundNet sees as a loop);
    ``mode="zeros"`` appends silence.
    """
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    t = int(waveform.shape[-1])
    if t >= length:
        offset = max(0, min(offset, t - length))
        return waveform[..., offset : offset + length]
    if mode == "repeat":
        reps = -(-length // t)
        return waveform.repeat(reps)[:length]
    if mode == "zeros":
        return torch.nn.functional.pad(waveform, (0, length - t))
    raise ValueError(f"mode must be 'repeat' or 'zeros', got {mode!r}")

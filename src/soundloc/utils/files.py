"""Files written whole or not at all (a temporary file renamed onto the name), and read with errors
that name the file: JSON, torch checkpoints."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open ``path`` for writing through a temporary file in the same folder.

    The temporary file is renamed onto ``path`` only when the block finishes without an
    exception, so a crash never leaves a half-written file under the final name.
    """
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open is for writing; got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode.replace("x", "w"), **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    For writers that want a file name rather than a handle (``soundfile.write``, PIL's
    ``Image.save``, ``torch.save``, ffmpeg). The temporary name keeps the final suffix so
    that format detection by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.part.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def stale_parts(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that :func:`atomic_path` (``.STEM.part.XXXX.SUFFIX``) and
    :func:`atomic_open` (``.NAME.XXXX.part``) leave beside ``path`` when the process dies while
    writing it (SIGKILL, power loss: no ``except`` runs). Safe to delete when no other process
    is writing ``path`` at the same time."""
    path = Path(path)
    patterns = (f".{path.stem}.part.*{path.suffix}", f".{path.name}.*.part")
    return sorted({p for pattern in patterns for p in path.parent.glob(pattern) if p.is_file()})


def read_torch_file(path: str | os.PathLike[str], what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with errors that name the file and say what
    is wrong: ``FileNotFoundError`` when it is missing, ``ValueError`` when it is not a file
    written by ``torch.save`` (an image, a text file: torch's own message would be the
    unpickler's, e.g. "pop from empty list") or cannot be read. ``what`` names the file's
    role in the messages (e.g. ``"model file"``)."""
    import zipfile

    import torch

    name = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} does not exist: {name!r}")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not zipfile.is_zipfile(path) and head != b"\x80\x02":  # torch.save's archive, or its legacy pickle
        raise ValueError(f"{what} {name!r} is not a file written by torch.save")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"could not read {what} {name!r}: {reason}") from exc


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by ``None`` and tuples by lists, recursively
    (strict JSON has no NaN); dict keys become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read a JSON file; errors name the file.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says which ``what`` is missing).
        ValueError: the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


__all__ = ["atomic_open", "atomic_path", "json_safe", "read_json", "read_torch_file", "stale_parts", "write_json"]

"""What the subcommands share: user errors as one line (exit status 2), and checks of the
values a user types that no config can make (output folders, devices). Torch-free at import."""
from __future__ import annotations

import sys
from pathlib import Path

from soundloc.config import parse_seeds as config_parse_seeds


class UsageError(ValueError):
    """A value the user gave is wrong; the message names it."""


def fail(command: str, message: object) -> int:
    """Print ``soundloc COMMAND: error: MESSAGE`` on one line to stderr; return exit status 2."""
    text = " ".join(str(message).split())
    print(f"soundloc {command}: error: {text}", file=sys.stderr)
    return 2


def check_non_negative(option: str, value: int | None) -> None:
    """``value`` (of ``option``) is ``None`` or an int >= 0."""
    if value is not None and value < 0:
        raise UsageError(f"{option} must be >= 0, got {value}")


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` -> [0, 2, 7] (:func:`soundloc.config.parse_seeds`)."""
    try:
        return list(config_parse_seeds(text))
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def check_output_dir(option: str, path: str | Path) -> Path:
    """``path`` can be a folder: neither it nor any folder above it is an existing file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == path else f"is under {p}, which is a file"
            raise UsageError(f"{option} {path} {what}: give a folder")
    return path


def check_output_file(option: str, path: str | Path) -> Path:
    """``path`` can be written as a file: it is not a folder, and no folder above it is an
    existing file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder: give a file name")
    for p in path.parents:
        if p.exists() and not p.is_dir():
            raise UsageError(f"{option} {path}: {p} is a file, not a folder")
    return path


def check_device(option: str, device: str | None) -> None:
    """``device`` is ``None`` or a torch device this machine has (imports torch)."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"{option} {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{option} {device}: this machine has no CUDA GPU (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{option} {device}: MPS is not available on this machine")


__all__ = ["UsageError", "check_device", "check_non_negative", "check_output_dir", "check_output_file", "fail",
           "parse_seeds"]

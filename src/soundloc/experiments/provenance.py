"""What every result file records about the run that made it: library and torch versions,
device, threads, platform, date and the command, so that a committed number can be traced and
re-made."""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from soundloc import __version__


def code_commit() -> dict[str, Any]:
    """The git commit of the checkout the library runs from (``commit``, and ``dirty``: whether
    tracked files differ from it), or ``None`` for both when it does not run from one (an
    installed wheel) or git is missing."""
    src = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "-C", str(src), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if not (Path(top) / "src" / "soundloc").is_dir():
            return {"commit": None, "dirty": None}
        sha = subprocess.run(["git", "-C", top, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        status = subprocess.run(["git", "-C", top, "status", "--porcelain", "--untracked-files=no", "--", "src"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"commit": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def provenance(device: str | torch.device, command: str) -> dict[str, Any]:
    """The record of the current process: ``version``, ``torch``, ``device``, ``device_name``,
    ``threads``, ``platform``, ``date`` (UTC, ISO 8601), ``command``, and the library's git
    ``commit`` with ``dirty`` (:func:`code_commit`: whether its ``src`` differs from the commit)."""
    device = str(device)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu"
    return {
        "version": __version__,
        "torch": torch.__version__,
        "device": device,
        "device_name": name,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        **code_commit(),
    }


__all__ = ["code_commit", "provenance"]

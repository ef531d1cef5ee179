"""What every result file records about the run that made it: library and torch versions,
device, threads, platform, date and the command, so that a committed number can be traced and
re-made."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from soundloc import __version__


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this library's source), with
    ``+dirty`` when tracked files of its code differ from it (``src/`` where the checkout has
    one, else any tracked file); ``None`` outside a checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=where, capture_output=True, text=True,
                             timeout=20)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=20)
        if top.returncode != 0 or head.returncode != 0:
            return None
        code = ["--", "src"] if (Path(top.stdout.strip()) / "src").is_dir() else []
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", *code], cwd=top.stdout.strip(),
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def code_commit() -> dict[str, Any]:
    """:func:`git_commit` of the library's own checkout as ``{"commit", "dirty"}`` (both
    ``None`` when it does not run from one: an installed wheel, or git missing)."""
    here = Path(__file__).resolve()
    commit = git_commit(here.parent) if (here.parents[2] / "soundloc").is_dir() and (here.parents[3] / "src").is_dir() else None
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit.removesuffix("+dirty"), "dirty": commit.endswith("+dirty")}


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


__all__ = ["code_commit", "git_commit", "provenance"]

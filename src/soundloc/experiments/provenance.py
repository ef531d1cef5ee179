"""What every result file records about the run that made it: library and torch versions,
device, threads, platform, date and the command, so that a committed number can be traced and
re-made."""
from __future__ import annotations

import datetime as _dt
import platform
from typing import Any

import torch

from soundloc import __version__


def provenance(device: str | torch.device, command: str) -> dict[str, Any]:
    """The record of the current process: ``version``, ``torch``, ``device``, ``device_name``,
    ``threads``, ``platform``, ``date`` (UTC, ISO 8601) and ``command``."""
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
    }


__all__ = ["provenance"]

"""The device a job runs on when none is named."""
from __future__ import annotations


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


__all__ = ["default_device"]

"""soundloc: Learning to Localize Sound Source in Visual Scenes, re-implemented.

Senocak, Oh, Kim, Yang, Kweon, CVPR 2018. The library maps onto the paper's boxes:

- :mod:`soundloc.models`  - sound network, visual network, attention (localization) module
- :mod:`soundloc.losses`  - unsupervised triplet loss L_U and supervised attention loss L_S
- :mod:`soundloc.metrics` - consensus maps, cIoU, success rate / AUC, baselines
- :mod:`soundloc.data`    - the on-disk layout, loaders, the synthetic world, real-data tools
- :mod:`soundloc.train`   - the training loop of the paper's three schemes, shared by every experiment

The whole tree, one line per module: ``src/soundloc/README.md``. A submodule is imported on
first use (``soundloc.losses`` after ``import soundloc``), so ``import soundloc`` is cheap.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'soundloc' has no attribute {name!r}")

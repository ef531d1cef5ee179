#!/usr/bin/env python3
"""Convert the published SoundNet-8 weights (soundnet8_final.t7 or the TensorFlow port's sound8.npy) to a state dict.

Same as `soundloc data soundnet ...`; the logic lives in soundloc.models.soundnet_weights (see data_scripts/README.md).
"""
import sys
from pathlib import Path

try:
    from soundloc.commands.data import script_main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from soundloc.commands.data import script_main

if __name__ == "__main__":
    sys.exit(script_main("soundnet", description=__doc__.strip().splitlines()[0]))

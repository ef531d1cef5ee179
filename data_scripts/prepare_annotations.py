#!/usr/bin/env python3
"""Parse the Sound Localization dataset's XML boxes into annotations.json, the test/train splits and grid masks.

Same as `soundloc data annotations ...`; the logic lives in soundloc.data (see data_scripts/README.md).
"""
import sys
from pathlib import Path

try:
    from soundloc.commands.data import script_main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from soundloc.commands.data import script_main

if __name__ == "__main__":
    sys.exit(script_main("annotations", description=__doc__.strip().splitlines()[0]))

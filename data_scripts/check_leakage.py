#!/usr/bin/env python3
"""Report (and optionally remove) test ids that appear in a training id list.

Same as `soundloc data leakage ...`; the logic lives in soundloc.data (see data_scripts/README.md).
"""
import sys
from pathlib import Path

try:
    from soundloc.commands.data import script_main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from soundloc.commands.data import script_main

if __name__ == "__main__":
    sys.exit(script_main("leakage", description=__doc__.strip().splitlines()[0]))

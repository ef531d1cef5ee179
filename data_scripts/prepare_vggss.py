#!/usr/bin/env python3
"""Import the VGG-Sound Sources annotation file (vggss.json) and prepare its clips; write the present and missing lists.

Same as `soundloc data vggss ...`; the logic lives in soundloc.data.vggss (see data_scripts/README.md).
"""
import sys
from pathlib import Path

try:
    from soundloc.commands.data import script_main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from soundloc.commands.data import script_main

if __name__ == "__main__":
    sys.exit(script_main("vggss", description=__doc__.strip().splitlines()[0]))

"""The pigeon superstition (Senocak et al., CVPR 2018, Sec. 4-5), reproduced on the synthetic world.

- :mod:`~soundloc.experiments.pigeon.config` - :class:`PigeonConfig` and the named scales
- :mod:`~soundloc.experiments.pigeon.run`    - :func:`run_pigeon` and its steps
- :mod:`~soundloc.experiments.pigeon.report` - reading runs, tables over seeds and setups
"""
from soundloc.constants import SCALES, SCHEMES
from soundloc.experiments.pigeon.config import PigeonConfig, cpu_model
from soundloc.experiments.pigeon.report import (
    PRINTED_BASELINES,
    RESULTS_FILE,
    compare,
    format_results,
    load_results,
    load_runs,
    summarize,
)
from soundloc.experiments.pigeon.run import (
    PigeonData,
    build_world,
    pigeon_targets,
    run_pigeon,
    score_scheme,
    train_scheme,
    visual_stream,
)

__all__ = [
    "PRINTED_BASELINES",
    "RESULTS_FILE",
    "SCALES",
    "SCHEMES",
    "PigeonConfig",
    "PigeonData",
    "build_world",
    "compare",
    "cpu_model",
    "format_results",
    "load_results",
    "load_runs",
    "pigeon_targets",
    "run_pigeon",
    "score_scheme",
    "summarize",
    "train_scheme",
    "visual_stream",
]

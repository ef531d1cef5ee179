"""The pigeon superstition (Senocak et al., CVPR 2018, Sec. 4-5), reproduced on the synthetic world.

- :mod:`~soundloc.experiments.pigeon.config` - :class:`PigeonConfig` and the named scales
- :mod:`~soundloc.experiments.pigeon.run`    - :func:`run_pigeon` and its steps
- :mod:`~soundloc.experiments.pigeon.targets` - the pre-registered targets T1-T5
- :mod:`~soundloc.experiments.pigeon.report` - reading runs, tables over seeds and setups
- :mod:`~soundloc.experiments.pigeon.sweep`  - what chapter 7 reads off the co-occurrence sweep
"""
from soundloc.constants import SCALES, SCHEMES
from soundloc.experiments.pigeon.config import PigeonConfig, cpu_model
from soundloc.experiments.pigeon.report import (
    GROUP_NAMES,
    PRINTED_BASELINES,
    RESULTS_FILE,
    compare,
    format_results,
    load_results,
    load_runs,
    mean_run,
    paired_difference,
    summarize,
    summary_table,
    sweep_contrast_table,
    sweep_contrasts,
    sweep_points,
    sweep_table,
    target_summary,
    uninformative_p,
)
from soundloc.experiments.pigeon.run import (
    PigeonData,
    breakdown,
    build_world,
    run_pigeon,
    run_seeds,
    score_scheme,
    train_scheme,
    visual_stream,
)
from soundloc.experiments.pigeon.sweep import per_class_lines, sweep_readings
from soundloc.experiments.pigeon.targets import TARGETS, beats_baselines, pigeon_targets

__all__ = [
    "GROUP_NAMES",
    "PRINTED_BASELINES",
    "TARGETS",
    "beats_baselines",
    "breakdown",
    "mean_run",
    "paired_difference",
    "per_class_lines",
    "run_seeds",
    "summary_table",
    "sweep_contrast_table",
    "sweep_contrasts",
    "sweep_points",
    "sweep_readings",
    "sweep_table",
    "target_summary",
    "uninformative_p",
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

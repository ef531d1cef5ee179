"""Training runs on any data: what ``soundloc train`` does (Senocak et al., CVPR 2018, Sec. 3-4).

- :mod:`~soundloc.experiments.run.config` - :class:`RunConfig`: model, training, data, splits
- :mod:`~soundloc.experiments.run.data`   - the run's datasets, split as in the paper
- :mod:`~soundloc.experiments.run.folder` - the run folder: config, checkpoints, log, results
- :mod:`~soundloc.experiments.run.runner` - :func:`run_training` and :func:`resume_run`
"""
from soundloc.experiments.run.config import DataConfig, RunConfig, load_config_file, preset_model
from soundloc.experiments.run.data import RunData, annotations_of, build_data
from soundloc.experiments.run.folder import (BEST_MODEL, CONFIG_FILE, LAST_CHECKPOINT, LOG_FILE, RESULTS_FILE,
                                            RunFolder, check_new_run, open_run, recorded_config, run_position)
from soundloc.experiments.run.runner import resume_run, run_training, score, stop_on_interrupt, use_threads

__all__ = ["BEST_MODEL", "CONFIG_FILE", "LAST_CHECKPOINT", "LOG_FILE", "RESULTS_FILE", "DataConfig", "RunConfig",
           "RunData", "RunFolder", "annotations_of", "build_data", "check_new_run", "load_config_file", "open_run",
           "preset_model", "recorded_config", "resume_run", "run_position", "run_training", "score",
           "stop_on_interrupt", "use_threads"]

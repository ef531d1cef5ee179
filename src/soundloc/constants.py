"""Names and numbers the whole library shares, in one torch-free module.

The command line imports this module to build its parsers, so it must stay cheap: no torch,
no NumPy.
"""
from __future__ import annotations

from typing import Literal

#: Audio sample rate of SoundNet and of the prepared data (Hz).
SAMPLE_RATE = 22_050
#: Side of the square frame in which the Flickr-SoundNet annotation boxes are given.
ANNOTATION_FRAME = 256

Scheme = Literal["unsupervised", "supervised", "semi_supervised"]
#: The learning schemes of the paper's Table 1, in its order (:mod:`soundloc.train`).
SCHEMES: tuple[Scheme, ...] = ("unsupervised", "supervised", "semi_supervised")

Preset = Literal["paper", "cpu"]
#: The presets of a run (:class:`~soundloc.experiments.run.RunConfig`): ``paper`` (the authors'
#: model and training command) and ``cpu`` (the small model that trains on a CPU).
PRESETS: tuple[Preset, ...] = ("paper", "cpu")

#: How L_S is averaged over a batch: ``"batch_mean"`` (the paper's: the per-sample λ L_S summed over
#: the labelled rows and divided by the batch size, as the authors' code does) or
#: ``"labelled_mean"`` (divided by the number of labelled rows: with 10 % of the pairs labelled,
#: about ten times the paper's weight).
AttentionReduction = Literal["batch_mean", "labelled_mean"]

Scale = Literal["quick", "tiny", "smoke", "full"]
#: Named sizes of an experiment: ``quick`` (a chapter under the test suite, seconds), ``tiny``
#: (tests, a minute), ``smoke`` (2 CPU cores, minutes), ``full`` (a GPU).
SCALES: tuple[Scale, ...] = ("quick", "tiny", "smoke", "full")

__all__ = ["ANNOTATION_FRAME", "PRESETS", "SAMPLE_RATE", "SCALES", "SCHEMES", "AttentionReduction", "Preset", "Scale",
           "Scheme"]

"""The paper's network, one module per box of Fig. 2 (Senocak et al., CVPR 2018):

- :mod:`soundloc.models.sound`     - SoundNet-8 sound network (and a short-clip CPU variant);
- :mod:`soundloc.models.visual`    - VGG16 conv5_3 visual network (and a small CPU CNN);
- :mod:`soundloc.models.attention` - the localization (attention) module;
- :mod:`soundloc.models.localizer` - the full two-stream model, its config and checkpoints.
"""
from __future__ import annotations

from soundloc.models.attention import AttentionOutput, LocalizationModule
from soundloc.models.localizer import (
    LocalizerOutput,
    ModelConfig,
    SoundLocalizer,
    build_model,
    load_checkpoint,
    load_model,
    save_model,
)
from soundloc.models.sound import (
    SAMPLE_RATE,
    SoundNet8,
    check_waveform,
    min_samples_for,
    output_steps_for,
    pad_waveform,
)
from soundloc.models.visual import IMAGENET_MEAN, IMAGENET_STD, SmallCNN, VGG16Features, check_image

__all__ = [
    "AttentionOutput",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LocalizationModule",
    "LocalizerOutput",
    "ModelConfig",
    "SAMPLE_RATE",
    "SmallCNN",
    "SoundLocalizer",
    "SoundNet8",
    "VGG16Features",
    "build_model",
    "check_image",
    "check_waveform",
    "load_checkpoint",
    "load_model",
    "min_samples_for",
    "output_steps_for",
    "pad_waveform",
    "save_model",
]

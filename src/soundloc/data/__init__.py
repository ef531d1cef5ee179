"""Data: the sample type, the prepared-data layout, loaders, the synthetic world, real-data tools.

- :mod:`soundloc.data.types`     - :class:`Sample`, :class:`Batch`, :class:`Annotation`, :func:`collate`
- :mod:`soundloc.data.layout`    - the on-disk layout shared by real and synthetic data
- :mod:`soundloc.data.io`        - WAV (soundfile) and image (Pillow) reading/writing
- :mod:`soundloc.data.dataset`   - :class:`AVDataset`, ground-truth attention on the model's grid
- :mod:`soundloc.data.synthetic` - the procedurally generated audio-visual world
- :mod:`soundloc.data.download`, :mod:`~soundloc.data.prepare`, :mod:`~soundloc.data.annotations`,
  :mod:`~soundloc.data.leakage`, :mod:`~soundloc.data.cache` - getting and preparing real data
- :mod:`soundloc.data.vggss`     - the VGG-Sound Sources annotation file and its clips
- :mod:`soundloc.data.sound_features` - the frozen sound stream's features, computed once per clip
"""
from soundloc.data.cache import PackedDataset
from soundloc.data.dataset import AVDataset, EpochConcatDataset, SkipUnreadable, annotation_attention, grid_attention
from soundloc.metrics.groundtruth import box_map as box_mask  # its one home is the metrics
from soundloc.data.leakage import check_leakage, enforce_no_leakage
from soundloc.data.synthetic import SyntheticDataset, SyntheticWorld, WorldConfig, write_world
from soundloc.data.types import ANNOTATION_FRAME, SAMPLE_RATE, Annotation, Batch, Sample, Unreadable, collate, collate_readable

__all__ = [
    "ANNOTATION_FRAME",
    "SAMPLE_RATE",
    "AVDataset",
    "EpochConcatDataset",
    "Annotation",
    "Batch",
    "PackedDataset",
    "Sample",
    "SkipUnreadable",
    "SyntheticDataset",
    "SyntheticWorld",
    "Unreadable",
    "WorldConfig",
    "annotation_attention",
    "box_mask",
    "check_leakage",
    "collate",
    "collate_readable",
    "enforce_no_leakage",
    "grid_attention",
    "write_world",
]

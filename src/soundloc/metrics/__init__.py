"""Evaluation of sound source localization (Senocak et al., CVPR 2018, Sec. 5).

The community's protocol (the LVS evaluation code, CVPR 2021) is the default everywhere:

- :mod:`~soundloc.metrics.protocol`    - :class:`Protocol` (every choice) and the named variants
- :mod:`~soundloc.metrics.groundtruth` - box maps, the consensus map ``g``, annotation scaling
- :mod:`~soundloc.metrics.prediction`  - resize, min-max normalise, threshold: the set ``A``
- :mod:`~soundloc.metrics.scores`      - cIoU, success rate, AUC, per-annotator IoU (Table 3)
- :mod:`~soundloc.metrics.baselines`   - whole image, centre prior, random maps
- :mod:`~soundloc.metrics.regions`     - attention mass and density on a region (where attention goes)
- :mod:`~soundloc.metrics.retrieval`   - recall@K and median rank of a cross-modal retrieval
- :mod:`~soundloc.metrics.openset`     - the extended (open-set) protocol: AP, max-F1, precision by size
- :mod:`~soundloc.metrics.report`      - :func:`evaluate` and :func:`format_table`

The names below are imported from their submodules on first use, so importing
:mod:`soundloc.metrics.protocol` alone (as the command line does) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_NAMES: dict[str, str] = {
    "AnnotatorScores": "scores",
    "BaselineScore": "baselines",
    "CENTRE_SIGMA_FRACTION": "baselines",
    "EvaluationResult": "report",
    "PRESETS": "protocol",
    "Protocol": "protocol",
    "MAP_CONFIDENCES": "openset",
    "OpenSetProtocol": "openset",
    "OpenSetScores": "openset",
    "RetrievalScores": "retrieval",
    "SIZE_BINS": "openset",
    "average_precision": "openset",
    "map_confidence": "openset",
    "max_f1": "openset",
    "open_set_baselines": "openset",
    "open_set_scores": "openset",
    "precision_by_size": "openset",
    "precision_recall": "openset",
    "annotator_ious": "scores",
    "annotator_maps": "groundtruth",
    "attention_summary": "regions",
    "baseline_scores": "baselines",
    "box_map": "groundtruth",
    "centre_prior": "baselines",
    "chance_recall_at_k": "retrieval",
    "check_box": "groundtruth",
    "ciou": "scores",
    "ciou_from_set": "scores",
    "consensus_map": "groundtruth",
    "evaluate": "report",
    "first_positive_rank": "retrieval",
    "format_table": "report",
    "get_protocol": "protocol",
    "grid_coverage": "regions",
    "gt_map": "groundtruth",
    "gt_maps": "groundtruth",
    "iou_from_set": "scores",
    "median_rank": "retrieval",
    "normalise_maps": "prediction",
    "per_annotator_scores": "scores",
    "predicted_set": "prediction",
    "protocol_name": "report",
    "random_attention": "regions",
    "random_baseline": "baselines",
    "random_maps": "baselines",
    "recall_at_k": "retrieval",
    "region_density": "regions",
    "region_mass": "regions",
    "resize_maps": "prediction",
    "retrieval_scores": "retrieval",
    "scale_box": "groundtruth",
    "scale_boxes": "groundtruth",
    "success_and_auc": "scores",
    "success_curve": "scores",
    "success_rate": "scores",
    "threshold_values": "prediction",
    "whole_image_set": "baselines",
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_NAMES))


__all__ = sorted(_NAMES)

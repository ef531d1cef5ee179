"""Evaluation of sound source localization (Senocak et al., CVPR 2018, Sec. 5).

The community's protocol (the LVS evaluation code, CVPR 2021) is the default everywhere:

- :mod:`~soundloc.metrics.protocol`    - :class:`Protocol` (every choice) and the named variants
- :mod:`~soundloc.metrics.groundtruth` - box maps, the consensus map ``g``, annotation scaling
- :mod:`~soundloc.metrics.prediction`  - resize, min-max normalise, threshold: the set ``A``
- :mod:`~soundloc.metrics.scores`      - cIoU, success rate, AUC, per-annotator IoU (Table 3)
- :mod:`~soundloc.metrics.baselines`   - whole image, centre prior, random maps
- :mod:`~soundloc.metrics.report`      - :func:`evaluate` and :func:`format_table`
"""
from soundloc.metrics.baselines import (
    CENTRE_SIGMA_FRACTION,
    BaselineScore,
    baseline_scores,
    centre_prior,
    random_baseline,
    random_maps,
    whole_image_set,
)
from soundloc.metrics.groundtruth import (
    annotator_maps,
    box_map,
    check_box,
    consensus_map,
    gt_map,
    gt_maps,
    scale_box,
    scale_boxes,
)
from soundloc.metrics.prediction import normalise_maps, predicted_set, resize_maps, threshold_values
from soundloc.metrics.protocol import PRESETS, Protocol, get_protocol
from soundloc.metrics.report import EvaluationResult, evaluate, format_table, protocol_name
from soundloc.metrics.scores import (
    AnnotatorScores,
    annotator_ious,
    ciou,
    ciou_from_set,
    iou_from_set,
    per_annotator_scores,
    success_and_auc,
    success_curve,
    success_rate,
)

__all__ = [
    "CENTRE_SIGMA_FRACTION",
    "PRESETS",
    "AnnotatorScores",
    "BaselineScore",
    "EvaluationResult",
    "Protocol",
    "annotator_ious",
    "annotator_maps",
    "baseline_scores",
    "box_map",
    "centre_prior",
    "check_box",
    "ciou",
    "ciou_from_set",
    "consensus_map",
    "evaluate",
    "format_table",
    "get_protocol",
    "gt_map",
    "gt_maps",
    "iou_from_set",
    "normalise_maps",
    "per_annotator_scores",
    "predicted_set",
    "protocol_name",
    "random_baseline",
    "random_maps",
    "resize_maps",
    "scale_box",
    "scale_boxes",
    "success_and_auc",
    "success_curve",
    "success_rate",
    "threshold_values",
    "whole_image_set",
]

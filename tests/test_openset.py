"""The extended (open-set) protocol (soundloc.metrics.openset) and the VGG-SS preset, against
values worked out by hand on small made cases (the working is in the comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundloc.data.types import Annotation
from soundloc.metrics import PRESETS, evaluate, gt_map
from soundloc.metrics.openset import (
    OpenSetProtocol,
    average_precision,
    ground_truth_areas,
    map_confidence,
    max_f1,
    open_set_baselines,
    open_set_scores,
    pr_curve,
    precision_by_size,
    precision_recall,
    size_bin,
)

# five pairs, by confidence: sounding+localized, non-sounding, sounding mislocalized,
# sounding+localized, non-sounding
CONF = [0.9, 0.8, 0.7, 0.6, 0.5]
SOUNDING = [True, False, True, True, False]
LOCALIZED = [True, False, False, True, False]


def test_counts_at_one_threshold_by_hand() -> None:
    # t = 0.7: detected {0.9, 0.8, 0.7}: TP 1 (0.9), FP 2 (the non-sounding 0.8, the mislocalized
    # 0.7), FN 1 (0.6, undetected): P = 1/3, R = 1/2
    assert precision_recall(CONF, SOUNDING, LOCALIZED, 0.7) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    # above every confidence nothing is detected: P = 1 (no detection), R = 0 / 3
    assert precision_recall(CONF, SOUNDING, LOCALIZED, 0.95) == (1.0, 0.0)
    # a detected mislocalized pair is a false positive only: at t = 0.5 TP 2, FP 3, FN 0 -> R = 1
    assert precision_recall(CONF, SOUNDING, LOCALIZED, 0.5) == (pytest.approx(2 / 5), 1.0)


def test_curve_ap_and_max_f1_every_threshold_by_hand() -> None:
    # thresholds 0.9 .. 0.5 give (P, R) = (1, 1/3), (1/2, 1/3), (1/3, 1/2), (1/2, 1), (2/5, 1);
    # interpolated P (max at this or any lower threshold): 1, 1/2, 1/2, 1/2, 2/5
    # AP = 1/3 * 1 + 0 * 1/2 + (1/2 - 1/3) * 1/2 + (1 - 1/2) * 1/2 + 0 = 1/3 + 1/12 + 1/4 = 2/3
    t, p, r = pr_curve(CONF, SOUNDING, LOCALIZED)
    assert t.tolist() == CONF
    assert p.tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 2, 2 / 5])
    assert r.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 2, 1, 1])
    assert average_precision(CONF, SOUNDING, LOCALIZED) == pytest.approx(2 / 3)
    # F1 = 2PR/(P+R): 1/2, 2/5, 2/5, 2/3, 4/7 -> max 2/3
    assert max_f1(CONF, SOUNDING, LOCALIZED) == pytest.approx(2 / 3)


def test_slavc_code_thresholds_by_hand() -> None:
    # N = 5: step max(1, 5 // 200) = 1; thresholds = sorted without the highest, from the top:
    # 0.8, 0.7, 0.6, 0.5 -> (1/2, 1/3), (1/3, 1/2), (1/2, 1), (2/5, 1); interpolated 1/2, 1/2, 1/2, 2/5
    # AP = 1/2 * (1/2 - 1/3) + 1/2 * (1 - 1/2) + 1/2 * 0 = 1/12 + 1/4 = 1/3 (no segment from recall 0)
    code = OpenSetProtocol(curve="slavc-code")
    t, _, _ = pr_curve(CONF, SOUNDING, LOCALIZED, code)
    assert t.tolist() == [0.8, 0.7, 0.6, 0.5]
    assert average_precision(CONF, SOUNDING, LOCALIZED, code) == pytest.approx(1 / 3)
    # F1 at every max(1, 5 // 10) = 1st ascending confidence: all five -> 2/3
    assert max_f1(CONF, SOUNDING, LOCALIZED, "slavc-code") == pytest.approx(2 / 3)


def test_a_constant_confidence_detects_all_or_nothing() -> None:
    # one threshold: all four detected; TP 1, FP 3 (a mislocalized one, two non-sounding), FN 0:
    # P = 1/4, R = 1 -> AP = 1 * 1/4, F1 = 2 * 1/4 / (5/4) = 2/5; SLAVC's code gives 0 (no recall step)
    conf, snd, loc = [0.3] * 4, [True, True, False, False], [True, False, False, False]
    assert average_precision(conf, snd, loc) == pytest.approx(1 / 4)
    assert max_f1(conf, snd, loc) == pytest.approx(2 / 5)
    assert average_precision(conf, snd, loc, "slavc-code") == 0.0


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="non-sounding pair cannot be localized"):
        average_precision([1.0, 0.5], [True, False], [True, True])
    with pytest.raises(ValueError, match="differ in length"):
        max_f1([1.0], [True, False], [True, False])
    with pytest.raises(ValueError, match="NaN"):
        average_precision([math.nan], [True], [True])
    with pytest.raises(ValueError, match="curve"):
        OpenSetProtocol(curve="voc")


def test_size_bins_by_hand() -> None:
    # [0, 32²) small, [32², 96²) medium, [96², 144²) large, [144², inf) huge
    areas = [0, 1023, 1024, 9215, 9216, 20735, 20736, 50176]
    assert [size_bin(a) for a in areas] == ["small", "small", "medium", "medium", "large", "large", "huge", "huge"]
    got = precision_by_size([True, False, True, True, False, False, True, True], areas)
    assert got == {"small": {"precision": 0.5, "n": 2}, "medium": {"precision": 1.0, "n": 2},
                   "large": {"precision": 0.0, "n": 2}, "huge": {"precision": 1.0, "n": 2}}
    assert precision_by_size([True], [5.0])["huge"] == {"precision": None, "n": 0}


def test_areas_are_in_pixels_of_the_224_frame() -> None:
    g = torch.zeros(2, 224, 224)
    g[0, :32, :32] = 1.0  # 1024 px: the first medium area
    g[1, :10, :10] = 0.5  # 100 px at half relevance: 50
    assert ground_truth_areas(g).tolist() == [1024.0, 50.0]
    small = torch.zeros(1, 112, 112)
    small[0, :16, :16] = 1.0  # 256 px of a 112 frame = 1024 px of a 224 frame
    assert ground_truth_areas(small).tolist() == [1024.0]


def test_map_confidences_by_hand() -> None:
    m = torch.tensor([[[0.1, 0.4], [0.3, 0.2]], [[1.0, 1.0], [1.0, 1.0]]])
    assert map_confidence(m, "peak").tolist() == pytest.approx([0.4, 1.0])
    # ceil(4 / 4) = 1 value: the peak; on a 3x3 map ceil(9 / 4) = 3 values
    assert map_confidence(m, "top_quarter").tolist() == pytest.approx([0.4, 1.0])
    n = torch.arange(9.0).reshape(1, 3, 3)
    assert map_confidence(n, "top_quarter").tolist() == pytest.approx([(8 + 7 + 6) / 3])
    with pytest.raises(ValueError, match="confidence"):
        map_confidence(m, "mean")


def test_open_set_scores_put_it_together() -> None:
    s = open_set_scores([0.9, 0.7, 0.6], [0.8, 0.2, 0.5], [2000, 30000, 500], [0.8, 0.5], name="m")
    assert (s.n_sounding, s.n_non_sounding) == (3, 2)
    assert s.ap == pytest.approx(2 / 3) and s.max_f1 == pytest.approx(2 / 3)  # the five pairs above
    assert s.precision == pytest.approx(2 / 3)  # cIoU 0.8 and 0.5 reach 0.5, 0.2 does not
    assert s.ap_blind == pytest.approx(2 / 5)  # one confidence for all five: TP / N
    assert s.by_size["medium"] == {"precision": 1.0, "n": 1} and s.by_size["huge"] == {"precision": 0.0, "n": 1}
    assert s.by_size["small"] == {"precision": 1.0, "n": 1}
    strict = open_set_scores([0.9, 0.7, 0.6], [0.8, 0.2, 0.5], [1, 1, 1], [0.8, 0.5], OpenSetProtocol(success_inclusive=False))
    assert strict.precision == pytest.approx(1 / 3)


def test_baselines_that_cannot_tell_score_the_prevalence() -> None:
    # two sounding pairs: the left half of a 224 frame (g = 1), and a 112x112 box in the centre;
    # two non-sounding pairs. Whole image: cIoU = Σg / (Σg + |g = 0|) = 1/2 and 1/4 -> one pair
    # localized; one confidence for all four: AP = TP / N = 1/4
    g = torch.zeros(2, 224, 224)
    g[0, :, :112] = 1.0
    g[1, 56:168, 56:168] = 1.0
    base = open_set_baselines(g, 2, seed=0, repeats=3, grid=(8, 8))
    whole = base["whole image"]
    assert whole.precision == pytest.approx(1 / 2)
    assert whole.ap == pytest.approx(1 / 4) and whole.max_f1 == pytest.approx(2 * 0.25 / 1.25)
    centre = base["centre prior"]
    assert centre.n_non_sounding == 2 and centre.ap == pytest.approx(centre.precision * 2 / 4)
    rnd = base["random"]
    assert rnd.repeats == 3 and rnd.confidence == "peak"
    again = open_set_baselines(g, 2, seed=0, repeats=3, grid=(8, 8))["random"]
    assert (again.ap, again.max_f1) == (rnd.ap, rnd.max_f1)  # same seed, same draws


def test_vggss_preset_unites_one_annotators_boxes() -> None:
    # one annotator, two overlapping boxes in a 224 frame: LVS would count the overlap twice and
    # halve everything (consensus 2): g = 0.5 on single cover, 1 on the overlap; VGG-SS: g = 1 on
    # the union, 0 elsewhere
    ann = Annotation(boxes=(((0, 0, 100, 100), (50, 50, 150, 150)),), frame_size=224)
    g = gt_map(ann, "vggss")
    assert float(g.sum()) == 100 * 100 * 2 - 50 * 50 and set(g.unique().tolist()) == {0.0, 1.0}
    lvs = gt_map(ann, "lvs")
    assert float(lvs[0, 0]) == 0.5 and float(lvs[60, 60]) == 1.0
    # a map decreasing row by row: the median rule keeps rows 0..110 (the value at sorted position
    # 224²//2 is row 111's, kept are the values above it). A ∩ G: rows 0-49 cols 0-99 (5000),
    # rows 50-99 cols 0-149 (7500), rows 100-110 cols 50-149 (1100) = 13600; |G| = 17500;
    # |A \ G| = 111*224 - 13600 = 11264 -> cIoU = 13600 / (17500 + 11264), the plain IoU
    heat = np.repeat((224.0 - np.arange(224, dtype=np.float32))[:, None], 224, axis=1)
    expected = 13600 / (17500 + 11264)
    res = evaluate(heat[None], [ann], "vggss", baselines=False, per_annotator=False)
    assert float(res.ciou[0]) == pytest.approx(expected, abs=1e-12)
    assert PRESETS["vggss"].consensus == 1 and PRESETS["vggss"].box_union

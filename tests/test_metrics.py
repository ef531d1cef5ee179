"""Tests of soundloc.metrics: every expected number is worked out by hand in the comments."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundloc.data.types import Annotation
from soundloc.metrics import (
    PRESETS,
    Protocol,
    annotator_ious,
    annotator_maps,
    baseline_scores,
    centre_prior,
    ciou,
    ciou_from_set,
    consensus_map,
    evaluate,
    format_table,
    get_protocol,
    gt_map,
    gt_maps,
    iou_from_set,
    per_annotator_scores,
    predicted_set,
    random_baseline,
    resize_maps,
    scale_box,
    success_and_auc,
    success_curve,
    success_rate,
)

S4 = Protocol(size=4)  # a 4x4 evaluation frame for hand-sized cases (N = 16, median at position 8)


def cols(size: int, lo: int, hi: int) -> torch.Tensor:
    """Bool mask of columns lo:hi of a size x size frame."""
    m = torch.zeros(size, size, dtype=torch.bool)
    m[:, lo:hi] = True
    return m


def ann4(*boxes_per_annotator: tuple) -> Annotation:
    """An annotation in a 4x4 frame (so scaling to a 4x4 evaluation frame is the identity)."""
    return Annotation(boxes=tuple(tuple(b) for b in boxes_per_annotator), frame_size=4)


# ----------------------------------------------------------------------------- ground truth


def test_scale_box_truncates_like_the_protocol() -> None:
    # 224*1/256 = 0.875 -> 0; 224*100/256 = 87.5 -> 87; 224*255/256 = 223.125 -> 223; 256 -> 224
    assert scale_box((1, 100, 255, 256)) == (0, 87, 223, 224)
    # 224*128/256 = 112 exactly
    assert scale_box((128, 128, 128, 128)) == (112, 112, 112, 112)


def test_consensus_map_one_two_three_agreeing_annotators() -> None:
    box = (0, 0, 2, 4)  # columns 0-1, all rows: 8 pixels of a 4x4 frame
    one = consensus_map([box], size=4)
    two = consensus_map([box, box], size=4)
    three = consensus_map([box, box, box], size=4)
    # g = min(count / 2, 1): one annotator -> 0.5, two -> 1, three -> min(1.5, 1) = 1
    assert torch.equal(one, 0.5 * cols(4, 0, 2).float())
    assert torch.equal(two, cols(4, 0, 2).float())
    assert torch.equal(three, cols(4, 0, 2).float())
    # with consensus = 3, two agreeing annotators give 2/3
    assert torch.allclose(consensus_map([box, box], size=4, consensus=3), (2 / 3) * cols(4, 0, 2).float())


def test_consensus_map_overlapping_annotators() -> None:
    # annotator A covers columns 0-1, annotator B columns 1-2: counts per column 1, 2, 1, 0
    g = consensus_map([(0, 0, 2, 4), (1, 0, 3, 4)], size=4)
    expected = torch.tensor([0.5, 1.0, 0.5, 0.0]).expand(4, 4)
    assert torch.equal(g, expected)


def test_several_boxes_of_one_annotator() -> None:
    # One annotator drew (0,0,2,2) and (1,1,3,3): they overlap at pixel row 1, column 1.
    boxes = [[(0, 0, 2, 2), (1, 1, 3, 3)]]
    counted = consensus_map(boxes, size=4)  # LVS: every box adds 1 -> count 2 there -> g = 1
    united = consensus_map(boxes, size=4, box_union=True)  # paper's b_j: union -> count 1 -> 0.5
    expected_united = torch.zeros(4, 4)
    expected_united[0:2, 0:2] = 0.5
    expected_united[1:3, 1:3] = 0.5
    expected_counted = expected_united.clone()
    expected_counted[1, 1] = 1.0
    assert torch.equal(united, expected_united)
    assert torch.equal(counted, expected_counted)


def test_boxes_leaving_the_frame_are_clipped() -> None:
    # (-2, 2, 10, 3): rows 2:3, columns clipped to 0:4 -> the whole row 2
    g = consensus_map([(-2, 2, 10, 3)], size=4)
    expected = torch.zeros(4, 4)
    expected[2, :] = 0.5
    assert torch.equal(g, expected)
    # boxes entirely outside the frame add nothing
    assert torch.equal(consensus_map([(5, 5, 8, 8), (-3, -3, -1, -1)], size=4), torch.zeros(4, 4))


def test_empty_boxes_give_an_empty_map_and_zero_ciou() -> None:
    g = consensus_map([(1, 1, 1, 3), (0, 2, 4, 2)], size=4)  # x1 == x2, y1 == y2: empty
    assert torch.equal(g, torch.zeros(4, 4))
    # nothing to find: cIoU = 0 / (0 + |A|) = 0; nothing predicted either: 0/0 defined as 0
    assert float(ciou_from_set(cols(4, 0, 2), g)) == 0.0
    assert float(ciou_from_set(torch.zeros(4, 4, dtype=torch.bool), g)) == 0.0


def test_gt_map_scales_an_annotation_from_256_to_224() -> None:
    # Two annotators on the left half (0,0,128,256) -> (0,0,112,224): count 2 -> g = 1;
    # the third on the right half (128,0,256,256) -> (112,0,224,224): count 1 -> g = 0.5.
    a = Annotation(boxes=(((0, 0, 128, 256),), ((0, 0, 128, 256),), ((128, 0, 256, 256),)))
    g = gt_map(a)
    assert g.shape == (224, 224)
    assert torch.equal(g[:, :112], torch.ones(224, 112))
    assert torch.equal(g[:, 112:], torch.full((224, 112), 0.5))
    assert torch.equal(gt_maps([a, a]), torch.stack([g, g]))
    maps = annotator_maps(a)
    assert maps.shape == (3, 224, 224)
    assert maps[2].sum() == 112 * 224 and maps[2][:, :112].sum() == 0


def test_bad_boxes_and_sizes_raise() -> None:
    with pytest.raises(ValueError, match=r"box \(3, 0, 1, 2\).*x2 < x1"):
        consensus_map([(3, 0, 1, 2)], size=4)
    with pytest.raises(ValueError, match="box"):
        consensus_map([(0, 3, 1, 2)], size=4)  # y2 < y1
    with pytest.raises(ValueError, match="integers"):
        consensus_map([(0.5, 0, 1, 2)], size=4)
    with pytest.raises(ValueError, match="4 coordinates"):
        consensus_map([[(0, 0, 1)]], size=4)
    with pytest.raises(ValueError, match="size"):
        consensus_map([(0, 0, 1, 1)], size=-4)
    with pytest.raises(ValueError, match="consensus"):
        consensus_map([(0, 0, 1, 1)], size=4, consensus=0.5)
    with pytest.raises(TypeError, match="annotation"):
        gt_map(object())


# ----------------------------------------------------------------------------- cIoU by hand


def test_ciou_one_two_three_annotators_by_hand() -> None:
    a = cols(4, 0, 3)  # predicted set: the left 3 columns, 12 pixels
    box = (0, 0, 2, 4)  # the annotators' box: the left 2 columns, 8 pixels
    # one annotator: g = 0.5 on 8 px. Σ_A g = 4, Σ g = 4, |A \ G| = 12 - 8 = 4 -> 4 / 8 = 0.5
    assert float(ciou_from_set(a, consensus_map([box], size=4))) == 0.5
    # two agree: g = 1 on 8 px. Σ_A g = 8, Σ g = 8, |A \ G| = 4 -> 8 / 12 = 2/3
    assert float(ciou_from_set(a, consensus_map([box, box], size=4))) == pytest.approx(2 / 3, abs=1e-15)
    # three agree: g = min(1.5, 1) = 1 -> the same 2/3
    assert float(ciou_from_set(a, consensus_map([box, box, box], size=4))) == pytest.approx(2 / 3, abs=1e-15)
    # two agree and a third marks column 3 (g = 0.5 on 4 px, outside A):
    # Σ_A g = 8, Σ g = 8 + 2 = 10, |A \ G| = 4 -> 8 / 14 = 4/7
    g = consensus_map([box, box, (3, 0, 4, 4)], size=4)
    assert float(ciou_from_set(a, g)) == pytest.approx(4 / 7, abs=1e-15)


def test_ciou_exact_cover_and_disjoint() -> None:
    g = consensus_map([(0, 0, 2, 4)] * 2, size=4)  # g = 1 on the left 2 columns
    # exactly covered: Σ_A g = 8, Σ g = 8, |A \ G| = 0 -> 1
    assert float(ciou_from_set(cols(4, 0, 2), g)) == 1.0
    # one annotator, exactly covered: 4 / (4 + 0) = 1 as well
    assert float(ciou_from_set(cols(4, 0, 2), consensus_map([(0, 0, 2, 4)], size=4))) == 1.0
    # disjoint (column 3): 0 / (8 + 4) = 0
    assert float(ciou_from_set(cols(4, 3, 4), g)) == 0.0
    # plain IoU with a binary map: A = 3 columns, B = 2 columns -> 8 / 12
    assert float(iou_from_set(cols(4, 0, 3), cols(4, 0, 2))) == pytest.approx(2 / 3, abs=1e-15)


def test_median_threshold_on_a_ramp_covers_a_box_exactly() -> None:
    # h[:, x] = 224 - x: each column one value (224 px). N = 50176, ⌊N/2⌋ = 25088 = 112*224.
    # Ascending, columns 223..112 (values 1..112) fill positions 0..25087, so position 25088 is
    # column 111 (value 113). Kept: values > 113 = columns 0..110, i.e. 111 columns.
    h = (224 - torch.arange(224, dtype=torch.float32)).expand(224, 224)
    g111 = consensus_map([(0, 0, 111, 224)] * 2, size=224)
    assert torch.equal(predicted_set(h), cols(224, 0, 111))
    assert float(ciou(h, g111)) == 1.0
    # against a box one column wider: Σ_A g = 111*224, Σ g = 112*224, |A \ G| = 0 -> 111/112
    g112 = consensus_map([(0, 0, 112, 224)] * 2, size=224)
    assert float(ciou(h, g112)) == pytest.approx(111 / 112, abs=1e-15)
    # `>=` keeps column 111 too: vs the 111-column box Σ_A g = 24864, Σ g = 24864, |A \ G| = 224
    # -> 24864 / 25088 = 111/112
    assert float(ciou(h, g111, protocol=Protocol(inclusive=True))) == pytest.approx(111 / 112, abs=1e-15)


def test_heatmap_at_20x20_and_224x224_give_the_same_answer() -> None:
    # A 20x20 step: columns 0-9 = 1, 10-19 = 0. Bilinear, half-pixel: source column of output
    # column x is s = (x + 0.5) * 20/224 - 0.5. s <= 9 (x <= 105) -> 1; s >= 10 (x >= 118) -> 0;
    # columns 106..117 decrease from 0.991 to 0.009 (value 10 - s). Ascending: 106 zero columns
    # (23744 px), then columns 117..112 (6 * 224 = 1344 px) reach position 25087, so position
    # 25088 is column 111 (s = 9.4554, value 0.5446): kept = columns 0..110, like the ramp.
    h20 = torch.zeros(20, 20)
    h20[:, :10] = 1.0
    h224 = (224 - torch.arange(224, dtype=torch.float32)).expand(224, 224)
    assert torch.equal(predicted_set(h20), cols(224, 0, 111))
    g = consensus_map([(0, 0, 111, 224)] * 2, size=224)
    assert float(ciou(h20, g)) == float(ciou(h224, g)) == 1.0
    assert float(ciou(h20, consensus_map([(0, 0, 112, 224)] * 2))) == pytest.approx(111 / 112, abs=1e-15)


def test_ties_at_the_median() -> None:
    g = consensus_map([(0, 0, 4, 2)] * 2, size=4)  # g = 1 on rows 0-1 (8 px)
    nine_ones = torch.zeros(4, 4)
    nine_ones[:2] = 1.0
    nine_ones[2, 0] = 1.0
    # sorted: zeros at positions 0..6, ones at 7..15; position 8 holds 1 -> keep > 1: nothing
    assert predicted_set(nine_ones, protocol=S4).sum() == 0
    assert float(ciou(nine_ones, g, protocol=S4)) == 0.0
    # `>=` keeps the 9 ones: Σ_A g = 8, Σ g = 8, |A \ G| = 1 -> 8/9
    assert float(ciou(nine_ones, g, protocol=S4.replace(inclusive=True))) == pytest.approx(8 / 9, abs=1e-15)
    # the LVS script's in-place binarisation keeps pixels at the maximum: also 8/9
    assert float(ciou(nine_ones, g, protocol=S4.replace(keep_max=True))) == pytest.approx(8 / 9, abs=1e-15)
    # 7 ones: position 8 holds 0 -> keep > 0: the 7 ones (rows 0 and 1 minus one pixel)
    seven_ones = nine_ones.clone()
    seven_ones[2, 0] = 0.0
    seven_ones[1, 3] = 0.0
    assert predicted_set(seven_ones, protocol=S4).sum() == 7
    # Σ_A g = 7, Σ g = 8, |A \ G| = 0 -> 7/8
    assert float(ciou(seven_ones, g, protocol=S4)) == 7 / 8


def test_constant_heatmaps() -> None:
    g = consensus_map([(0, 0, 2, 4)] * 2, size=4)  # Σ g = 8, 8 pixels with g = 0
    const = torch.full((20, 20), 0.3)
    # normalisation leaves a constant map as it is; the median is 0.3; nothing is > 0.3
    assert float(ciou(const, g, protocol=S4)) == 0.0
    # a fixed τ = 0.2 keeps all 16 pixels: 8 / (8 + 8) = 0.5 (the whole image)
    assert float(ciou(const, g, threshold=0.2, protocol=S4)) == 0.5
    # τ = 0.5 keeps nothing
    assert float(ciou(const, g, threshold=0.5, protocol=S4)) == 0.0


def test_fixed_threshold_applies_to_the_normalised_map() -> None:
    # values 10..25 on a 4x4 map -> normalised (v - 10) / 15. τ = 0.5 keeps v > 17.5: 18..25,
    # i.e. the last 8 values = rows 2-3. g = 1 on rows 2-3 -> cIoU 1.
    h = torch.arange(10, 26, dtype=torch.float32).reshape(4, 4)
    g = consensus_map([(0, 2, 4, 4)] * 2, size=4)
    assert float(ciou(h, g, threshold=0.5, protocol=S4)) == 1.0
    # the median rule: position 8 holds 18; keep > 18: 19..25 (7 px) -> 7 / 8
    assert float(ciou(h, g, protocol=S4)) == 7 / 8


# ----------------------------------------------------------------------------- resizing


def test_bilinear_half_pixel_resize_2x2_to_4x4_by_hand() -> None:
    # 1-D, 2 -> 4, half-pixel: source coordinate s = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
    # 1.25, clamped to [0, 1]: weights on (a0, a1) are (1, 0), (.75, .25), (.25, .75), (0, 1).
    # For [[0, 1], [2, 3]] = x + 2y the result is xs[j] + 2 * ys[i] with xs = ys = [0, .25, .75, 1].
    src = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    t = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = t[None, :] + 2 * t[:, None]
    assert torch.allclose(resize_maps(src, 4), expected, atol=1e-7)
    # align_corners: s = d * (2 - 1) / (4 - 1) = 0, 1/3, 2/3, 1
    t3 = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    assert torch.allclose(resize_maps(src, 4, Protocol(align_corners=True)), t3[None, :] + 2 * t3[:, None], atol=1e-6)
    # bicubic differs from bilinear here (cubic kernel a = -0.75 overshoots at the border)
    assert not torch.allclose(resize_maps(src, 4, PRESETS["bicubic"]), expected, atol=1e-3)


# ----------------------------------------------------------------------------- success rate and AUC


def test_success_and_auc_by_hand() -> None:
    cious = [0.0, 0.5, 1.0]
    # success at t: 1 at t = 0; 2/3 for t = 0.05..0.5 (10 points); 1/3 for t = 0.55..1.0 (10).
    # trapezoid, step 0.05: 0.05 * (1/2 + 10 * 2/3 + 9 * 1/3 + (1/3)/2) = 0.05 * 31/3 = 31/60
    sr, auc = success_and_auc(cious)
    assert sr == pytest.approx(2 / 3, abs=1e-15)
    assert auc == pytest.approx(31 / 60, abs=1e-12)
    # success as `>`: 2/3 for t = 0..0.45 (10 points), 1/3 for t = 0.5..0.95 (10), 0 at t = 1:
    # 0.05 * ((2/3)/2 + 9 * 2/3 + 10 * 1/3 + 0/2) = 0.05 * 29/3 = 29/60; success(> 0.5) = 1/3
    sr, auc = success_and_auc(cious, PRESETS["strict-success"])
    assert sr == pytest.approx(1 / 3, abs=1e-15)
    assert auc == pytest.approx(29 / 60, abs=1e-12)
    # one perfect sample: the curve is 1 everywhere -> AUC 1; all zeros: only t = 0 -> 0.025
    assert success_and_auc([1.0])[1] == pytest.approx(1.0, abs=1e-12)
    assert success_and_auc([0.0, 0.0])[1] == pytest.approx(0.025, abs=1e-12)
    assert success_rate([0.49, 0.5, 0.7]) == pytest.approx(2 / 3, abs=1e-15)


def test_auc_thresholds_are_lvs_floats() -> None:
    # LVS computes the thresholds as 0.05 * i: 0.05 * 3 = 0.15000000000000002 > 3/20, so a cIoU
    # of exactly 0.15 fails at that point of the curve; 0.05 * 10 == 0.5 exactly.
    t, rates = success_curve([3 / 20])
    assert t.tolist() == [0.05 * i for i in range(21)]
    assert rates[2] == 1.0 and rates[3] == 0.0
    assert success_curve([0.5])[1][10] == 1.0


def test_success_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="NaN"):
        success_and_auc([0.5, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        success_and_auc([])
    with pytest.raises(ValueError, match="1-D"):
        success_and_auc(torch.zeros(2, 2))


# ----------------------------------------------------------------------------- batching, errors


def test_batched_equals_per_sample() -> None:
    gen = torch.Generator().manual_seed(3)
    h = torch.rand(5, 20, 20, generator=gen)
    boxes = [[(10 * i, 20, 100 + 10 * i, 200)] * (1 + i % 3) for i in range(5)]
    g = torch.stack([consensus_map(b) for b in boxes])
    batched = ciou(h, g)
    single = torch.stack([ciou(h[i], g[i]) for i in range(5)])
    assert batched.shape == (5,) and batched.dtype == torch.float64
    assert torch.equal(batched, single)
    # a shared [H, W] ground truth broadcasts over the batch
    assert torch.equal(ciou(h, g[0]), torch.stack([ciou(h[i], g[0]) for i in range(5)]))


def test_bad_heatmaps_raise() -> None:
    g = consensus_map([(0, 0, 2, 2)], size=4)
    bad = torch.rand(4, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="heatmap.*NaN"):
        ciou(bad, g)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="heatmap"):
        ciou(bad, g)
    with pytest.raises(ValueError, match=r"heatmap must be \[H, W\]"):
        ciou(torch.rand(4), g)
    with pytest.raises(ValueError, match=r"heatmap must be \[H, W\]"):
        ciou(torch.rand(1, 1, 4, 4), g)
    with pytest.raises(TypeError, match="heatmap"):
        ciou(torch.ones(4, 4, dtype=torch.bool), g)
    with pytest.raises(TypeError, match="heatmap"):
        ciou([[0.0, 1.0]], g)
    with pytest.raises(ValueError, match="batch sizes"):
        ciou(torch.rand(3, 4, 4), torch.stack([g, g]))
    with pytest.raises(ValueError, match="gt_map"):
        ciou(torch.rand(4, 4), 2 * g + 1)
    with pytest.raises(ValueError, match="threshold"):
        ciou(torch.rand(4, 4), g, threshold=1.5)


def test_protocol_validation_and_presets() -> None:
    assert get_protocol() == Protocol.lvs() == Protocol()
    assert get_protocol("fixed-0.5").threshold == 0.5
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("nope")
    with pytest.raises(ValueError, match="threshold"):
        Protocol(threshold="mean")
    with pytest.raises(ValueError, match="consensus"):
        Protocol(consensus=0)
    with pytest.raises(ValueError, match="size"):
        Protocol(size=-1)
    p = Protocol.lvs()
    assert (p.size, p.consensus, p.threshold, p.inclusive, p.resize, p.align_corners) == (224, 2, "median", False, "bilinear", False)
    assert (p.success_threshold, p.success_inclusive, p.auc_points) == (0.5, True, 21)


# ----------------------------------------------------------------------------- Table 3, baselines


def test_per_annotator_iou_by_hand() -> None:
    a = torch.stack([cols(4, 0, 2), cols(4, 0, 2)])  # both samples keep the left 2 columns (8 px)
    anns = [
        # annotator 1: left 2 columns -> IoU 8/8 = 1; annotator 2: column 0 -> 4/8 = 0.5;
        # annotator 3: right 2 columns -> 0/16 = 0
        ann4([(0, 0, 2, 4)], [(0, 0, 1, 4)], [(2, 0, 4, 4)]),
        # annotator 1: column 0 plus rows 0-1 of column 1 (union of two boxes, 6 px) -> 6/8;
        # annotator 2: no box -> 0 / 8 = 0; no third annotator
        ann4([(0, 0, 1, 4), (0, 0, 2, 2)], []),
    ]
    iou = annotator_ious(a, anns, 4)
    assert iou[0].tolist() == [1.0, 0.5, 0.0]
    assert iou[1, :2].tolist() == [0.75, 0.0] and math.isnan(iou[1, 2])
    scores = per_annotator_scores(a, anns, S4)
    assert scores.count == [2, 2, 1]
    # annotator 1: IoUs 1 and 0.75 -> success 1; annotator 2: 0.5 and 0 -> 1/2; annotator 3: 0 -> 0
    assert scores.success == [1.0, 0.5, 0.0]
    # AUC of annotator 3 (one IoU of 0): only t = 0 succeeds -> 0.05 * 1/2 = 0.025
    assert scores.auc[2] == pytest.approx(0.025, abs=1e-12)
    assert scores.mean_success == pytest.approx(0.5)
    # cross-check against plain IoU of the annotator maps
    m = annotator_maps(anns[0], 4)
    assert torch.equal(iou[0], iou_from_set(a[0].expand(3, 4, 4), m.bool()))


def test_baselines_by_hand() -> None:
    # g = 1 on the left half (two annotators), 0 on the right: whole image -> 25088 / (25088 +
    # 25088) = 0.5, a success (>= 0.5); AUC: success for t = 0..0.5 (11 points) ->
    # 0.05 * (1/2 + 10) = 0.525.
    g = consensus_map([(0, 0, 112, 224)] * 2).expand(3, 224, 224)
    base = baseline_scores(g, seed=0, repeats=2)
    assert base["whole image"].success == 1.0
    assert base["whole image"].auc == pytest.approx(0.525, abs=1e-12)
    # centre prior: the kept set is a disc symmetric about the middle column line, so half of
    # its K pixels fall in the left half: cIoU = (K/2) / (25088 + K/2), K just under 25088 -> ~1/3
    kept = predicted_set(centre_prior(224))
    k = int(kept.sum())
    assert 24000 < k < 25088 and int(kept[:, :112].sum()) * 2 == k
    centre = float(ciou_from_set(kept, g[0]))
    assert centre == pytest.approx((k / 2) / (25088 + k / 2), abs=1e-12)
    assert base["centre prior"].success == 0.0  # 1/3 < 0.5
    r = base["random"]
    assert r.repeats == 2 and 0.0 <= r.auc <= 1.0


def test_random_baseline_is_reproducible_per_seed() -> None:
    g = consensus_map([(0, 0, 150, 150)] * 2).expand(4, 224, 224)
    s1, per1 = random_baseline(g, seed=7, repeats=3)
    s2, per2 = random_baseline(g, seed=7, repeats=3)
    _, per3 = random_baseline(g, seed=8, repeats=3)
    assert torch.equal(per1, per2) and s1 == s2
    assert not torch.equal(per1, per3)
    # mean ± sample std of the per-repeat numbers
    assert s1.auc == pytest.approx(float(per1[:, 1].mean()))
    assert s1.auc_std == pytest.approx(float(np.std(per1[:, 1].numpy(), ddof=1)))


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_matches_the_parts_and_prints() -> None:
    gen = torch.Generator().manual_seed(0)
    anns = [
        Annotation(boxes=(((0, 0, 128, 256),), ((0, 0, 128, 256),), ((128, 0, 256, 256),))),
        Annotation(boxes=(((40, 40, 200, 200),), ((50, 30, 210, 220),), ((0, 0, 256, 256),))),
        Annotation(boxes=(((0, 0, 10, 10),), ((100, 100, 140, 140),))),
    ]
    h = torch.rand(3, 20, 20, generator=gen)
    res = evaluate(h, anns, seed=1, random_repeats=2)
    expected = ciou(h, gt_maps(anns))
    assert torch.equal(res.ciou, expected)
    assert (res.success, res.auc) == success_and_auc(expected)
    assert res.annotators is not None and res.annotators.count == [3, 3, 2]
    assert set(res.baselines) == {"whole image", "centre prior", "random"}
    # heatmaps of different resolutions in a list give the same result as one at a time
    mixed = [h[0], resize_maps(h[1], 224), h[2]]
    res2 = evaluate(mixed, anns, baselines=False)
    assert torch.equal(res2.ciou, expected)
    # mappings by id
    res3 = evaluate({"a": h[0], "b": h[1]}, {"a": anns[0], "b": anns[1], "c": anns[2]}, baselines=False)
    assert res3.ids == ["a", "b"] and torch.equal(res3.ciou, expected[:2])
    with pytest.raises(ValueError, match="without annotation.*'z'"):
        evaluate({"z": h[0]}, {"a": anns[0]}, baselines=False)
    with pytest.raises(ValueError, match="3 heatmaps but 2 annotations"):
        evaluate(h, anns[:2], baselines=False)
    table = format_table(res)
    for word in ("model", "whole image", "centre prior", "random", "±", "annotator 3", "average", "lvs"):
        assert word in table
    d = res.to_dict()
    assert d["n"] == 3 and d["protocol"]["name"] == "lvs" and len(d["curve"]["success"]) == 21


# ----------------------------------------------------------------------------- a second implementation


def _np_resize_half_pixel(x: np.ndarray, out: int) -> np.ndarray:
    """Bilinear, half-pixel centres, border clamped, float64: written from the definition."""

    def axis_weights(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.maximum((np.arange(out) + 0.5) * n_in / out - 0.5, 0.0)
        i0 = np.floor(s).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, s - i0

    r0, r1, wr = axis_weights(x.shape[0])
    c0, c1, wc = axis_weights(x.shape[1])
    rows = x[r0] * (1 - wr)[:, None] + x[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc)[None, :] + rows[:, c1] * wc[None, :]


def _np_lvs_ciou(h: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> float:
    """The protocol step by step in NumPy float64: resize, normalise, sort, threshold, cIoU."""
    g = np.zeros((224, 224))
    for x1, y1, x2, y2 in boxes:
        g[y1:y2, x1:x2] += 1
    g = np.minimum(g / 2, 1)
    p = _np_resize_half_pixel(h.astype(np.float64), 224)
    p = (p - p.min()) / (p.max() - p.min())
    thr = np.sort(p.ravel())[p.size // 2]
    a = p > thr
    return float((a * g).sum() / (g.sum() + (a & (g == 0)).sum()))


def test_agrees_with_an_independent_numpy_implementation() -> None:
    rng = np.random.default_rng(5)
    maps, anns, ref = [], [], []
    for _ in range(6):
        h = rng.random((20, 20)).astype(np.float32)
        boxes = []
        for _ in range(3):
            x1, y1 = (int(v) for v in rng.integers(0, 150, 2))
            boxes.append((x1, y1, x1 + int(rng.integers(30, 120)), y1 + int(rng.integers(30, 120))))
        maps.append(h)
        anns.append(boxes)
        ref.append(_np_lvs_ciou(h, boxes))
    got = ciou(np.stack(maps), torch.stack([consensus_map(b) for b in anns]))
    # float32 (torch) vs float64 (here) resizing may reorder two pixels within rounding of the
    # threshold; one pixel moves a cIoU by about 1 / 25000
    assert np.allclose(got.numpy(), ref, atol=2e-4)
    # the AUC by NumPy's trapezoid over the same 21 thresholds
    t = np.array([0.05 * i for i in range(21)])
    curve = np.array([(np.array(ref) >= ti).mean() for ti in t])
    assert success_and_auc(ref)[1] == pytest.approx(float(np.trapezoid(curve, t)), abs=1e-12)


def test_evaluate_warns_about_empty_ground_truth() -> None:
    anns = [Annotation(boxes=(((0, 0, 0, 10),), ((300, 300, 400, 400),))), Annotation(boxes=(((0, 0, 256, 256),),) * 2)]
    ramp = (224 - torch.arange(224, dtype=torch.float32)).expand(2, 224, 224)  # keeps 111 columns
    with pytest.warns(UserWarning, match="1 sample.*empty consensus map"):
        res = evaluate(ramp, anns, baselines=False)
    # empty ground truth: cIoU 0. The second has g = 1 everywhere: Σ_A g = |A| = 111 * 224,
    # Σ g = 224 * 224, |A \ G| = 0 -> 111/224 (keeping half the frame caps cIoU at 1/2 here)
    assert res.ciou.tolist() == [0.0, 111 / 224]
    d = res.to_dict()
    assert d["per_annotator"]["iou"][1] == [pytest.approx(float(res.annotators.iou[1, 0])), pytest.approx(float(res.annotators.iou[1, 1]))]

"""Tests of soundloc.losses against values worked out by hand from the paper's equations."""
from __future__ import annotations

import math

import pytest
import torch

from soundloc.losses import (
    BatchShare,
    attention_loss,
    normalize_gt,
    sample_negatives,
    scheme_loss,
    semi_supervised_loss,
    shuffle_negatives,
    triplet_distances,
    unsupervised_loss,
)


def _paper_lu(d_pos: float, d_neg: float) -> float:
    """L_U for one row written out: softmax of two numbers, then the two squared errors."""
    e_pos, e_neg = math.exp(d_pos), math.exp(d_neg)
    big_d_pos = e_pos / (e_pos + e_neg)
    big_d_neg = e_neg / (e_pos + e_neg)
    return (big_d_pos - 0.0) ** 2 + (big_d_neg - 1.0) ** 2


# ---------------------------------------------------------------------------------- L_U


def test_unsupervised_loss_hand_computed() -> None:
    # Row 0: f_v = 0, f_pos = (3, 4) -> d+ = 5; f_neg = (6, 8) -> d- = 10.
    # Row 1: f_v = (1, 1), f_pos = (1, 3) -> d+ = 2; f_neg = (3, 1) -> d- = 2 (tie -> 0.5).
    f_v = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    f_pos = torch.tensor([[3.0, 4.0], [1.0, 3.0]], dtype=torch.float64)
    f_neg = torch.tensor([[6.0, 8.0], [3.0, 1.0]], dtype=torch.float64)
    d_pos, d_neg = triplet_distances(f_v, f_pos, f_neg)
    assert d_pos.tolist() == pytest.approx([5.0, 2.0])
    assert d_neg.tolist() == pytest.approx([10.0, 2.0])
    row0 = _paper_lu(5.0, 10.0)
    # Closed form: D+ = 1 / (1 + e^5), and L_U = 2 D+^2.
    assert row0 == pytest.approx(2.0 / (1.0 + math.exp(5.0)) ** 2)
    per_row = unsupervised_loss(f_v, f_pos, f_neg, reduction="none")
    assert per_row.tolist() == pytest.approx([row0, 0.5], rel=1e-12)
    assert unsupervised_loss(f_v, f_pos, f_neg).item() == pytest.approx((row0 + 0.5) / 2, rel=1e-12)
    assert unsupervised_loss(f_v, f_pos, f_neg, reduction="sum").item() == pytest.approx(row0 + 0.5, rel=1e-12)


def test_unsupervised_loss_limits() -> None:
    f_v = torch.zeros(1, 3, dtype=torch.float64)
    near = torch.tensor([[0.1, 0.0, 0.0]], dtype=torch.float64)
    far = torch.tensor([[0.0, 60.0, 0.0]], dtype=torch.float64)
    # d+ << d- : the loss vanishes (2 / (1 + e^59.9)^2 ~ 1e-52).
    assert unsupervised_loss(f_v, near, far).item() < 1e-40
    # d+ >> d- : the loss tends to its maximum 2 (D+ -> 1, D- -> 0).
    assert unsupervised_loss(f_v, far, near).item() == pytest.approx(2.0, abs=1e-12)
    # identical positive and negative: 0.5 whatever the distance.
    assert unsupervised_loss(f_v, far, far).item() == pytest.approx(0.5)


def test_unsupervised_loss_gradient_matches_closed_form() -> None:
    # L = 2 s^2 with s = sigmoid(d+ - d-): dL/dd+ = 4 s^2 (1 - s) = -dL/dd-,
    # and dd/df_v = (f_v - f) / d.
    f_v = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    f_pos = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    f_neg = torch.tensor([[-1.0, 2.0, 0.0]], dtype=torch.float64)
    unsupervised_loss(f_v, f_pos, f_neg).backward()
    v, p, n = f_v.detach()[0], f_pos[0], f_neg[0]
    d_pos, d_neg = (v - p).norm().item(), (v - n).norm().item()
    s = 1.0 / (1.0 + math.exp(-(d_pos - d_neg)))
    g = 4 * s * s * (1 - s)
    expected = g * (v - p) / d_pos - g * (v - n) / d_neg
    assert torch.allclose(f_v.grad[0], expected, atol=1e-12)


def test_unsupervised_loss_zero_distance_has_finite_gradient() -> None:
    f = torch.ones(2, 4, requires_grad=True)
    loss = unsupervised_loss(f, f.detach().clone(), torch.zeros(2, 4))
    loss.backward()
    assert torch.isfinite(f.grad).all()


def test_unsupervised_loss_bad_inputs_name_the_argument() -> None:
    good = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="f_pos"):
        unsupervised_loss(good, torch.zeros(3, 3), good)
    with pytest.raises(ValueError, match="f_neg"):
        unsupervised_loss(good, good, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="f_v"):
        unsupervised_loss(torch.zeros(2, 3, dtype=torch.long), good, good)
    with pytest.raises(ValueError, match="f_v"):
        unsupervised_loss(torch.zeros(3), good, good)
    with pytest.raises(ValueError, match="reduction"):
        unsupervised_loss(good, good, good, reduction="avg")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- L_S


def test_attention_loss_hand_computed() -> None:
    # 2x2 grid, logits (0, ln 3, 0, 0) -> alpha = (1/6, 1/2, 1/6, 1/6).
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]], dtype=torch.float64)
    one_cell = torch.tensor([[[0.0, 7.0], [0.0, 0.0]]], dtype=torch.float64)  # normalised -> (0,1,0,0)
    assert attention_loss(logits, one_cell).item() == pytest.approx(math.log(2.0))
    two_cells = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)  # -> (1/2, 1/2, 0, 0)
    expected = -(0.5 * math.log(1 / 6) + 0.5 * math.log(1 / 2))
    assert attention_loss(logits, two_cells).item() == pytest.approx(expected)
    # uniform attention: -sum g log(1/4) = log 4 for any normalised g.
    assert attention_loss(torch.zeros(1, 2, 2), torch.rand(1, 2, 2) + 0.1).item() == pytest.approx(math.log(4.0), rel=1e-6)
    # From probabilities instead of logits: same value.
    alpha = torch.tensor([[[1 / 6, 1 / 2], [1 / 6, 1 / 6]]], dtype=torch.float64)
    assert attention_loss(alpha, two_cells, from_logits=False).item() == pytest.approx(expected)


def test_attention_loss_unlabelled_rows_contribute_nothing() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    gt = torch.zeros(3, 4, 4, dtype=torch.float64)
    gt[0, 1:3, 1:3] = 1.0
    gt[2] = torch.rand(4, 4, dtype=torch.float64)  # garbage on an unlabelled row is ignored too
    has_gt = torch.tensor([True, False, False])
    loss = attention_loss(logits, gt, has_gt, reduction="labelled_mean")
    # Only row 0 counts; labelled_mean divides by the one labelled row.
    la = torch.log_softmax(logits.detach()[0].flatten(), 0)
    expected = -(0.25 * la[torch.tensor([5, 6, 9, 10])]).sum().item()
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad[1:], torch.zeros_like(logits.grad[1:]))
    assert logits.grad[0].abs().sum() > 0
    per_row = attention_loss(logits, gt, has_gt, reduction="none")
    assert per_row[1:].tolist() == [0.0, 0.0]
    assert attention_loss(logits, gt, has_gt, reduction="batch_mean").item() == pytest.approx(expected / 3)


def test_default_weighting_is_the_papers_batch_mean() -> None:
    # A batch of 4 whose rows 0 and 2 are labelled, on a 2x2 grid. Row 0: uniform logits and a
    # ground truth on one cell -> L_S = -log(1/4) = log 4. Row 2: logits (log 2, 0, 0, 0), so
    # alpha = (2/5, 1/5, 1/5, 1/5), and a ground truth on cells 0 and 1 -> L_S = -(log(2/5) +
    # log(1/5)) / 2. The paper's lambda L_S per sample, averaged over the whole batch of 4:
    l0 = math.log(4)
    l2 = -(math.log(2 / 5) + math.log(1 / 5)) / 2
    logits = torch.zeros(4, 2, 2, dtype=torch.float64)
    logits[2, 0, 0] = math.log(2)
    gt = torch.zeros(4, 2, 2, dtype=torch.float64)
    gt[0, 1, 1] = 1.0
    gt[2, 0, :] = 1.0
    has_gt = torch.tensor([True, False, True, False])
    assert attention_loss(logits, gt, has_gt).item() == pytest.approx((l0 + l2) / 4)
    assert attention_loss(logits, gt, has_gt, reduction="labelled_mean").item() == pytest.approx((l0 + l2) / 2)
    # the semi-supervised total and the trainer's default use the same weighting
    f = torch.zeros(4, 3, dtype=torch.float64)
    terms = semi_supervised_loss(f, f, f, logits, gt, has_gt)
    assert terms.l_s.item() == pytest.approx((l0 + l2) / 4)
    assert terms.total.item() == pytest.approx(0.5 + (l0 + l2) / 4)  # L_U = 2 (1/2)^2 at d+ = d-
    from soundloc.train import TrainConfig

    assert TrainConfig().attention_reduction == "batch_mean"


def test_attention_loss_no_labelled_rows_is_zero_without_gradient() -> None:
    logits = torch.randn(2, 3, 3, requires_grad=True)
    loss = attention_loss(logits, torch.zeros(2, 3, 3), torch.tensor([False, False]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_attention_loss_bad_inputs() -> None:
    logits = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match="gt_attention"):
        attention_loss(logits, torch.zeros(2, 3, 3), torch.tensor([True, False]))  # empty labelled mask
    with pytest.raises(ValueError, match="gt_attention"):
        attention_loss(logits, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="gt_attention"):
        attention_loss(logits, -torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match="has_gt"):
        attention_loss(logits, torch.ones(2, 3, 3), torch.tensor([True]))
    with pytest.raises(TypeError, match="logits"):
        attention_loss(torch.zeros(2, 3, 3, dtype=torch.int64), torch.ones(2, 3, 3))


def test_normalize_gt_rows_sum_to_one() -> None:
    gt = torch.tensor([[0.0, 2.0, 6.0], [0.0, 0.0, 0.0]])
    out = normalize_gt(gt, torch.tensor([True, False]))
    assert out.tolist() == [[0.0, 0.25, 0.75], [0.0, 0.0, 0.0]]


# ------------------------------------------------------------------------- semi-supervised


def test_semi_supervised_total_and_lambda_zero() -> None:
    torch.manual_seed(1)
    f_v = torch.randn(4, 5, requires_grad=True)
    f_pos, f_neg = torch.randn(4, 5), torch.randn(4, 5)
    logits = torch.randn(4, 2, 2, requires_grad=True)
    gt = torch.zeros(4, 2, 2)
    gt[:2, 0, 0] = 1.0
    has_gt = torch.tensor([True, True, False, False])
    terms = semi_supervised_loss(f_v, f_pos, f_neg, logits, gt, has_gt, lam=1.0)
    l_u = unsupervised_loss(f_v, f_pos, f_neg)
    la = torch.log_softmax(logits.reshape(4, 4), 1)
    l_s = -(la[0, 0] + la[1, 0]) / 4  # two labelled rows, averaged over the batch of 4 (the paper's)
    assert terms.l_u.item() == pytest.approx(l_u.item())
    assert terms.l_s.item() == pytest.approx(l_s.item(), rel=1e-6)
    assert terms.total.item() == pytest.approx(l_u.item() + l_s.item(), rel=1e-6)
    half = semi_supervised_loss(f_v, f_pos, f_neg, logits, gt, has_gt, lam=0.5)
    assert half.total.item() == pytest.approx(l_u.item() + 0.5 * l_s.item(), rel=1e-6)
    zero = semi_supervised_loss(f_v, f_pos, f_neg, logits, gt, has_gt, lam=0.0)
    assert zero.total.item() == pytest.approx(l_u.item())
    zero.total.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))  # L_S carries no gradient at λ = 0
    assert f_v.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="lam"):
        semi_supervised_loss(f_v, f_pos, f_neg, logits, gt, has_gt, lam=-1.0)


# ------------------------------------------------------------------------------- the schemes


def _two_rows() -> tuple[torch.Tensor, ...]:
    """Two rows whose terms are known by hand: f_v = 0, own sounds at distance 5 and 2, the
    negatives (the other row's sound) at 2 and 5; row 0 annotated on cell 0 of a 2-cell grid
    whose logits are (log 3, 0): α = (3/4, 1/4), so L_S(row 0) = log(4/3)."""
    f_v = torch.zeros(2, 2, dtype=torch.float64)
    f_s = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]], dtype=torch.float64)
    gt = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    return f_v, f_s, f_s.flip(0), logits, gt, torch.tensor([True, False])


def test_scheme_loss_per_scheme_by_hand() -> None:
    f_v, f_s, f_neg, logits, gt, has_gt = _two_rows()
    l_u = (_paper_lu(5.0, 2.0) + _paper_lu(2.0, 5.0)) / 2
    l_s = math.log(4 / 3) / 2  # the paper's batch mean: one annotated row of two
    u = scheme_loss("unsupervised", f_v, f_s, f_neg, logits, gt, has_gt)
    assert u.l_s is None and u.total.item() == pytest.approx(l_u) and u.l_u.item() == pytest.approx(l_u)
    s = scheme_loss("supervised", f_v, f_s, None, logits, gt, has_gt)
    assert s.l_u is None and s.total.item() == pytest.approx(l_s)
    semi = scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, has_gt, lam=0.5)
    assert semi.total.item() == pytest.approx(l_u + 0.5 * l_s)
    labelled_mean = scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, has_gt,
                                attention_reduction="labelled_mean")
    assert labelled_mean.l_s.item() == pytest.approx(math.log(4 / 3))
    # no annotated row: L_U alone, or a zero without gradient for the supervised scheme
    none = torch.tensor([False, False])
    assert scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, none).l_s is None
    empty = scheme_loss("supervised", f_v, f_s, None, logits, gt, none)
    assert empty.total.item() == 0.0 and not empty.total.requires_grad
    with pytest.raises(ValueError, match="negatives"):
        scheme_loss("unsupervised", f_v, f_s, None, logits, gt, has_gt)
    with pytest.raises(ValueError, match="grid"):
        scheme_loss("supervised", f_v, f_s, None, logits, torch.zeros(2, 3, dtype=torch.float64), has_gt)
    with pytest.raises(ValueError, match="lam"):
        scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, has_gt, lam=-1.0)


def test_a_batch_share_weighs_each_term() -> None:
    # a part of a global batch: each term times its weight; L_S enters as an exact zero with a
    # gradient path where annotated pairs are elsewhere only
    f_v, f_s, f_neg, logits, gt, has_gt = _two_rows()
    whole = scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, has_gt, lam=0.5)
    part = scheme_loss("semi_supervised", f_v, f_s, f_neg, logits, gt, has_gt, lam=0.5,
                       share=BatchShare(l_u=2.0, l_s=3.0, labelled_anywhere=True))
    assert part.l_u.item() == pytest.approx(2 * whole.l_u.item())
    assert part.l_s.item() == pytest.approx(3 * whole.l_s.item())
    assert part.total.item() == pytest.approx(2 * whole.l_u.item() + 0.5 * 3 * whole.l_s.item())
    grads = logits.clone().requires_grad_(True)
    elsewhere = scheme_loss("supervised", f_v, f_s, None, grads, gt, torch.tensor([False, False]),
                            share=BatchShare(labelled_anywhere=True))
    assert elsewhere.l_s.item() == 0.0 and elsewhere.total.requires_grad
    elsewhere.total.backward()
    assert torch.equal(grads.grad, torch.zeros_like(grads))


# ------------------------------------------------------------------------------- negatives


def test_sample_negatives_other_row_uniform_and_seeded() -> None:
    b = 4
    draws = torch.stack([sample_negatives(b, torch.Generator().manual_seed(s)) for s in range(3000)])
    assert (draws != torch.arange(b)).all()
    assert draws.min() >= 0 and draws.max() < b
    # Each of the other 3 rows is chosen with probability 1/3 (binomial sd ~ 0.0086).
    for i in range(b):
        freqs = torch.bincount(draws[:, i], minlength=b).double() / len(draws)
        assert freqs[i] == 0
        others = [j for j in range(b) if j != i]
        assert torch.allclose(freqs[others], torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.04)
    a = sample_negatives(10, torch.Generator().manual_seed(7))
    c = sample_negatives(10, torch.Generator().manual_seed(7))
    assert torch.equal(a, c)
    assert sample_negatives(2, torch.Generator().manual_seed(3)).tolist() == [1, 0]


def test_sample_negatives_rejects_batch_of_one() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        sample_negatives(1)
    with pytest.raises(TypeError, match="batch_size"):
        sample_negatives(2.0)  # type: ignore[arg-type]


def test_shuffle_negatives_matches_indices() -> None:
    f_s = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    idx = sample_negatives(6, torch.Generator().manual_seed(5))
    neg = shuffle_negatives(f_s, torch.Generator().manual_seed(5))
    assert torch.equal(neg, f_s[idx])
    assert not (neg == f_s).all(dim=1).any()

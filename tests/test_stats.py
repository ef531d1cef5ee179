"""The tests over seeds (soundloc.stats) against values from printed tables and by hand."""
from __future__ import annotations

import math

import pytest

from soundloc.stats import conclude, incomplete_beta, mean_ci, paired_t_test, sign_test, t_ppf, t_sf, tost


def test_t_distribution_matches_printed_critical_values() -> None:
    # two-sided critical values of Student's t from a printed table (e.g. Fisher & Yates):
    # df 11: 2.201 (0.05), 3.106 (0.01); df 4: 2.776 (0.05); df 30: 2.042 (0.05)
    for t, df, p in ((2.201, 11, 0.05), (3.106, 11, 0.01), (2.776, 4, 0.05), (2.042, 30, 0.05)):
        assert 2 * t_sf(t, df) == pytest.approx(p, abs=2e-4)
    # df 1 is the Cauchy distribution: P(T > 1) = 1/4 exactly; df 2 has P(T > t) = (1 - t / sqrt(2 + t^2)) / 2
    assert t_sf(1.0, 1) == pytest.approx(0.25, abs=1e-12)
    assert t_sf(1.5, 2) == pytest.approx(0.5 * (1 - 1.5 / math.sqrt(2 + 1.5 ** 2)), abs=1e-12)
    assert t_sf(0.0, 7) == 0.5 and t_sf(-1.0, 1) == pytest.approx(0.75)


def test_incomplete_beta_by_hand() -> None:
    # I_x(1, 1) = x;  I_x(2, 3) = sum_{j=2}^{4} C(4, j) x^j (1-x)^(4-j) (binomial identity)
    assert incomplete_beta(0.3, 1, 1) == pytest.approx(0.3, abs=1e-14)
    x = 0.37
    by_hand = sum(math.comb(4, j) * x ** j * (1 - x) ** (4 - j) for j in range(2, 5))
    assert incomplete_beta(x, 2, 3) == pytest.approx(by_hand, abs=1e-13)
    assert incomplete_beta(0.9, 2, 3) == pytest.approx(sum(math.comb(4, j) * 0.9 ** j * 0.1 ** (4 - j) for j in range(2, 5)), abs=1e-13)
    with pytest.raises(ValueError, match="x must be"):
        incomplete_beta(1.5, 1, 1)


def test_paired_t_by_hand() -> None:
    d = [1.0, 2.0, 3.0]  # mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3, df 2
    r = paired_t_test(d)
    t = 2 * math.sqrt(3)
    assert r["t"] == pytest.approx(t) and r["df"] == 2 and r["sd"] == pytest.approx(1.0)
    assert r["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)  # df 2 closed form, two-sided
    with pytest.raises(ValueError, match="at least two"):
        paired_t_test([1.0])


def test_sign_test_by_hand() -> None:
    # 10 of 12 positive: p = 2 (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096
    assert sign_test([1.0] * 10 + [-1.0] * 2)["p"] == pytest.approx(158 / 4096)
    # zeros are dropped: 3 positive of 3 -> 2 / 8
    r = sign_test([0.5, 0.0, 0.2, 0.1])
    assert (r["n"], r["n_positive"], r["p"]) == (3, 3, 0.25)
    assert sign_test([1.0, -1.0])["p"] == 1.0


def test_tost_and_conclusions() -> None:
    d = [1.0, 2.0, 3.0]
    # against +delta = 3: t = (2 - 3) / (1 / sqrt 3) = -sqrt 3; p_upper = P(T < -sqrt 3) with df 2
    e = tost(d, 3.0)
    t = math.sqrt(3)
    assert e["p_upper"] == pytest.approx(0.5 * (1 - t / math.sqrt(2 + t * t)), abs=1e-12)
    # against -delta = -3: t = 5 sqrt 3, p_lower = P(T > 5 sqrt 3)
    t5 = 5 * math.sqrt(3)
    assert e["p_lower"] == pytest.approx(0.5 * (1 - t5 / math.sqrt(2 + t5 * t5)), abs=1e-12)
    assert e["p"] == max(e["p_lower"], e["p_upper"])
    near_zero = [0.01, -0.02, 0.015, -0.005, 0.0, 0.01, -0.01, 0.02, -0.015, 0.005, 0.0, -0.01]
    assert conclude(near_zero, 0.2)["conclusion"] == "null"
    assert conclude([0.5, 0.6, 0.4, 0.55, 0.45, 0.5], 0.2)["conclusion"] == "positive"
    assert conclude([-0.5, -0.6, -0.4, -0.55, -0.45, -0.5], 0.2)["conclusion"] == "negative"
    assert conclude([0.3, -0.5, 0.9, -0.2], 0.2)["conclusion"] == "inconclusive"
    with pytest.raises(ValueError, match="delta"):
        tost(d, 0.0)


def test_t_quantile_and_confidence_interval_by_hand() -> None:
    # printed table: t_{0.975, 11} = 2.201, t_{0.975, 4} = 2.776; df 1: t_{0.75} = 1 (Cauchy)
    assert t_ppf(0.975, 11) == pytest.approx(2.201, abs=1e-3)
    assert t_ppf(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_ppf(0.75, 1) == pytest.approx(1.0, abs=1e-6) and t_ppf(0.5, 9) == pytest.approx(0.0, abs=1e-6)
    # [1, 2, 3]: mean 2, sd 1, n 3; df 2 has t_q = (2q - 1) sqrt(2 / (1 - (2q - 1)^2)): 4.303 at 0.975
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    t = 0.95 * math.sqrt(2 / (1 - 0.95 ** 2))
    assert m == 2.0 and hi - m == pytest.approx(t / math.sqrt(3), abs=1e-6) and m - lo == pytest.approx(t / math.sqrt(3), abs=1e-6)

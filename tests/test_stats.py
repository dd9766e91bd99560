"""Tests for experiments/stats.py: slopes, seed bootstrap, m*, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import stats

X_GRID = np.array([10.0, 30.0, 100.0, 300.0, 1000.0])


@pytest.mark.parametrize(("slope", "scale"), [(-1.0, 3.0), (-0.5, 0.2), (2.0, 1e-4)])
def test_fit_loglog_slope_recovers_exact_power_law(slope, scale):
    fit_slope, intercept = stats.fit_loglog_slope(X_GRID, scale * X_GRID**slope)
    assert fit_slope == pytest.approx(slope, rel=1e-12)
    assert intercept == pytest.approx(math.log(scale), abs=1e-10)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0], [1.0], "at least 2"),
        ([1.0, 0.0], [1.0, 2.0], "x must be"),
        ([1.0, 2.0], [1.0, -2.0], "y must be"),
        ([2.0, 2.0], [1.0, 3.0], "distinct"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "equal length"),
    ],
)
def test_fit_loglog_slope_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        stats.fit_loglog_slope(x, y)


def test_bootstrap_slope_noiseless_interval_is_the_truth():
    y_SxP = np.tile(2.0 * X_GRID**-1.0, (6, 1))
    point, lo, hi = stats.bootstrap_slope(X_GRID, y_SxP, num_boot=50)
    assert point == pytest.approx(-1.0, rel=1e-12)
    assert lo == pytest.approx(-1.0, rel=1e-12) and hi == pytest.approx(-1.0, rel=1e-12)


def test_bootstrap_slope_noisy_interval_brackets_point_and_truth():
    rng = np.random.default_rng(1)
    # Multiplicative noise, sd 0.1 in log space, 20 seeds: the slope's sd is ~0.01.
    y_SxP = 5.0 * X_GRID**-0.5 * np.exp(0.1 * rng.standard_normal((20, X_GRID.size)))
    point, lo, hi = stats.bootstrap_slope(X_GRID, y_SxP, num_boot=400, seed=3)
    assert lo <= point <= hi
    assert lo <= -0.5 <= hi
    assert hi - lo < 0.1
    # Deterministic given the seed, different for another seed.
    assert stats.bootstrap_slope(X_GRID, y_SxP, num_boot=400, seed=3) == (point, lo, hi)
    assert stats.bootstrap_slope(X_GRID, y_SxP, num_boot=400, seed=4)[1] != lo


def test_bootstrap_slope_statistic_and_shape_check():
    y_SxP = np.stack([X_GRID**-1.0, 100.0 * X_GRID**-1.0, X_GRID**-1.0])
    point, _, _ = stats.bootstrap_slope(X_GRID, y_SxP, statistic=np.median, num_boot=10)
    assert point == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="shape"):
        stats.bootstrap_slope(X_GRID, y_SxP[:, :3])


def test_bootstrap_statistic_generic_and_validation():
    samples_S = np.arange(10.0)
    point, lo, hi = stats.bootstrap_statistic(samples_S, np.mean, num_boot=200, seed=0)
    assert point == 4.5 and lo < point < hi and 0.0 <= lo and hi <= 9.0
    with pytest.raises(ValueError, match="num_boot"):
        stats.bootstrap_statistic(samples_S, np.mean, num_boot=0)
    with pytest.raises(ValueError, match="at least one row"):
        stats.bootstrap_statistic(np.zeros((0, 3)), np.mean)


def test_m_star_grid_and_edge_cases():
    m_M = [1, 2, 4, 8]
    assert stats.m_star(m_M, [0.5, 0.3, 0.1, 0.05], 0.1) == 4.0  # equality counts
    assert stats.m_star(m_M, [0.05, 0.3, 0.1, 0.05], 0.1) == 1.0  # first grid point
    assert math.isnan(stats.m_star(m_M, [0.5, 0.3, 0.2, 0.2], 0.1))  # never crossed
    assert math.isnan(stats.m_star(m_M, [math.nan] * 4, 0.1))
    with pytest.raises(ValueError, match="ascending"):
        stats.m_star([1, 1, 2], [1, 1, 1], 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        stats.m_star(m_M, [1] * 4, 0.0)
    with pytest.raises(ValueError, match="equal length"):
        stats.m_star(m_M, [1] * 3, 0.1)


def test_m_star_interpolated_exact_on_power_laws():
    m_M = np.array([1.0, 4.0, 16.0, 64.0])
    err_M = 2.0 / m_M  # crosses 0.1 at m = 20
    assert stats.m_star_interpolated(m_M, err_M, 0.1) == pytest.approx(20.0, rel=1e-12)
    assert stats.m_star(m_M, err_M, 0.1) == 64.0
    assert stats.m_star_interpolated(m_M, err_M, 5.0) == 1.0  # already below at the first point
    assert math.isnan(stats.m_star_interpolated(m_M, err_M, 0.01))
    # Zero error at the crossing point: linear in err, still inside the bracket.
    assert 16.0 < stats.m_star_interpolated(m_M, [2.0, 0.5, 0.2, 0.0], 0.1) < 64.0


def test_verdicts():
    assert stats.verdict_in_interval(2.0, 1.6, 2.4) == "pass"
    assert stats.verdict_in_interval(2.5, 1.6, 2.4) == "fail"
    assert stats.verdict_in_interval(math.nan, 1.6, 2.4) == "fail"
    assert stats.verdict_le(1.0, 1.0) == "pass"
    assert stats.verdict_le(1.1, 1.0) == "fail"
    assert stats.verdict_le(math.nan, 1.0) == "fail"

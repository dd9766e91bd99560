"""Statistics shared by every experiment: log-log slopes, seed bootstrap, m*, verdicts.

All randomness goes through an explicit ``np.random.default_rng(seed)`` Generator;
there is no global numpy random state. Bootstraps resample *seeds* (rows), the
independent replicates of an experiment, never grid points within one seed.

Intervals are 95 % percentile-bootstrap intervals. A percentile interval need not
contain the point estimate when the statistic is skewed or biased; callers that
report ``measured [ci_low, ci_high]`` should keep that in mind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = [
    "bootstrap_slope",
    "bootstrap_statistic",
    "fit_loglog_slope",
    "m_star",
    "m_star_interpolated",
    "verdict_in_interval",
    "verdict_le",
]

Verdict = Literal["pass", "fail"]


def fit_loglog_slope(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares line through ``(log x, log y)``.

    .. math:: \\log y \\approx a \\log x + b

    Args:
      x: [P] positive abscissae, at least two distinct values.
      y: [P] positive ordinates.

    Returns:
      ``(slope a, intercept b)`` as Python floats (natural logs).

    Example:
      >>> [round(v, 4) for v in fit_loglog_slope([1, 10, 100], [3, 0.3, 0.03])]
      [-1.0, 1.0986]
    """
    x_P = np.asarray(x, dtype=np.float64)
    y_P = np.asarray(y, dtype=np.float64)
    if x_P.ndim != 1 or x_P.shape != y_P.shape:
        raise ValueError(
            f"x and y must be 1-D of equal length, got shapes {x_P.shape}, {y_P.shape}"
        )
    if x_P.size < 2:
        raise ValueError(f"need at least 2 points for a slope, got {x_P.size}")
    if not (np.all(np.isfinite(x_P)) and np.all(x_P > 0)):
        raise ValueError(f"x must be finite and positive, got {x_P}")
    if not (np.all(np.isfinite(y_P)) and np.all(y_P > 0)):
        raise ValueError(f"y must be finite and positive, got {y_P}")
    lx_P, ly_P = np.log(x_P), np.log(y_P)
    dx_P = lx_P - lx_P.mean()
    var = float(np.dot(dx_P, dx_P))
    if var == 0.0:
        raise ValueError(f"x must hold at least 2 distinct values, got {x_P}")
    slope = float(np.dot(dx_P, ly_P - ly_P.mean()) / var)
    return slope, float(ly_P.mean() - slope * lx_P.mean())


def bootstrap_statistic(
    samples_by_seed: Any,
    fn: Callable[[np.ndarray], float],
    *,
    num_boot: int = 500,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and 95 % percentile-bootstrap interval of ``fn`` over seeds.

    Args:
      samples_by_seed: [S, ...] one row per independent seed.
      fn: maps an array [S, ...] (the rows, possibly resampled) to a scalar.
      num_boot: number of bootstrap resamples (rows drawn with replacement).
      seed: seed of the ``np.random.default_rng`` Generator.

    Returns:
      ``(fn(samples_by_seed), 2.5th percentile, 97.5th percentile)``.
    """
    samples_S = np.asarray(samples_by_seed)
    if samples_S.ndim < 1 or samples_S.shape[0] < 1:
        raise ValueError(f"samples_by_seed must have at least one row, got shape {samples_S.shape}")
    if num_boot < 1:
        raise ValueError(f"num_boot must be >= 1, got {num_boot}")
    point = float(fn(samples_S))
    rng = np.random.default_rng(seed)
    num_seeds = samples_S.shape[0]
    idx_BxS = rng.integers(0, num_seeds, size=(num_boot, num_seeds))
    stats_B = np.array([float(fn(samples_S[idx_S])) for idx_S in idx_BxS])
    lo, hi = np.percentile(stats_B, [2.5, 97.5])
    return point, float(lo), float(hi)


def bootstrap_slope(
    x: Any,
    y_by_seed: Any,
    *,
    num_boot: int = 500,
    seed: int = 0,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> tuple[float, float, float]:
    """Log-log slope of ``statistic`` over seeds, with a seed-bootstrap 95 % interval.

    Args:
      x: [P] positive grid (e.g. the sample sizes).
      y_by_seed: [S, P] positive measurements, one row per seed.
      num_boot: number of bootstrap resamples.
      seed: seed of the ``np.random.default_rng`` Generator.
      statistic: aggregates seeds, called as ``statistic(rows_SxP, axis=0) -> [P]``.

    Returns:
      ``(slope, lo, hi)``: slope of ``statistic(y_by_seed)`` against ``x`` and its interval.
    """
    x_P = np.asarray(x, dtype=np.float64)
    y_SxP = np.asarray(y_by_seed, dtype=np.float64)
    if y_SxP.ndim != 2 or y_SxP.shape[1] != x_P.shape[0]:
        raise ValueError(f"y_by_seed must have shape [S, {x_P.shape[0]}], got {y_SxP.shape}")

    def slope_of(rows_SxP: np.ndarray) -> float:
        return fit_loglog_slope(x_P, statistic(rows_SxP, axis=0))[0]

    return bootstrap_statistic(y_SxP, slope_of, num_boot=num_boot, seed=seed)


def _check_grid(m_grid: Any, err_by_m: Any, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    m_M = np.asarray(m_grid, dtype=np.float64)
    err_M = np.asarray(err_by_m, dtype=np.float64)
    if m_M.ndim != 1 or m_M.shape != err_M.shape or m_M.size == 0:
        raise ValueError(
            "m_grid and err_by_m must be 1-D, non-empty, equal length; "
            f"got {m_M.shape}, {err_M.shape}"
        )
    if np.any(np.diff(m_M) <= 0):
        raise ValueError(f"m_grid must be strictly ascending, got {m_M}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return m_M, err_M


def m_star(m_grid: Any, err_by_m: Any, epsilon: float) -> float:
    """Smallest grid value ``m`` whose error is at most ``epsilon`` (grid resolution).

    Args:
      m_grid: [M] strictly ascending budgets.
      err_by_m: [M] error at each budget (NaN never counts as crossed).
      epsilon: target error, > 0.

    Returns:
      ``min {m in m_grid : err(m) <= epsilon}``, or ``nan`` if no grid point reaches it.
    """
    m_M, err_M = _check_grid(m_grid, err_by_m, epsilon)
    hit_M = err_M <= epsilon
    return float(m_M[np.argmax(hit_M)]) if hit_M.any() else float("nan")


def m_star_interpolated(m_grid: Any, err_by_m: Any, epsilon: float) -> float:
    """Budget at which the error first crosses ``epsilon``, interpolated on log-log axes.

    Between the last grid point above ``epsilon`` and the first at or below it,
    ``log err`` is taken linear in ``log m`` (exact for power laws err = c m^-a).
    If the first crossing point has error exactly 0, ``err`` itself is interpolated
    linearly in ``log m`` instead. If the first grid point is already below
    ``epsilon`` the answer is ``m_grid[0]`` (no extrapolation below the grid).

    Args:
      m_grid: [M] strictly ascending positive budgets.
      err_by_m: [M] non-negative errors.
      epsilon: target error, > 0.

    Returns:
      The interpolated m*, or ``nan`` if the error never reaches ``epsilon`` on the grid.
    """
    m_M, err_M = _check_grid(m_grid, err_by_m, epsilon)
    if np.any(m_M <= 0):
        raise ValueError(f"m_grid must be positive for log interpolation, got {m_M}")
    hit_M = err_M <= epsilon
    if not hit_M.any():
        return float("nan")
    i = int(np.argmax(hit_M))
    if i == 0:
        return float(m_M[0])
    e0, e1 = err_M[i - 1], err_M[i]
    if e1 > 0:
        t = (np.log(epsilon) - np.log(e0)) / (np.log(e1) - np.log(e0))
    else:
        t = (epsilon - e0) / (e1 - e0)
    return float(np.exp(np.log(m_M[i - 1]) + t * (np.log(m_M[i]) - np.log(m_M[i - 1]))))


def verdict_in_interval(value: float, lo: float, hi: float) -> Verdict:
    """``"pass"`` if ``lo <= value <= hi`` (NaN fails), else ``"fail"``."""
    return "pass" if lo <= value <= hi else "fail"


def verdict_le(value: float, bound: float) -> Verdict:
    """``"pass"`` if ``value <= bound`` (NaN fails), else ``"fail"``."""
    return "pass" if value <= bound else "fail"

"""S12 — Lemma F.1: the Hellinger rate of maximum likelihood over a finite, realizable class.

Lemma F.1 (App. F) is the statistical step of every SFT-Sharpening guarantee (Thm 4.1,
Thm 4.1′, Thm D.1): if ``pi* in Pi`` and ``Pi`` is finite, then with probability at least
``1 - rho``

    E_{x ~ mu} D_H^2(pi_hat(.|x), pi*(.|x)) <= 2 log(|Pi| / rho) / n,

with ``D_H^2(P, Q) = sum_y (sqrt P(y) - sqrt Q(y))^2`` (no factor 1/2).

Instance: :func:`theory.instances.tilted_class`, a product over ``X`` prompts of ``J = 16``
exponential tilts each, so ``|Pi| = 16^X`` and ``log2 |Pi| = 4 X``. The classes for
``X = 1, 2, 3`` share their prompts (one table of ``max X`` prompts, sliced by giving the unused
prompts ``mu(x) = 0``). Per seed the truth is a uniformly random member; ``n`` pairs
``x ~ mu`` (uniform on the ``X`` prompts), ``y ~ pi*(.|x)`` are drawn with the library samplers,
and ``pi_hat`` is :func:`sharpen.product_class_mle` (the class factorizes over prompts). The
``n`` grid is nested: the first ``n`` of ``max(n_grid)`` pairs.

Checks (``summary.csv``):

* the ``(1 - rho)``-quantile over seeds of ``E_x D_H^2`` is below the bound at every ``n``
  (one row per class size);
* log-log slope of the mean ``E_x D_H^2`` in ``n`` for the largest class, predicted ``-1`` (the
  bound's rate). The bound is only an *upper* bound: at small ``n`` the error saturates at the
  diameter of the class (shallower), and once ``n`` resolves the grid spacing the MLE locks onto
  the truth and the error falls faster than ``1/n`` (steeper). The tilt (0.5) keeps neighbours
  close enough that ``n`` in ``[16, 1024]`` sits in the ``1/n`` regime; pass if the seed-bootstrap
  interval overlaps ``[-1.3, -0.7]``;
* ratio of the mean error at ``n = ratio_n`` between the largest and smallest class, predicted
  ``log|Pi|`` ratio ``= 3`` (each of the ``X`` one-parameter factors costs ``~1/(4 n_x)``,
  ``n_x = n/X``, so the error is ``~ X / (4n)``, linear in ``log|Pi|``); pass in ``[1.5, 4.5]``.

Command: ``sharpen run s12 [--preset quick|full]``; feeds ``figures/fig_mle_rate.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import sharpen
from experiments import io, stats
from experiments.registry import ExperimentSpec, register
from theory import bounds, instances

NAME = "s12"


@dataclasses.dataclass(frozen=True)
class Config:
    """MLE over a product class of tilts (THEORY §4.7 Lemma F.1, §5.3 S12)."""

    num_prompts: tuple[int, ...] = (1, 2, 3)  # X per class; log2|Pi| = X log2(grid_size)
    grid_size: int = 16  # J tilts per prompt
    num_responses: int = 8
    tilt: float = 0.5
    n_grid: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)
    ratio_n: int = 128
    rho: float = 0.1
    num_seeds: int = 200
    num_boot: int = 500
    seed: int = 0

    def __post_init__(self):
        if not self.num_prompts or any(x < 1 for x in self.num_prompts):
            raise ValueError(f"num_prompts must be non-empty and >= 1, got {self.num_prompts}")
        if len(set(self.num_prompts)) != len(self.num_prompts):
            raise ValueError(f"num_prompts must be distinct, got {self.num_prompts}")
        if self.grid_size < 2:
            raise ValueError(f"grid_size must be >= 2, got {self.grid_size}")
        if self.num_responses < 2:
            raise ValueError(f"num_responses must be >= 2, got {self.num_responses}")
        if not 0 < self.tilt < math.inf:
            raise ValueError(f"tilt must be finite and > 0, got {self.tilt}")
        if len(self.n_grid) < 2 or any(b <= a for a, b in itertools.pairwise(self.n_grid)):
            raise ValueError(f"n_grid must be strictly ascending, length >= 2, got {self.n_grid}")
        if self.n_grid[0] < 1:
            raise ValueError(f"n_grid entries must be >= 1, got {self.n_grid}")
        if self.ratio_n not in self.n_grid:
            raise ValueError(f"ratio_n must be one of n_grid {self.n_grid}, got {self.ratio_n}")
        if not 0 < self.rho < 1:
            raise ValueError(f"rho must lie in (0, 1), got {self.rho}")
        if self.num_seeds < 2:
            raise ValueError(f"num_seeds must be >= 2, got {self.num_seeds}")
        if self.num_boot < 1:
            raise ValueError(f"num_boot must be >= 1, got {self.num_boot}")


def smoke() -> Config:
    """CI-sized: two classes, four sample sizes, 16 seeds.

    ``sharpen run s12 --preset smoke``; feeds ``figures/fig_mle_rate.py``.
    """
    return Config(
        num_prompts=(1, 3), n_grid=(16, 64, 256, 1024), ratio_n=256, num_seeds=16, num_boot=50
    )


def quick() -> Config:
    """``sharpen run s12`` (``sharpen repro`` default): 200 seeds, n = 16..1024, ~7 s on 2 cores.

    Feeds ``figures/fig_mle_rate.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s12 --preset full``: 2000 seeds, n = 16..4096 (lock-in visible at the top).

    Feeds ``figures/fig_mle_rate.py``.
    """
    return Config(
        n_grid=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096), num_seeds=2000, num_boot=1000
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def hellinger_sq(logp_Y: jax.Array, logq_Y: jax.Array) -> jax.Array:
    """Squared Hellinger distance without the factor 1/2, over the last axis.

    .. math::  D_H^2(P, Q) = \\sum_y \\big(\\sqrt{P(y)} - \\sqrt{Q(y)}\\big)^2 \\in [0, 2].

    Args:
      logp_Y: [..., Y] log-probabilities of ``P``.
      logq_Y: [..., Y] log-probabilities of ``Q``.

    Returns:
      [...] distances.

    References:
      Huang et al. (2025), notation of App. F (THEORY §1.1).
    """
    return jnp.sum((jnp.exp(0.5 * logp_Y) - jnp.exp(0.5 * logq_Y)) ** 2, axis=-1)


def run_trial(
    key: jax.Array, candidates_XxJxY: jax.Array, mu_X: jax.Array, n_grid: tuple[int, ...]
) -> jax.Array:
    """One seed: draw a true member, data, fit the MLE at every ``n``; return ``E_x D_H^2``.

    Args:
      key: PRNG key of the seed.
      candidates_XxJxY: [X, J, Y] per-prompt candidate log-probabilities (the product class).
      mu_X: [X] prompt distribution; prompts with ``mu = 0`` are outside the class's domain.
      n_grid: static, ascending sample sizes; data sets are nested prefixes.

    Returns:
      [P] ``E_{x~mu} D_H^2(pi_hat(.|x), pi*(.|x))`` for each ``n`` in ``n_grid``.
    """
    X, J, Y = candidates_XxJxY.shape
    truth_key, prompt_key, response_key, tie_key = jax.random.split(key, 4)
    truth_X = sharpen.sample_from_logprobs(jnp.zeros(J, mu_X.dtype), (X,), key=truth_key)
    logp_true_XxY = candidates_XxJxY[jnp.arange(X), truth_X]
    prompts_n = sharpen.sample_prompts(mu_X, n_grid[-1], key=prompt_key)
    responses_n = sharpen.sample_responses(logp_true_XxY, prompts_n, 1, key=response_key)[:, 0]
    edges = (0, *n_grid)
    blocks_PxXxY = jnp.stack(
        [
            sharpen.counts_from_pairs(prompts_n[a:b], responses_n[a:b], X, Y)
            for a, b in itertools.pairwise(edges)
        ]
    )
    counts_PxXxY = jnp.cumsum(blocks_PxXxY, axis=0).astype(candidates_XxJxY.dtype)
    tie_keys = jax.random.split(tie_key, len(n_grid))
    j_hat_PxX = jax.vmap(lambda c, k: sharpen.product_class_mle(c, candidates_XxJxY, key=k))(
        counts_PxXxY, tie_keys
    )
    logp_hat_PxXxY = candidates_XxJxY[jnp.arange(X)[None], j_hat_PxX]
    dist_PxX = hellinger_sq(logp_hat_PxXxY, logp_true_XxY[None])
    return dist_PxX @ mu_X.astype(dist_PxX.dtype)


@functools.partial(jax.jit, static_argnames=("n_grid",))
def hellinger_curves(
    keys_S: jax.Array, candidates_XxJxY: jax.Array, mu_X: jax.Array, n_grid: tuple[int, ...]
) -> jax.Array:
    """:func:`run_trial` vmapped over seeds: [S, P]. Shapes fixed per run, so one compile."""
    return jax.vmap(lambda k: run_trial(k, candidates_XxJxY, mu_X, n_grid))(keys_S)


def build_class(cfg: Config, class_key: jax.Array) -> jax.Array:
    """[max X, J, Y] candidate table; the class with ``X`` prompts uses its first ``X`` rows."""
    return instances.tilted_class(
        key=class_key,
        num_prompts=max(cfg.num_prompts),
        num_responses=cfg.num_responses,
        grid_size=cfg.grid_size,
        tilt=cfg.tilt,
    )


def run_unit(cfg: Config, num_prompts: int, candidates: jax.Array, seed_key: jax.Array):
    """All seeds for the class with ``num_prompts`` prompts: one row per (seed, n)."""
    x_max = candidates.shape[0]
    mu_X = jnp.asarray([1.0 / num_prompts] * num_prompts + [0.0] * (x_max - num_prompts))
    # Seeds share keys across class sizes (common random numbers for the ratio check).
    keys_S = jax.vmap(lambda s: jax.random.fold_in(seed_key, s))(jnp.arange(cfg.num_seeds))
    dist_SxP = np.asarray(hellinger_curves(keys_S, candidates, mu_X, cfg.n_grid), np.float64)
    log_class = num_prompts * math.log(cfg.grid_size)
    n_P = np.asarray(cfg.n_grid, np.float64)
    bound_P = np.asarray(bounds.mle_hellinger_bound(log_class, n_P, cfg.rho), np.float64)
    seed_SxP, n_idx_SxP = np.meshgrid(
        np.arange(cfg.num_seeds), np.arange(len(cfg.n_grid)), indexing="ij"
    )
    return pd.DataFrame(
        {
            "num_prompts": num_prompts,
            "log2_class_size": num_prompts * math.log2(cfg.grid_size),
            "seed": seed_SxP.ravel(),
            "n": n_P[n_idx_SxP.ravel()].astype(np.int64),
            "hellinger_sq": dist_SxP.ravel(),
            "bound": bound_P[n_idx_SxP.ravel()],
            "rho": cfg.rho,
        }
    )


_row = functools.partial(io.summary_row, NAME)


def _by_seed(table: pd.DataFrame, num_prompts: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_P, dist_SxP)`` for one class size."""
    sel = table[table.num_prompts == num_prompts]
    wide = sel.pivot(index="seed", columns="n", values="hellinger_sq").sort_index(axis=1)
    return wide.columns.to_numpy(np.float64), wide.to_numpy(np.float64)


def quantile_rows(table: pd.DataFrame, cfg: Config) -> list[dict]:
    """Lemma F.1 itself: the (1 - rho)-quantile over seeds vs the bound, worst n per class."""
    rows = []
    for x in cfg.num_prompts:
        n_P, dist_SxP = _by_seed(table, x)
        q_P = np.quantile(dist_SxP, 1.0 - cfg.rho, axis=0)
        bound_P = np.asarray(bounds.mle_hellinger_bound(x * math.log(cfg.grid_size), n_P, cfg.rho))
        worst = float(np.max(q_P / bound_P))
        rows.append(
            _row(
                f"log2|Pi|={x * math.log2(cfg.grid_size):g}: max_n q_(1-rho) E_x D_H^2 / "
                f"(2 log(|Pi|/rho)/n), rho={cfg.rho:g}",
                "<= 1",
                worst,
                verdict=stats.verdict_le(worst, 1.0),
            )
        )
    return rows


def _slope_positive(n_P: np.ndarray, dist_SxP: np.ndarray) -> float:
    """Log-log slope of the seed mean, on the points where that mean is positive."""
    mean_P = dist_SxP.mean(axis=0)
    keep = mean_P > 0
    return stats.fit_loglog_slope(n_P[keep], mean_P[keep])[0]


def slope_row(table: pd.DataFrame, cfg: Config) -> dict:
    """Slope of mean E_x D_H^2 vs n for the largest class; pass if the CI meets [-1.3, -0.7]."""
    x = max(cfg.num_prompts)
    n_P, dist_SxP = _by_seed(table, x)
    slope, lo, hi = stats.bootstrap_statistic(
        dist_SxP, lambda d: _slope_positive(n_P, d), num_boot=cfg.num_boot, seed=cfg.seed
    )
    overlaps = lo <= -0.7 and hi >= -1.3
    return _row(
        f"slope of mean E_x D_H^2 vs n, log2|Pi|={x * math.log2(cfg.grid_size):g} "
        "(bound rate -1; pass if CI meets [-1.3, -0.7])",
        "-1",
        slope,
        lo,
        hi,
        verdict="pass" if overlaps else "fail",
    )


def ratio_row(table: pd.DataFrame, cfg: Config) -> dict:
    """Mean error at ``ratio_n``: largest over smallest class, predicted the log|Pi| ratio."""
    small, large = min(cfg.num_prompts), max(cfg.num_prompts)
    _, small_SxP = _by_seed(table, small)
    n_P, large_SxP = _by_seed(table, large)
    col = int(np.flatnonzero(n_P == cfg.ratio_n)[0])
    paired_Sx2 = np.stack([small_SxP[:, col], large_SxP[:, col]], axis=1)
    ratio, lo, hi = stats.bootstrap_statistic(
        paired_Sx2,
        lambda p: p[:, 1].mean() / p[:, 0].mean(),
        num_boot=cfg.num_boot,
        seed=cfg.seed,
    )
    predicted = large / small
    a, b = 0.5 * predicted, 1.5 * predicted
    bits = math.log2(cfg.grid_size)
    return _row(
        f"mean E_x D_H^2 at n={cfg.ratio_n}: log2|Pi|={large * bits:g} over {small * bits:g} "
        f"(linear in log|Pi|; pass in [{a:g}, {b:g}])",
        f"{predicted:g}",
        ratio,
        lo,
        hi,
        verdict=stats.verdict_in_interval(ratio, a, b),
    )


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/X=*.csv``, ``metrics.csv`` (per seed, n) and ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    class_key, seed_key = jax.random.split(jax.random.key(cfg.seed))
    candidates = functools.cache(lambda: build_class(cfg, class_key))  # built only if needed
    frames = [
        io.cached_unit(out_dir, f"X={x}", lambda x=x: run_unit(cfg, x, candidates(), seed_key))
        for x in cfg.num_prompts
    ]
    io.finalize_metrics(out_dir, frames)
    table = pd.concat(frames, ignore_index=True)
    rows = quantile_rows(table, cfg)
    rows.append(slope_row(table, cfg))
    rows.append(ratio_row(table, cfg))
    io.write_summary(out_dir, rows)


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S12 — Lemma F.1: MLE Hellinger rate 2 log(|Pi|/rho)/n on a finite tilt class",
        presets=PRESETS,
        run=run,
    )
)

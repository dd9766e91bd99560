"""S1 — Prop C.1: inference-time best-of-N misses the target with probability (1 - p*)^N.

One prompt, ``|Y| = K`` responses. The target ``y*_gamma`` (response 0, or responses 0 and 1 when
``gamma > 0``) has base mass ``p*``; every other response shares the rest and lies strictly below
the target. Best-of-N by log-likelihood fails iff none of its ``N`` draws hits the target, so

.. math::  \\mathbb P[\\hat y\\notin\\mathbf y^\\star_\\gamma] = (1-p^\\star)^N \\le e^{-Np^\\star},

and ``N = ceil(log(1/rho) / p*)`` draws give failure ``<= rho`` (Prop C.1). For every
``(K, p*, N)`` the run measures the failure rate of the real sampler :func:`sharpen.best_of_n`
over ``num_seeds x trials_per_seed`` trials and compares it with the exact law
:func:`sharpen.bon_law` and with the bound.

Command: ``sharpen run s1 [--preset quick|full]`` (or ``sharpen repro``); feeds
``figures/fig_bon_failure.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import sharpen
from experiments import io, stats
from experiments.registry import ExperimentSpec, register
from theory import bounds

NAME = "s1"

#: Largest tolerated |z| of a Monte-Carlo failure rate against the exact law (family-wise).
Z_MAX = 4.0
#: The MC failure at N_rho may exceed rho by this many binomial standard errors.
RHO_SIGMAS = 3.0
#: Slope check passes if |measured - predicted| is at most this, or the CI covers predicted.
SLOPE_ATOL = 0.05
#: Relative gap allowed between bon_law and (1 - p*)^N, per float op of N * log(1 - p*).
LAW_ULPS_PER_SAMPLE = 8.0

#: One program is compiled per N, and compiling dominates the run: LLVM's -O3 loop passes cost
#: ~40% of the compile time and buy nothing measurable here (the PRNG and search loops).
_COMPILE_FAST = {"xla_backend_optimization_level": 2}

METRIC_COLUMNS = (
    "K",
    "p_star",
    "N",
    "N_p_star",
    "seed",
    "num_trials",
    "failures",
    "failure_mc",
    "failure_exact",
    "failure_closed_form",
    "failure_bound",
    "rho_cell",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Grid of (K, p*, N) cells for inference-time best-of-N (THEORY §5.3 S1)."""

    ks: tuple[int, ...] = (10, 100, 1000)
    p_stars: tuple[float, ...] = (0.5, 0.1, 0.01)
    np_grid: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0)
    gamma: float = 0.0
    rho: float = 0.05
    num_seeds: int = 20
    trials_per_seed: int = 1000
    num_boot: int = 500
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = 0

    def __post_init__(self):
        if not self.ks or any(int(k) != k or k < 3 for k in self.ks):
            raise ValueError(f"ks must be a non-empty tuple of integers >= 3, got {self.ks}")
        if not self.p_stars or any(not 0 < p < 1 for p in self.p_stars):
            raise ValueError(f"p_stars must be a non-empty tuple in (0, 1), got {self.p_stars}")
        if not self.np_grid or any(not 0 < c < math.inf for c in self.np_grid):
            raise ValueError(f"np_grid must be a non-empty tuple of values > 0, got {self.np_grid}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        if not 0 < self.rho < 1:
            raise ValueError(f"rho must lie in (0, 1), got {self.rho}")
        if self.num_seeds < 2:
            raise ValueError(f"num_seeds must be >= 2 (bootstrap over seeds), got {self.num_seeds}")
        if self.trials_per_seed < 1:
            raise ValueError(f"trials_per_seed must be >= 1, got {self.trials_per_seed}")
        if self.num_boot < 1:
            raise ValueError(f"num_boot must be >= 1, got {self.num_boot}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ValueError("dtype='float64' needs JAX_ENABLE_X64=1")
        for p in self.p_stars:
            if not any(admissible(k, p, self.gamma) for k in self.ks):
                raise ValueError(
                    f"p_stars entry {p} is too small for every K in ks={self.ks} at "
                    f"gamma={self.gamma}: the target must outweigh each other response"
                )


def smoke() -> Config:
    """CI-sized (~5 s): ``sharpen run s1 --preset smoke``; feeds ``fig_bon_failure``."""
    return Config(
        ks=(10, 100),
        p_stars=(0.5, 0.25),
        np_grid=(1.5, 3.0),
        num_seeds=4,
        trials_per_seed=200,
        num_boot=50,
    )


def quick() -> Config:
    """``sharpen run s1`` (``sharpen repro`` default): K in {10, 100, 1000}, ~16 s on 2 cores.

    Compiling one sampler per distinct N dominates the run, so the N p* grid {0.5, 1, 2, 3, 5}
    is chosen to share N across the p* (N = 10 and 50 serve two p* each; N_rho = ceil(log 20/p*)
    is the point 3): 13 programs. Feeds ``figures/fig_bon_failure.py``.
    """
    return Config()


def full() -> Config:
    """Paper-scale (~3.5 min on 2 cores): ``sharpen run s1 --preset full``; p* down to 3e-3.

    Feeds ``figures/fig_bon_failure.py``.
    """
    return Config(
        p_stars=(0.5, 0.3, 0.1, 0.03, 0.01, 0.003),
        np_grid=(0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0),
        num_seeds=40,
        trials_per_seed=5000,
        num_boot=1000,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


# --------------------------------------------------------------------------- instance


def _target_shares(gamma: float) -> np.ndarray:
    """Target masses relative to p*: one response, or two within a factor ``1 - gamma/2``."""
    if gamma == 0:
        return np.ones(1)
    shares = np.array([1.0, 1.0 - gamma / 2])
    return shares / shares.sum()


def admissible(K: int, p_star: float, gamma: float) -> bool:
    """Whether ``|Y| = K`` leaves every non-target response strictly below ``(1-gamma) max``.

    For ``gamma = 0`` this is ``p* > 1/K``.
    """
    shares = _target_shares(gamma)
    rest = (1.0 - p_star) / (K - shares.size)
    return rest < (1.0 - gamma) * p_star * shares[0]


def instance(K: int, p_star: float, gamma: float, dtype: str) -> tuple[jax.Array, jax.Array]:
    """Base model of one S1 cell and its target mask ``y*_gamma`` (via :func:`sharpen.argmax_mask`).

    The non-target responses get ``(1 - p*) / (K - |target|)`` each, times ``1 + eps * t`` with
    ``t`` evenly spaced in ``[-1, 1]`` (zero mean, so the mass is unchanged) and ``eps`` at most
    half the room below the target: distinct likelihoods, none near the target's threshold.

    Returns:
      ``(logp_K, target_K)``: [K] log-probabilities in ``dtype`` and the [K] bool target mask.
    """
    shares = _target_shares(gamma)
    num_rest = K - shares.size
    rest = (1.0 - p_star) / num_rest
    room = (1.0 - gamma) * p_star * shares[0] / rest - 1.0
    eps = 0.5 * min(0.2, room)
    probs = np.concatenate([p_star * shares, rest * (1.0 + eps * np.linspace(1.0, -1.0, num_rest))])
    logp_K = jnp.asarray(np.log(probs / probs.sum()), dtype=dtype)
    target_K = sharpen.argmax_mask(logp_K, gamma=gamma)
    if int(target_K.sum()) != shares.size or not bool(target_K[: shares.size].all()):
        raise ValueError(f"instance K={K}, p_star={p_star}, gamma={gamma} has the wrong target set")
    return logp_K, target_K


def num_samples_grid(p_star: float, np_grid: tuple[float, ...], rho: float) -> tuple[int, int]:
    """Sorted distinct ``N = max(1, round(c / p*))`` for ``c`` in ``np_grid``, plus ``N_rho``.

    Returns:
      ``(grid, n_rho)`` with ``n_rho = ceil(log(1/rho) / p*)`` (Prop C.1) included in ``grid``.
    """
    n_rho = int(bounds.inference_bon_num_samples(p_star, rho))
    grid = {max(1, math.floor(c / p_star + 0.5)) for c in np_grid} | {n_rho}
    return tuple(sorted(grid)), n_rho


def _pad(logp_K: jax.Array, target_K: jax.Array, width: int) -> tuple[jax.Array, jax.Array]:
    """Append zero-mass responses up to ``width``: never drawn, so the sampler's law is unchanged,
    and every K shares one compiled program per N."""
    extra = width - logp_K.shape[0]
    logp = jnp.concatenate([logp_K, jnp.full((extra,), -jnp.inf, logp_K.dtype)])
    return logp, jnp.concatenate([target_K, jnp.zeros((extra,), bool)])


# --------------------------------------------------------------------------- Monte Carlo


@functools.partial(jax.jit, static_argnames=("num_trials",))
def trial_keys(key: jax.Array, seeds_S: jax.Array, *, num_trials: int) -> jax.Array:
    """[S, T] trial keys: seed ``s`` gets ``split(fold_in(key, s), num_trials)``.

    Kept out of :func:`failure_counts` so that the PRNG code compiles once, not once per N.
    """
    return jax.vmap(lambda s: jax.random.split(jax.random.fold_in(key, s), num_trials))(seeds_S)


@functools.partial(jax.jit, static_argnames=("num_samples",), compiler_options=_COMPILE_FAST)
def failure_counts(
    logp_Y: jax.Array, target_Y: jax.Array, keys_SxT: jax.Array, *, num_samples: int
) -> jax.Array:
    """Number of best-of-N trials that miss the target, per seed.

    Each trial is one :func:`sharpen.best_of_n` call (``vmap`` over a seed's trials); seeds run
    one after another (``lax.map``), so memory is ``O(T * num_samples)`` whatever ``S``.

    Args:
      logp_Y: [Y] base log-probabilities.
      target_Y: [Y] bool target mask.
      keys_SxT: [S, T] PRNG keys, one per trial.
      num_samples: static N.

    Returns:
      [S] int failure counts.
    """

    def one_seed(keys_T):
        picks_T = jax.vmap(lambda k: sharpen.best_of_n(logp_Y, num_samples, key=k)[0])(keys_T)
        return jnp.sum(~target_Y[picks_T])

    return jax.lax.map(one_seed, keys_SxT)


@jax.jit
def _exact_failure(logp_Y: jax.Array, target_Y: jax.Array, num_samples: jax.Array) -> jax.Array:
    # Mass of the BoN law off the target, i.e. 1 - law(target) without the cancellation.
    return sharpen.set_mass(sharpen.bon_law(logp_Y, num_samples), ~target_Y)


def _cell_key(seed: int, K: int, p_index: int, N: int) -> jax.Array:
    key = jax.random.key(seed)
    for tag in (K, p_index, N):
        key = jax.random.fold_in(key, tag)
    return key


def run_unit(cfg: Config, K: int, p_index: int) -> pd.DataFrame:
    """All N and seeds of one ``(K, p*)``: one row per ``(N, seed)``."""
    p_star = cfg.p_stars[p_index]
    logp_K, target_K = instance(K, p_star, cfg.gamma, cfg.dtype)
    logp_Y, target_Y = _pad(logp_K, target_K, max(cfg.ks))
    p_mass = float(sharpen.set_mass(logp_K, target_K))
    grid, n_rho = num_samples_grid(p_star, cfg.np_grid, cfg.rho)
    seeds_S = jnp.arange(cfg.num_seeds)
    rows = []
    for N in grid:
        keys_SxT = trial_keys(
            _cell_key(cfg.seed, K, p_index, N), seeds_S, num_trials=cfg.trials_per_seed
        )
        counts_S = failure_counts(logp_Y, target_Y, keys_SxT, num_samples=N)
        exact = float(_exact_failure(logp_Y, target_Y, jnp.asarray(N, logp_Y.dtype)))
        cell = {
            "K": K,
            "p_star": p_star,
            "N": N,
            "N_p_star": N * p_star,
            "failure_exact": exact,
            "failure_closed_form": float(bounds.bon_miss_probability(p_mass, N)),
            "failure_bound": float(bounds.inference_bon_failure_bound(p_mass, N)),
            "rho_cell": int(N == n_rho),
            "num_trials": cfg.trials_per_seed,
        }
        for s, count in enumerate(np.asarray(counts_S).tolist()):
            rows.append(
                {
                    **cell,
                    "seed": s,
                    "failures": count,
                    "failure_mc": count / cfg.trials_per_seed,
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def cells(cfg: Config) -> list[tuple[int, int]]:
    """Admissible ``(K, p_index)`` pairs, in run order."""
    return [
        (K, i) for K in cfg.ks for i, p in enumerate(cfg.p_stars) if admissible(K, p, cfg.gamma)
    ]


# --------------------------------------------------------------------------- summary


_row = functools.partial(io.summary_row, NAME)


def pooled(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per ``(K, p*, N)``: pooled MC failure, exact failure, bound and z-score.

    ``z = (MC - exact) / sqrt(exact (1 - exact) / trials)`` over all ``num_seeds * trials``.
    """
    keys = ["K", "p_star", "N"]
    g = metrics.groupby(keys, sort=False)
    out = g[["N_p_star", "failure_exact", "failure_bound", "rho_cell"]].first()
    out["trials"] = g["num_trials"].sum()
    out["failure_mc"] = g["failures"].sum() / out["trials"]
    exact = out["failure_exact"]
    out["z"] = (out["failure_mc"] - exact) / np.sqrt(exact * (1.0 - exact) / out["trials"])
    return out.reset_index()


def _semilog_slope(x_P: np.ndarray, fail_SxP: np.ndarray) -> float:
    mean_P = fail_SxP.mean(axis=0)
    if np.any(mean_P <= 0):
        return math.nan
    return float(np.polyfit(x_P, np.log(mean_P), 1)[0])


def slope_row(metrics: pd.DataFrame, cfg: Config) -> dict:
    """Slope of ``log P[fail]`` against ``N p*`` at the smallest p*; theory ``log(1-p*)/p*``."""
    p_min = min(cfg.p_stars)
    sel = metrics[metrics.p_star == p_min]
    wide = sel.pivot_table(index="seed", columns=["K", "N"], values="failure_mc")
    x_P = np.array([n * p_min for _, n in wide.columns])
    slope, lo, hi = stats.bootstrap_statistic(
        wide.to_numpy(),
        functools.partial(_semilog_slope, x_P),
        num_boot=cfg.num_boot,
        seed=cfg.seed,
    )
    predicted = math.log1p(-p_min) / p_min
    ok = (lo <= predicted <= hi) or abs(slope - predicted) <= SLOPE_ATOL
    ks = sorted({k for k, _ in wide.columns})
    return _row(
        f"slope of log P[fail] vs N p* (p*={p_min:g}, K={ks}); theory log(1-p*)/p*",
        predicted,
        slope,
        lo,
        hi,
        verdict="pass" if ok else "fail",
    )


def summary_rows(metrics: pd.DataFrame, cfg: Config) -> list[dict]:
    """Rows (a) slope, (b) MC vs exact, (c) failure at N_rho, (d) exact vs bound, (e) law."""
    table = pooled(metrics)
    trials = cfg.num_seeds * cfg.trials_per_seed
    z_max = float(table["z"].abs().max())
    rho_limit = cfg.rho + RHO_SIGMAS * math.sqrt(cfg.rho * (1 - cfg.rho) / trials)
    rho_worst = float(table.loc[table.rho_cell == 1, "failure_mc"].max())
    ratio = float((table["failure_exact"] / table["failure_bound"]).max())
    closed = metrics["failure_closed_form"]
    law_gap = float((np.abs(metrics["failure_exact"] - closed) / closed).max())
    law_tol = LAW_ULPS_PER_SAMPLE * float(metrics["N"].max()) * float(np.finfo(cfg.dtype).eps)
    return [
        slope_row(metrics, cfg),
        _row(
            f"max |z| of MC vs exact (1-p*)^N over {len(table)} (K, p*, N) cells, {trials} trials each",
            f"<= {Z_MAX:g}",
            z_max,
            verdict=stats.verdict_le(z_max, Z_MAX),
        ),
        _row(
            f"max MC failure at N = ceil(log(1/rho)/p*), rho={cfg.rho:g}, over (K, p*)",
            f"<= rho + {RHO_SIGMAS:g} se = {rho_limit:.4g}",
            rho_worst,
            verdict=stats.verdict_le(rho_worst, rho_limit),
        ),
        _row(
            "max exact failure / exp(-N p*) over all cells (Prop C.1 bound)",
            "<= 1",
            ratio,
            verdict=stats.verdict_le(ratio, 1.0),
        ),
        _row(
            "max relative gap, bon_law failure vs closed form (1-p*)^N",
            f"<= {law_tol:.2g}",
            law_gap,
            verdict=stats.verdict_le(law_gap, law_tol),
        ),
    ]


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``metrics.csv`` (per K, p*, N, seed) and ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    frames = [
        io.cached_unit(
            out_dir,
            f"K={K}_pstar={cfg.p_stars[i]:g}",
            functools.partial(run_unit, cfg, K, i),
        )
        for K, i in cells(cfg)
    ]
    io.finalize_metrics(out_dir, frames)
    metrics = io.read_csv(out_dir / "metrics.csv")
    io.write_summary(out_dir, summary_rows(metrics, cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S1 — Prop C.1: inference-time best-of-N failure (1-p*)^N <= exp(-N p*)",
        presets=PRESETS,
        run=run,
    )
)

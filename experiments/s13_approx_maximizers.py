"""S13 — Def F.1 / Thm 4.1′: best-of-N to an approximate maximizer needs C_cov,gamma, not C_cov.

Thm 4.1′ replaces ``C_cov`` by ``C_cov,gamma = E_x[1 / pi_base(y*_gamma(x) | x)]`` when the target
is the set of ``(1 - gamma)``-approximate maximizers (Def F.1). Its coverage step is that
best-of-N puts mass ``pi^BoN_N(y*_gamma | x) = 1 - (1 - pi_base(y*_gamma | x))^N`` on the target,
so the number of draws that reaches ``1 - delta`` is

    N*(gamma) = min {N : pi^BoN_N(y*_gamma) >= 1 - delta} ~ C_cov,gamma log(1/delta).

Instance: :func:`theory.instances.near_tie_policy`, one prompt whose response 0 is the unique
argmax (mass ``p_top``) and ``k - 1`` further responses have mass ``p_top (1 - gamma/2)``: inside
``y*_gamma``, outside ``y*``. So ``C_cov = 1/p_top`` for every ``k`` while
``C_cov,gamma = 1/(p_top (1 + (k-1)(1 - gamma/2)))`` falls like ``1/k``.

``N*`` is found exactly, by bisection on the closed-form law :func:`sharpen.bon_law` (the mass
on the target is increasing in ``N``), and cross-checked against
``ceil(log delta / log(1 - pi_base(y*_gamma)))``. A Monte-Carlo run of the real sampler
:func:`sharpen.best_of_n` at ``N = N*`` checks its frequency of landing in ``y*_gamma`` against
the exact law's mass there (which is ``>= 1 - delta`` by construction), max |z| <= 4.

Checks (``summary.csv``): slope of ``log N*(gamma)`` vs ``log C_cov,gamma`` over ``k`` (predicted
1); the saving ``N*(0)/N*(gamma)`` against ``C_cov/C_cov,gamma`` at the largest ``k`` (predicted
equal, within 20 %); ``N*(0)`` flat in ``k`` (``C_cov`` is); the bisection against the closed form;
the Monte-Carlo check. A tabular SFT-Sharpening run on the same instance is not included.

Command: ``sharpen run s13 [--preset quick|full]``; feeds ``figures/fig_approx_maximizers.py``.
"""

from __future__ import annotations

import dataclasses
import functools
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

NAME = "s13"


@dataclasses.dataclass(frozen=True)
class Config:
    """Near-tie prompts with ``k`` approximate maximizers (THEORY §1.3, §4.2 Thm 4.1′, §5.3 S13)."""

    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    gamma: float = 0.5
    p_top: float = 0.005
    num_responses: int = 1024
    delta: float = 0.1
    max_num_samples: int = 1 << 20
    mc_trials: int = 2000
    seed: int = 0

    def __post_init__(self):
        if not self.ks or any(k < 1 for k in self.ks) or list(self.ks) != sorted(set(self.ks)):
            raise ValueError(f"ks must be non-empty, ascending, distinct and >= 1, got {self.ks}")
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma must lie in (0, 1), got {self.gamma}")
        if not 0 < self.p_top < 1:
            raise ValueError(f"p_top must lie in (0, 1), got {self.p_top}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")
        if self.max_num_samples < 1:
            raise ValueError(f"max_num_samples must be >= 1, got {self.max_num_samples}")
        if self.mc_trials < 1:
            raise ValueError(f"mc_trials must be >= 1, got {self.mc_trials}")
        near, size = self.p_top * (1.0 - self.gamma / 2.0), self.num_responses
        for k in self.ks:
            rest = 1.0 - self.p_top - (k - 1) * near
            if k >= size or rest < 0 or rest / (size - k) >= (1.0 - self.gamma) * self.p_top:
                raise ValueError(
                    f"num_responses={size} cannot hold k={k} near-maximizers (ks={self.ks}) of "
                    f"mass p_top={self.p_top} with every other response below (1 - gamma) p_top"
                )


def smoke() -> Config:
    """CI-sized: three values of k, 200 Monte-Carlo trials.

    ``sharpen run s13 --preset smoke``; feeds ``figures/fig_approx_maximizers.py``.
    """
    return Config(ks=(1, 4, 16), mc_trials=200)


def quick() -> Config:
    """``sharpen run s13`` (``sharpen repro`` default): k = 1..32, 2000 trials, ~10 s.

    Feeds ``figures/fig_approx_maximizers.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s13 --preset full``: k = 1..128 at p_top = 0.001 (C_cov = 1000), 20000 trials.

    Feeds ``figures/fig_approx_maximizers.py``.
    """
    return Config(
        ks=(1, 2, 4, 8, 16, 32, 64, 128), p_top=0.001, num_responses=8192, mc_trials=20000
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


@jax.jit
def bon_target_mass(logp_base_Y: jax.Array, mask_Y: jax.Array, num_samples: jax.Array):
    """``pi^BoN_N(S)`` for the set ``S = mask`` from the exact law (``N`` traced: one compile)."""
    return sharpen.set_mass(sharpen.bon_law(logp_base_Y, num_samples), mask_Y)


def smallest_num_samples(
    logp_base_Y: jax.Array, mask_Y: jax.Array, *, delta: float, max_num_samples: int
) -> int:
    """Smallest ``N`` with ``pi^BoN_N(S) >= 1 - delta``, by bisection on the exact BoN law.

    The target mass ``1 - (1 - pi_base(S))^N`` increases in ``N``, so bisection on
    ``(0, max_num_samples]`` is exact.

    Args:
      logp_base_Y: [Y] base log-probabilities.
      mask_Y: [Y] bool target set (e.g. :func:`sharpen.argmax_mask` with some ``gamma``).
      delta: allowed miss probability, in (0, 1).
      max_num_samples: upper end of the search.

    Returns:
      ``N*`` as a Python int.

    Raises:
      ValueError: if even ``max_num_samples`` draws do not reach ``1 - delta``.
    """

    def reaches(n: int) -> bool:
        return float(bon_target_mass(logp_base_Y, mask_Y, jnp.asarray(n, float))) >= 1.0 - delta

    if not reaches(max_num_samples):
        raise ValueError(f"max_num_samples={max_num_samples} does not reach 1 - delta={1 - delta}")
    lo, hi = 0, max_num_samples  # reaches(hi); lo = 0 stands for "not yet"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


@functools.partial(jax.jit, static_argnames=("num_samples",))
def _best_of_n_picks(logp_base_Y: jax.Array, keys_T: jax.Array, *, num_samples: int):
    return jax.vmap(lambda k: sharpen.best_of_n(logp_base_Y, num_samples, key=k)[0])(keys_T)


def mc_success_rate(
    logp_base_Y: jax.Array, mask_Y: jax.Array, num_samples: int, *, trials: int, key: jax.Array
) -> float:
    """Fraction of ``trials`` runs of :func:`sharpen.best_of_n` whose answer lies in ``mask``."""
    keys_T = jax.random.split(key, trials)
    picks_T = _best_of_n_picks(logp_base_Y, keys_T, num_samples=num_samples)
    return float(np.mean(np.asarray(mask_Y[picks_T], np.float64)))


def run_unit(cfg: Config, k: int, key: jax.Array) -> pd.DataFrame:
    """Both targets (``gamma = 0`` and ``cfg.gamma``) for the prompt with ``k`` near-maximizers."""
    logp_1xY = instances.near_tie_policy(
        k=k, gamma=cfg.gamma, p_top=cfg.p_top, num_responses=cfg.num_responses
    )
    mu = jnp.ones(1, logp_1xY.dtype)
    rows = []
    for g_idx, gamma in enumerate((0.0, cfg.gamma)):
        mask_Y = sharpen.argmax_mask(logp_1xY, gamma=gamma)[0]
        target = float(sharpen.set_mass(logp_1xY[0], mask_Y))
        n_star = smallest_num_samples(
            logp_1xY[0], mask_Y, delta=cfg.delta, max_num_samples=cfg.max_num_samples
        )
        mass_at = float(bon_target_mass(logp_1xY[0], mask_Y, jnp.asarray(n_star, float)))
        mass_before = (
            float(bon_target_mass(logp_1xY[0], mask_Y, jnp.asarray(n_star - 1, float)))
            if n_star > 1
            else 0.0
        )
        mc_key = jax.random.fold_in(key, g_idx)
        rows.append(
            {
                "k": k,
                "gamma": gamma,
                "delta": cfg.delta,
                "c_cov": float(sharpen.c_cov(logp_1xY, mu)),
                "c_cov_gamma": float(sharpen.c_cov(logp_1xY, mu, gamma=gamma)),
                "target_mass": target,
                "target_size": int(mask_Y.sum()),
                "n_star": n_star,
                "n_star_closed_form": math.ceil(math.log(cfg.delta) / math.log1p(-target)),
                "n_prop_c1": int(bounds.inference_bon_num_samples(target, cfg.delta)),
                "bon_mass_at_n_star": mass_at,
                "bon_mass_before_n_star": mass_before,
                "mc_success": mc_success_rate(
                    logp_1xY[0], mask_Y, n_star, trials=cfg.mc_trials, key=mc_key
                ),
                "mc_trials": cfg.mc_trials,
            }
        )
    return pd.DataFrame(rows)


_row = functools.partial(io.summary_row, NAME)


def summary_rows(table: pd.DataFrame, cfg: Config) -> list[dict]:
    """The five checks of the module docstring."""
    exact = table[table.gamma == 0.0].sort_values("k")
    approx = table[table.gamma == cfg.gamma].sort_values("k")
    rows = []
    if len(approx) >= 2:
        slope, _ = stats.fit_loglog_slope(approx.c_cov_gamma, approx.n_star)
        rows.append(
            _row(
                f"slope of log N*(gamma={cfg.gamma:g}) vs log C_cov,gamma over k",
                "[0.8, 1.2]",
                slope,
                verdict=stats.verdict_in_interval(slope, 0.8, 1.2),
            )
        )
    top_exact, top_approx = exact.iloc[-1], approx.iloc[-1]
    saving = top_exact.n_star / top_approx.n_star
    coverage_ratio = top_approx.c_cov / top_approx.c_cov_gamma
    rel = saving / coverage_ratio
    rows.append(
        _row(
            f"[N*(0)/N*(gamma)] / [C_cov/C_cov,gamma] at k={int(top_approx.k)} "
            f"(saving {saving:.4g} vs coverage ratio {coverage_ratio:.4g})",
            "[0.8, 1.2]",
            rel,
            verdict=stats.verdict_in_interval(rel, 0.8, 1.2),
        )
    )
    spread = float(exact.n_star.max() / exact.n_star.min())
    rows.append(
        _row(
            f"N*(gamma=0) max/min over k (C_cov = {exact.c_cov.iloc[0]:.4g} for every k)",
            "<= 1.05",
            spread,
            verdict=stats.verdict_le(spread, 1.05),
        )
    )
    gap = float(np.max(np.abs(table.n_star - table.n_star_closed_form)))
    rows.append(
        _row(
            "max |N* (bisection on bon_law) - ceil(log delta / log(1 - pi(y*_gamma)))|",
            "0",
            gap,
            verdict="pass" if gap == 0 else "fail",
        )
    )
    # The sampler's success at N* against the exact law's mass there: a z-score per cell; |z| <= 4
    # for every cell (Bonferroni over <= 20 cells keeps a false alarm below ~1e-3).
    exact = table.bon_mass_at_n_star.to_numpy()
    sigma = np.sqrt(np.maximum(exact * (1.0 - exact), 1e-12) / cfg.mc_trials)
    z = float(np.max(np.abs(table.mc_success.to_numpy() - exact) / sigma))
    rows.append(
        _row(
            f"best_of_n at N*: success rate vs exact pi^BoN_N*(y*_gamma) >= 1 - delta, max |z| ({cfg.mc_trials} trials)",
            "<= 4",
            z,
            verdict="pass" if z <= 4 else "fail",
        )
    )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/k=*.csv``, ``metrics.csv`` (per k, gamma), ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    mc_key = jax.random.key(cfg.seed)
    frames = [
        io.cached_unit(
            out_dir, f"k={k}", lambda k=k: run_unit(cfg, k, jax.random.fold_in(mc_key, k))
        )
        for k in cfg.ks
    ]
    io.finalize_metrics(out_dir, frames)
    io.write_summary(out_dir, summary_rows(pd.concat(frames, ignore_index=True), cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S13 — Def F.1 / Thm 4.1′: best-of-N samples to y*_gamma scale with C_cov,gamma",
        presets=PRESETS,
        run=run,
    )
)

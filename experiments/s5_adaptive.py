"""S5 — Thm D.1 and Lemma I.1: adaptive SFT-Sharpening and its stopping rule.

(a) On the lower-bound family of S3, adaptive SFT-Sharpening (AdaBoN data with the stopping rule
of Eq. 10, ``mu_stop = ln(2/delta)``, MLE over the AdaBoN class) needs ``E[m] ~ 1/eps`` queries,
against ``1/eps^2`` without adaptivity (S4), matching the adaptive lower bound (Thm D.2, S3).
``E[m] <= n (1 + mu) C_bar_cov`` (the proof of Thm D.1) is checked exactly.
(b) Lemma I.1 on random categorical instances (with and without ties): the exact stopping time
and failure probability (closed form, :func:`sharpen.adaptive_bon_law`) and their Monte-Carlo
estimates with the real sampler (:func:`sharpen.adaptive_best_of_n`) against the bounds
``E[N_mu] <= (mu + 1/|y*|)/P*`` and ``P[y_hat not in y*] <= exp(-|y*| mu)``.

Command: ``sharpen run s5 [--preset quick|full]``; feeds ``figures/fig_mstar_vs_eps.py`` and
``figures/fig_stopping_rule.py``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import sharpen
from experiments import io, rates
from experiments.registry import ExperimentSpec, register
from experiments.s3_lower_bound import FULL_SWEEP, SMOKE_SWEEP
from experiments.s3_lower_bound import Config as RateConfig
from theory import bounds

NAME = "s5"


@dataclasses.dataclass(frozen=True)
class Config(RateConfig):
    """The S3 sweep (part a) plus random instances for Lemma I.1 (part b)."""

    lemma_sizes: tuple[int, ...] = (20, 100)
    lemma_mus: tuple[float, ...] = (1.0, 2.0, 3.0)
    lemma_instances: int = 5
    lemma_trials: int = 10000

    def __post_init__(self):
        super().__post_init__()
        if any(m <= 0 for m in self.lemma_mus):
            raise ValueError(f"lemma_mus must be > 0, got {self.lemma_mus}")
        if any(k < 2 for k in self.lemma_sizes):
            raise ValueError(f"lemma_sizes must be >= 2, got {self.lemma_sizes}")


def smoke() -> Config:
    """CI-sized: ``sharpen run s5 --preset smoke`` (a few seconds)."""
    return Config(
        **SMOKE_SWEEP,
        lemma_sizes=(20,),
        lemma_mus=(2.0,),
        lemma_instances=2,
        lemma_trials=2000,
    )


def quick() -> Config:
    """``sharpen run s5`` (~20 s); feeds fig_mstar_vs_eps and fig_stopping_rule."""
    return Config()


def full() -> Config:
    """S3's full sweep (p = 1 only: Thm D.1 is stated for it) and 50 instances per (K, mu):
    ``sharpen run s5 --preset full`` (~3 min)."""
    return Config(**{**FULL_SWEEP, "ps": (1,)}, lemma_instances=50, lemma_trials=100000)


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def _instance(key, size: int, tie: bool):
    """A Dirichlet(1/2) categorical; with ``tie`` its top two entries are made equal."""
    p = jax.random.dirichlet(key, jnp.full((size,), 0.5))
    if tie:
        order = jnp.argsort(-p)
        top = 0.5 * (p[order[0]] + p[order[1]])
        p = p.at[order[0]].set(top).at[order[1]].set(top)
    return jnp.log(p / jnp.sum(p))


@jax.jit
def _mc(logp, mu_stop, keys):
    out = jax.vmap(lambda k: sharpen.adaptive_best_of_n(logp, mu_stop=mu_stop, key=k))(keys)
    in_star = sharpen.argmax_mask(logp)[out.response]
    return jnp.mean(out.num_draws), jnp.std(out.num_draws), 1.0 - jnp.mean(in_star)


def lemma_unit(cfg: Config, size: int, mu_stop: float) -> pd.DataFrame:
    rows = []
    base = jax.random.fold_in(jax.random.key(cfg.seed + 5), size)
    for i in range(cfg.lemma_instances):
        for tie in (False, True):
            key = jax.random.fold_in(base, 2 * i + int(tie))
            logp = _instance(key, size, tie)
            law, draws = sharpen.adaptive_bon_law(logp, mu_stop=mu_stop)
            mask = sharpen.argmax_mask(logp)
            fail = 1.0 - float(sharpen.set_mass(law, mask))
            p_star = float(jnp.exp(jnp.max(logp)))
            k_star = int(jnp.sum(mask))
            e_bound, f_bound = bounds.stopping_rule_bounds(mu_stop, p_star, k_star)
            keys = jax.random.split(jax.random.fold_in(key, 1), cfg.lemma_trials)
            mc_draws, sd_draws, mc_fail = (float(v) for v in _mc(logp, mu_stop, keys))
            rows.append(
                {
                    "K": size,
                    "mu_stop": mu_stop,
                    "instance": i,
                    "tie": tie,
                    "p_star": p_star,
                    "num_argmax": k_star,
                    "expected_draws": float(draws),
                    "expected_draws_mc": mc_draws,
                    "expected_draws_mc_se": sd_draws / math.sqrt(cfg.lemma_trials),
                    "expected_draws_bound": float(e_bound),
                    "failure": fail,
                    "failure_mc": mc_fail,
                    "failure_bound": float(f_bound),
                    "trials": cfg.lemma_trials,
                }
            )
    return pd.DataFrame(rows)


def draws_bound_row(cfg: Config, table: pd.DataFrame) -> dict:
    """Thm D.1's proof: E[m] <= n (1 + mu) C_bar_cov, checked with the exact E[N_mu] per prompt."""
    mu_stop = math.log(2.0 / cfg.delta)
    worst = 0.0
    for _, fam in rates.members(cfg.sweep()):
        _, hard, easy = rates.hf.adaptive_pick_prob_and_cost(fam, mu_stop)
        per_prompt = (1.0 - fam.Delta) * easy + fam.Delta * hard
        c_bar = (1.0 - fam.Delta) + fam.Delta / fam.p_top  # unique argmax: C_bar = C_cov
        worst = max(
            worst, per_prompt / float(bounds.adaptive_sft_expected_draws_bound(1, mu_stop, c_bar))
        )
    return io.summary_row(
        NAME,
        "E[m]/n vs Thm D.1 proof bound (1+mu) C_bar_cov: worst ratio",
        "<= 1",
        worst,
        verdict="pass" if worst <= 1.0 else "fail",
    )


def summary(cfg, frames, table, lemma) -> list[dict]:
    rows = rates.slope_rows(
        NAME, frames, cfg, "sft_adaptive", "adaptive SFT-Sharpening", {"eps_p1": (0.8, 1.3)}
    )
    rows.append(draws_bound_row(cfg, table))
    e_ok = bool((lemma["expected_draws"] <= lemma["expected_draws_bound"] * (1 + 1e-5)).all())
    f_ok = bool((lemma["failure"] <= lemma["failure_bound"] * (1 + 1e-5)).all())
    rows.append(
        io.summary_row(
            NAME,
            f"Lemma I.1: E[N_mu] <= (mu + 1/|y*|)/P* on {len(lemma)} instances (max ratio)",
            "<= 1",
            float((lemma["expected_draws"] / lemma["expected_draws_bound"]).max()),
            verdict="pass" if e_ok else "fail",
        )
    )
    rows.append(
        io.summary_row(
            NAME,
            f"Lemma I.1: P[y_hat not in y*] <= exp(-|y*| mu) on {len(lemma)} instances (max ratio)",
            "<= 1",
            float((lemma["failure"] / lemma["failure_bound"]).max()),
            verdict="pass" if f_ok else "fail",
        )
    )
    # Monte Carlo against the closed form: |z| <= 5 (a 5-sigma band; 2 x 2 x K x mu x instances tests).
    z_draws = (lemma["expected_draws_mc"] - lemma["expected_draws"]) / lemma["expected_draws_mc_se"]
    f_se = np.sqrt(np.maximum(lemma["failure"] * (1 - lemma["failure"]), 1e-12) / lemma["trials"])
    z_fail = (lemma["failure_mc"] - lemma["failure"]) / (f_se + 1.0 / lemma["trials"])
    worst = float(np.max(np.abs(np.concatenate([z_draws, z_fail]))))
    rows.append(
        io.summary_row(
            NAME,
            "AdaBoN sampler vs closed-form law (max |z| over instances)",
            "<= 5",
            worst,
            verdict="pass" if worst <= 5 else "fail",
        )
    )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``metrics.csv``, ``mstar.csv``, ``lemma_i1.csv``, ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    frames = rates.run_learners(cfg.sweep(), out_dir, ("sft_adaptive",))
    lemma = pd.concat(
        [
            io.cached_unit(out_dir, f"lemma_K={k}_mu={m:g}", lambda k=k, m=m: lemma_unit(cfg, k, m))
            for k in cfg.lemma_sizes
            for m in cfg.lemma_mus
        ],
        ignore_index=True,
    )
    io.finalize_metrics(out_dir, frames)
    io.write_csv(out_dir / "lemma_i1.csv", lemma)
    table = rates.m_star_table(frames, num_boot=cfg.num_boot, seed=cfg.seed)
    io.write_csv(out_dir / "mstar.csv", table)
    io.write_summary(out_dir, summary(cfg, frames, table, lemma))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S5 — Thm D.1/Lemma I.1: adaptive SFT-Sharpening and the stopping rule",
        presets=PRESETS,
        run=run,
    )
)

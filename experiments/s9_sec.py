"""S9 — Lemma J.5 / Lemma F.2: the SEC of linear softmax is O(d log T) along XPO trajectories.

Instance: Example J.1 (:func:`theory.rlhf_instances.example_j1`, the S8 family) for each ``d``.
Per seed, run :func:`sharpen.xpo.xpo` for ``num_rounds`` rounds (theory ``beta`` and ``B`` of
:func:`theory.rlhf_instances.linear_instance_stats`) and feed the policies that generated the data,
:math:`\\pi^{(1)},\\dots,\\pi^{(T)}`, to :func:`sharpen.xpo.sec_potential`: with augmented
features :math:`\\psi=[\\phi,\\,r/R_{\\max}]\\in\\mathbb R^{d+1}` it returns, exactly over
:math:`\\mathcal Y`, the elliptic potential
:math:`\\sum_{t\\le T}\\mathrm{Tr}((I+\\sum_{i<t}\\Sigma^{(i)})^{-1}\\Sigma^{(t)})` and the SEC
summands of Def. J.1 along the trajectory.

Checks (``summary.csv``): the cumulative potential stays below Lemma F.2's bound
(:func:`sharpen.xpo.elliptic_potential_bound` with dimension ``d + 1``, trace bound 8, ridge 1) at
every ``T``, ``d`` and seed; below ``c (d+1) log(T+1)`` with ``c = 15`` at every ``T`` (Lemma F.2
implies ``c = 4 * 8 / log 9 = 14.6`` for ``T >= 1``; we report the measured ``c``); the cumulative SEC
summands stay below twice the potential (the proof chain of Lemma J.5); and the slope of the
potential against ``log(T+1)`` over the second half of the rounds, divided by ``d + 1`` (info:
the lemma predicts a slope at most proportional to ``d + 1``).

Command: ``sharpen run s9 [--preset quick|full]``; feeds ``figures/fig_sec.py``.
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

from experiments import io, stats
from experiments.registry import ExperimentSpec, register
from sharpen import xpo as xpo_lib
from theory import rlhf_instances

NAME = "s9"
#: Lemma F.2 with K = 8, lambda = 1 gives potential <= (8 / log 9) (d+1) log(8(T+1))
#: <= 4 (8 / log 9) (d+1) log(T+1) = 14.6 (d+1) log(T+1) for T >= 1.
C_STATED = 15.0


@dataclasses.dataclass(frozen=True)
class Config:
    """SEC potential along XPO trajectories on Example J.1 (THEORY §2, §4.4, §5.3 S9)."""

    dims: tuple[int, ...] = (4, 8, 12)
    min_dist: float = 0.75
    num_candidates: int = 100_000
    num_rounds: int = 256
    num_seeds: int = 4
    inner_steps: int = 100
    learning_rate: float = 1.0
    delta: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if not self.dims or any(d < 2 for d in self.dims) or len(set(self.dims)) != len(self.dims):
            raise ValueError(f"dims must be distinct values >= 2, got {self.dims}")
        if not 0.5 <= self.min_dist <= 2.0:
            raise ValueError(f"min_dist must lie in [0.5, 2], got {self.min_dist}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}")
        if self.num_rounds < 4:
            raise ValueError(f"num_rounds must be >= 4, got {self.num_rounds}")
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be finite and > 0, got {self.learning_rate}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")


def smoke() -> Config:
    """CI-sized: d in (3, 5), 32 rounds, 2 seeds.

    ``sharpen run s9 --preset smoke``; feeds ``figures/fig_sec.py``.
    """
    return Config(dims=(3, 5), num_candidates=10_000, num_rounds=32, num_seeds=2, inner_steps=50)


def quick() -> Config:
    """``sharpen run s9`` (``sharpen repro`` default): d in (4, 8, 12), T = 256, 4 seeds.

    Feeds ``figures/fig_sec.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s9 --preset full``: d in (4, 6, 8, 10, 12), T = 1024, 8 seeds.

    Feeds ``figures/fig_sec.py``.
    """
    return Config(dims=(4, 6, 8, 10, 12), num_rounds=1024, num_seeds=8)


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def run_unit(cfg: Config, dim: int) -> pd.DataFrame:
    """All seeds for one ``d``: one row per (seed, round t)."""
    inst = rlhf_instances.example_j1(
        key=jax.random.fold_in(jax.random.key(cfg.seed), dim), dim=dim, min_dist=cfg.min_dist,
        num_candidates=cfg.num_candidates,
    )  # fmt: skip
    st = rlhf_instances.linear_instance_stats(inst, delta=cfg.delta)
    unit_key = jax.random.fold_in(jax.random.key(cfg.seed + 1), dim)

    def one(seed):
        res = xpo_lib.xpo(
            inst.features, inst.theta_base, key=jax.random.fold_in(unit_key, seed),
            num_rounds=cfg.num_rounds, radius=st.radius, beta=st.beta,
            inner_steps=cfg.inner_steps, learning_rate=cfg.learning_rate, delta=cfg.delta,
        )  # fmt: skip
        sec = xpo_lib.sec_potential(
            res.iterates[:-1], inst.features, inst.theta_base, beta=st.beta, radius=st.radius
        )
        return sec.potential_cum, sec.sec_cum, sec.trace

    pot_SxT, sec_SxT, trace_SxT = (
        np.asarray(a, np.float64) for a in jax.lax.map(one, jnp.arange(cfg.num_seeds))
    )
    t_T = np.arange(1, cfg.num_rounds + 1)
    bound_T = np.asarray(
        xpo_lib.elliptic_potential_bound(dim + 1, jnp.asarray(t_T, jnp.float32)), np.float64
    )
    seed_SxT, t_SxT = np.meshgrid(np.arange(cfg.num_seeds), t_T, indexing="ij")
    return pd.DataFrame(
        {
            "d": dim,
            "seed": seed_SxT.ravel(),
            "t": t_SxT.ravel(),
            "potential": pot_SxT.ravel(),
            "sec": sec_SxT.ravel(),
            "trace": trace_SxT.ravel(),
            "bound_f2": np.tile(bound_T, cfg.num_seeds),
            "reference": ((dim + 1) * np.log(t_SxT + 1.0)).ravel(),
            "num_responses": st.num_responses,
        }
    )


_row = functools.partial(io.summary_row, NAME)


def summary_rows(table: pd.DataFrame, cfg: Config) -> list[dict]:
    rows = []
    worst_f2 = float((table.potential / table.bound_f2).max())
    rows.append(
        _row(
            "max over (d, T, seed) of potential / Lemma F.2 bound (dim d+1, K = 8, ridge 1)",
            "<= 1",
            worst_f2,
            verdict=stats.verdict_le(worst_f2, 1.0),
        )
    )
    c_measured = float((table.potential / table.reference).max())
    rows.append(
        _row(
            f"max over (d, T, seed) of potential / ((d+1) log(T+1)): measured c (stated c = {C_STATED:g})",
            f"<= {C_STATED:g}",
            c_measured,
            verdict=stats.verdict_le(c_measured, C_STATED),
        )
    )
    worst_sec = float((table.sec / (2.0 * table.potential)).max())
    rows.append(
        _row(
            "max over (d, T, seed) of cumulative SEC summands / (2 potential) (Lemma J.5 chain)",
            "<= 1",
            worst_sec,
            verdict=stats.verdict_le(worst_sec, 1.0 + 1e-5),
        )
    )
    half = cfg.num_rounds // 2
    for d in cfg.dims:
        mean = table[(table.d == d) & (table.t >= half)].groupby("t")["potential"].mean()
        x = np.log(mean.index.to_numpy(np.float64) + 1.0)
        slope = float(np.polyfit(x, mean.to_numpy(), 1)[0])
        rows.append(
            _row(
                f"d={d}: slope of mean potential vs log(T+1), T >= {half}, divided by d+1",
                "<= O(1)",
                slope / (d + 1),
                verdict="info",
            )
        )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/d=*.csv``, ``metrics.csv`` and ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    frames = [io.cached_unit(out_dir, f"d={d:02d}", lambda d=d: run_unit(cfg, d)) for d in cfg.dims]
    io.finalize_metrics(out_dir, frames)
    table = pd.concat(frames, ignore_index=True)
    io.write_summary(out_dir, summary_rows(table, cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S9 — Lemma J.5: SEC potential of linear softmax along XPO <= c (d+1) log(T+1)",
        presets=PRESETS,
        run=run,
    )
)

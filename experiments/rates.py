"""Sample-complexity sweeps on the lower-bound family, shared by S3, S4 and S5.

A *unit* is one learner on one member of the family (one epsilon, or one C at fixed epsilon).
It evaluates the learner's exact sharpening error for every seed on a geometric grid of
budgets (and, for non-adaptive learners, of splits ``m = n N``) and returns a tidy frame with
one row per (seed, budget, split). :func:`m_star_table` turns those rows into ``m*`` per unit
with a bootstrap interval over seeds, and :func:`slope_row` fits the log-log slope of ``m*``
against ``1/epsilon`` or ``C`` with a bootstrap interval (the same resampled seeds for every
unit, so the interval is that of the slope, not of each point).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import hard_family as hf
from experiments import io, stats
from theory import instances

#: Learners and what their budget axis is.
NON_ADAPTIVE = ("bayes", "sft")
ADAPTIVE = ("bayes_adaptive", "sft_adaptive")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Grid shared by the three experiments (fields mirror their configs)."""

    epsilons: tuple[float, ...]
    c: float
    cs: tuple[float, ...]
    epsilon_for_c: float
    ps: tuple[int, ...]
    d: int
    gamma: float
    delta: float
    num_seeds: int
    per_decade: int
    span: tuple[float, float]
    split_factors: tuple[float, ...]
    seed: int

    @property
    def pad_to(self) -> int:
        """Largest M of the sweep: every hard row is padded to it (one compile per run)."""
        return max(f.M for _, f in members(self))


def members(sweep: Sweep) -> list[tuple[str, hf.Family]]:
    """``("eps", family)`` for every (p, epsilon) and ``("C", family)`` for every C (p = 1)."""
    out = [
        ("eps", hf.family(e, sweep.c, p=p, d=sweep.d, gamma=sweep.gamma))
        for p in sweep.ps
        for e in sweep.epsilons
    ]
    out += [
        ("C", hf.family(sweep.epsilon_for_c, c, p=1, d=sweep.d, gamma=sweep.gamma))
        for c in sweep.cs
    ]
    return out


def unit_name(learner: str, sweep_kind: str, fam: hf.Family) -> str:
    return f"{learner}_{sweep_kind}_p={fam.p}_eps={fam.epsilon:g}_C={fam.c:g}"


def _budget_grid(center: float, sweep: Sweep) -> np.ndarray:
    lo, hi = math.log10(center * sweep.span[0]), math.log10(center * sweep.span[1])
    num = max(2, round((hi - lo) * sweep.per_decade) + 1)
    return np.round(np.logspace(lo, hi, num))  # fixed length: one compile for every unit


def _reference_budget(fam: hf.Family) -> float:
    """Where m* should sit for the Bayes learner: ``d log(16) / (Delta p_top)`` queries."""
    return fam.d * math.log(16.0) / (fam.Delta * fam.p_top)


_sft = jax.jit(jax.vmap(hf.sft_errors.__wrapped__, in_axes=(0, 0, 0, None, None, None)))
_bayes = jax.jit(jax.vmap(hf.bayes_errors.__wrapped__, in_axes=(0, 0, 0, None, None, None)))
_bayes_ada = jax.jit(
    jax.vmap(hf.bayes_adaptive_errors.__wrapped__, in_axes=(0, 0, None, None, None))
)


def run_unit(learner: str, sweep_kind: str, fam: hf.Family, sweep: Sweep, unit_id: int):
    """Exact per-seed errors of ``learner`` on ``fam`` over the budget grid; a tidy frame."""
    keys = hf.seed_keys(sweep.seed, unit_id, sweep.num_seeds)
    mu = jnp.asarray(fam.mu, float)
    threshold = 1.0 - sweep.delta
    ref = _reference_budget(fam)
    if learner in NON_ADAPTIVE:
        m_grid = _budget_grid(ref, sweep)
        if learner == "bayes":
            n_split = np.array([1.0])  # one draw per prompt maximizes the chance per query
        else:
            n_split = np.maximum(1.0, np.ceil(np.array(sweep.split_factors) * fam.M))
        mm, nn, ss = np.meshgrid(m_grid, n_split, np.arange(sweep.num_seeds), indexing="ij")
        prompts = np.floor(mm / nn)
        flat_keys = keys[ss.ravel()]
        if learner == "bayes":
            table = instances.unseen_guess_table(fam.M, 10 * sweep.pad_to, size=sweep.pad_to)
            err = _bayes(
                flat_keys,
                jnp.asarray(prompts.ravel(), float),
                jnp.asarray(nn.ravel(), float),
                mu,
                fam.p_top,
                table,
            )
            capped = np.zeros(err.shape, bool)
        else:
            q = hf.argmax_pick_prob(fam, nn.ravel(), pad_to=sweep.pad_to)
            err, _, capped = _sft(
                flat_keys,
                jnp.asarray(prompts.ravel(), float),
                jnp.asarray(q, float),
                threshold,
                mu,
                float(fam.M),
            )
        budget = mm.ravel()
        n_samples = nn.ravel()
        n_prompts = prompts.ravel()
    else:
        n_grid = _budget_grid(fam.d * math.log(16.0) / fam.Delta, sweep)
        nn, ss = np.meshgrid(n_grid, np.arange(sweep.num_seeds), indexing="ij")
        flat_keys = keys[ss.ravel()]
        n_prompts = nn.ravel()
        if learner == "bayes_adaptive":
            err, budget = _bayes_ada(
                flat_keys, jnp.asarray(n_prompts, float), mu, fam.p_top, float(fam.M)
            )
            capped = np.zeros(err.shape, bool)
        else:
            mu_stop = math.log(2.0 / sweep.delta)
            q, hard_cost, easy_cost = hf.adaptive_pick_prob_and_cost(
                fam, mu_stop, pad_to=sweep.pad_to
            )
            err, visits, capped = _sft(
                flat_keys,
                jnp.asarray(n_prompts, float),
                jnp.full(n_prompts.shape, q, float),
                threshold,
                mu,
                float(fam.M),
            )
            visits = np.asarray(visits, np.float64)
            budget = visits[:, 0] * easy_cost + visits[:, 1:].sum(1) * hard_cost
        n_samples = np.full(n_prompts.shape, np.nan)
    return pd.DataFrame(
        {
            "learner": learner,
            "sweep": sweep_kind,
            "p": fam.p,
            "epsilon": fam.epsilon,
            "c": fam.c,
            "M": fam.M,
            "Delta": fam.Delta,
            "c_cov": fam.c_cov,
            "seed": ss.ravel(),
            "m": np.asarray(budget, np.float64),
            "n": n_prompts,
            "N": n_samples,
            "error": np.asarray(err, np.float64),
            "capped": np.asarray(capped, bool),
        }
    )


def _m_star_from(block: np.ndarray, epsilon: float, adaptive: bool) -> float:
    """m* from per-seed arrays: block [S, G, K, 2] of (budget, error); K = splits."""
    mean = block.mean(axis=0)  # [G, K, 2]
    if adaptive:  # one split; the budget is the mean realized cost at each n
        return first_crossing(mean[:, 0, 0], mean[:, 0, 1], epsilon)
    best = mean[:, :, 1].min(axis=1)  # best split at each nominal budget
    return first_crossing(mean[:, 0, 0], best, epsilon)


def first_crossing(budget: np.ndarray, err: np.ndarray, epsilon: float) -> float:
    """Smallest budget with error <= epsilon, log-log interpolated between grid points.

    Like :func:`experiments.stats.m_star_interpolated`, but the budgets need only be
    non-decreasing (an adaptive learner's mean cost can saturate as ``n`` grows).
    """
    hit = err <= epsilon
    if not hit.any():
        return float("nan")
    i = int(np.argmax(hit))
    if i == 0 or budget[i] <= budget[i - 1]:
        return float(budget[i])
    return stats.m_star_interpolated(budget[i - 1 : i + 1], err[i - 1 : i + 1], epsilon)


def unit_array(frame: pd.DataFrame) -> np.ndarray:
    """Reshape one unit's rows into [S, G, K, 2] of (budget, error), K splits per budget."""
    seeds = frame["seed"].nunique()
    if frame.iloc[0]["learner"] in ADAPTIVE:
        arr = frame.sort_values(["n", "seed"], kind="stable")[["m", "error"]].to_numpy(np.float64)
        return arr.reshape(-1, seeds, 1, 2).transpose(1, 0, 2, 3)
    splits = frame["N"].nunique()
    arr = frame.sort_values(["m", "N", "seed"], kind="stable")[["m", "error"]].to_numpy(np.float64)
    return arr.reshape(-1, splits, seeds, 2).transpose(2, 0, 1, 3)


def m_star_table(frames: list[pd.DataFrame], *, num_boot: int, seed: int) -> pd.DataFrame:
    """m* (error <= epsilon, interpolated on the grid) per unit, with a bootstrap CI over seeds."""
    rows = []
    rng = np.random.default_rng(seed)
    for frame in frames:
        first = frame.iloc[0]
        adaptive = first["learner"] in ADAPTIVE
        arr = unit_array(frame)
        point = _m_star_from(arr, first["epsilon"], adaptive)
        boots = [
            _m_star_from(
                arr[rng.integers(0, arr.shape[0], arr.shape[0])], first["epsilon"], adaptive
            )
            for _ in range(num_boot)
        ]
        lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if np.isfinite(boots).any() else (np.nan,) * 2
        rows.append(
            {
                **{
                    k: first[k]
                    for k in ("learner", "sweep", "p", "epsilon", "c", "M", "Delta", "c_cov")
                },
                "m_star": point,
                "ci_low": lo,
                "ci_high": hi,
                "capped_rows": int(frame["capped"].sum()),
            }
        )
    return pd.DataFrame(rows)


def slope_with_ci(
    frames: list[pd.DataFrame], x: np.ndarray, *, num_boot: int, seed: int
) -> tuple[float, float, float]:
    """Log-log slope of m* against ``x`` (one x per frame), bootstrap CI resampling seeds jointly."""
    arrays = [unit_array(f) for f in frames]
    firsts = [f.iloc[0] for f in frames]

    def slope(index: np.ndarray | None) -> float:
        ms = []
        for arr, first in zip(arrays, firsts, strict=True):
            a = arr if index is None else arr[index]
            ms.append(_m_star_from(a, first["epsilon"], first["learner"] in ADAPTIVE))
        ms = np.asarray(ms)
        ok = np.isfinite(ms)
        if ok.sum() < 2:
            return float("nan")
        return stats.fit_loglog_slope(np.asarray(x)[ok], ms[ok])[0]

    rng = np.random.default_rng(seed)
    num_seeds = arrays[0].shape[0]
    boots = np.array([slope(rng.integers(0, num_seeds, num_seeds)) for _ in range(num_boot)])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return slope(None), float(lo), float(hi)


def run_learners(sweep: Sweep, out_dir, learners: tuple[str, ...]):
    """Run every (learner, member) unit, resumably; returns the frames per unit in order."""
    frames = []
    for learner in learners:
        for unit_id, (kind, fam) in enumerate(members(sweep)):
            name = unit_name(learner, kind, fam)
            frames.append(
                io.cached_unit(
                    out_dir,
                    name,
                    lambda learner=learner, kind=kind, fam=fam, unit_id=unit_id: run_unit(
                        learner, kind, fam, sweep, unit_id
                    ),
                )
            )
    return frames


def slope_rows(experiment: str, frames, cfg, learner: str, label: str, predicted: dict):
    """Summary rows: slope of m* vs 1/eps (per p) and vs C, for one learner."""
    rows = []
    mine = [f for f in frames if f.iloc[0]["learner"] == learner]
    for p in cfg.ps:
        eps_frames = [f for f in mine if f.iloc[0]["sweep"] == "eps" and f.iloc[0]["p"] == p]
        x = 1.0 / np.array([f.iloc[0]["epsilon"] for f in eps_frames])
        slope, lo, hi = slope_with_ci(eps_frames, x, num_boot=cfg.num_boot, seed=cfg.seed)
        key = f"eps_p{p}"
        if key in predicted:
            a, b = predicted[key]
            rows.append(
                io.summary_row(
                    experiment,
                    f"{label}: slope of m* vs 1/eps (p={p})",
                    f"[{a}, {b}]",
                    slope,
                    lo,
                    hi,
                )
            )
    if "C" in predicted:
        c_frames = [f for f in mine if f.iloc[0]["sweep"] == "C"]
        x = np.array([f.iloc[0]["c"] for f in c_frames])
        slope, lo, hi = slope_with_ci(c_frames, x, num_boot=cfg.num_boot, seed=cfg.seed)
        a, b = predicted["C"]
        rows.append(
            io.summary_row(
                experiment,
                f"{label}: slope of m* vs C (eps={cfg.epsilon_for_c})",
                f"[{a}, {b}]",
                slope,
                lo,
                hi,
            )
        )
    return rows

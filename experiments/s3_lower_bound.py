"""S3 — Thm 3.1 / 3.1′ / D.2: the lower bound for sharpening, on its own hard instance.

On the family ``Delta = 16 eps``, ``M = ceil(1 + C eps^(-1/p))`` the Bayes-optimal learner
(uniform prior over index vectors) needs ``m* ~ C / eps^(1+1/p)`` queries to reach sharpening
error ``eps``, and ``m* ~ C / eps^(1/p)`` when it may choose the number of draws per prompt
adaptively. No learner does better, so these curves are the lower bound that SFT-Sharpening
(S4) and its adaptive version (S5) are compared with.

Command: ``sharpen run s3 [--preset quick|full]`` (or ``sharpen repro``); feeds
``figures/fig_mstar_vs_eps.py`` and ``figures/fig_mstar_vs_c.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import sharpen
from experiments import io, rates
from experiments.registry import ExperimentSpec, register
from theory import bounds, instances

NAME = "s3"


@dataclasses.dataclass(frozen=True)
class Config:
    """Sweep of the lower-bound family (THEORY §5.3 S3)."""

    epsilons: tuple[float, ...] = (0.04, 0.02, 0.01, 0.005, 0.0025)
    c: float = 2.0
    cs: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)
    epsilon_for_c: float = 0.01
    ps: tuple[int, ...] = (1,)
    d: int = 4
    gamma: float = 0.5
    delta: float = 0.5
    num_seeds: int = 16
    per_decade: int = 8
    span: tuple[float, ...] = (0.05, 20.0)
    split_factors: tuple[float, ...] = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8)
    num_boot: int = 300
    seed: int = 0

    def __post_init__(self):
        for e in (*self.epsilons, self.epsilon_for_c):
            if not 0 < e < 1 / 16:
                raise ValueError(f"epsilons must lie in (0, 1/16) (Delta = 16 eps < 1), got {e}")
        if len(self.span) != 2 or not 0 < self.span[0] < self.span[1]:
            raise ValueError(f"span must be (low, high) with 0 < low < high, got {self.span}")
        if self.delta != 0.5 or self.gamma != 0.5:
            raise ValueError(
                "the lower-bound instance is analysed at gamma = delta = 1/2 "
                f"(success means mass > 1/2 on y*_(1/2)); got gamma={self.gamma}, delta={self.delta}"
            )

    def sweep(self) -> rates.Sweep:
        fields = {f.name for f in dataclasses.fields(rates.Sweep)}
        return rates.Sweep(**{k: v for k, v in dataclasses.asdict(self).items() if k in fields})


#: Sweep fields of the smoke and full presets; S4 and S5 run the same family and reuse them.
SMOKE_SWEEP = {
    "epsilons": (0.04, 0.02),
    "cs": (2.0, 4.0),
    "num_seeds": 4,
    "per_decade": 4,
    "num_boot": 20,
}
FULL_SWEEP = {
    "epsilons": (0.05, 0.02, 0.01, 0.005, 0.002, 0.001),
    "ps": (1, 2),
    "num_seeds": 40,
    "per_decade": 12,
    "num_boot": 1000,
}


def smoke() -> Config:
    """CI-sized: two epsilons, two Cs, 4 seeds (``sharpen run s3 --preset smoke``, ~3 s)."""
    return Config(**SMOKE_SWEEP)


def quick() -> Config:
    """The acceptance sweep, p = 1: ``sharpen run s3`` (~10 s); feeds fig_mstar_vs_eps/_c."""
    return Config()


def full() -> Config:
    """Epsilon down to 1e-3, p in {1, 2}, 40 seeds: ``sharpen run s3 --preset full`` (~15 s)."""
    return Config(**FULL_SWEEP)


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def check_instance(cfg: Config) -> dict:
    """``C_cov`` of the exact instance (computed by :func:`sharpen.c_cov`) vs ``1 - D + D M / 2``."""
    worst = 0.0
    for _, fam in rates.members(cfg.sweep()):
        if fam.p != 1:
            continue
        inst = instances.hard_instance(d=fam.d, M=fam.M, Delta=fam.Delta, gamma=fam.gamma)
        got = float(sharpen.c_cov(inst.logp_base, inst.mu, gamma=fam.gamma))
        want = float(bounds.hard_instance_c_cov(fam.Delta, fam.M, gamma=fam.gamma))
        worst = max(worst, abs(got - want) / want)
    return io.summary_row(
        NAME,
        "C_cov(hard instance) vs 1-Delta+Delta*M/2: max relative gap",
        "<= 1e-4",
        worst,
        verdict="pass" if worst <= 1e-4 else "fail",
    )


def theory_ratio_row(table, cfg: Config) -> dict:
    """Spread of m*(Bayes) / (C log|Pi| / (eps^2 (1 + log(C/eps)))) over eps: a log factor at most."""
    sel = table[(table.learner == "bayes") & (table.sweep == "eps") & (table.p == 1)]
    log_class = cfg.d * np.log(sel["M"].to_numpy(np.float64))
    bound = np.asarray(
        bounds.lower_bound_sft(
            jnp.asarray(sel["c"].to_numpy()),
            jnp.asarray(log_class),
            jnp.asarray(sel["epsilon"].to_numpy()),
        )
    )
    ratio = sel["m_star"].to_numpy() / bound
    spread = float(np.nanmax(ratio) / np.nanmin(ratio))
    limit = float(np.log(1.0 / min(cfg.epsilons)))
    return io.summary_row(
        NAME,
        "m*(Bayes) / Thm 3.1 rate (c=1): max/min over eps",
        f"<= log(1/eps_min) = {limit:.3g}",
        spread,
        verdict="pass" if spread <= limit else "fail",
    )


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``metrics.csv`` (per seed), ``mstar.csv`` and ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    frames = rates.run_learners(cfg.sweep(), out_dir, ("bayes", "bayes_adaptive"))
    io.finalize_metrics(out_dir, frames)
    table = rates.m_star_table(frames, num_boot=cfg.num_boot, seed=cfg.seed)
    io.write_csv(out_dir / "mstar.csv", table)
    predicted = {"eps_p1": (1.6, 2.4), "eps_p2": (1.2, 1.8), "C": (0.8, 1.2)}
    rows = rates.slope_rows(NAME, frames, cfg, "bayes", "Bayes learner (lower bound)", predicted)
    rows += rates.slope_rows(
        NAME, frames, cfg, "bayes_adaptive", "adaptive Bayes learner", {"eps_p1": (0.8, 1.3)}
    )
    rows.append(theory_ratio_row(table, cfg))
    rows.append(check_instance(cfg))
    io.write_summary(out_dir, rows)


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S3 — Thm 3.1/3.1′/D.2: lower bound on the hard instance (Bayes learner)",
        presets=PRESETS,
        run=run,
    )
)

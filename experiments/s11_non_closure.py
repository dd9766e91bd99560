"""S11 — Prop E.2: the class cannot hold a sharpened model; inference-time BoN still succeeds.

Prop E.2: in the class ``Pi_{phi,B',2}`` of :func:`theory.ar_instances.non_closure_instance`
(``V = [n]``, ``H = d = 2``) tokens 1 and 2 share their first-position feature, so every member
has ``pi(1) = pi(2)`` at position 1 and hence ``pi(2, 1) <= 1/2``, at any norm bound ``B'``.
The base model (``n = 1000``, ``B = log n + 2``) has the unique sequence argmax ``(2, 1)``
(ids ``(1, 0)``) with ``pi_base(2, 1) ≈ 0.413``.

(1) SFT-Sharpening inside the class: per ``(n_prompts, N)`` draw ``n_prompts`` best-of-N
responses from the base (``N`` samples with :func:`sharpen.decoding.sample`, keep the largest
base log-prob, exact ties at random), then fit ``theta = (theta_1, theta_2)`` by maximum
likelihood (optax Adam, ``learning_rate``, from ``theta = 0``), projecting each ``theta_h`` onto the Euclidean ball
of radius ``B'`` after every step, for ``B' in {1, 2, 10} x B`` (one ``vmap``). Record the
fitted ``pi_hat(2, 1)`` and the final mean train log-likelihood. (2) Inference-time BoN: the
fraction of ``bon_trials`` trials whose BoN pick is ``(2, 1)``, against the exact
``1 - (1 - pi_base(2, 1))^N``. (3) Greedy: the first-token tie ``pi(1) = pi(2)`` is exact, so
lowest-index greedy picks token 1 and misses; random tie-breaking succeeds about half the time.

Checks (``summary.csv``): ``pi_base(2, 1)`` and the runner-up; max over ``(B', n, N)`` of
``pi_hat(2, 1) <= 1/2`` (the plateau); best ``pi_hat(2, 1)`` per ``B'`` (info); BoN success at
``N = 8`` (``>= 0.95`` and within 4 standard errors of the exact value); the exact first-token
tie; lowest-index greedy misses ``(2, 1)``; random-tie greedy success rate (info).

Command: ``sharpen run s11 [--preset quick|full]``; feeds ``figures/fig_non_closure.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from experiments import io
from experiments.registry import ExperimentSpec, register
from sharpen import autoregressive, decoding
from theory import ar_instances

NAME = "s11"
_TARGET = (1, 0)  # ids of the paper's (2, 1)


@dataclasses.dataclass(frozen=True)
class Config:
    """Prop E.2 instance, SFT inside the class vs inference-time BoN (THEORY §4.6, §5.3 S11)."""

    vocab_size: int = 1000
    b_multipliers: tuple[float, ...] = (1.0, 2.0, 10.0)
    n_prompts: tuple[int, ...] = (100, 1000)
    sft_ns: tuple[int, ...] = (1, 4, 16, 64)
    sft_steps: int = 300
    learning_rate: float = 0.5
    bon_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    bon_trials: int = 2000
    greedy_keys: int = 200
    seed: int = 0

    def __post_init__(self):
        if self.vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3, got {self.vocab_size}")
        if not self.b_multipliers or any(not 1.0 <= b < math.inf for b in self.b_multipliers):
            raise ValueError(
                f"b_multipliers must be non-empty finite values >= 1, got {self.b_multipliers}"
            )
        for field in ("n_prompts", "sft_ns", "bon_ns"):
            values = getattr(self, field)
            if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
                raise ValueError(f"{field} must be non-empty distinct ints >= 1, got {values}")
        if 8 not in self.bon_ns:
            raise ValueError(f"bon_ns must contain 8 (the BoN check), got {self.bon_ns}")
        if self.sft_steps < 1:
            raise ValueError(f"sft_steps must be >= 1, got {self.sft_steps}")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be positive and finite, got {self.learning_rate}")
        if self.bon_trials < 1:
            raise ValueError(f"bon_trials must be >= 1, got {self.bon_trials}")
        if self.greedy_keys < 1:
            raise ValueError(f"greedy_keys must be >= 1, got {self.greedy_keys}")


def smoke() -> Config:
    """CI-sized: n = 100 prompts, N in (1, 16), 100 Adam steps, ~6 s on 2 cores.

    ``sharpen run s11 --preset smoke``; feeds ``figures/fig_non_closure.py``.
    """
    return Config(
        n_prompts=(100,),
        sft_ns=(1, 16),
        sft_steps=100,
        bon_ns=(1, 8),
        bon_trials=500,
        greedy_keys=50,
    )


def quick() -> Config:
    """``sharpen run s11`` (``sharpen repro`` default): B' in {B, 2B, 10B}, n in {100, 1000},
    N in {1, 4, 16, 64}, 300 Adam steps; BoN N = 1..32 over 2000 trials; ~15 s on 2 cores (measured).

    Feeds ``figures/fig_non_closure.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s11 --preset full``: adds n = 3000, 1000 Adam steps (~130 s on 2 cores).

    The sampler holds ``[n N, V]`` logits per step, so ``n N`` is kept at ``<= 2e5`` here
    (``n = 10^4, N = 256`` needed 32 GB and ran out of memory on a 24 GB machine).

    Feeds ``figures/fig_non_closure.py``.
    """
    return Config(
        n_prompts=(100, 1000, 3000),
        sft_ns=(1, 4, 16, 64),
        sft_steps=1000,
        bon_ns=(1, 2, 4, 8, 16, 32, 64),
        bon_trials=20000,
        greedy_keys=2000,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def base_model(cfg: Config) -> autoregressive.ARModel:
    """The Prop E.2 base model, ``theta_1 = theta_2 = B e_1`` with ``B = log n + 2``."""
    return ar_instances.non_closure_instance(n=cfg.vocab_size)


def base_bound(cfg: Config) -> float:
    return math.log(cfg.vocab_size) + 2.0


@functools.partial(jax.jit, static_argnames=("next_logprobs",))
def _sequence_logprobs(next_logprobs, params, tokens_BxH):
    """``log pi(y)`` for ``H = 2`` sequences: two batched ``next_logprobs`` calls."""
    batch = tokens_BxH.shape[0]
    lp0_BxV = next_logprobs(params, tokens_BxH, jnp.zeros((batch,), jnp.int32))
    lp1_BxV = next_logprobs(params, tokens_BxH, jnp.ones((batch,), jnp.int32))
    first = jnp.take_along_axis(lp0_BxV, tokens_BxH[:, :1], axis=1)[:, 0]
    second = jnp.take_along_axis(lp1_BxV, tokens_BxH[:, 1:], axis=1)[:, 0]
    return first + second


def best_of_n_draws(model, num_prompts: int, num_samples: int, key: jax.Array) -> jax.Array:
    """[num_prompts, 2] best-of-N responses: max base log-prob of N samples, ties at random."""
    sample_key, tie_key = jax.random.split(key)
    tokens, logp = decoding.sample(model, num_prompts * num_samples, key=sample_key)
    tokens_PxNxH = tokens.reshape(num_prompts, num_samples, model.horizon)
    logp_PxN = logp.reshape(num_prompts, num_samples)
    best_PxN = logp_PxN >= jnp.max(logp_PxN, axis=1, keepdims=True)
    u_PxN = jax.random.uniform(tie_key, logp_PxN.shape, logp_PxN.dtype)
    pick_P = jnp.argmax(jnp.where(best_PxN, u_PxN, -1.0), axis=1)
    return jnp.take_along_axis(tokens_PxNxH, pick_P[:, None, None], axis=1)[:, 0]


def _project(theta_2, radius):
    norm = jnp.linalg.norm(theta_2)
    return theta_2 * jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-30))


@functools.partial(jax.jit, static_argnames=("next_logprobs", "steps", "learning_rate"))
def _fit(next_logprobs, dummy_V, tokens_NxH, radius_R, *, steps, learning_rate):
    """Projected-Adam MLE per radius; returns (pi_hat(2,1) [R], train log-lik [R], theta [R,2,2])."""
    dtype = dummy_V.dtype
    optimizer = optax.adam(learning_rate)
    target_1xH = jnp.asarray([_TARGET], jnp.int32)

    def loglik(theta_2x2):
        params = (theta_2x2[0], theta_2x2[1], dummy_V)
        return jnp.mean(_sequence_logprobs(next_logprobs, params, tokens_NxH))

    def one(radius):
        def step(carry, _):
            theta, state = carry
            grad = jax.grad(lambda th: -loglik(th))(theta)
            # optax's bias correction mixes a Python float and an int32 step count.
            with jax.numpy_dtype_promotion("standard"):
                updates, state = optimizer.update(grad, state, theta)
            theta = optax.apply_updates(theta, updates)
            theta = jax.vmap(_project, in_axes=(0, None))(theta, radius)
            return (theta, state), None

        theta0 = jnp.zeros((2, 2), dtype)
        (theta, _), _ = jax.lax.scan(step, (theta0, optimizer.init(theta0)), None, length=steps)
        params = (theta[0], theta[1], dummy_V)
        p21 = jnp.exp(_sequence_logprobs(next_logprobs, params, target_1xH)[0])
        return p21, loglik(theta), theta

    return jax.vmap(one)(radius_R)


def run_sft_unit(cfg: Config, num_prompts: int, num_samples: int, key: jax.Array) -> pd.DataFrame:
    """One row per ``B'``: SFT on ``num_prompts`` best-of-``num_samples`` responses."""
    model = base_model(cfg)
    data_NxH = best_of_n_draws(model, num_prompts, num_samples, key)
    dtype = model.params[2].dtype
    radius_R = jnp.asarray([m * base_bound(cfg) for m in cfg.b_multipliers], dtype)
    p21_R, loglik_R, theta_Rx2x2 = _fit(
        model.next_logprobs,
        model.params[2],
        data_NxH,
        radius_R,
        steps=cfg.sft_steps,
        learning_rate=cfg.learning_rate,
    )
    data = np.asarray(data_NxH)
    frac21 = float(np.mean((data[:, 0] == _TARGET[0]) & (data[:, 1] == _TARGET[1])))
    theta = np.asarray(theta_Rx2x2).astype(np.float64)
    rows = len(cfg.b_multipliers)
    return pd.DataFrame(
        {
            "B_mult": np.asarray(cfg.b_multipliers, np.float64),
            "B_prime": np.asarray(radius_R).astype(np.float64),
            "n_prompts": np.full(rows, num_prompts),
            "N": np.full(rows, num_samples),
            "data_frac_21": np.full(rows, frac21),
            "pi_hat_21": np.asarray(p21_R).astype(np.float64),
            "train_loglik": np.asarray(loglik_R).astype(np.float64),
            "theta1_norm": np.linalg.norm(theta[:, 0], axis=1),
            "theta2_norm": np.linalg.norm(theta[:, 1], axis=1),
        }
    )


def base_probabilities(cfg: Config) -> tuple[float, float]:
    """Exact ``pi_base(2, 1)`` and the largest probability of any other sequence."""
    model = base_model(cfg)
    v = cfg.vocab_size
    prefix_VxH = jnp.stack([jnp.arange(v, dtype=jnp.int32), jnp.zeros(v, jnp.int32)], axis=1)
    lp0_V = model.next_logprobs(model.params, prefix_VxH[:1], jnp.zeros((1,), jnp.int32))[0]
    lp1_VxV = model.next_logprobs(model.params, prefix_VxH, jnp.ones((v,), jnp.int32))
    logp_VxV = np.asarray(lp0_V[:, None] + lp1_VxV).astype(np.float64)
    best = logp_VxV[_TARGET]
    logp_VxV[_TARGET] = -np.inf
    return float(np.exp(best)), float(np.exp(logp_VxV.max()))


def run_bon_unit(cfg: Config, key: jax.Array) -> pd.DataFrame:
    """One row per ``N``: inference-time BoN success rate over ``bon_trials`` trials."""
    model = base_model(cfg)
    p21, _ = base_probabilities(cfg)
    rates = []
    for i, num in enumerate(cfg.bon_ns):
        picks = np.asarray(best_of_n_draws(model, cfg.bon_trials, num, jax.random.fold_in(key, i)))
        rates.append(float(np.mean((picks[:, 0] == _TARGET[0]) & (picks[:, 1] == _TARGET[1]))))
    ns = np.asarray(cfg.bon_ns)
    return pd.DataFrame(
        {
            "N": ns,
            "trials": np.full(len(ns), cfg.bon_trials),
            "success": np.asarray(rates),
            "exact": 1.0 - (1.0 - p21) ** ns.astype(np.float64),
        }
    )


def greedy_outcomes(cfg: Config, key: jax.Array) -> dict[str, float]:
    """First-token tie, lowest-index greedy output, and random-tie greedy success rate."""
    model = base_model(cfg)
    lp0 = model.next_logprobs(
        model.params, jnp.zeros((1, 2), jnp.int32), jnp.zeros((1,), jnp.int32)
    )[0]
    fixed = np.asarray(decoding.greedy(model))
    keys = jax.random.split(key, cfg.greedy_keys)
    outs = np.stack([np.asarray(decoding.greedy_random_ties(model, key=k)) for k in keys])
    return {
        "tie": bool(lp0[0] == lp0[1]),
        "fixed_first": int(fixed[0]),
        "fixed_hits": bool(tuple(fixed.tolist()) == _TARGET),
        "random_rate": float(np.mean((outs[:, 0] == _TARGET[0]) & (outs[:, 1] == _TARGET[1]))),
    }


_row = functools.partial(io.summary_row, NAME)


def summary_rows(sft: pd.DataFrame, bon: pd.DataFrame, greedy: dict, cfg: Config) -> list[dict]:
    """The checks of the module docstring."""
    p21, runner_up = base_probabilities(cfg)
    rows = [
        _row(f"pi_base(2,1) (n={cfg.vocab_size}, B=log n + 2)", "[0.41, 0.416]", p21),
        _row(
            "largest probability of any other sequence (unique argmax: < pi_base(2,1))",
            "O(1/n)",
            runner_up,
            verdict="pass" if runner_up < p21 else "fail",
        ),
    ]
    worst = float(sft.pi_hat_21.max())
    rows.append(
        _row(
            f"max pi_hat(2,1) after SFT over B' in {list(cfg.b_multipliers)} x B, "
            f"n in {list(cfg.n_prompts)}, N in {list(cfg.sft_ns)} (plateau)",
            "<= 1/2",
            worst,
            verdict="pass" if worst <= 0.5 + 1e-6 else "fail",
        )
    )
    for mult in cfg.b_multipliers:
        sub = sft[np.isclose(sft.B_mult, mult)]
        rows.append(
            _row(
                f"best pi_hat(2,1) at B' = {mult:g} B (over n, N)",
                "<= 1/2",
                float(sub.pi_hat_21.max()),
                verdict="info",
            )
        )
    at8 = bon[bon.N == 8].iloc[0]
    se = math.sqrt(at8.exact * (1 - at8.exact) / at8.trials)
    z = (at8.success - at8.exact) / se if se > 0 else math.nan
    rows.append(
        _row(
            f"inference-time BoN success at N = 8 over {int(at8.trials)} trials "
            f"(exact {at8.exact:.4f}; z = {z:.2f})",
            ">= 0.95",
            float(at8.success),
            verdict="pass" if at8.success >= 0.95 and abs(z) <= 4 else "fail",
        )
    )
    rows.append(
        _row(
            "first-token tie pi(1) == pi(2) exact",
            "1",
            float(greedy["tie"]),
            verdict="pass" if greedy["tie"] else "fail",
        )
    )
    rows.append(
        _row(
            f"lowest-index greedy returns (2,1) (first token picked: {greedy['fixed_first'] + 1})",
            "0",
            float(greedy["fixed_hits"]),
            verdict="fail" if greedy["fixed_hits"] else "pass",
        )
    )
    rows.append(
        _row(
            f"random-tie greedy success rate over {cfg.greedy_keys} keys",
            "≈ 1/2",
            greedy["random_rate"],
            verdict="info",
        )
    )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/*.csv``, ``metrics.csv`` (SFT, one row per
    ``(n, N, B')``), ``bon.csv`` (one row per ``N``), ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    root = jax.random.key(cfg.seed)
    cells = [(n, num) for n in cfg.n_prompts for num in cfg.sft_ns]
    sft = [
        io.cached_unit(
            out_dir,
            f"sft_n={n}_N={num}",
            lambda i=i, n=n, num=num: run_sft_unit(cfg, n, num, jax.random.fold_in(root, i)),
        )
        for i, (n, num) in enumerate(cells)
    ]
    bon = io.cached_unit(
        out_dir, "bon", lambda: run_bon_unit(cfg, jax.random.fold_in(root, len(cells)))
    )
    io.finalize_metrics(out_dir, sft)
    io.finalize_metrics(out_dir, [bon], name="bon.csv")
    greedy = greedy_outcomes(cfg, jax.random.fold_in(root, len(cells) + 1))
    io.write_summary(out_dir, summary_rows(pd.concat(sft, ignore_index=True), bon, greedy, cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S11 — Prop E.2: SFT within the class plateaus at 1/2; inference-time BoN succeeds",
        presets=PRESETS,
        run=run,
    )
)

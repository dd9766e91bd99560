"""RLHF-Sharpening in the linear softmax class: offline Eq. 8, DPO, and reward-based XPO (Alg. 1).

All learners work in :math:`\\Pi_{\\phi,B}` (:mod:`sharpen.linear_softmax`) with base model
:math:`\\pi_{\\rm base}=\\pi_{\\theta_{\\rm base}}` and self-reward :math:`r=\\log\\pi_{\\rm base}`.
Minimization over the ball is Adam with a learning rate decaying exponentially from
``learning_rate`` to ``learning_rate / 100`` and a projection onto :math:`\\|\\theta\\|_2\\le B`
after every step (projected gradient).

| function | returns |
|---|---|
| ``default_beta(gamma_margin, num_responses, delta)`` | :math:`\\gamma_{\\rm margin}/(2\\log(2|\\mathcal Y|/\\delta))` (Thm 4.3, J.2, J.3) |
| ``default_alpha(beta, *, num_rounds, dim, radius, num_responses, epsilon, delta, rho)`` | :math:`\\alpha(T)` of Thm J.3 (constant 1) |
| ``reward_bound(radius, num_responses)`` | :math:`2B+\\log|\\mathcal Y|\\ge|r|` (App. J.2.4) |
| ``offline_rlhf_sharpening(features, theta_base, prompts, *, beta, radius, key, n_steps, learning_rate, theta_init)`` | :class:`OfflineResult` |
| ``dpo_sharpening(...)`` (same arguments) | :class:`OfflineResult` |
| ``xpo(features, theta_base, *, key, num_rounds, mu, beta, alpha, loss_weight, radius, heldout_prompts, inner_steps, learning_rate, epsilon, delta, rho)`` | :class:`XPOResult` |
| ``iterate_diagnostics(iterates, features, theta_base, mu, *, beta, delta)`` | :class:`IterateDiagnostics` |
| ``sec_potential(iterates, features, theta_base, mu, *, beta, radius, r_max, lam, ridge)`` | :class:`SECPotential` |
| ``elliptic_potential_bound(dim, num_rounds, *, trace_bound, ridge)`` | Lemma F.2 right-hand side |

**XPO objective** (Alg. 1 with the *plus* sign, THEORY §3.6 and §8 items 1–2): at round ``t``
with data :math:`\\mathcal D^{(t)}=\\{(x_i,y_i,\\tilde y_i)\\}_{i\\le t}`, :math:`y_i\\sim\\pi^{(i)}`,
:math:`\\tilde y_i\\sim\\pi_{\\rm base}`,

.. math::  \\theta^{(t+1)}\\in\\arg\\min_{\\|\\theta\\|\\le B}\\ \\frac1t\\sum_{i\\le t}\\Big[
           \\alpha\\log\\pi_\\theta(\\tilde y_i|x_i) + w\\,\\ell_{\\rm Eq.8}(\\theta; x_i, y_i, \\tilde y_i)\\Big],

``w = loss_weight`` (1 as printed; the analysis of Thm J.1 uses
:math:`(R_{\\max}+V_{\\max})^{-2}`). The factor ``1/t`` does not move the argmin; it keeps the
inner optimizer's scale fixed across rounds. Rounds run in one ``lax.scan`` over a padded
buffer of ``num_rounds`` slots (unused slots masked), so all rounds compile once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sharpen import _checks
from sharpen.coverage import concentrability
from sharpen.linear_softmax import _logprobs, _project, check_features, check_theta
from sharpen.rlhf import (
    _j_beta,
    decay_schedule,
    dpo_margin_loss,
    eq8_residual,
    instance_gamma_margin,
)
from sharpen.rlhf import pi_beta_star as _pi_beta_star
from sharpen.sampling import sample_from_logprobs, sample_responses
from sharpen.targets import sharpening_error as _sharpening_error
from sharpen.targets import target_mass as _target_mass

#: Ratio ``learning_rate / final learning rate`` of the exponential decay in every inner loop.
LR_DECAY = 100.0


# --------------------------------------------------------------------------- theory defaults


def default_beta(gamma_margin, num_responses, delta) -> jax.Array:
    """KL coefficient of Thm 4.3 / J.2 / J.3, at which :math:`\\pi^\\star_\\beta` is itself sharp.

    .. math::  \\beta = \\frac{\\gamma_{\\rm margin}}{2\\log(2|\\mathcal Y|/\\delta)},

    the largest value allowed by :math:`\\beta^{-1}\\ge2\\gamma_{\\rm margin}^{-1}\\log(2|\\mathcal Y|/\\delta)`;
    then :math:`\\pi^\\star_\\beta(\\mathbf y^\\star|x)\\ge1-\\delta/2` for
    :math:`\\gamma_{\\rm margin}\\lesssim2.5` (compare :func:`sharpen.rlhf.exact_beta_threshold`).

    Args:
      gamma_margin: margin > 0 of Assumption 4.2 (scalar or array).
      num_responses: :math:`|\\mathcal Y|\\ge1`.
      delta: mass slack in (0, 1).

    Returns:
      ``beta`` with the broadcast shape of the arguments.

    References:
      Huang et al. (2025), Thm 4.3, Thm J.2, Thm J.3; THEORY §3.6.

    Example:
      >>> round(float(default_beta(1.0, 5, 0.1)), 4)  # 1 / (2 log 100)
      0.1086
    """
    _checks.check_positive(gamma_margin, "gamma_margin")
    _checks.check_num_samples(num_responses, "num_responses")
    _checks.check_open_unit(delta, "delta")
    gamma = jnp.asarray(gamma_margin, jnp.zeros(()).dtype)
    return gamma / (2.0 * jnp.log(2.0 * jnp.asarray(num_responses, gamma.dtype) / delta))


def default_alpha(
    beta, *, num_rounds: int, dim: int, radius, num_responses: int, epsilon, delta, rho
) -> jax.Array:
    """Optimism coefficient :math:`\\alpha(T)` of Thm J.3 (XPO on linear softmax).

    .. math::  \\alpha(T) = \\frac{\\beta}{B+\\log|\\mathcal Y|}\\sqrt{\\frac{d\\log(BdT/(\\epsilon\\delta))
               + \\log(T/\\rho)}{d\\,T\\log T}},

    the proportionality of THEORY §3.6 ("Linear softmax class (Thm J.3)") with constant 1. It is
    the general Thm J.2 value :math:`\\frac{\\beta}{R_{\\max}}\\sqrt{\\log(2\\mathcal NT/\\delta)/(\\mathrm{SEC}\\,T)}`
    with :math:`\\log\\mathcal N\\approx d\\log(B/\\epsilon_{\\rm disc})` (Lemma J.4),
    :math:`\\mathrm{SEC}\\approx d\\log T` (Lemma J.5) and :math:`R_{\\max}\\approx B+\\log|\\mathcal Y|`.
    Requires ``num_rounds >= 2`` (``log T > 0``).

    Args:
      beta: KL coefficient > 0.
      num_rounds: T >= 2.
      dim: feature dimension d >= 1.
      radius: norm bound B > 0.
      num_responses: :math:`|\\mathcal Y|\\ge1`.
      epsilon: target prompt-error in (0, 1).
      delta: target mass slack in (0, 1).
      rho: failure probability in (0, 1).

    Returns:
      scalar ``alpha`` > 0.

    References:
      Huang et al. (2025), Thm J.3 (and Thm J.2 for the general form); THEORY §3.6.
    """
    _checks.check_positive(beta, "beta")
    t = _checks.check_static_int(num_rounds, "num_rounds", minimum=2)
    d = _checks.check_static_int(dim, "dim")
    _checks.check_positive(radius, "radius")
    _checks.check_num_samples(num_responses, "num_responses")
    for value, name in ((epsilon, "epsilon"), (delta, "delta"), (rho, "rho")):
        _checks.check_open_unit(value, name)
    b = float(radius)
    log_term = d * math.log(b * d * t / (epsilon * delta)) + math.log(t / rho)
    scale = math.sqrt(max(log_term, 0.0) / (d * t * math.log(t))) / (b + math.log(num_responses))
    return jnp.asarray(beta, jnp.zeros(()).dtype) * scale


def reward_bound(radius, num_responses) -> float:
    """Bound :math:`|\\log\\pi_\\theta(y|x)|\\le2B+\\log|\\mathcal Y|` on :math:`\\Pi_{\\phi,B}` (App. J.2.4)."""
    _checks.check_positive(radius, "radius")
    _checks.check_num_samples(num_responses, "num_responses")
    return 2.0 * float(radius) + math.log(float(num_responses))


# --------------------------------------------------------------------------- shared helpers


def _prepare(features, theta_base, radius, beta):
    features = check_features(features)
    features_XxYxD = features if features.ndim == 3 else features[None]
    theta_base = check_theta(theta_base, features.shape[-1], "theta_base")
    _checks.check_positive(radius, "radius")
    if beta is not None:
        _checks.check_positive(beta, "beta")
    return features_XxYxD, theta_base.astype(features.dtype)


def _check_prompt_indices(prompts, num_prompts: int, name: str) -> jax.Array:
    arr = jnp.asarray(prompts)
    if arr.ndim != 1 or arr.shape[0] == 0 or not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ValueError(
            f"{name} must be a non-empty [n] integer array, got {arr.dtype}{arr.shape}"
        )
    if _checks.is_concrete(arr):
        host = np.asarray(arr)
        if host.min() < 0 or host.max() >= num_prompts:
            raise ValueError(
                f"{name} must lie in [0, {num_prompts}), got values in [{host.min()}, {host.max()}]"
            )
    return arr.astype(jnp.int32)


def _check_lr(learning_rate) -> float:
    lr = _checks.finite_float(learning_rate, "learning_rate")
    _checks.check_positive(lr, "learning_rate")
    return lr


def _adam(learning_rate, steps: int):
    """Adam with ``learning_rate`` decaying to ``learning_rate / LR_DECAY`` over ``steps``."""
    return optax.adam(decay_schedule(learning_rate, learning_rate / LR_DECAY, steps))


def _projected_adam(loss_fn, theta0, radius, learning_rate, steps):
    """``steps`` of Adam on ``loss_fn`` from ``theta0``, projecting onto the ball after each."""
    optimizer = _adam(learning_rate, steps)

    def step(carry, _):
        theta, state = carry
        value, grad = jax.value_and_grad(loss_fn)(theta)
        # optax's bias correction mixes a Python float and an int32 step count.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grad, state, theta)
        theta = _project(optax.apply_updates(theta, updates), radius)
        return (theta, state), value

    (theta, _), losses = jax.lax.scan(step, (theta0, optimizer.init(theta0)), None, length=steps)
    return theta, losses


def _pair_logps(logp_XxY, prompts, ys, yps):
    return logp_XxY[prompts, ys], logp_XxY[prompts, yps]


# --------------------------------------------------------------------------- offline learners


class OfflineResult(NamedTuple):
    """Result of :func:`offline_rlhf_sharpening` and :func:`dpo_sharpening`.

    Attributes:
      theta: [d] learned parameter, ``||theta|| <= radius``.
      prompts: [n] int32 prompt indices of the dataset.
      responses: [n, 2] int32 base responses ``(y, y')`` per prompt.
      loss: [n_steps] mean training loss before each step.
    """

    theta: jax.Array
    prompts: jax.Array
    responses: jax.Array
    loss: jax.Array


def _offline_impl(
    pair_loss, features, theta_base, theta_init, prompts, key, beta, radius, lr, n_steps
):
    logp_base_XxY = _logprobs(theta_base, features)
    responses_Nx2 = sample_responses(logp_base_XxY, prompts, 2, key=key)
    ys, yps = responses_Nx2[:, 0], responses_Nx2[:, 1]
    base_y, base_yp = _pair_logps(logp_base_XxY, prompts, ys, yps)

    def loss_fn(theta):
        lp_y, lp_yp = _pair_logps(_logprobs(theta, features), prompts, ys, yps)
        return jnp.mean(pair_loss(lp_y, lp_yp, base_y, base_yp, beta))

    theta, losses = _projected_adam(loss_fn, _project(theta_init, radius), radius, lr, n_steps)
    return OfflineResult(theta=theta, prompts=prompts, responses=responses_Nx2, loss=losses)


_offline_jit = jax.jit(_offline_impl, static_argnums=(0, 9))


def _squared_eq8(lp_y, lp_yp, base_y, base_yp, beta):
    return jnp.square(eq8_residual(lp_y, lp_yp, base_y, base_yp, beta))


def _offline(
    pair_loss: Callable,
    features,
    theta_base,
    prompts,
    *,
    beta,
    radius,
    key,
    n_steps,
    learning_rate,
    theta_init,
):
    features_XxYxD, theta_base = _prepare(features, theta_base, radius, beta)
    prompts = _check_prompt_indices(prompts, features_XxYxD.shape[0], "prompts")
    n_steps = _checks.check_static_int(n_steps, "n_steps")
    lr = _check_lr(learning_rate)
    theta_init = (
        theta_base
        if theta_init is None
        else check_theta(theta_init, theta_base.shape[0], "theta_init").astype(theta_base.dtype)
    )
    dtype = features_XxYxD.dtype
    return _offline_jit(
        pair_loss, features_XxYxD, theta_base, theta_init, prompts, key,
        jnp.asarray(beta, dtype), jnp.asarray(radius, dtype), jnp.asarray(lr, dtype), n_steps,
    )  # fmt: skip


def offline_rlhf_sharpening(
    features: jax.typing.ArrayLike,
    theta_base: jax.typing.ArrayLike,
    prompts: jax.typing.ArrayLike,
    *,
    beta,
    radius,
    key: jax.Array,
    n_steps: int = 500,
    learning_rate: float = 0.1,
    theta_init: jax.typing.ArrayLike | None = None,
) -> OfflineResult:
    """Offline RLHF-Sharpening (Eq. 8) in :math:`\\Pi_{\\phi,B}`.

    For each prompt :math:`x_i` draws :math:`y_i,y_i'\\sim\\pi_{\\rm base}(\\cdot|x_i)` i.i.d.
    (``N = 2``, ``m = 2n``) and computes

    .. math::  \\hat\\theta\\in\\arg\\min_{\\|\\theta\\|\\le B}\\frac1n\\sum_i
               \\Big(\\beta\\log\\frac{\\pi_\\theta(y_i|x_i)}{\\pi_{\\rm base}(y_i|x_i)}
               - \\beta\\log\\frac{\\pi_\\theta(y_i'|x_i)}{\\pi_{\\rm base}(y_i'|x_i)}
               - \\log\\frac{\\pi_{\\rm base}(y_i|x_i)}{\\pi_{\\rm base}(y_i'|x_i)}\\Big)^2

    by projected Adam (``n_steps``, learning rate decaying 100x). In this class the residual is
    linear in ``theta`` (partition functions cancel), so the loss is a convex quadratic with
    zero at :math:`(1+1/\\beta)\\theta_{\\rm base}` (realizable iff that lies in the ball).

    Args:
      features: [X, Y, d] (or [Y, d]) features, norm <= 1.
      theta_base: [d] base parameter.
      prompts: [n] int prompt indices (draw them with :func:`sharpen.sampling.sample_prompts`).
      beta: KL coefficient > 0.
      radius: norm bound B > 0.
      key: PRNG key for the response pairs.
      n_steps: static number of optimizer steps.
      learning_rate: initial Adam learning rate > 0.
      theta_init: [d] starting point (default ``theta_base``), projected onto the ball.

    Returns:
      :class:`OfflineResult`.

    References:
      Huang et al. (2025), Eq. 8, Thm 4.2; THEORY §3.5, §5.3 S7.
    """
    return _offline(
        _squared_eq8, features, theta_base, prompts, beta=beta, radius=radius, key=key,
        n_steps=n_steps, learning_rate=learning_rate, theta_init=theta_init,
    )  # fmt: skip


def dpo_sharpening(
    features: jax.typing.ArrayLike,
    theta_base: jax.typing.ArrayLike,
    prompts: jax.typing.ArrayLike,
    *,
    beta,
    radius,
    key: jax.Array,
    n_steps: int = 500,
    learning_rate: float = 0.1,
    theta_init: jax.typing.ArrayLike | None = None,
) -> OfflineResult:
    """Offline DPO with self-labelled preferences in :math:`\\Pi_{\\phi,B}` (baseline for Eq. 8).

    Same data as :func:`offline_rlhf_sharpening`; minimizes the mean of
    :func:`sharpen.rlhf.dpo_logistic_loss` (winner = higher :math:`\\log\\pi_{\\rm base}`, ties
    averaged over both orders). Unlike Eq. 8 the logistic loss has no finite minimizer on
    separable data, so the iterate typically ends on the sphere :math:`\\|\\theta\\|=B`: ``radius``
    acts as the regularizer. Arguments and result as in :func:`offline_rlhf_sharpening`.

    References:
      Rafailov et al. (2023); Huang et al. (2025), §2.2 (DPO-style RLHF-Sharpening).
    """
    return _offline(
        dpo_margin_loss, features, theta_base, prompts, beta=beta, radius=radius, key=key,
        n_steps=n_steps, learning_rate=learning_rate, theta_init=theta_init,
    )  # fmt: skip


# --------------------------------------------------------------------------- XPO


class XPOResult(NamedTuple):
    """Result of :func:`xpo`.

    Attributes:
      theta_hat: [d] the iterate with the largest held-out :math:`J_\\beta` (Alg. 1, last line).
      best_index: int32 scalar, index of ``theta_hat`` in ``iterates`` (0 is ``theta_base``).
      iterates: [T+1, d] :math:`\\theta^{(1)}=\\theta_{\\rm base},\\theta^{(2)},\\dots,\\theta^{(T+1)}`.
      j_beta: [T+1] held-out :math:`J_\\beta` of each iterate.
      prompts: [T] int32 prompt of round t.
      responses: [T] int32 on-policy response :math:`y_t\\sim\\pi^{(t)}`.
      base_responses: [T] int32 base response :math:`\\tilde y_t\\sim\\pi_{\\rm base}`.
      inner_loss: [T] objective at the last inner step of each round.
      beta: scalar KL coefficient used.
      alpha: scalar optimism coefficient used.
    """

    theta_hat: jax.Array
    best_index: jax.Array
    iterates: jax.Array
    j_beta: jax.Array
    prompts: jax.Array
    responses: jax.Array
    base_responses: jax.Array
    inner_loss: jax.Array
    beta: jax.Array
    alpha: jax.Array


def _j_beta_weighted(theta, features, logp_base_XxY, weights_X, beta):
    return jnp.sum(weights_X * _j_beta(_logprobs(theta, features), logp_base_XxY, beta))


def _xpo_impl(
    features,
    theta_base,
    log_mu_X,
    weights_X,
    key,
    beta,
    alpha,
    loss_weight,
    radius,
    lr,
    num_rounds,
    inner_steps,
):
    logp_base_XxY = _logprobs(theta_base, features)
    slots_T = jnp.arange(num_rounds, dtype=jnp.int32)
    empty_T = jnp.zeros(num_rounds, jnp.int32)

    def round_fn(carry, t):
        theta, prompts_T, ys_T, yps_T = carry
        key_x, key_y, key_yp = jax.random.split(jax.random.fold_in(key, t), 3)
        x = sample_from_logprobs(log_mu_X, (), key=key_x)
        y = sample_from_logprobs(_logprobs(theta, features)[x], (), key=key_y)  # on-policy
        yp = sample_from_logprobs(logp_base_XxY[x], (), key=key_yp)  # from pi_base
        prompts_T, ys_T, yps_T = prompts_T.at[t].set(x), ys_T.at[t].set(y), yps_T.at[t].set(yp)
        mask_T = slots_T <= t
        base_y, base_yp = _pair_logps(logp_base_XxY, prompts_T, ys_T, yps_T)
        count = (t + 1).astype(features.dtype)

        def objective(th):  # Alg. 1 with the plus sign (THEORY §8 item 1)
            lp_y, lp_yp = _pair_logps(_logprobs(th, features), prompts_T, ys_T, yps_T)
            sq = jnp.square(eq8_residual(lp_y, lp_yp, base_y, base_yp, beta))
            per_pair = alpha * lp_yp + loss_weight * sq
            return jnp.sum(jnp.where(mask_T, per_pair, 0.0)) / count

        theta, losses = _projected_adam(objective, theta, radius, lr, inner_steps)
        return (theta, prompts_T, ys_T, yps_T), (theta, x, y, yp, losses[-1])

    carry0 = (_project(theta_base, radius), empty_T, empty_T, empty_T)
    _, (thetas, prompts_T, ys_T, yps_T, inner_loss) = jax.lax.scan(
        round_fn, carry0, jnp.arange(num_rounds, dtype=jnp.int32)
    )
    iterates = jnp.concatenate([theta_base[None], thetas], axis=0)
    j_vals = jax.lax.map(
        lambda th: _j_beta_weighted(th, features, logp_base_XxY, weights_X, beta),
        iterates,
        batch_size=64,
    )
    best = jnp.argmax(j_vals).astype(jnp.int32)
    return XPOResult(
        theta_hat=iterates[best], best_index=best, iterates=iterates, j_beta=j_vals,
        prompts=prompts_T, responses=ys_T, base_responses=yps_T, inner_loss=inner_loss,
        beta=beta, alpha=alpha,
    )  # fmt: skip


_xpo_jit = jax.jit(_xpo_impl, static_argnums=(10, 11))


def _prompt_weights(mu, heldout_prompts, num_prompts, dtype):
    if mu is None:
        mu_X = jnp.full(num_prompts, 1.0 / num_prompts, dtype)
    else:
        mu_X = jnp.asarray(_checks.check_probs(mu, "mu"), dtype)
        if mu_X.shape != (num_prompts,):
            raise ValueError(
                f"mu must have shape [X] = ({num_prompts},) to match features, got {mu_X.shape}"
            )
    if heldout_prompts is None:
        return mu_X, mu_X
    held = _check_prompt_indices(heldout_prompts, num_prompts, "heldout_prompts")
    weights_X = jnp.zeros(num_prompts, dtype).at[held].add(1.0) / held.shape[0]
    return mu_X, weights_X


def xpo(
    features: jax.typing.ArrayLike,
    theta_base: jax.typing.ArrayLike,
    *,
    key: jax.Array,
    num_rounds: int,
    radius,
    mu: jax.typing.ArrayLike | None = None,
    beta=None,
    alpha=None,
    loss_weight=1.0,
    heldout_prompts: jax.typing.ArrayLike | None = None,
    inner_steps: int = 100,
    learning_rate: float = 0.1,
    epsilon: float = 0.1,
    delta: float = 0.1,
    rho: float = 0.1,
) -> XPOResult:
    """Reward-based XPO (Algorithm 1) with :math:`r=\\log\\pi_{\\rm base}` in :math:`\\Pi_{\\phi,B}`.

    .. code-block:: text

        theta^(1) = theta_base
        for t = 1..T:
            x_t ~ mu;  y_t ~ pi_{theta^(t)}(.|x_t);  y~_t ~ pi_base(.|x_t)
            theta^(t+1) = argmin_{||theta|| <= B} (1/t) sum_{i<=t} [ alpha log pi_theta(y~_i|x_i)
                                                  + w (Eq. 8 residual of (x_i, y_i, y~_i))^2 ]
        return argmax_{t in [T+1]} J_beta(theta^(t))       # on held-out prompts

    The sign in front of the squared loss is **plus** (THEORY §8 item 1: the printed minus would
    reward regression error; the proof of Thm J.1 and the original XPO use plus). Each argmin is
    ``inner_steps`` of projected Adam warm-started at :math:`\\theta^{(t)}` with a fresh optimizer
    state. Selection: :math:`J_\\beta` is evaluated **exactly over** :math:`\\mathcal Y` and averaged
    over the held-out prompt indices (their empirical distribution: a Monte-Carlo estimate over
    prompts only), or exactly under ``mu`` when ``heldout_prompts`` is None. Rounds are one
    ``lax.scan`` over a fixed buffer of ``num_rounds`` slots, jitted once per
    ``(shapes, num_rounds, inner_steps)``; ``beta``, ``alpha``, ``radius``, ``learning_rate`` are
    traced and do not trigger recompilation.

    Defaults: ``beta = default_beta(instance margin of pi_base under mu, |Y|, delta)`` (Thm 4.3;
    raises if the margin is infinite) and ``alpha = default_alpha(beta, T, d, B, |Y|, epsilon,
    delta, rho)`` (Thm J.3; needs ``num_rounds >= 2``); both overridable.

    Args:
      features: [X, Y, d] (or [Y, d]) features, norm <= 1.
      theta_base: [d] base parameter (the first iterate).
      key: PRNG key; round ``t`` uses ``fold_in(key, t)``.
      num_rounds: static T >= 1.
      radius: norm bound B > 0.
      mu: [X] prompt distribution (default uniform).
      beta: KL coefficient > 0 (default: Thm 4.3).
      alpha: optimism coefficient >= 0 (default: Thm J.3).
      loss_weight: weight w >= 0 of the squared loss (1 as printed; theory
        :math:`(R_{\\max}+V_{\\max})^{-2}`, THEORY §8 item 2).
      heldout_prompts: [H] int prompt indices for selecting the output (default: exact under mu).
      inner_steps: static Adam steps per round.
      learning_rate: initial inner learning rate (decays 100x within each round).
      epsilon, delta, rho: targets used only by the default ``beta`` / ``alpha``.

    Returns:
      :class:`XPOResult`.

    References:
      Huang et al. (2025), Algorithm 1 (App. J.2.1), Thm 4.3, Thm J.1–J.3; Xie et al. (2024), XPO;
      THEORY §3.6, §8 items 1–2.
    """
    features_XxYxD, theta_base = _prepare(features, theta_base, radius, beta)
    num_x, num_y, dim = features_XxYxD.shape
    dtype = features_XxYxD.dtype
    num_rounds = _checks.check_static_int(num_rounds, "num_rounds")
    inner_steps = _checks.check_static_int(inner_steps, "inner_steps")
    lr = _check_lr(learning_rate)
    for value, name in ((alpha, "alpha"), (loss_weight, "loss_weight")):
        if value is not None and not (np.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    mu_X, weights_X = _prompt_weights(mu, heldout_prompts, num_x, dtype)
    if beta is None:
        gamma = float(instance_gamma_margin(_logprobs(theta_base, features_XxYxD), mu_X))
        if not np.isfinite(gamma):
            raise ValueError("beta: the base model's margin is infinite; pass beta explicitly")
        beta = default_beta(gamma, num_y, delta)
    if alpha is None:
        alpha = default_alpha(
            beta, num_rounds=num_rounds, dim=dim, radius=radius, num_responses=num_y,
            epsilon=epsilon, delta=delta, rho=rho,
        )  # fmt: skip
    log_mu_X = jnp.where(mu_X > 0, jnp.log(jnp.where(mu_X > 0, mu_X, 1.0)), -jnp.inf)
    scalars = [jnp.asarray(v, dtype) for v in (beta, alpha, loss_weight, radius, lr)]
    return _xpo_jit(
        features_XxYxD, theta_base, log_mu_X, weights_X, key, *scalars, num_rounds, inner_steps
    )


# --------------------------------------------------------------------------- diagnostics


class IterateDiagnostics(NamedTuple):
    """Exact per-iterate diagnostics of :func:`iterate_diagnostics` (each [K]).

    Attributes:
      j_beta: :math:`J_\\beta(\\pi_{\\theta_k})` under ``mu`` (Eq. 3).
      kl_to_target: :math:`\\mathbb E_\\mu D_{\\rm KL}(\\pi_{\\theta_k}\\|\\pi^\\star_\\beta)`
        :math:`=(J_\\beta(\\pi^\\star_\\beta)-J_\\beta(\\pi_{\\theta_k}))/\\beta` (Thm J.1).
      concentrability: :math:`\\mathcal C_{\\pi_{\\theta_k}}` w.r.t. :math:`\\pi_{\\rm base}` (Eq. 9).
      sharpening_error: :math:`\\mathbb P_\\mu[\\pi_{\\theta_k}(\\mathbf y^\\star|x)\\le1-\\delta]` (Def. 3.1).
      target_mass: :math:`\\mathbb E_\\mu[\\pi_{\\theta_k}(\\mathbf y^\\star(x)|x)]`.
    """

    j_beta: jax.Array
    kl_to_target: jax.Array
    concentrability: jax.Array
    sharpening_error: jax.Array
    target_mass: jax.Array


def iterate_diagnostics(
    iterates: jax.typing.ArrayLike,
    features: jax.typing.ArrayLike,
    theta_base: jax.typing.ArrayLike,
    mu: jax.typing.ArrayLike,
    *,
    beta,
    delta,
) -> IterateDiagnostics:
    """Exact :math:`J_\\beta`, KL to :math:`\\pi^\\star_\\beta`, concentrability and sharpening error per iterate.

    Reuses :func:`sharpen.coverage.concentrability` and :func:`sharpen.targets.sharpening_error`.

    Args:
      iterates: [K, d] parameters (e.g. ``XPOResult.iterates``).
      features: [X, Y, d] (or [Y, d]) features.
      theta_base: [d] base parameter.
      mu: [X] prompt distribution.
      beta: KL coefficient > 0.
      delta: mass slack in (0, 1).

    Returns:
      :class:`IterateDiagnostics` of [K] arrays.

    References:
      Huang et al. (2025), Eq. 3, Eq. 9, Def. 3.1, Thm J.1.
    """
    features_XxYxD, theta_base = _prepare(features, theta_base, 1.0, beta)
    iterates_KxD = jnp.asarray(iterates, features_XxYxD.dtype)
    if iterates_KxD.ndim != 2 or iterates_KxD.shape[1] != theta_base.shape[0]:
        raise ValueError(
            f"iterates must have shape [K, d] with d = {theta_base.shape[0]}, got {iterates_KxD.shape}"
        )
    mu_X, _ = _prompt_weights(mu, None, features_XxYxD.shape[0], features_XxYxD.dtype)
    _checks.check_open_unit(delta, "delta")
    beta = jnp.asarray(beta, features_XxYxD.dtype)
    logp_base_XxY = _logprobs(theta_base, features_XxYxD)
    j_star = jnp.sum(mu_X * _j_beta(_pi_beta_star(logp_base_XxY, beta), logp_base_XxY, beta))

    def one(theta):
        logp_XxY = _logprobs(theta, features_XxYxD)
        j = jnp.sum(mu_X * _j_beta(logp_XxY, logp_base_XxY, beta))
        return IterateDiagnostics(
            j_beta=j,
            kl_to_target=(j_star - j) / beta,
            concentrability=concentrability(logp_XxY, logp_base_XxY, mu_X),
            sharpening_error=_sharpening_error(logp_XxY, logp_base_XxY, mu_X, delta=delta),
            target_mass=jnp.sum(mu_X * _target_mass(logp_XxY, logp_base_XxY)),
        )

    return jax.lax.map(one, iterates_KxD, batch_size=64)


class SECPotential(NamedTuple):
    """Result of :func:`sec_potential` (arrays are [T], cumulative sums end in ``_cum``).

    Attributes:
      potential: :math:`\\mathrm{Tr}((\\kappa I+\\sum_{i<t}\\Sigma^{(i)})^{-1}\\Sigma^{(t)})` per round.
      potential_cum: cumulative potential (the S9 curve; compare :func:`elliptic_potential_bound`).
      sec: SEC summand of Def. J.1 along this trajectory,
        :math:`(E^{(t)}g_t)^2/(\\lambda\\vee\\sum_{i<t}E^{(i)}g_t^2)`.
      sec_cum: cumulative SEC summands (a lower bound on SEC, the sup over trajectories).
      trace: :math:`\\mathrm{Tr}\\,\\Sigma^{(t)}` (at most ``trace_bound = 8`` when ``|r| <= r_max``).
      lam: scalar :math:`\\lambda` used in the SEC denominator.
      r_max: scalar reward scale used in :math:`\\psi`.
    """

    potential: jax.Array
    potential_cum: jax.Array
    sec: jax.Array
    sec_cum: jax.Array
    trace: jax.Array
    lam: jax.Array
    r_max: jax.Array


def _sec_impl(iterates_TxD, features, theta_base, mu_X, beta, r_max, lam, ridge):
    logp_base_XxY = _logprobs(theta_base, features)
    psi_XxYxE = jnp.concatenate([features, (logp_base_XxY / r_max)[..., None]], axis=-1)
    p_base_XxY = jnp.exp(logp_base_XxY)
    m_base_XxE = jnp.einsum("xy,xye->xe", p_base_XxY, psi_XxYxE)
    s_base_XxExE = jnp.einsum("xy,xye,xyf->xef", p_base_XxY, psi_XxYxE, psi_XxYxE)
    mbar_base_E = mu_X @ m_base_XxE

    def moments(theta):
        p_XxY = jnp.exp(_logprobs(theta, features))
        m_XxE = jnp.einsum("xy,xye->xe", p_XxY, psi_XxYxE)
        s_XxExE = jnp.einsum("xy,xye,xyf->xef", p_XxY, psi_XxYxE, psi_XxYxE)
        # E[(psi - psi')(psi - psi')^T] with y ~ pi, y' ~ pi_base independent given x.
        cross_XxExE = jnp.einsum("xe,xf->xef", m_XxE, m_base_XxE)
        sigma_XxExE = s_XxExE + s_base_XxExE - cross_XxExE - jnp.swapaxes(cross_XxExE, 1, 2)
        sigma_ExE = jnp.einsum("x,xef->ef", mu_X, sigma_XxExE)
        w_E = jnp.concatenate([beta * (theta - theta_base), -r_max[None]])
        return sigma_ExE, w_E, mu_X @ m_XxE - mbar_base_E

    sigma_TxExE, w_TxE, dm_TxE = jax.lax.map(moments, iterates_TxD, batch_size=64)
    dim = sigma_TxExE.shape[-1]

    def step(gram_ExE, inputs):
        sigma_ExE, w_E, dm_E = inputs
        pot = jnp.trace(
            jnp.linalg.solve(ridge * jnp.eye(dim, dtype=gram_ExE.dtype) + gram_ExE, sigma_ExE)
        )
        sec = jnp.square(w_E @ dm_E) / jnp.maximum(lam, w_E @ gram_ExE @ w_E)
        return gram_ExE + sigma_ExE, (pot, sec, jnp.trace(sigma_ExE))

    gram0 = jnp.zeros((dim, dim), sigma_TxExE.dtype)
    _, (pot_T, sec_T, trace_T) = jax.lax.scan(step, gram0, (sigma_TxExE, w_TxE, dm_TxE))
    return SECPotential(
        potential=pot_T, potential_cum=jnp.cumsum(pot_T), sec=sec_T, sec_cum=jnp.cumsum(sec_T),
        trace=trace_T, lam=lam, r_max=r_max,
    )  # fmt: skip


_sec_jit = jax.jit(_sec_impl)


def sec_potential(
    iterates: jax.typing.ArrayLike,
    features: jax.typing.ArrayLike,
    theta_base: jax.typing.ArrayLike,
    mu: jax.typing.ArrayLike | None = None,
    *,
    beta,
    radius,
    r_max=None,
    lam=None,
    ridge=1.0,
) -> SECPotential:
    """Elliptic potential and SEC summands of Lemma J.5 along a policy trajectory, exactly.

    With augmented features :math:`\\psi(x,y)=[\\phi(x,y),\\,r(x,y)/R_{\\max}]\\in\\mathbb R^{d+1}`,
    :math:`r=\\log\\pi_{\\rm base}`, the SEC function of Def. J.1 is linear,
    :math:`g_t(x,y,y')=\\langle w_t,\\psi(x,y)-\\psi(x,y')\\rangle` with
    :math:`w_t=[\\beta(\\theta_t-\\theta_{\\rm base}),\\,-R_{\\max}]` (log-partitions cancel), and
    :math:`\\|w_t\\|^2\\le4\\beta^2B^2+R_{\\max}^2`. With
    :math:`\\Sigma^{(t)}=\\mathbb E_{x\\sim\\mu,y\\sim\\pi_t,y'\\sim\\pi_{\\rm base}}[(\\psi-\\psi')(\\psi-\\psi')^\\top]`
    (exact over :math:`\\mathcal Y`), this returns per round

    .. math::  \\text{potential}_t=\\mathrm{Tr}\\Big(\\big(\\kappa I+\\textstyle\\sum_{i<t}\\Sigma^{(i)}\\big)^{-1}\\Sigma^{(t)}\\Big),
               \\qquad \\text{sec}_t=\\frac{(w_t^\\top\\mathbb E^{(t)}[\\psi-\\psi'])^2}{\\lambda\\vee w_t^\\top\\sum_{i<t}\\Sigma^{(i)}w_t},

    with :math:`\\kappa=` ``ridge`` (1: the S9 potential, THEORY §5.3) and
    :math:`\\lambda\\ge\\|w_t\\|^2`. The proof chain of Lemma J.5 gives
    :math:`\\text{sec}_t\\le2\\,\\text{potential}_t` (Cauchy–Schwarz and
    :math:`\\lambda\\vee a\\ge(\\lambda+a)/2`) when ``ridge = 1`` and :math:`\\lambda\\ge\\|w_t\\|^2`,
    and Lemma F.2 bounds the cumulative potential by :func:`elliptic_potential_bound` with
    ``dim = d + 1`` and ``trace_bound = 8`` (:math:`\\|\\psi-\\psi'\\|^2\\le4+4`).

    Args:
      iterates: [T, d] the policies :math:`\\pi^{(1)},\\dots,\\pi^{(T)}` that generated the data
        (``XPOResult.iterates[:-1]``), or any trajectory.
      features: [X, Y, d] (or [Y, d]) features.
      theta_base: [d] base parameter.
      mu: [X] prompt distribution (default uniform).
      beta: KL coefficient > 0.
      radius: norm bound B > 0 (sets the defaults).
      r_max: reward scale in :math:`\\psi` (default :func:`reward_bound` ``= 2B + log|Y|``).
      lam: SEC floor :math:`\\lambda` (default :math:`4\\beta^2B^2+R_{\\max}^2`, Lemma J.5).
      ridge: :math:`\\kappa>0` in the potential.

    Returns:
      :class:`SECPotential`.

    References:
      Huang et al. (2025), Def. J.1, Lemma J.5, Lemma F.2; THEORY §2 (SEC), §5.3 S9.
    """
    features_XxYxD, theta_base = _prepare(features, theta_base, radius, beta)
    dtype = features_XxYxD.dtype
    iterates_TxD = jnp.asarray(iterates, dtype)
    if iterates_TxD.ndim != 2 or iterates_TxD.shape[1] != theta_base.shape[0]:
        raise ValueError(
            f"iterates must have shape [T, d] with d = {theta_base.shape[0]}, got {iterates_TxD.shape}"
        )
    mu_X, _ = _prompt_weights(mu, None, features_XxYxD.shape[0], dtype)
    r_max = reward_bound(radius, features_XxYxD.shape[1]) if r_max is None else r_max
    _checks.check_positive(r_max, "r_max")
    lam = 4.0 * float(beta) ** 2 * float(radius) ** 2 + float(r_max) ** 2 if lam is None else lam
    _checks.check_positive(lam, "lam")
    _checks.check_positive(ridge, "ridge")
    args = [jnp.asarray(v, dtype) for v in (beta, r_max, lam, ridge)]
    return _sec_jit(iterates_TxD, features_XxYxD, theta_base, mu_X, *args)


def elliptic_potential_bound(dim: int, num_rounds, *, trace_bound=8.0, ridge=1.0) -> jax.Array:
    """Right-hand side of the elliptic potential lemma (Lemma F.2).

    .. math::  \\sum_{t=1}^T\\mathrm{Tr}(\\Gamma_{t-1}^{-1}A_t)\\le
               \\frac{dK\\log((T+1)K/\\lambda)}{\\lambda\\log(1+K/\\lambda)},\\qquad
               \\Gamma_t=\\lambda I+\\sum_{i\\le t}A_i,\\ \\mathrm{Tr}A_t\\le K.

    For Lemma J.5 use ``dim = d + 1`` (augmented features), ``trace_bound = 8``, ``ridge = 1``;
    the bound is :math:`O(d\\log T)`.

    Args:
      dim: dimension d >= 1 of the PSD matrices.
      num_rounds: T >= 1 (scalar or array).
      trace_bound: K > 0.
      ridge: :math:`\\lambda>0`.

    Returns:
      bound with the shape of ``num_rounds``.

    References:
      Huang et al. (2025), Lemma F.2, Lemma J.5.

    Example:
      >>> round(float(elliptic_potential_bound(2, 10, trace_bound=1.0)), 3)  # 2 log 11 / log 2
      6.919
    """
    d = _checks.check_static_int(dim, "dim")
    _checks.check_num_samples(num_rounds, "num_rounds")
    _checks.check_positive(trace_bound, "trace_bound")
    _checks.check_positive(ridge, "ridge")
    t = jnp.asarray(num_rounds, jnp.zeros(()).dtype)
    k_over = trace_bound / ridge
    return d * k_over * jnp.log((t + 1.0) * k_over) / math.log1p(k_over)

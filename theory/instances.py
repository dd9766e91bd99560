"""Hard instances and tabular base-policy families, as pure constructors.

| constructor | used by | what it is |
|---|---|---|
| :func:`hard_instance` | S3, S4, S5 | the lower-bound instance of Thm 3.1′ (App. H), exactly |
| :func:`hard_class_candidates` | tests, S4(a) | the index-vector class ``{pi^I : I in [M]^d}`` per prompt |
| :func:`bayes_learner` | S3, tests | the Bayes-optimal learner on that instance (uniform prior) |
| :func:`bayes_error_given_draws` | S3 | its exact expected error given the draws per prompt |
| :func:`policy_with_top_mass` | S4, S13 | tabular ``pi_base`` with a prescribed argmax mass per prompt |
| :func:`two_point_top_mass` | S4 | argmax masses from a two-point mixture (Markov tight) |
| :func:`light_tailed_top_mass` | S4 | argmax masses with bounded ``1/p*`` (Markov loose) |
| :func:`near_tie_policy` | S13 | ``k`` near-maximizers within a factor ``1 - gamma`` |
| :func:`tilted_class` | S12 | a finite, realizable class of exponential tilts |

Response 0 of every tabular family is its argmax, so ``y*(x) = 0`` unless stated otherwise.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen import _checks


class HardInstance(NamedTuple):
    """The lower-bound instance of Thm 3.1′ with a fixed index vector."""

    logp_base: jax.Array  # [d + 1, M + 1]: prompt 0 is easy, prompts 1..d are hard
    mu: jax.Array  # [d + 1]
    index: jax.Array  # [d] argmax response of each hard prompt, in 1..M


def hard_response_probs(M: int, gamma: float = 0.5) -> tuple[float, float]:
    """Masses ``(p_top, p_other)`` of ``P_i`` on its argmax ``y_i`` and on each other ``y_j``.

    .. math::  P_i(y_i) = \\frac{1}{(1-\\gamma)M},\\qquad
               P_i(y_j) = \\frac1M\\Big(1-\\frac{\\gamma}{(M-1)(1-\\gamma)}\\Big),\\ j\\ne i.

    With ``gamma = 1/2``: ``2/M`` and ``(M-2)/(M(M-1))``, so ``y*_{1/2}`` is the singleton
    ``{y_i}``. Requires ``(1-gamma) M > 1`` (otherwise ``p_top > 1``).

    References:
      Huang et al. (2025), proof of Thm 3.1′ (App. H).
    """
    _checks.check_static_int(M, "M", minimum=2)
    _checks.check_gamma(gamma)
    if (1.0 - gamma) * M <= 1.0:
        raise ValueError(f"need (1 - gamma) * M > 1, got gamma={gamma!r}, M={M!r}")
    p_top = 1.0 / ((1.0 - gamma) * M)
    return p_top, (1.0 - p_top) / (M - 1)


def hard_instance(
    *, d: int, M: int, Delta: float, gamma: float = 0.5, index: jax.Array | None = None
) -> HardInstance:
    """The exact hard instance of Thm 3.1′ (App. H).

    ``X = {x_0, ..., x_d}``, ``Y = {y_0, ..., y_M}``,
    ``mu = (1 - Delta) delta_{x_0} + (Delta / d) sum_i delta_{x_i}``, ``pi(x_0) = delta_{y_0}``
    and ``pi(x_i) = P_{j_i}`` (see :func:`hard_response_probs`).

    Args:
      d: number of hard prompts.
      M: number of candidate responses per hard prompt.
      Delta: total mass of the hard prompts, in (0, 1).
      gamma: approximation slack (the theorem uses 1/2).
      index: [d] argmax index per hard prompt in ``1..M`` (default: ``j_i = 1`` for all i; the
        uniform prior over index vectors is what the learners average over).

    Returns:
      :class:`HardInstance`.

    Example:
      >>> inst = hard_instance(d=2, M=4, Delta=0.1)
      >>> [round(float(v), 4) for v in jnp.exp(inst.logp_base[1])]
      [0.0, 0.5, 0.1667, 0.1667, 0.1667]
    """
    d = _checks.check_static_int(d, "d")
    _checks.check_open_unit(Delta, "Delta")
    p_top, p_other = hard_response_probs(M, gamma)
    index = jnp.ones(d, jnp.int32) if index is None else jnp.asarray(index, jnp.int32)
    if index.shape != (d,):
        raise ValueError(f"index must have shape ({d},), got {index.shape}")
    if _checks.is_concrete(index) and not bool(jnp.all((index >= 1) & (index <= M))):
        raise ValueError(f"index entries must lie in 1..M={M}, got {index.tolist()}")
    resp = jnp.arange(M + 1, dtype=index.dtype)
    hard = jnp.where(resp[None] == index[:, None], p_top, p_other)
    hard = jnp.where(resp[None] == 0, 0.0, hard)
    easy = (resp == 0).astype(hard.dtype)[None]
    mu = jnp.concatenate([jnp.array([1.0 - Delta]), jnp.full((d,), Delta / d)])
    return HardInstance(jnp.log(jnp.concatenate([easy, hard])), mu, index)


def hard_class_candidates(*, d: int, M: int, gamma: float = 0.5) -> jax.Array:
    """Candidate conditionals of the index-vector class, per prompt: [d + 1, M, M + 1].

    Row ``[0, j]`` is ``delta_{y_0}`` for every ``j`` (the easy prompt is known); row ``[i, j]``
    for ``i >= 1`` is ``P_{j+1}``. The class is the product over prompts (``|Pi| = M^d``), so
    :func:`sharpen.product_class_mle` is its MLE; apply :func:`sharpen.bon_law` to get the
    best-of-N class of SFT-Sharpening (Assumption 4.1 then holds by construction).
    """
    if M > 2048:
        raise ValueError(f"hard_class_candidates materializes M^2 entries; M={M} is too large")
    p_top, p_other = hard_response_probs(M, gamma)
    resp = jnp.arange(M + 1)
    table = jnp.where(resp[None] == jnp.arange(1, M + 1)[:, None], p_top, p_other)
    table = jnp.where(resp[None] == 0, 0.0, table)
    easy = jnp.broadcast_to((resp == 0).astype(table.dtype), (M, M + 1))
    return jnp.log(jnp.concatenate([easy[None], jnp.broadcast_to(table, (d, M, M + 1))]))


def bayes_learner(
    counts_XxY: jax.Array, logp_base: jax.Array, *, M: int, gamma: float = 0.5, key: jax.Array
) -> jax.Array:
    """Bayes-optimal learner on the hard instance under a uniform prior on the index vector.

    The sample-and-evaluate oracle reveals the likelihood of every drawn response, and only the
    argmax has likelihood ``p_top``. So on a hard prompt: if a drawn response has likelihood
    ``p_top`` it is the argmax; otherwise the posterior is uniform over the responses not yet
    drawn, and the learner guesses one of them uniformly. It outputs a point mass on its guess.

    Args:
      counts_XxY: [d + 1, M + 1] how often each response was drawn on each prompt.
      logp_base: [d + 1, M + 1] base log-likelihoods; only entries with ``counts > 0`` are read
        (the oracle reveals nothing else).
      M: number of candidates per hard prompt.
      gamma: approximation slack of the instance.
      key: PRNG key for the guesses.

    Returns:
      [d] int32 guessed argmax per hard prompt, in ``1..M``.

    References:
      Huang et al. (2025), Lemma H.3 (posterior uniform over unseen indices).
    """
    p_top, _ = hard_response_probs(M, gamma)
    seen = counts_XxY[1:, 1:] > 0
    lik = jnp.where(seen, jnp.exp(logp_base[1:, 1:]), 0.0)
    found = lik >= p_top * (1.0 - 1e-5)  # the top level is separated by a factor 2 (gamma 1/2)
    u = jax.random.uniform(key, seen.shape)
    score = jnp.where(found, 2.0, jnp.where(seen, -1.0, u))
    return (jnp.argmax(score, axis=-1) + 1).astype(jnp.int32)


def unseen_guess_table(M: int, max_draws: int, *, size: int | None = None) -> jax.Array:
    """``g[T] = E[1 / (M - D_T)]`` for ``T = 0..max_draws``: [max_draws + 1].

    ``D_T`` is the number of distinct responses among ``T`` uniform draws from the ``M - 1``
    non-argmax responses, so ``g[T]`` is the chance that the Bayes learner's uniform guess among
    unseen responses is right, given that ``T`` draws missed the argmax. Exact occupancy
    recursion ``P(D_{t+1} = k + 1 | D_t = k) = (M - 1 - k) / (M - 1)``, run as one
    ``lax.scan``; ``O(max_draws * M)``.

    Args:
      M: number of candidates (may be a traced scalar when ``size`` is given).
      max_draws: static table length minus one.
      size: static length of the occupancy vector, ``>= M`` (default ``M``); padding several M
        to one size keeps one compiled program.

    Returns:
      [max_draws + 1] table in the default float dtype.
    """
    _checks.check_static_int(max_draws, "max_draws", minimum=0)
    size = _checks.check_static_int(M, "M", minimum=2) if size is None else size
    return _guess_table(jnp.asarray(M, float), max_draws, size)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _guess_table(M, max_draws, size):
    k = jnp.arange(size, dtype=float)  # D in 0..M-1 (entries >= M are padding)
    valid = k < M
    new = jnp.where(valid, (M - 1.0 - k) / (M - 1.0), 0.0)
    inv = jnp.where(valid, 1.0 / jnp.maximum(M - k, 1.0), 0.0)
    dist0 = (k == 0).astype(float)

    def step(dist, _):
        moved = dist * new
        nxt = dist - moved + jnp.concatenate([jnp.zeros(1, dist.dtype), moved[:-1]])
        return nxt, dist @ inv

    return jax.lax.scan(step, dist0, None, length=max_draws + 1)[1]


def bayes_error_given_draws(
    draws_D: jax.Array, *, M: int, gamma: float, guess_table: jax.Array
) -> jax.Array:
    """Exact probability that the Bayes learner misidentifies each hard prompt's argmax.

    .. math::  \\mathbb P[\\text{wrong} \\mid T] = (1-p_{\\rm top})^T\\,(1-g[T]),

    the argmax is never drawn in ``T`` draws and the guess among unseen responses fails.
    ``T`` beyond the table uses its last entry (``g`` increases in ``T``, so this over-states
    the error by at most ``(1 - p_top)^{T_max}``).

    Args:
      draws_D: [..., d] number of draws made on each hard prompt.
      M, gamma: instance parameters.
      guess_table: [T_max + 1] from :func:`unseen_guess_table`.

    Returns:
      [..., d] error probabilities.
    """
    p_top, _ = hard_response_probs(M, gamma)
    t = jnp.minimum(draws_D, guess_table.shape[0] - 1).astype(jnp.int32)
    miss = jnp.exp(jnp.asarray(draws_D, guess_table.dtype) * jnp.log1p(-p_top))
    return miss * (1.0 - guess_table[t])


def policy_with_top_mass(
    p_star_X: jax.Array, num_responses: int, *, key: jax.Array, concentration: float = 1.0
) -> jax.Array:
    """Tabular ``pi_base`` whose unique argmax (response 0) has mass ``p_star_X[x]``.

    The remaining mass is spread over responses ``1..K-1`` by a Dirichlet draw, then mixed with
    the uniform spread just enough that every other response stays below ``0.99 p*`` (so the
    argmax is unique with a margin). Requires ``p* > 1/K``.

    Args:
      p_star_X: [X] argmax masses in (1/K, 1].
      num_responses: K.
      key: PRNG key.
      concentration: Dirichlet concentration of the non-argmax part.

    Returns:
      [X, K] log-probabilities.
    """
    K = _checks.check_static_int(num_responses, "num_responses", minimum=2)
    p_star_X = jnp.asarray(p_star_X, float)  # default float dtype, so x64 keeps float64
    if _checks.is_concrete(p_star_X) and not bool(
        jnp.all((p_star_X > 1.0 / K) & (p_star_X <= 1.0))
    ):
        raise ValueError(f"p_star_X must lie in (1/K, 1] with K={K}, got {p_star_X}")
    rest = jax.random.dirichlet(key, jnp.full((K - 1,), concentration), (p_star_X.shape[0],))
    uniform = 1.0 / (K - 1)
    cap = 0.99 * p_star_X / jnp.maximum(1.0 - p_star_X, 1e-30)  # max allowed rest share
    top = jnp.max(rest, axis=-1)
    lam = jnp.clip((cap - uniform) / jnp.maximum(top - uniform, 1e-30), 0.0, 1.0)
    rest = lam[:, None] * rest + (1.0 - lam[:, None]) * uniform
    probs = jnp.concatenate([p_star_X[:, None], (1.0 - p_star_X)[:, None] * rest], axis=-1)
    return jnp.log(probs / jnp.sum(probs, axis=-1, keepdims=True))


def two_point_top_mass(num_prompts: int, c_cov: float, p_low: float) -> jax.Array:
    """Argmax masses from a two-point mixture: ``p* = p_low`` on a fraction ``w``, else 1.

    ``w = (c_cov - 1) / (1/p_low - 1)`` gives ``E[1/p*] = c_cov`` (up to rounding of ``w X``
    to whole prompts; the exact value is recomputed by :func:`sharpen.c_cov`). This makes
    Markov's inequality ``P[1/p* >= t] <= c_cov / t`` nearly tight at ``t = 1/p_low``.
    """
    X = _checks.check_static_int(num_prompts, "num_prompts")
    if not 1.0 <= c_cov <= 1.0 / p_low:
        raise ValueError(f"c_cov must lie in [1, 1/p_low={1.0 / p_low:.4g}], got {c_cov!r}")
    w = (c_cov - 1.0) / (1.0 / p_low - 1.0)
    num_low = round(w * X)
    return jnp.where(jnp.arange(X) < num_low, p_low, 1.0).astype(float)


def light_tailed_top_mass(num_prompts: int, c_cov: float) -> jax.Array:
    """Argmax masses with ``1/p*`` evenly spaced on ``[1, 2 c_cov - 1]`` (mean ``c_cov``).

    Bounded ``1/p*``: Markov's inequality is loose here, unlike :func:`two_point_top_mass`.
    """
    X = _checks.check_static_int(num_prompts, "num_prompts")
    if c_cov < 1.0:
        raise ValueError(f"c_cov must be >= 1, got {c_cov!r}")
    inv = jnp.linspace(1.0, 2.0 * c_cov - 1.0, X)
    return (1.0 / inv).astype(float)


def near_tie_policy(*, k: int, gamma: float, p_top: float, num_responses: int) -> jax.Array:
    """One prompt with ``k`` near-maximizers (S13): a [1, K] log-probability table.

    Response 0 has mass ``p_top``; responses ``1..k-1`` have ``p_top (1 - gamma/2)`` each, so
    all ``k`` lie in ``y*_gamma`` but only response 0 in ``y*``; the rest of the mass is spread
    evenly over the remaining ``K - k`` responses, each of which must stay below
    ``(1 - gamma) p_top`` (checked), so ``C_cov,gamma = 1 / (p_top (1 + (k-1)(1-gamma/2)))``.
    """
    K = _checks.check_static_int(num_responses, "num_responses", minimum=2)
    k = _checks.check_static_int(k, "k")
    near = p_top * (1.0 - gamma / 2.0)
    rest_mass = 1.0 - p_top - (k - 1) * near
    if k >= K or rest_mass < 0 or rest_mass / (K - k) >= (1.0 - gamma) * p_top:
        raise ValueError(
            f"near_tie_policy needs k < K and a tail below (1-gamma) p_top; got k={k}, K={K}, "
            f"gamma={gamma}, p_top={p_top}"
        )
    probs = np.full(K, rest_mass / (K - k))
    probs[0] = p_top
    probs[1:k] = near
    return jnp.log(jnp.asarray(probs / probs.sum(), float))[None]


def tilted_class(
    *, key: jax.Array, num_prompts: int, num_responses: int, grid_size: int, tilt: float
) -> jax.Array:
    """A finite product class of exponential tilts, for the MLE rate of Lemma F.1 (S12).

    For each prompt ``x``, a random base ``q_x`` and a random direction ``f_x`` (unit variance
    under ``q_x``) define ``pi_t(y|x) propto q_x(y) exp(t f_x(y))`` for ``t`` on an even grid of
    ``grid_size`` points in ``[-tilt, tilt]``. The class is the product over prompts, so
    ``|Pi| = grid_size ** num_prompts``. Neighbouring members are close in Hellinger distance,
    which is what makes the ``1/n`` rate visible rather than an exponentially fast lock-in.

    Returns:
      [X, J, Y] log-probabilities (``J = grid_size``).
    """
    X = _checks.check_static_int(num_prompts, "num_prompts")
    Y = _checks.check_static_int(num_responses, "num_responses", minimum=2)
    J = _checks.check_static_int(grid_size, "grid_size", minimum=2)
    base_key, dir_key = jax.random.split(key)
    log_q = jnp.log(jax.random.dirichlet(base_key, jnp.full((Y,), 2.0), (X,)))
    f = jax.random.normal(dir_key, (X, Y))
    q = jnp.exp(log_q)
    f = f - jnp.sum(q * f, -1, keepdims=True)
    f = f / jnp.sqrt(jnp.sum(q * f**2, -1, keepdims=True))
    t = jnp.linspace(-tilt, tilt, J)
    logits = log_q[:, None, :] + t[None, :, None] * f[:, None, :]
    return jax.nn.log_softmax(logits, axis=-1)

"""Learners on the lower-bound family of Thm 3.1′, simulated exactly and in batch (S3, S4, S5).

The family scales with epsilon (``Delta = 16 epsilon``, ``M = ceil(1 + C epsilon^(-1/p))``),
which is the only way the ``1/epsilon^2`` shape can show (THEORY §4.1). Every learner's output
depends on the data only through per-prompt statistics, which are drawn here from their exact
laws instead of draw by draw, so a budget of ``m = 10^7`` queries costs the same as ``m = 10``:

* visits per prompt ``n_x ~ Multinomial(n, mu)``;
* SFT-Sharpening: on a hard prompt each visit's best-of-N winner is the argmax with probability
  ``q = pi^BoN_N(y*)`` (closed form, :func:`sharpen.bon_law`), otherwise uniform over the
  ``M - 1`` others (they share one likelihood level). The MLE over the best-of-N class picks
  the most frequent winner (ties uniformly at random) whenever ``q`` exceeds the mass of any
  other response, which holds whenever ``q > 1 - delta``; below that the learned model fails on
  the prompt whatever the MLE picks. :func:`mle_success_prob` draws the winner counts and
  returns the exact tie-broken success probability;
* adaptive SFT-Sharpening: the same with ``q`` from :func:`sharpen.adaptive_bon_law` and cost
  ``E[N_mu]`` per visit;
* Bayes learner (lower bound): exact error given the draws (:func:`theory.instances.
  bayes_error_given_draws`); its adaptive version draws on a hard prompt until the argmax shows.

``tests/test_hard_family.py`` checks these against the literal algorithms (sampler, best-of-N,
MLE by enumeration over the class) on small instances.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen import adaptive_bon_law, bon_law
from theory import bounds, instances

#: Non-argmax winners per prompt simulated ball by ball; beyond it only the first CAP count.
CAP = 64


class Family(NamedTuple):
    """One member of the lower-bound family."""

    epsilon: float
    c: float
    p: int
    d: int
    M: int
    Delta: float
    gamma: float

    @property
    def mu(self) -> np.ndarray:
        return np.concatenate([[1.0 - self.Delta], np.full(self.d, self.Delta / self.d)])

    @property
    def p_top(self) -> float:
        return instances.hard_response_probs(self.M, self.gamma)[0]

    @property
    def c_cov(self) -> float:
        """``C_cov,gamma`` of the instance: ``1 - Delta + Delta M (1 - gamma)`` for p = 1."""
        return (1.0 - self.Delta) + self.Delta / self.p_top


def family(epsilon: float, c: float, *, p: int = 1, d: int = 4, gamma: float = 0.5) -> Family:
    """``Delta = 16 epsilon``, ``M = ceil(1 + C epsilon^(-1/p))`` (THEORY §4.1 "Parameters")."""
    if not 0 < 16.0 * epsilon < 1:
        raise ValueError(
            f"epsilon must lie in (0, 1/16) so that Delta = 16 epsilon < 1, got {epsilon}"
        )
    delta_mass, M = bounds.hard_instance_parameters(epsilon, c, p=p)
    return Family(epsilon, c, p, d, int(M), float(delta_mass), gamma)


def hard_row(fam: Family, pad_to: int) -> jax.Array:
    """Log-probabilities of one hard prompt (argmax first), padded with zero-mass responses.

    Padding every member to one length keeps a single compiled program for the whole sweep.
    """
    p_top = fam.p_top
    row = np.zeros(max(pad_to, fam.M))
    row[: fam.M] = (1.0 - p_top) / (fam.M - 1)
    row[0] = p_top
    return jnp.log(jnp.asarray(row, float))


@jax.jit
def _bon_pick(row, num_samples_G):
    return jax.vmap(lambda n: jnp.exp(bon_law(row, n)[0]))(num_samples_G)


def argmax_pick_prob(fam: Family, num_samples: np.ndarray, *, pad_to: int = 0) -> np.ndarray:
    """``q(N) = pi^BoN_N(y* | x_i)`` on a hard prompt, from the closed-form law."""
    row = hard_row(fam, pad_to)
    return np.asarray(_bon_pick(row, jnp.asarray(num_samples, float)), np.float64)


@jax.jit
def _adaptive_pick(row, mu_stop):
    law, draws = adaptive_bon_law(row, mu_stop=mu_stop)
    _, easy = adaptive_bon_law(jnp.zeros((1,), row.dtype), mu_stop=mu_stop)
    return jnp.exp(law[0]), draws, easy


def adaptive_pick_prob_and_cost(
    fam: Family, mu_stop: float, *, pad_to: int = 0
) -> tuple[float, float, float]:
    """``(q, E[N_mu] on a hard prompt, E[N_mu] on the easy prompt)`` for AdaBoN."""
    q, hard, easy = _adaptive_pick(hard_row(fam, pad_to), mu_stop)
    return float(q), float(hard), float(easy)


def mle_success_prob(key, visits_D, q, M, *, cap: int = CAP):
    """Probability that the MLE over the best-of-N class picks the true index, per hard prompt.

    Draws ``a ~ Bin(n_i, q)`` argmax wins and places the other ``n_i - a`` wins uniformly in
    ``M - 1`` bins; the MLE (most frequent winner, uniform tie-break) is right with probability
    1 if ``a`` beats every other count, ``1/(1 + #tied bins)`` on a tie, else 0. An unvisited
    prompt is an M-way tie (``1/M``).

    Args:
      key: PRNG key.
      visits_D: [d] float visits per hard prompt.
      q: scalar argmax-pick probability of one visit.
      M: number of candidate responses (may be traced).
      cap: static number of non-argmax winners simulated individually.

    Returns:
      ``(success [d], capped [d] bool)``.
    """
    a_key, b_key = jax.random.split(key)
    a = jax.random.binomial(a_key, visits_D, q)
    k = visits_D - a
    balls = jax.random.randint(b_key, (visits_D.shape[0], cap), 0, M - 1)
    valid = jnp.arange(cap, dtype=k.dtype)[None, :] < k[:, None]
    same = (balls[:, :, None] == balls[:, None, :]) & valid[:, None, :] & valid[:, :, None]
    count = jnp.sum(same, axis=-1)
    top_int = jnp.max(count, axis=-1)
    top = top_int.astype(a.dtype)
    tied_bins = (jnp.sum(count == top_int[:, None], -1) / jnp.maximum(top_int, 1)).astype(a.dtype)
    tied = jnp.where(top > 0, tied_bins, M - 1.0)
    success = jnp.where(a > top, 1.0, jnp.where(a == top, 1.0 / (1.0 + tied), 0.0))
    return success, k > cap


@jax.jit
def sft_errors(key, n, q, threshold, mu_X, M):
    """Sharpening error of SFT-Sharpening (non-adaptive or adaptive) for one seed.

    Args:
      key: PRNG key.
      n: number of prompts (float, may be 0).
      q: argmax-pick probability of one visit.
      threshold: ``1 - delta``; the learned mass on y* is q (right index) or less.
      mu_X: [d + 1] prompt distribution.
      M: number of candidates.

    Returns:
      ``(error, visits [d + 1], capped_any)``.
    """
    v_key, m_key = jax.random.split(key)
    visits = jax.random.multinomial(v_key, n, mu_X)
    success, capped = mle_success_prob(m_key, visits[1:], q, M)
    wrong = jnp.where(q > threshold, 1.0 - success, 1.0)
    return jnp.sum(mu_X[1:] * wrong), visits, jnp.any(capped & (q > threshold))


@jax.jit
def bayes_errors(key, n, num_samples, mu_X, p_top, guess_table):
    """Exact expected error of the (non-adaptive) Bayes learner given one seed's visits."""
    visits = jax.random.multinomial(key, n, mu_X)
    draws = visits[1:] * num_samples
    t = jnp.minimum(draws, guess_table.shape[0] - 1).astype(jnp.int32)
    wrong = jnp.exp(draws * jnp.log1p(-p_top)) * (1.0 - guess_table[t])
    return jnp.sum(mu_X[1:] * wrong)


@jax.jit
def bayes_adaptive_errors(key, n, mu_X, p_top, M):
    """Adaptive Bayes learner: on a hard prompt, draw until the argmax shows (mean 1/p_top).

    Returns ``(error, expected draws given the visits)``; the easy prompt is known from the
    class and costs nothing.
    """
    visits = jax.random.multinomial(key, n, mu_X)
    unseen = visits[1:] == 0
    error = jnp.sum(mu_X[1:] * unseen.astype(mu_X.dtype) * (1.0 - 1.0 / M))
    return error, jnp.sum((~unseen).astype(mu_X.dtype)) / p_top


def seed_keys(seed: int, unit: int, num_seeds: int) -> jax.Array:
    """Keys ``fold_in(fold_in(key(seed), unit), s)`` for ``s < num_seeds``."""
    base = jax.random.fold_in(jax.random.key(seed), unit)
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.arange(num_seeds))

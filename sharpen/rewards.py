"""Self-rewards: certainty signals computed from the base model alone (§1.2 of THEORY).

A self-reward maps the base model's log-probabilities to a score per response. The theory uses
the sequence log-likelihood (Eq. 2); the experiments also use its length-normalized form and
majority vote (App. A.2). New self-rewards register in :data:`SELF_REWARDS` with the same
signature, so every best-of-N sampler and law accepts them through its ``reward`` argument.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def log_likelihood(logp_base: jax.Array) -> jax.Array:
    """Maximum-likelihood self-reward ``r_self(y|x) = log pi_base(y|x)`` (Eq. 2).

    Args:
      logp_base: [..., Y] base log-probabilities over a finite response space.

    Returns:
      [..., Y] rewards (the input itself).

    References:
      Huang et al. (2025), Eq. 2.

    Example:
      >>> import jax.numpy as jnp
      >>> log_likelihood(jnp.log(jnp.array([0.5, 0.5]))).tolist() == jnp.log(0.5).repeat(2).tolist()
      True
    """
    return jnp.asarray(logp_base)


def sequence_log_likelihood(token_logp_BxL: jax.Array, mask_BxL: jax.Array) -> jax.Array:
    """Sequence log-likelihood ``sum_h log pi(y_h | x, y_<h)`` over unmasked tokens (Eq. 5).

    Args:
      token_logp_BxL: [B, L] per-token log-probabilities under the *base* model.
      mask_BxL: [B, L] bool or {0, 1}; True for response tokens.

    Returns:
      [B] sequence log-likelihoods.

    References:
      Huang et al. (2025), Eq. 2 and Eq. 5.
    """
    return jnp.sum(jnp.where(mask_BxL, token_logp_BxL, 0.0), axis=-1)


def length_normalized_log_likelihood(token_logp_BxL: jax.Array, mask_BxL: jax.Array) -> jax.Array:
    """Length-normalized log-likelihood ``log pi(y|x) / |y|`` (App. A.2).

    Args:
      token_logp_BxL: [B, L] per-token base log-probabilities.
      mask_BxL: [B, L] response-token mask.

    Returns:
      [B] rewards; 0 for empty responses.

    References:
      Huang et al. (2025), App. A.2.
    """
    length = jnp.sum(mask_BxL, axis=-1)
    total = sequence_log_likelihood(token_logp_BxL, mask_BxL)
    return total / jnp.maximum(length, 1).astype(total.dtype)


def answer_probability(logp_base: jax.Array, answer_of_Y: jax.Array, num_answers: int):
    """Majority / self-consistency reward: the base mass of the response's final answer (App. A.2).

    .. math::  r(y|x) = \\sum_{y' : {\\rm ans}(y') = {\\rm ans}(y)} \\pi_{\\rm base}(y'|x).

    Args:
      logp_base: [..., Y] base log-probabilities.
      answer_of_Y: [Y] int answer id of each response, in ``[0, num_answers)``.
      num_answers: static number of distinct answers.

    Returns:
      [..., Y] log of the answer mass of each response.
    """
    onehot_YxA = jax.nn.one_hot(answer_of_Y, num_answers, dtype=logp_base.dtype)
    log_mass_A = jax.nn.logsumexp(
        logp_base[..., :, None]
        + jnp.broadcast_to(jnp.log(onehot_YxA), (*logp_base.shape, num_answers)),
        axis=-2,
    )  # [..., A]
    return jnp.take(log_mass_A, answer_of_Y, axis=-1)


#: Registry of self-rewards on finite response spaces: name -> ``f(logp_base [..., Y]) -> [..., Y]``.
SELF_REWARDS: dict[str, Callable[[jax.Array], jax.Array]] = {"log_likelihood": log_likelihood}

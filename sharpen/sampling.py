"""Fast draws from finite distributions by inverse-CDF sampling.

``jax.random.categorical`` with a large ``shape`` materializes one Gumbel variable per category
per draw (10^6 draws from a 1000-way distribution: 21 s and 16 GB). Inverse-CDF sampling draws one
uniform per draw and finds it in the cumulative distribution with a binary search:
``O(Y + num_draws * log Y)`` work and ``O(Y + num_draws)`` memory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sharpen import _checks


def _cdf(logp_Y: jax.Array) -> jax.Array:
    """Unnormalized CDF of ``softmax(logp)``, scaled so that its largest increment is 1."""
    return jnp.cumsum(jnp.exp(logp_Y - jnp.max(logp_Y)))


def _inverse_cdf(cdf_Y: jax.Array, u_S: jax.Array) -> jax.Array:
    """Indices ``i`` with ``cdf[i-1] <= u * cdf[-1] < cdf[i]`` (zero-mass entries are never hit)."""
    idx = jnp.searchsorted(cdf_Y, u_S * cdf_Y[-1], side="right")
    return jnp.minimum(idx, cdf_Y.shape[0] - 1).astype(jnp.int32)


def sample_from_logprobs(logp_Y: jax.Array, shape: tuple[int, ...], *, key: jax.Array):
    """Draw ``shape`` i.i.d. indices from the distribution ``softmax(logp_Y)``.

    .. math::  y = \\min\\{i : F(i) > u\\},\\quad u \\sim U[0, 1),\\quad F(i)=\\sum_{j\\le i} p_j.

    Unnormalized ``logp`` is accepted (it is normalized implicitly); ``-inf`` entries have zero
    mass and are never returned. Jit- and vmap-friendly; ``shape`` must be static.

    Args:
      logp_Y: [Y] log-probabilities (up to an additive constant).
      shape: static output shape.
      key: PRNG key.

    Returns:
      int32 array of ``shape`` with values in ``[0, Y)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y = sample_from_logprobs(jnp.log(jnp.array([0.0, 1.0])), (3,), key=jax.random.key(0))
      >>> y.tolist()
      [1, 1, 1]
    """
    u = jax.random.uniform(key, shape, dtype=logp_Y.dtype)
    return _inverse_cdf(_cdf(logp_Y), u)


def sample_responses(
    logp_XxY: jax.Array, prompts_B: jax.Array, num_samples: int, *, key: jax.Array
) -> jax.Array:
    """Draw ``num_samples`` responses for each prompt index in ``prompts_B``.

    Args:
      logp_XxY: [X, Y] conditional log-probabilities ``log pi(y | x)``.
      prompts_B: [B] int prompt indices.
      num_samples: static number N of responses per prompt.
      key: PRNG key.

    Returns:
      [B, N] int32 response indices, row ``b`` drawn from ``pi(. | prompts_B[b])``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> logp = jnp.log(jnp.array([[1.0, 0.0], [0.0, 1.0]]))
      >>> sample_responses(logp, jnp.array([1, 0]), 2, key=jax.random.key(0)).tolist()
      [[1, 1], [0, 0]]
    """
    _checks.check_static_int(num_samples, "num_samples")
    cdf_XxY = jax.vmap(_cdf)(logp_XxY)
    u_BxN = jax.random.uniform(key, (prompts_B.shape[0], num_samples), dtype=logp_XxY.dtype)
    return jax.vmap(_inverse_cdf)(cdf_XxY[prompts_B], u_BxN)


def sample_prompts(mu_X: jax.Array, n: int, *, key: jax.Array) -> jax.Array:
    """Draw ``n`` prompt indices ``x ~ mu`` (inverse CDF); returns [n] int32."""
    _checks.check_static_int(n, "n")
    return sample_from_logprobs(jnp.log(jnp.asarray(mu_X)), (n,), key=key)

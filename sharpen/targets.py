"""Sharpening targets: argmax sets, approximate maximizers, and the exact sharpening error.

The target of sharpening is the set of maximizers of the self-reward (ties allowed),

.. math::  \\mathbf y^\\star_\\gamma(x) = \\{y : \\pi_{\\rm base}(y|x) \\ge (1-\\gamma)
           \\max_{y'} \\pi_{\\rm base}(y'|x)\\},

with ``gamma = 0`` the exact argmax set (Def. 3.1) and ``gamma > 0`` the approximate maximizers of
Def. F.1. Everything is computed in log space from ``logp [..., Y]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sharpen import _checks


def argmax_mask(logp: jax.Array, *, gamma: float | jax.Array = 0.0) -> jax.Array:
    """Boolean mask of the (1-gamma)-approximate maximizers over the last axis (Def. F.1).

    .. math::  m(y) = \\mathbb 1\\{\\log \\pi(y) \\ge \\log(1-\\gamma) + \\max_{y'} \\log \\pi(y')\\}.

    Ties are kept: with ``gamma = 0`` every response attaining the maximum is in the set. Rows
    that are all ``-inf`` are not valid distributions and are not handled.

    Args:
      logp: [..., Y] log-probabilities (or any self-reward; only the order and ratios matter).
      gamma: slack in [0, 1); scalar or broadcastable to ``logp[..., 0]``.

    Returns:
      [..., Y] bool mask.

    References:
      Huang et al. (2025), Def. 3.1 (gamma = 0) and Def. F.1.

    Example:
      >>> import jax.numpy as jnp
      >>> argmax_mask(jnp.log(jnp.array([0.4, 0.4, 0.2]))).tolist()
      [True, True, False]
      >>> argmax_mask(jnp.log(jnp.array([0.5, 0.3, 0.2])), gamma=0.5).tolist()
      [True, True, False]
    """
    _checks.check_gamma(gamma)
    gamma = jnp.asarray(gamma, dtype=logp.dtype)
    best = jnp.max(logp, axis=-1, keepdims=True)
    return logp >= best + jnp.broadcast_to(jnp.log1p(-gamma), best.shape[:-1])[..., None]


def set_mass(logp: jax.Array, mask: jax.Array) -> jax.Array:
    """Probability mass ``pi(S)`` of the set ``S`` given by ``mask`` over the last axis.

    Args:
      logp: [..., Y] log-probabilities.
      mask: [..., Y] bool.

    Returns:
      [...] mass in [0, 1].
    """
    return jnp.exp(jax.nn.logsumexp(jnp.where(mask, logp, -jnp.inf), axis=-1))


def target_mass(
    logp_hat: jax.Array, logp_base: jax.Array, *, gamma: float | jax.Array = 0.0
) -> jax.Array:
    """Mass ``pi_hat(y*_gamma(x) | x)`` that a model puts on the base model's target set.

    Args:
      logp_hat: [..., Y] log-probabilities of the learned model.
      logp_base: [..., Y] log-probabilities of the base model (defines the target).
      gamma: approximation slack of Def. F.1.

    Returns:
      [...] mass.
    """
    return set_mass(logp_hat, argmax_mask(logp_base, gamma=gamma))


def sharpening_error(
    logp_hat: jax.Array,
    logp_base: jax.Array,
    mu: jax.Array,
    *,
    delta: float | jax.Array,
    gamma: float | jax.Array = 0.0,
) -> jax.Array:
    """Exact sharpening error of a model over a finite prompt distribution.

    .. math::  \\hat\\epsilon = \\mathbb P_{x\\sim\\mu}\\big[\\hat\\pi(\\mathbf y^\\star_\\gamma(x)|x)
               \\le 1-\\delta\\big].

    A model is :math:`(\\epsilon,\\delta,\\gamma)`-sharpened iff this is at most ``epsilon``.

    Args:
      logp_hat: [X, Y] learned model.
      logp_base: [X, Y] base model.
      mu: [X] prompt distribution.
      delta: mass slack in (0, 1).
      gamma: approximation slack in [0, 1).

    Returns:
      scalar error in [0, 1].

    References:
      Huang et al. (2025), Def. 3.1, Def. F.1; THEORY §1.4 "Sharpening error".

    Example:
      >>> import jax.numpy as jnp
      >>> base = jnp.log(jnp.array([[0.6, 0.4], [0.3, 0.7]]))
      >>> hat = jnp.log(jnp.array([[0.95, 0.05], [0.5, 0.5]]))
      >>> float(sharpening_error(hat, base, jnp.array([0.25, 0.75]), delta=0.1))
      0.75
    """
    _checks.check_open_unit(delta, "delta")
    _checks.check_prompt_axis(logp_base, mu, "logp_base", "mu")
    _checks.check_same_shape(logp_hat, logp_base, "logp_hat", "logp_base")
    mass_X = target_mass(logp_hat, logp_base, gamma=gamma)
    failed_X = (mass_X <= 1.0 - jnp.asarray(delta, mass_X.dtype)).astype(mass_X.dtype)
    return jnp.sum(jnp.asarray(mu, mass_X.dtype) * failed_X)

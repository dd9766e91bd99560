"""Coverage and concentrability coefficients on finite prompt and response spaces.

| function | symbol | definition |
|---|---|---|
| :func:`c_cov` | :math:`C_{\\rm cov,\\gamma}` | :math:`\\mathbb E_\\mu[1/\\pi_{\\rm base}(\\mathbf y^\\star_\\gamma(x)|x)]` (Eq. 6) |
| :func:`c_cov_p` | :math:`C_{{\\rm cov},\\gamma,p}(\\pi)` | :math:`(\\mathbb E_\\mu[\\pi(\\mathbf y^\\pi_\\gamma(x)|x)^{-p}])^{1/p}` |
| :func:`c_cov_bar` | :math:`\\bar C_{\\rm cov}` | :math:`\\mathbb E_\\mu[1/\\max_y\\pi_{\\rm base}(y|x)]` (Thm D.1) |
| :func:`concentrability` | :math:`\\mathcal C_\\pi` | :math:`\\mathbb E_\\pi[\\pi/\\pi_{\\rm base}]` (Eq. 9) |
| :func:`concentrability_beta` | :math:`\\mathcal C_{\\pi/\\pi';\\beta}` | :math:`\\mathbb E_\\pi[(\\pi/\\pi')^\\beta]` (Eq. 9) |

All are computed in log space (``logsumexp``), so they stay finite for masses down to 1e-300 in
float64. Prompts with ``mu(x) = 0`` contribute nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sharpen import _checks
from sharpen.targets import argmax_mask


def _log_set_mass(logp_XxY: jax.Array, mask_XxY: jax.Array) -> jax.Array:
    return jax.nn.logsumexp(jnp.where(mask_XxY, logp_XxY, -jnp.inf), axis=-1)


def _expect(mu_X: jax.Array, log_values_X: jax.Array) -> jax.Array:
    """``sum_x mu(x) exp(log_values(x))`` in log space, ignoring prompts with ``mu = 0``."""
    mu_X = jnp.asarray(mu_X, log_values_X.dtype)  # mu may be float64 with float32 tables
    log_mu = jnp.where(mu_X > 0, jnp.log(jnp.where(mu_X > 0, mu_X, 1.0)), -jnp.inf)
    return jnp.exp(jax.nn.logsumexp(jnp.where(mu_X > 0, log_mu + log_values_X, -jnp.inf)))


def c_cov(logp_base: jax.Array, mu: jax.Array, *, gamma: float | jax.Array = 0.0) -> jax.Array:
    """Coverage coefficient of the base model's (approximate) argmax set.

    .. math::  C_{{\\rm cov},\\gamma} = \\mathbb E_{x\\sim\\mu}\\Big[
               \\frac{1}{\\pi_{\\rm base}(\\mathbf y^\\star_\\gamma(x)\\mid x)}\\Big].

    The denominator is the *set* mass (ties count together). ``gamma = 0`` gives ``C_cov``.

    Args:
      logp_base: [X, Y] base log-probabilities.
      mu: [X] prompt distribution.
      gamma: approximation slack in [0, 1).

    Returns:
      scalar >= 1.

    References:
      Huang et al. (2025), Eq. 6 and App. F.1.

    Example:
      >>> import jax.numpy as jnp
      >>> logp = jnp.log(jnp.array([[0.5, 0.5], [0.8, 0.2]]))
      >>> round(float(c_cov(logp, jnp.array([0.5, 0.5]))), 4)  # 0.5 * 1 + 0.5 / 0.8
      1.125
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base", min_rank=2, max_rank=2)
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp_base, mu, "logp_base", "mu")
    mask = argmax_mask(logp_base, gamma=gamma)
    return _expect(mu, -_log_set_mass(logp_base, mask))


def c_cov_p(
    logp: jax.Array, mu: jax.Array, *, gamma: float | jax.Array = 0.0, p: int = 1
) -> jax.Array:
    """Order-``p`` coverage of a model's own (approximate) argmax set (Thm 3.1′).

    .. math::  C_{{\\rm cov},\\gamma,p}(\\pi) = \\Big(\\mathbb E_{x\\sim\\mu}\\big[
               \\pi(\\mathbf y^\\pi_\\gamma(x)\\mid x)^{-p}\\big]\\Big)^{1/p}.

    Args:
      logp: [X, Y] log-probabilities of ``pi`` (``pi_base`` for ``C_cov,gamma,p``).
      mu: [X] prompt distribution.
      gamma: approximation slack in [0, 1).
      p: integer order >= 1.

    Returns:
      scalar.

    References:
      Huang et al. (2025), Thm 3.1′ (App. H).
    """
    p = _checks.check_static_int(p, "p")
    logp = _checks.check_logprobs(logp, "logp", min_rank=2, max_rank=2)
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp, mu, "logp", "mu")
    log_mass = _log_set_mass(logp, argmax_mask(logp, gamma=gamma))
    return _expect(mu, -p * log_mass) ** (1.0 / p)


def c_cov_bar(logp_base: jax.Array, mu: jax.Array) -> jax.Array:
    """Coverage of the single most likely response, used by adaptive sampling (Thm D.1).

    .. math::  \\bar C_{\\rm cov} = \\mathbb E_{x\\sim\\mu}\\big[1/\\max_y \\pi_{\\rm base}(y|x)\\big]
               \\ge C_{\\rm cov},

    with equality iff every argmax is unique.

    Args:
      logp_base: [X, Y] base log-probabilities.
      mu: [X] prompt distribution.

    Returns:
      scalar.

    References:
      Huang et al. (2025), Thm D.1 (App. D).
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base", min_rank=2, max_rank=2)
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp_base, mu, "logp_base", "mu")
    return _expect(mu, -jnp.max(logp_base, axis=-1))


def concentrability(logp_pi: jax.Array, logp_base: jax.Array, mu: jax.Array) -> jax.Array:
    """L1/chi^2-type concentrability of ``pi`` with respect to ``pi_base`` (Eq. 9).

    .. math::  \\mathcal C_\\pi = \\mathbb E_{x\\sim\\mu,\\,y\\sim\\pi(\\cdot|x)}
               \\Big[\\frac{\\pi(y|x)}{\\pi_{\\rm base}(y|x)}\\Big]
               = \\mathbb E_\\mu\\sum_y \\frac{\\pi(y|x)^2}{\\pi_{\\rm base}(y|x)}.

    Infinite when ``pi`` puts mass where ``pi_base`` has none.

    Args:
      logp_pi: [X, Y] log-probabilities of ``pi``.
      logp_base: [X, Y] log-probabilities of ``pi_base``.
      mu: [X] prompt distribution.

    Returns:
      scalar >= 1.

    References:
      Huang et al. (2025), Eq. 9, Assumption 4.4, Lemma 4.1.
    """
    return concentrability_beta(logp_pi, logp_base, mu, beta=1.0)


def concentrability_beta(
    logp_pi: jax.Array, logp_pi_prime: jax.Array, mu: jax.Array, *, beta: float | jax.Array
) -> jax.Array:
    """Order-``beta`` density-ratio moment (Eq. 9).

    .. math::  \\mathcal C_{\\pi/\\pi';\\beta} = \\mathbb E_{x\\sim\\mu,\\,y\\sim\\pi(\\cdot|x)}
               \\Big[\\Big(\\frac{\\pi(y|x)}{\\pi'(y|x)}\\Big)^\\beta\\Big].

    The paper uses ``C_{pi_base/pi; beta}`` (``logp_pi = logp_base``) to control the range of the
    log-ratios in the Eq. 8 loss (Lemma J.1), and ``C_{pi/pi_base; 1} = C_pi``.

    Args:
      logp_pi: [X, Y] log-probabilities of ``pi`` (the sampling distribution).
      logp_pi_prime: [X, Y] log-probabilities of ``pi'``.
      mu: [X] prompt distribution.
      beta: exponent > 0.

    Returns:
      scalar.

    References:
      Huang et al. (2025), Eq. 9, Lemma 4.1, Assumption 4.4.
    """
    logp_pi = _checks.check_logprobs(logp_pi, "logp_pi", min_rank=2, max_rank=2)
    logp_pi_prime = _checks.check_logprobs(logp_pi_prime, "logp_pi_prime", min_rank=2, max_rank=2)
    _checks.check_same_shape(logp_pi, logp_pi_prime, "logp_pi", "logp_pi_prime")
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp_pi, mu, "logp_pi", "mu")
    _checks.check_positive(beta, "beta")
    support = jnp.isfinite(logp_pi)
    ratio = jnp.where(support, (1.0 + beta) * logp_pi - beta * logp_pi_prime, -jnp.inf)
    return _expect(mu, jax.nn.logsumexp(ratio, axis=-1))

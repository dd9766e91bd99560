"""SFT-Sharpening: maximum likelihood on best-of-N responses (§2.1, Thm 4.1, Thm D.1).

.. code-block:: text

    for i = 1..n:  x_i ~ mu;  y_i^BoN = best of N draws from pi_base(.|x_i) by self-reward
    pi_hat = argmax_{pi in Pi} sum_i log pi(y_i^BoN | x_i)

Data enter the MLE only through the count table ``counts[x, y]`` (a sufficient statistic for
every class here), so data collection and estimation are separate functions:

* :func:`collect_bon_data` / :func:`collect_adaptive_bon_data` run the algorithm literally
  (draw, score, select) with the samplers of :mod:`sharpen.best_of_n`;
* :func:`bon_counts_from_law` draws the same count table directly from the closed-form law
  (exact in distribution, ``O(X Y)`` work however large ``N`` is) for large simulations;
* :func:`tabular_mle`, :func:`product_class_mle` and :func:`finite_class_mle` are the estimators.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sharpen import _checks
from sharpen.best_of_n import adaptive_best_of_n, best_of_n_batch, bon_law
from sharpen.sampling import sample_prompts


def counts_from_pairs(
    prompts_n: jax.Array, responses_n: jax.Array, num_prompts: int, num_responses: int
) -> jax.Array:
    """Count table ``counts[x, y] = #{i : (x_i, y_i) = (x, y)}`` as float32 [X, Y]."""
    # int32 on both sides: index arrays from jnp.arange are int64 under x64 (strict promotion).
    flat = jnp.asarray(prompts_n, jnp.int32) * num_responses + jnp.asarray(responses_n, jnp.int32)
    counts = jnp.zeros(num_prompts * num_responses, jnp.float32).at[flat].add(1.0)
    return counts.reshape(num_prompts, num_responses)


def collect_bon_data(
    logp_base: jax.Array,
    mu: jax.Array,
    *,
    n: int,
    num_samples: int,
    key: jax.Array,
    reward: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Run the data-collection loop of SFT-Sharpening with the best-of-N sampler.

    Args:
      logp_base: [X, Y] base log-probabilities.
      mu: [X] prompt distribution.
      n: static number of prompts.
      num_samples: static N, responses drawn per prompt (total queries ``m = n N``).
      key: PRNG key.
      reward: optional [X, Y] self-reward (default: ``logp_base``, Eq. 2).

    Returns:
      ``(prompts [n], responses [n])``: the prompts and their best-of-N responses.

    References:
      Huang et al. (2025), §2.1 (SFT-Sharpening), THEORY §3.3.
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base", min_rank=2, max_rank=2)
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp_base, mu, "logp_base", "mu")
    prompt_key, bon_key = jax.random.split(key)
    prompts = sample_prompts(mu, n, key=prompt_key)
    return prompts, best_of_n_batch(logp_base, prompts, num_samples, key=bon_key, reward_XxY=reward)


def collect_adaptive_bon_data(
    logp_base: jax.Array,
    mu: jax.Array,
    *,
    n: int,
    mu_stop: float,
    key: jax.Array,
    max_draws: int = 10**7,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Data collection of adaptive SFT-Sharpening (App. D): AdaBoN with the rule of Eq. 10.

    Returns:
      ``(prompts [n], responses [n], num_draws [n])``; the total cost is ``m = sum(num_draws)``.
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base", min_rank=2, max_rank=2)
    mu = _checks.check_probs(mu, "mu")
    _checks.check_prompt_axis(logp_base, mu, "logp_base", "mu")
    prompt_key, bon_key = jax.random.split(key)
    prompts = sample_prompts(mu, n, key=prompt_key)
    keys = jax.vmap(lambda i: jax.random.fold_in(bon_key, i))(jnp.arange(n))
    out = jax.vmap(
        lambda x, k: adaptive_best_of_n(logp_base[x], mu_stop=mu_stop, key=k, max_draws=max_draws)
    )(prompts, keys)
    return prompts, out.response, out.num_draws


def bon_counts_from_law(
    logp_base: jax.Array,
    mu: jax.Array,
    *,
    n: int | jax.Array,
    num_samples: float | jax.Array,
    key: jax.Array,
) -> jax.Array:
    """Draw the SFT-Sharpening count table straight from the closed-form BoN law.

    ``n_x ~ Multinomial(n, mu)`` and ``counts[x] ~ Multinomial(n_x, pi^BoN_N(.|x))``: the same
    distribution as :func:`collect_bon_data` followed by :func:`counts_from_pairs`, at a cost
    that does not grow with N (or with ``n``, which may be a traced array).

    Args:
      logp_base: [X, Y] base log-probabilities.
      mu: [X] prompt distribution.
      n: number of prompts (may be traced).
      num_samples: N (may be traced, any value >= 1).
      key: PRNG key.

    Returns:
      [X, Y] float32 counts summing to ``n``.
    """
    prompt_key, resp_key = jax.random.split(key)
    mu = jnp.asarray(mu)
    n_X = jax.random.multinomial(prompt_key, jnp.asarray(n, mu.dtype), mu)
    law_XxY = jnp.exp(bon_law(logp_base, num_samples))
    keys = jax.random.split(resp_key, logp_base.shape[0])
    return jax.vmap(jax.random.multinomial)(keys, n_X, law_XxY).astype(jnp.float32)


def log_likelihood(counts: jax.Array, logp: jax.Array) -> jax.Array:
    """``sum_y counts[..., y] * logp[..., y]`` with ``0 * log 0 = 0`` (and ``-inf`` if c > 0)."""
    counts = jnp.asarray(counts, logp.dtype)  # count tables are float32, logp may be float64
    return jnp.sum(jnp.where(counts > 0, counts * logp, 0.0), axis=-1)


def tabular_mle(counts_XxY: jax.Array, *, fallback_logp: jax.Array | None = None) -> jax.Array:
    """MLE over all conditional distributions: per-prompt empirical frequencies.

    .. math::  \\hat\\pi(y|x) = \\frac{c(x,y)}{\\sum_{y'} c(x,y')}.

    Prompts never seen have no data; they get ``fallback_logp`` (default: uniform), which any
    MLE may choose since every distribution attains the same (empty) likelihood there.

    Args:
      counts_XxY: [X, Y] non-negative counts (e.g. BoN picks).
      fallback_logp: optional [X, Y] or [Y] log-probabilities for unseen prompts.

    Returns:
      [X, Y] log-probabilities.

    References:
      Huang et al. (2025), §2.1 (SFT-Sharpening with a tabular class).

    Example:
      >>> import jax.numpy as jnp
      >>> jnp.exp(tabular_mle(jnp.array([[3.0, 1.0], [0.0, 0.0]]))).tolist()
      [[0.75, 0.25], [0.5, 0.5]]
    """
    counts_XxY = jnp.asarray(counts_XxY, jnp.float32)
    total = jnp.sum(counts_XxY, axis=-1, keepdims=True)
    freq = jnp.log(counts_XxY) - jnp.log(jnp.maximum(total, 1.0))
    if fallback_logp is None:
        fallback_logp = jnp.full_like(freq, -jnp.log(counts_XxY.shape[-1]))
    fallback_logp = jnp.asarray(fallback_logp, freq.dtype)  # float64 fallbacks under x64
    return jnp.where(total > 0, freq, jnp.broadcast_to(fallback_logp, freq.shape))


def _argmax_random_ties(scores: jax.Array, *, key: jax.Array) -> jax.Array:
    u = jax.random.uniform(key, scores.shape)
    best = scores == jnp.max(scores, axis=-1, keepdims=True)
    return jnp.argmax(jnp.where(best, u, -1.0), axis=-1)


def product_class_mle(
    counts_XxY: jax.Array, candidates_XxJxY: jax.Array, *, key: jax.Array
) -> jax.Array:
    """MLE over a finite class that factorizes over prompts, by enumeration.

    The class is ``Pi = prod_x {candidates[x, j] : j in [J]}`` (``|Pi| = J^X``), so the MLE is
    chosen prompt by prompt: ``j_hat(x) = argmax_j sum_y c(x,y) log candidates[x, j, y]``,
    ties broken uniformly at random (an unseen prompt is a J-way tie). The lower-bound class
    of Thm 3.1′, and its best-of-N image, have this form (index vectors ``I in [M]^d``).

    Args:
      counts_XxY: [X, Y] counts.
      candidates_XxJxY: [X, J, Y] candidate log-probabilities per prompt.
      key: PRNG key for tie-breaking.

    Returns:
      [X] int32 selected candidate per prompt.

    References:
      Huang et al. (2025), Thm 4.1 (MLE over Pi), App. H (the index-vector class).
    """
    loglik_XxJ = log_likelihood(counts_XxY[:, None, :], candidates_XxJxY)
    return _argmax_random_ties(loglik_XxJ, key=key).astype(jnp.int32)


def finite_class_mle(counts_XxY: jax.Array, class_KxXxY: jax.Array, *, key: jax.Array):
    """MLE over a finite class of whole models ``class[k] : [X, Y]``, by enumeration.

    .. math::  \\hat k = \\arg\\max_{k} \\sum_{x,y} c(x,y) \\log \\pi_k(y|x)
               \\quad\\text{(ties uniformly at random)}.

    Args:
      counts_XxY: [X, Y] counts.
      class_KxXxY: [K, X, Y] log-probabilities of the K members.
      key: PRNG key for tie-breaking.

    Returns:
      int32 scalar index of the selected member.

    References:
      Huang et al. (2025), Lemma F.1 (MLE for conditional density estimation).
    """
    loglik_K = jnp.sum(log_likelihood(counts_XxY[None], class_KxXxY), axis=-1)
    return _argmax_random_ties(loglik_K, key=key).astype(jnp.int32)

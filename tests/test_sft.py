"""Tests for :mod:`sharpen.sft` (SFT-Sharpening, THEORY §3.3-3.4; Lemma F.1, §4.7).

Monte-Carlo bounds (fixed keys and sample sizes):

* Count tables: with ``n`` prompts, cell ``(x, y)`` of ``counts / n`` is a multinomial frequency
  with mean ``q = mu(x) pi^BoN_N(y|x)``; we require
  ``|counts / n - q| <= 5 sqrt(q (1 - q) / n) + 1/n`` in every cell (:func:`freq_band`,
  5 sigma: two-sided normal tail 5.7e-7 per cell).
* Tie-breaking: the frequency of each of ``k`` tied choices over ``R`` keys is within the same
  band of ``1/k``.
* Lemma F.1 is checked as stated: the ``(1 - rho)`` quantile over seeds of ``E_x D_H^2`` is at
  most ``2 log(|Pi| / rho) / n``.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

import sharpen
from tests import tolerances as tol
from theory import instances


def random_logp(key, num_prompts: int, num_responses: int, concentration: float = 1.0):
    """Rows of log Dirichlet(concentration) draws, [num_prompts <= 64, num_responses <= 128].

    Log-normalized log-gammas sliced from one fixed [64, 128] block: every instance in the file
    then shares one compiled sampler (each new ``jax.random.dirichlet`` shape costs seconds).
    """
    log_g = jax.random.loggamma(key, jnp.full((64, 128), concentration))
    return jax.nn.log_softmax(log_g[:num_prompts, :num_responses], axis=-1)


def freq_band(q, num: int) -> np.ndarray:
    q = np.clip(np.asarray(q, np.float64), 0.0, 1.0)  # laws may round past 1
    return 5.0 * np.sqrt(q * (1.0 - q) / num) + 1.0 / num


def probs_of(logp) -> np.ndarray:
    return np.exp(np.asarray(logp, np.float64))


def test_tabular_mle_is_the_empirical_frequency():
    counts = jnp.array([[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 2.0, 4.0]])
    mle = sharpen.tabular_mle(counts)
    assert mle.dtype == jnp.float32  # tabular_mle works in float32 whatever JAX_ENABLE_X64 says
    expected = [[0.75, 0.25, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.25, 0.25, 0.5]]
    tol.assert_close(probs_of(mle), expected, dtype=mle.dtype, abs_floor=True)
    assert np.isneginf(np.asarray(mle)[0, 2])  # unseen responses get exactly zero mass
    fallback = jnp.log(jnp.array([0.7, 0.1, 0.1, 0.1]))
    tol.assert_close(
        probs_of(sharpen.tabular_mle(counts, fallback_logp=fallback))[1],
        [0.7, 0.1, 0.1, 0.1],
        dtype=mle.dtype,
    )
    # Integer counts work too, and the MLE beats any other table on the data.
    int_mle = sharpen.tabular_mle(jnp.array([[3, 1, 0, 0], [0, 0, 0, 0], [0, 2, 2, 4]]))
    tol.assert_close(probs_of(int_mle), expected, dtype=mle.dtype, abs_floor=True)
    others = random_logp(jax.random.key(0), 8 * 3, 4).reshape(8, 3, 4)
    best = float(jnp.sum(sharpen.sft.log_likelihood(counts, mle)))
    assert np.all(
        np.asarray(jnp.sum(sharpen.sft.log_likelihood(counts[None], others), axis=1)) <= best
    )


def _full_product(candidates_XxJxY):
    """The whole class of the product MLE as [J^X, X, Y], member k <-> digits (j_0, ..., j_X-1)."""
    num_x, num_j, _ = candidates_XxJxY.shape
    digits = np.array(list(itertools.product(range(num_j), repeat=num_x)))  # [J^X, X]
    members = candidates_XxJxY[jnp.arange(num_x)[None, :], jnp.asarray(digits)]
    return members, digits


def test_product_class_mle_equals_brute_force_enumeration():
    num_x, num_j, num_y = 3, 3, 5
    cand = random_logp(jax.random.key(1), num_x * num_j, num_y).reshape(num_x, num_j, num_y)
    members, digits = _full_product(cand)
    assert members.shape == (27, num_x, num_y)
    for trial in range(6):
        counts = jax.random.poisson(jax.random.key(10 + trial), 3.0, (num_x, num_y)).astype(
            cand.dtype
        )
        j_hat = np.asarray(sharpen.product_class_mle(counts, cand, key=jax.random.key(trial)))
        k_hat = int(sharpen.finite_class_mle(counts, members, key=jax.random.key(trial)))
        np.testing.assert_array_equal(j_hat, digits[k_hat])


def test_mle_tie_breaking_is_uniform_and_agrees_with_brute_force():
    # Prompt 0 is unseen (a 3-way tie); candidates 0 and 2 of prompt 1 are identical and fit its
    # data best (a 2-way tie); prompt 2 has a unique best candidate (1). So the MLE set is the
    # 6 members (j_0, j_1, 1) with j_0 in {0, 1, 2}, j_1 in {0, 2}.
    cand = random_logp(jax.random.key(2), 9, 4).reshape(3, 3, 4)
    cand = cand.at[1, 2].set(cand[1, 0])
    counts = jnp.stack(
        [jnp.zeros(4), 50.0 * jnp.exp(cand[1, 0]), 50.0 * jnp.exp(cand[2, 1])]
    ).astype(cand.dtype)
    members, digits = _full_product(cand)
    num_keys = 6000
    keys = jax.random.split(jax.random.key(3), num_keys)
    product_mle = jax.vmap(lambda c, m, k: sharpen.product_class_mle(c, m, key=k), (None, None, 0))
    finite_mle = jax.vmap(lambda c, m, k: sharpen.finite_class_mle(c, m, key=k), (None, None, 0))
    product = np.asarray(jax.jit(product_mle)(counts, cand, keys))
    brute = digits[np.asarray(jax.jit(finite_mle)(counts, members, keys))]
    for picks in [product, brute]:
        assert np.all(picks[:, 2] == 1)
        assert set(np.unique(picks[:, 1]).tolist()) == {0, 2}
        joint = np.array(
            [np.mean((picks[:, 0] == a) & (picks[:, 1] == b)) for a in range(3) for b in (0, 2)]
        )
        assert np.all(np.abs(joint - 1 / 6) <= freq_band(1 / 6, num_keys)), joint


def test_collect_bon_data_and_law_counts_agree_in_distribution():
    logp = jnp.stack(
        [
            jnp.log(jnp.array([0.3, 0.3, 0.2, 0.1, 0.1, 0.0])),
            random_logp(jax.random.key(4), 1, 6)[0],
            jnp.log(jnp.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.75])),
        ]
    )
    mu = jnp.array([0.5, 0.3, 0.2])
    n, num = 100_000, 3
    q = np.asarray(mu, np.float64)[:, None] * probs_of(sharpen.bon_law(logp, num))
    prompts, responses = sharpen.collect_bon_data(
        logp, mu, n=n, num_samples=num, key=jax.random.key(5)
    )
    literal = sharpen.counts_from_pairs(prompts, responses, 3, 6)
    from_law = sharpen.bon_counts_from_law(logp, mu, n=n, num_samples=num, key=jax.random.key(6))
    for counts in [literal, from_law]:
        assert counts.shape == (3, 6) and counts.dtype == jnp.float32
        assert float(jnp.sum(counts)) == n
        freq = np.asarray(counts, np.float64) / n
        assert np.all(np.abs(freq - q) <= freq_band(q, n)), (freq, q)


def test_collect_adaptive_bon_data_matches_adaptive_law():
    logp = jnp.log(jnp.array([[0.3, 0.3, 0.2, 0.2], [0.1, 0.6, 0.2, 0.1]]))
    mu = jnp.array([0.4, 0.6])
    n, mu_stop = 40_000, 2.0
    prompts, responses, draws = sharpen.collect_adaptive_bon_data(
        logp, mu, n=n, mu_stop=mu_stop, key=jax.random.key(7)
    )
    law, expected_draws = sharpen.adaptive_bon_law(logp, mu_stop=mu_stop)
    q = np.asarray(mu, np.float64)[:, None] * probs_of(law)
    freq = np.asarray(sharpen.counts_from_pairs(prompts, responses, 2, 4), np.float64) / n
    assert np.all(np.abs(freq - q) <= freq_band(q, n))
    draws = np.asarray(draws, np.float64)
    # E[m] / n = sum_x mu(x) E[N_mu(x)]; 5 sigma_hat / sqrt(n) band on the mean.
    expected = float(np.sum(np.asarray(mu) * np.asarray(expected_draws)))
    assert abs(draws.mean() - expected) <= 5 * draws.std(ddof=1) / math.sqrt(n)


def test_sft_sharpening_end_to_end_reduces_sharpening_error():
    # Tabular class (realizable), 40 prompts, 10 responses, argmax masses 0.18-0.48, delta = 0.1.
    # At N = 1 the MLE reproduces pi_base (mass < 0.9 on y* everywhere): error 1. The BoN law
    # puts 1 - (1 - p*)^N on y*, which passes 0.9 for every prompt by N = 16 (1 - 0.82^16 =
    # 0.958); with 200 picks per prompt the MLE's mass is within ~0.02 (binomial std) of it,
    # so the error falls 1 -> ~0.3 (N = 8) -> 0 (N = 64).
    logp = random_logp(jax.random.key(8), 40, 10)
    mu = jnp.full(40, 1.0 / 40)
    errors = []
    for num in [1, 8, 64]:
        key = jax.random.fold_in(jax.random.key(9), num)
        prompts, responses = sharpen.collect_bon_data(logp, mu, n=8000, num_samples=num, key=key)
        pi_hat = sharpen.tabular_mle(sharpen.counts_from_pairs(prompts, responses, 40, 10))
        errors.append(float(sharpen.sharpening_error(pi_hat, logp, mu, delta=0.1)))
    assert errors[0] >= 1.0 - tol.rtol()
    assert errors[0] > errors[1] > errors[2] == 0.0, errors


def _mle_hellinger(cand_XxJxY, truth_X, sizes: tuple[int, ...], seeds: int, key):
    """[len(sizes), seeds] E_x D_H^2(pi_hat, pi*) of the MLE on the first n of one data stream.

    The data sets of the sizes in ``sizes`` are nested prefixes of one stream of ``max(sizes)``
    prompts (uniform mu) per seed, so every size shares one compiled program.
    """
    num_x, _, num_y = cand_XxJxY.shape
    logp_star = cand_XxJxY[jnp.arange(num_x), truth_X]  # [X, Y]
    mu = jnp.full(num_x, 1.0 / num_x)

    def one(k):
        p_key, y_key, t_key = jax.random.split(k, 3)
        prompts = sharpen.sample_prompts(mu, max(sizes), key=p_key)
        responses = sharpen.sample_responses(logp_star, prompts, 1, key=y_key)[:, 0]
        out = []
        for n in sizes:
            counts = sharpen.counts_from_pairs(prompts[:n], responses[:n], num_x, num_y)
            j_hat = sharpen.product_class_mle(counts, cand_XxJxY, key=t_key)
            p_hat, p_star = jnp.exp(cand_XxJxY[jnp.arange(num_x), j_hat]), jnp.exp(logp_star)
            out.append(jnp.sum(mu * jnp.sum((jnp.sqrt(p_hat) - jnp.sqrt(p_star)) ** 2, axis=-1)))
        return jnp.stack(out)

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, seeds))).T


def test_lemma_f1_mle_hellinger_bound():
    num_x, grid = 4, 9
    cand = instances.tilted_class(
        key=jax.random.key(11), num_prompts=num_x, num_responses=6, grid_size=grid, tilt=1.5
    )
    truth = jnp.array([4, 0, 7, 2])
    rho, seeds, sizes = 0.1, 400, (40, 400)
    log_class_size = num_x * math.log(grid)  # |Pi| = grid^X (product class)
    d_h2 = _mle_hellinger(cand, truth, sizes, seeds, jax.random.key(12))
    for n, d_h2_n in zip(sizes, d_h2, strict=True):
        bound = 2.0 * (log_class_size + math.log(1.0 / rho)) / n  # Lemma F.1: 2 log(|Pi|/rho) / n
        assert np.quantile(d_h2_n, 1.0 - rho) <= bound, (n, np.quantile(d_h2_n, 1.0 - rho), bound)
    assert d_h2[1].mean() < d_h2[0].mean()  # more data, closer fit

"""Tests for :mod:`sharpen.sampling` (inverse-CDF draws from finite distributions).

Monte-Carlo bound used throughout: for ``T`` i.i.d. draws from ``p``, each empirical frequency
``f_y`` has standard deviation ``sqrt(p_y (1 - p_y) / T)``; we require

    max_y |f_y - p_y| <= 5 sqrt(p_y (1 - p_y) / T) + 1/T,

a 5-sigma band per category (two-sided normal tail 5.7e-7, so < 1e-5 over the <= 20 categories
of any one test; the ``1/T`` term covers the lattice of frequencies for tiny ``p_y``). Keys are
fixed, so a pass is reproducible, and the band is what a correct sampler passes with
overwhelming probability.
"""

from __future__ import annotations

import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen


def mc_band(p, num_draws: int) -> np.ndarray:
    """The 5-sigma + 1/T per-category band of the module docstring."""
    p = np.clip(np.asarray(p, np.float64), 0.0, 1.0)
    return 5.0 * np.sqrt(p * (1.0 - p) / num_draws) + 1.0 / num_draws


def frequencies(draws, num_categories: int) -> np.ndarray:
    return np.bincount(np.asarray(draws).ravel(), minlength=num_categories) / np.size(draws)


# Zero mass at the first, a middle and the last position (the edges of the CDF search).
P_WITH_ZEROS = np.array([0.0, 0.3, 0.05, 0.0, 0.2, 1e-3, 0.149, 0.3, 0.0])


@pytest.mark.parametrize("shift", [0.0, 5.0], ids=["normalized", "unnormalized"])
def test_frequencies_match_probabilities(shift):
    num_draws = 200_000
    logp = jnp.log(jnp.asarray(P_WITH_ZEROS)) + shift  # logp need only be normalized up to a shift
    draws = sharpen.sample_from_logprobs(logp, (num_draws,), key=jax.random.key(0))
    freq = frequencies(draws, P_WITH_ZEROS.size)
    assert np.all(np.abs(freq - P_WITH_ZEROS) <= mc_band(P_WITH_ZEROS, num_draws))


def test_zero_mass_never_drawn():
    # Mostly zero mass, with the few atoms surrounded by zeros and one atom of mass ~1e-4.
    p = np.zeros(50)
    p[[3, 17, 48]] = [0.6, 0.3999, 1e-4]
    logp = jnp.log(jnp.asarray(p / p.sum()))
    draws = np.asarray(sharpen.sample_from_logprobs(logp, (100_000,), key=jax.random.key(1)))
    assert set(np.unique(draws)) <= {3, 17, 48}
    point = sharpen.sample_from_logprobs(
        jnp.log(jnp.array([0.0, 1.0, 0.0])), (1000,), key=jax.random.key(2)
    )
    assert np.all(np.asarray(point) == 1)


def test_shapes_and_dtypes():
    logp_Y = jnp.log(jnp.full(7, 1.0 / 7))
    draws = sharpen.sample_from_logprobs(logp_Y, (3, 4), key=jax.random.key(0))
    chex.assert_shape(draws, (3, 4))
    assert draws.dtype == jnp.int32
    assert np.all((np.asarray(draws) >= 0) & (np.asarray(draws) < 7))

    logp_XxY = jnp.log(jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    responses = sharpen.sample_responses(
        logp_XxY, jnp.array([1, 0, 1, 1, 0]), 6, key=jax.random.key(1)
    )
    chex.assert_shape(responses, (5, 6))
    assert responses.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(responses)[[0, 2, 3]], 2)
    assert np.all(np.isin(np.asarray(responses)[[1, 4]], [0, 1]))

    prompts = sharpen.sample_prompts(jnp.array([0.25, 0.75]), 9, key=jax.random.key(2))
    chex.assert_shape(prompts, (9,))
    assert prompts.dtype == jnp.int32


def test_sample_responses_rows_follow_their_prompt():
    p_XxY = np.array([[0.7, 0.2, 0.1, 0.0], [0.05, 0.05, 0.4, 0.5], [0.25, 0.25, 0.25, 0.25]])
    prompts = jnp.array([2, 0, 1])
    num_draws = 50_000
    responses = sharpen.sample_responses(
        jnp.log(jnp.asarray(p_XxY)), prompts, num_draws, key=jax.random.key(3)
    )
    for row, x in enumerate(np.asarray(prompts)):
        freq = frequencies(responses[row], 4)
        assert np.all(np.abs(freq - p_XxY[x]) <= mc_band(p_XxY[x], num_draws)), (row, x)


def test_sample_prompts_frequencies():
    mu = np.array([0.1, 0.0, 0.6, 0.3])
    n = 100_000
    prompts = sharpen.sample_prompts(jnp.asarray(mu), n, key=jax.random.key(4))
    freq = frequencies(prompts, 4)
    assert freq[1] == 0.0
    assert np.all(np.abs(freq - mu) <= mc_band(mu, n))


def test_million_draws_from_1000_way_distribution_is_fast():
    # THEORY/ENVIRONMENT: jax.random.categorical takes ~21 s and 16 GB for this; the inverse-CDF
    # sampler should take a few hundredths of a second. 2 s leaves room for a loaded machine.
    logp = jax.nn.log_softmax(jax.random.normal(jax.random.key(0), (1000,)))
    draw = jax.jit(lambda lp, k: sharpen.sample_from_logprobs(lp, (1_000_000,), key=k))
    draw(logp, jax.random.key(1)).block_until_ready()  # compile outside the timed call
    start = time.perf_counter()
    draws = draw(logp, jax.random.key(2)).block_until_ready()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"1e6 draws took {elapsed:.2f} s"
    # And they are draws from logp. E[TV] = E[sum_y |f_y - p_y|] / 2 <= sum_y sqrt(p_y / T) / 2
    # <= sqrt(Y / T) / 2 = 0.016 (Cauchy-Schwarz), and one draw moves TV by at most 1/T, so by
    # McDiarmid P[TV >= E[TV] + t] <= exp(-2 t^2 T): t = 0.034 gives exp(-2300).
    tv = 0.5 * np.abs(frequencies(draws, 1000) - np.exp(np.asarray(logp, np.float64))).sum()
    assert tv < 0.05


def test_jitted_sampler_does_not_retrace():
    traces = []

    @jax.jit
    def draw(logp_XxY, prompts_B, key):
        traces.append(None)  # runs once per trace, not per call
        return sharpen.sample_responses(logp_XxY, prompts_B, 16, key=key)

    logp_a = jax.nn.log_softmax(jax.random.normal(jax.random.key(0), (3, 10)))
    logp_b = jax.nn.log_softmax(jax.random.normal(jax.random.key(1), (3, 10)))
    first = draw(logp_a, jnp.array([0, 1, 2, 2]), jax.random.key(2))
    second = draw(logp_b, jnp.array([2, 1, 0, 0]), jax.random.key(3))
    assert len(traces) == 1
    assert first.shape == second.shape == (4, 16)

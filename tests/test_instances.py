"""Tests for :mod:`theory.instances` (hard instance of Thm 3.1′, base-policy families).

Monte-Carlo bounds (fixed keys and trial counts):

* Bayes learner: over ``R`` independent (trial, hard prompt) pairs the error indicator is
  Bernoulli(``e``) with ``e`` from :func:`bayes_error_given_draws`; we require
  ``|freq - e| <= 5 sqrt(e (1 - e) / R) + 1/R`` (5 sigma).
* Guess table: ``1 / (M - D_T)`` lies in ``[1/M, 1]``, so by Hoeffding the mean of ``R`` draws is
  within ``(1 - 1/M) sqrt(log(2 / alpha) / (2 R))`` of ``g[T]`` with probability ``1 - alpha``;
  we take ``alpha = 1e-6``.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from tests import tolerances as tol
from theory import instances


def probs_of(logp) -> np.ndarray:
    return np.exp(np.asarray(logp, np.float64))


@pytest.mark.parametrize(("d", "M", "Delta"), [(1, 3, 0.5), (4, 10, 0.2), (6, 101, 0.05)])
def test_hard_instance_structure(d, M, Delta):
    index = jnp.asarray((np.arange(d) * 7) % M + 1, jnp.int32)
    inst = instances.hard_instance(d=d, M=M, Delta=Delta, index=index)
    chex.assert_shape(inst.logp_base, (d + 1, M + 1))
    chex.assert_shape(inst.mu, (d + 1,))
    p = probs_of(inst.logp_base)
    p_top, p_other = instances.hard_response_probs(M)
    tol.assert_close([p_top, p_other], [2.0 / M, (M - 2.0) / (M * (M - 1.0))])
    tol.assert_close(inst.mu, [1.0 - Delta] + [Delta / d] * d)
    tol.assert_close(p[0], np.eye(M + 1)[0], abs_floor=True)  # easy prompt: delta_{y_0}
    assert np.all(p[1:, 0] == 0.0)  # hard prompts never answer y_0
    np.testing.assert_array_equal(np.argmax(p[1:], axis=-1), np.asarray(index))
    expected = np.where(np.arange(M + 1)[None] == np.asarray(index)[:, None], p_top, p_other)
    expected[:, 0] = 0.0
    tol.assert_close(p[1:], expected, "composite", abs_floor=True)
    np.testing.assert_array_equal(inst.index, index)


def test_hard_instance_default_index_and_candidates():
    d, M = 3, 6
    assert np.all(np.asarray(instances.hard_instance(d=d, M=M, Delta=0.3).index) == 1)
    cand = instances.hard_class_candidates(d=d, M=M)
    chex.assert_shape(cand, (d + 1, M, M + 1))
    tol.assert_close(probs_of(cand).sum(axis=-1), np.ones((d + 1, M)), "composite")
    tol.assert_close(probs_of(cand[0]), np.tile(np.eye(M + 1)[0], (M, 1)), abs_floor=True)
    for j in range(M):  # candidate j of every hard prompt is P_{j+1}
        inst = instances.hard_instance(d=d, M=M, Delta=0.3, index=jnp.full(d, j + 1, jnp.int32))
        tol.assert_close(probs_of(cand[1:, j]), probs_of(inst.logp_base[1:]), "composite")


def _bayes_trial(key, num_draws, d: int, M: int, max_draws: int):
    """One run on the hard instance with a uniformly random index: [d] learner-is-wrong flags.

    ``max_draws`` responses are drawn per hard prompt and all but the first ``num_draws``
    (traced) are replaced by ``y_0``, which hard prompts never produce and the learner ignores;
    so every ``num_draws`` shares one compiled program.
    """
    i_key, y_key, g_key = jax.random.split(key, 3)
    index = jax.random.randint(i_key, (d,), 1, M + 1, dtype=jnp.int32)
    inst = instances.hard_instance(d=d, M=M, Delta=0.5, index=index)
    prompts = jnp.arange(1, d + 1)
    draws = sharpen.sample_responses(inst.logp_base, prompts, max_draws, key=y_key)  # [d, T]
    draws = jnp.where(jnp.arange(max_draws)[None, :] < num_draws, draws, 0)
    counts = sharpen.counts_from_pairs(
        jnp.repeat(prompts, max_draws), draws.reshape(-1), d + 1, M + 1
    )
    guess = instances.bayes_learner(counts, inst.logp_base, M=M, key=g_key)
    return guess != index


def test_bayes_learner_matches_exact_error():
    d, M, trials, draw_counts = 8, 12, 3000, (0, 1, 4, 12)
    table = instances.unseen_guess_table(M, 50)
    run = jax.jit(jax.vmap(lambda k, t: _bayes_trial(k, t, d, M, max(draw_counts)), (0, None)))
    for t in draw_counts:
        wrong = np.asarray(run(jax.random.split(jax.random.key(t), trials), t))
        error = float(
            instances.bayes_error_given_draws(jnp.full(1, t), M=M, gamma=0.5, guess_table=table)[0]
        )
        band = 5 * math.sqrt(error * (1 - error) / wrong.size) + 1 / wrong.size
        assert abs(wrong.mean() - error) <= band, (t, wrong.mean(), error)


def test_bayes_error_with_no_draws_is_a_blind_guess():
    table = instances.unseen_guess_table(7, 5)
    err = instances.bayes_error_given_draws(jnp.zeros(2), M=7, gamma=0.5, guess_table=table)
    tol.assert_close(err, [1.0 - 1.0 / 7] * 2, dtype=table.dtype)  # the table is float32


def test_unseen_guess_table_matches_simulation():
    M, t_max, trials = 10, 30, 20_000
    table_dtype = instances.unseen_guess_table(M, 0).dtype  # float32, also under x64
    table = np.asarray(instances.unseen_guess_table(M, t_max), np.float64)
    chex.assert_shape(table, (t_max + 1,))
    tol.assert_close(table[0], 1.0 / M, dtype=table_dtype)
    assert np.all(np.diff(table) >= -tol.rtol())  # more misses reveal more of the wrong answers
    draws = jax.random.randint(jax.random.key(0), (trials, t_max), 0, M - 1)
    seen = jax.lax.cummax(jax.nn.one_hot(draws, M - 1, dtype=jnp.int32), axis=1)
    distinct = np.concatenate([np.zeros((trials, 1)), np.asarray(seen.sum(-1))], axis=1)
    simulated = (1.0 / (M - distinct)).mean(axis=0)  # [t_max + 1]
    hoeffding = (1 - 1 / M) * math.sqrt(math.log(2 / 1e-6) / (2 * trials))
    assert np.all(np.abs(simulated - table) <= hoeffding)
    long = np.asarray(instances.unseen_guess_table(M, 400))
    tol.assert_close(
        long[-1], 1.0, "composite", dtype=table_dtype
    )  # all M - 1 wrong answers seen: sure guess


def test_policy_with_top_mass_has_exact_unique_argmax():
    p_star = jnp.array([0.2, 0.35, 0.5, 0.9, 1.0])
    logp = instances.policy_with_top_mass(p_star, 8, key=jax.random.key(0), concentration=0.3)
    chex.assert_shape(logp, (5, 8))
    p = probs_of(logp)
    tol.assert_close(p.sum(axis=-1), np.ones(5), "composite")
    tol.assert_close(p[:, 0], p_star, "composite")
    np.testing.assert_array_equal(np.asarray(sharpen.argmax_mask(logp)).sum(-1), np.ones(5))
    assert np.all(p[:, 1:] <= 0.99 * p[:, :1] * (1 + tol.rtol("composite")))
    assert np.all(p[-1, 1:] == 0.0)


def test_two_point_and_light_tailed_top_masses_hit_c_cov():
    X, K = 50, 16
    mu = jnp.full(X, 1.0 / X)
    p_low, target = 0.1, 3.0
    two = instances.two_point_top_mass(X, target, p_low)
    c_two = sharpen.c_cov(instances.policy_with_top_mass(two, K, key=jax.random.key(1)), mu)
    # Off only by rounding w X to whole prompts: |c - target| <= (1/p_low - 1) / (2 X).
    assert abs(float(c_two) - target) <= (1 / p_low - 1) / (2 * X) + tol.rtol("composite")
    tol.assert_close(c_two, np.mean(1.0 / np.asarray(two, np.float64)), "composite")
    light = instances.light_tailed_top_mass(X, target)
    c_light = sharpen.c_cov(instances.policy_with_top_mass(light, K, key=jax.random.key(2)), mu)
    tol.assert_close(c_light, np.mean(1.0 / np.asarray(light, np.float64)), "composite")
    tol.assert_close(c_light, target, "composite", dtype=light.dtype)  # p* are float32
    # Markov on 1/p* - 1 >= 0: P[1/p* >= t] <= (c_cov - 1) / (t - 1). At t = 1/p_low it is an
    # equality for the two-point family and loose for the light-tailed one (at t = max 1/p*).
    inv_two, inv_light = 1.0 / np.asarray(two, np.float64), 1.0 / np.asarray(light, np.float64)
    t = inv_two.max()  # 1 / p_low, with p_low as stored (float32)
    tol.assert_close(np.mean(inv_two >= t * (1 - 1e-6)), (float(c_two) - 1) / (t - 1), "composite")
    t = inv_light.max()
    assert np.mean(inv_light >= t * (1 - 1e-6)) < 0.1 * (float(c_light) - 1) / (t - 1)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_near_tie_policy_mask_sizes(k):
    gamma, p_top, K = 0.4, 0.15, 20
    logp = instances.near_tie_policy(k=k, gamma=gamma, p_top=p_top, num_responses=K)
    chex.assert_shape(logp, (1, K))
    assert logp.dtype == jnp.float32  # near_tie_policy is float32, also under x64
    tol.assert_close(probs_of(logp).sum(), 1.0, "composite", dtype=logp.dtype)
    assert int(jnp.sum(sharpen.argmax_mask(logp))) == 1
    assert int(jnp.sum(sharpen.argmax_mask(logp, gamma=gamma))) == k
    expected = 1.0 / (p_top * (1 + (k - 1) * (1 - gamma / 2)))
    c_gamma = sharpen.c_cov(logp, jnp.ones(1), gamma=gamma)
    tol.assert_close(c_gamma, expected, "composite", dtype=logp.dtype)


def test_near_tie_policy_rejects_a_heavy_tail():
    with pytest.raises(ValueError, match="near_tie_policy"):
        instances.near_tie_policy(k=2, gamma=0.4, p_top=0.05, num_responses=10)


def test_tilted_class_is_a_normalized_ordered_family():
    cand = instances.tilted_class(
        key=jax.random.key(3), num_prompts=3, num_responses=6, grid_size=7, tilt=1.0
    )
    chex.assert_shape(cand, (3, 7, 6))
    p = probs_of(cand)
    tol.assert_close(p.sum(axis=-1), np.ones((3, 7)), "composite")
    # Hellinger distance from the middle member grows along the grid in both directions.
    d_h2 = ((np.sqrt(p) - np.sqrt(p[:, 3:4])) ** 2).sum(-1)
    assert np.all(np.diff(d_h2[:, 3:], axis=-1) > 0)
    assert np.all(np.diff(d_h2[:, :4], axis=-1) < 0)

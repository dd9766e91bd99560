"""Acceptance tests of the best-of-N law and samplers (THEORY §3.1, §3.3, §3.4, §4.2 Lemma I.1).

The closed forms :func:`sharpen.bon_law` and :func:`sharpen.adaptive_bon_law` are what the
theory analyses; :func:`sharpen.best_of_n` and :func:`sharpen.adaptive_best_of_n` are what the
algorithms do. These tests hold the two together.

Monte-Carlo bounds (fixed keys and trial counts, so every pass is reproducible):

* Law vs sampler, ``T`` trials: for each response ``y`` the selection frequency ``f_y`` has
  standard deviation ``sqrt(q_y (1 - q_y) / T)`` around the law ``q_y``; we require
  ``max_y |f_y - q_y| <= 5 sqrt(q_y (1 - q_y) / T) + 1/T`` (:func:`freq_band`: 5 sigma, two-sided
  normal tail 5.7e-7 per response; ``1/T`` absorbs the lattice of frequencies at tiny ``q_y``).
* Means (numbers of draws): ``|mean_T - E| <= 5 sigma_hat / sqrt(T)`` (:func:`mean_band`, CLT with
  the sample standard deviation).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from sharpen.best_of_n import sample_best_of_n  # not re-exported by sharpen/__init__ yet
from tests import tolerances as tol
from tests.random_policies import random_logp, tied_logp


def freq_band(q, num_trials: int) -> np.ndarray:
    q = np.clip(np.asarray(q, np.float64), 0.0, 1.0)  # laws may round past 1
    return 5.0 * np.sqrt(q * (1.0 - q) / num_trials) + 1.0 / num_trials


def mean_band(samples) -> float:
    samples = np.asarray(samples, np.float64)
    return 5.0 * samples.std(ddof=1) / math.sqrt(samples.size)


def probs_of(logp) -> np.ndarray:
    return np.exp(np.asarray(logp, np.float64))


def frequencies(values, num_categories: int) -> np.ndarray:
    return np.bincount(np.asarray(values).ravel(), minlength=num_categories) / np.size(values)


def argmax_set_mass(logp) -> np.ndarray:
    """pi(y*) in float64 from the (possibly float32) log-probabilities actually passed in."""
    p = probs_of(logp)
    mask = np.asarray(logp) == np.asarray(logp).max(axis=-1, keepdims=True)
    return np.sum(np.where(mask, p, 0.0), axis=-1)


# Jitted handles for the heavy property loops: one compile per shape and dtype (N and mu are
# traced), where the eager path compiles every primitive separately. The eager path, with its
# boundary validation, is exercised by the smaller tests here and by test_validation.py.
BON_LAW = jax.jit(sharpen.bon_law)
ADA_LAW = jax.jit(lambda logp, mu: sharpen.adaptive_bon_law(logp, mu_stop=mu))
ARGMAX_MASK = jax.jit(sharpen.argmax_mask)


# A small distribution with two tie levels and a zero-mass response.
P8 = np.array([0.05, 0.2, 0.1, 0.2, 0.15, 0.0, 0.15, 0.15])
# A custom reward: ties between unequal-mass responses ({0, 1}: 0.05 vs 0.2; {2, 3, 7}), and the
# top reward on the zero-mass response 5, which can never be drawn.
R8 = np.array([2.0, 2.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0])
NUM_GRID = [1.0, 2.0, 7.5, 1e3, 1e6, 1e9]


def mixed_instances():
    """[24, 10]: unique argmaxes, 2-way ties, and rows with zero-mass responses."""
    key = jax.random.key(0)
    unique = random_logp(jax.random.fold_in(key, 0), 8, 10)
    tied = tied_logp(jax.random.fold_in(key, 1), 8, 10)
    sparse = random_logp(jax.random.fold_in(key, 2), 8, 10, concentration=0.05)
    sparse = jnp.where(sparse < -30.0, -jnp.inf, sparse)  # exact zeros, renormalized below
    sparse = sparse - jax.nn.logsumexp(sparse, axis=-1, keepdims=True)
    return jnp.concatenate([unique, tied, sparse])


# --------------------------------------------------------------------------------------------
# Closed-form BoN law.


@pytest.mark.parametrize("num_samples", NUM_GRID)
@pytest.mark.parametrize("with_reward", [False, True], ids=["loglik", "reward"])
def test_bon_law_is_a_normalized_distribution(num_samples, with_reward):
    logp = mixed_instances()
    reward = jnp.round(4.0 * jnp.exp(logp)) if with_reward else None  # coarse: many ties
    law = sharpen.bon_law(logp, num_samples, reward=reward)
    assert law.shape == logp.shape and law.dtype == logp.dtype
    law_np = np.asarray(law, np.float64)
    assert not np.any(np.isnan(law_np)) and not np.any(law_np == np.inf)
    tol.assert_close(probs_of(law).sum(axis=-1), np.ones(logp.shape[0]), "composite")
    # Zero-mass responses are never selected.
    assert np.all(probs_of(law)[np.isneginf(np.asarray(logp))] == 0.0)


@pytest.mark.parametrize("with_reward", [False, True], ids=["loglik", "reward"])
def test_best_of_one_is_the_identity(with_reward):
    logp = mixed_instances()
    reward = jnp.round(4.0 * jnp.exp(logp)) if with_reward else None
    law = sharpen.bon_law(logp, 1, reward=reward)
    tol.assert_close(probs_of(law), probs_of(logp), "composite", dtype=logp.dtype, abs_floor=True)


def _check_argmax_mass(logp, nums):
    mask = np.asarray(ARGMAX_MASK(logp))
    for num in nums:
        law = BON_LAW(logp, num)
        got = np.sum(np.where(mask, probs_of(law), 0.0), axis=-1)
        p_star = argmax_set_mass(logp)
        expected = -np.expm1(num * np.log1p(-p_star))  # 1 - (1 - p*)^N
        tol.assert_close(got, expected, "composite", dtype=logp.dtype)


def test_argmax_mass_is_one_minus_miss_probability():
    # pi^BoN_N(y*) = 1 - (1 - pi_base(y*))^N  (THEORY §3.3), in the default dtype.
    _check_argmax_mass(mixed_instances(), [1, 2, 3, 50, 1e4, 1e9])


def test_argmax_mass_is_one_minus_miss_probability_float64():
    with jax.enable_x64(True):
        logp = jnp.asarray(mixed_instances(), jnp.float64)
        logp = logp - jax.nn.logsumexp(logp, axis=-1, keepdims=True)
        assert logp.dtype == jnp.float64
        _check_argmax_mass(logp, [1, 2, 3, 50, 1e4, 1e9])


@pytest.mark.parametrize("x64", [False, True], ids=["default", "float64"])
@pytest.mark.parametrize("num_samples", [1e3, 1e9, 1e12])
def test_tiny_top_mass_with_huge_n(x64, num_samples):
    # A reward that ranks a mass-1e-9 response first: its BoN mass is 1 - (1 - 1e-9)^N, which
    # needs log1p/expm1 throughout (N = 1e9 gives 1 - 1/e).
    with jax.enable_x64(x64 or jax.config.jax_enable_x64):
        logp = jnp.log(jnp.array([1e-9, 0.5, 0.5 - 1e-9], dtype=float))
        law = sharpen.bon_law(logp, num_samples, reward=jnp.array([1.0, 0.0, 0.0], dtype=float))
        q = probs_of(law)
        p_top = probs_of(logp)[0] / probs_of(logp).sum()
        tol.assert_close(
            q[0], -np.expm1(num_samples * np.log1p(-p_top)), "composite", dtype=logp.dtype
        )
        tol.assert_close(q.sum(), 1.0, "composite", dtype=logp.dtype)
        assert np.all(np.isfinite(q))


def test_law_within_a_reward_level_is_proportional_to_base_mass():
    logp = jnp.log(jnp.asarray(P8))
    for num in [1.0, 3.0, 40.0]:
        q = probs_of(sharpen.bon_law(logp, num, reward=jnp.asarray(R8)))
        tol.assert_close(q[1] / q[0], 0.2 / 0.05, "composite", dtype=logp.dtype)
        tol.assert_close(q[[2, 3, 7]] / q[2], P8[[2, 3, 7]] / P8[2], "composite", dtype=logp.dtype)
        assert q[5] == 0.0  # top reward, zero mass
        # Level {0, 1} (mass 0.25) is the best reachable one: 1 - 0.75^N.
        tol.assert_close(q[0] + q[1], 1.0 - 0.75**num, "composite", dtype=logp.dtype)


def _bon_trials(logp_Y, reward_Y, num_samples: int, num_trials: int, seed: int):
    keys = jax.random.split(jax.random.key(seed), num_trials)
    run = jax.jit(
        jax.vmap(
            lambda lp, r, k: sharpen.best_of_n(lp, num_samples, key=k, reward_Y=r)[0],
            in_axes=(None, None, 0),
        )
    )
    return np.asarray(run(logp_Y, reward_Y, keys))


@pytest.mark.parametrize(
    ("num_samples", "with_reward"), [(1, False), (4, False), (4, True), (16, True)]
)
def test_bon_law_matches_the_sampler(num_samples, with_reward):
    num_trials = 200_000
    logp = jnp.log(jnp.asarray(P8))
    reward = jnp.asarray(R8) if with_reward else logp
    picks = _bon_trials(logp, reward, num_samples, num_trials, seed=10 + num_samples)
    q = probs_of(sharpen.bon_law(logp, num_samples, reward=reward))
    freq = frequencies(picks, P8.size)
    assert np.all(np.abs(freq - q) <= freq_band(q, num_trials)), (freq, q)


def test_best_of_n_batch_matches_per_prompt_law_and_ignores_batch_size():
    logp = tied_logp(jax.random.key(1), 3, 6)
    prompts = jnp.repeat(jnp.arange(3), 40_000)
    batch = jax.jit(sharpen.best_of_n_batch, static_argnums=2)
    picks = np.asarray(batch(logp, prompts, 5, key=jax.random.key(2)))
    q = probs_of(BON_LAW(logp, 5))
    for x in range(3):
        freq = frequencies(picks[np.asarray(prompts) == x], 6)
        assert np.all(np.abs(freq - q[x]) <= freq_band(q[x], 40_000)), x
    head = sharpen.best_of_n_batch(logp, prompts[:7], 5, key=jax.random.key(2))
    np.testing.assert_array_equal(head, picks[:7])  # row b is fold_in(key, b): B-independent


def test_bon_law_vmaps_and_jits_over_num_samples():
    logp = mixed_instances()[:4]
    nums = jnp.array([1.0, 3.0, 100.0, 1e9])
    traces = []

    @jax.jit
    def law_over_n(logp, nums):
        traces.append(None)
        return jax.vmap(lambda n: sharpen.bon_law(logp, n))(nums)

    batched = law_over_n(logp, nums)
    for i, num in enumerate([1.0, 3.0, 100.0, 1e9]):
        tol.assert_close(
            probs_of(batched[i]),
            probs_of(BON_LAW(logp, num)),
            "composite",
            dtype=logp.dtype,
            abs_floor=True,
        )
    # Per-prompt N by broadcasting, and a second call with new values does not retrace.
    per_prompt = sharpen.bon_law(logp, nums)
    for i in range(4):
        tol.assert_close(
            probs_of(per_prompt[i]),
            probs_of(batched[i, i]),
            "composite",
            dtype=logp.dtype,
            abs_floor=True,
        )
    law_over_n(logp + 0.0, nums * 2.0)
    assert len(traces) == 1


def test_argmax_mass_increases_with_n_and_levels_dominate():
    logp = mixed_instances()
    nums = [1.0, 2.0, 4.0, 16.0, 256.0, 1e4, 1e6]
    order = np.argsort(-np.asarray(logp), axis=-1, kind="stable")
    mask = np.asarray(ARGMAX_MASK(logp))
    prev_top, prev_cum = None, None
    for num in nums:
        law = probs_of(BON_LAW(logp, num))
        top = np.sum(np.where(mask, law, 0.0), axis=-1)
        cum = np.cumsum(np.take_along_axis(law, order, axis=-1), axis=-1)  # mass on the k best
        slack = tol.rtol("composite", logp.dtype)
        if prev_top is not None:
            assert np.all(top >= prev_top - slack)
            assert np.all(cum >= prev_cum - slack)  # first-order stochastic dominance in N
        prev_top, prev_cum = top, cum
    # Strict growth until saturation: from N = 1 to N = 2 every non-point-mass row gains.
    p_star = argmax_set_mass(logp)
    gain = np.sum(np.where(mask, probs_of(BON_LAW(logp, 2.0)), 0.0), axis=-1) - p_star
    tol.assert_close(gain, p_star * (1 - p_star), "composite", dtype=logp.dtype, abs_floor=True)


# --------------------------------------------------------------------------------------------
# Order-statistic sampler: sample_best_of_n draws the BoN winner from its law without N draws.

SAMPLE_BON = jax.jit(sample_best_of_n)


def _repeat_prompts(num_prompts: int, trials: int) -> jax.Array:
    return jnp.repeat(jnp.arange(num_prompts, dtype=jnp.int32), trials)


def _assert_rows_match_law(picks, prompts, law, trials: int):
    """Every prompt's selection frequencies within :func:`freq_band` of its exact law."""
    q = probs_of(law)
    for x in range(q.shape[0]):
        freq = frequencies(picks[np.asarray(prompts) == x], q.shape[1])
        assert np.all(np.abs(freq - q[x]) <= freq_band(q[x], trials)), (x, freq, q[x])


@pytest.mark.parametrize(
    ("num_samples", "with_reward"),
    [(1.0, False), (4.0, False), (4.0, True), (16.0, True), (7.5, True), (1e6, True)],
)
def test_sample_best_of_n_matches_bon_law(num_samples, with_reward):
    # P8 has tie levels and a zero-mass response; R8 ties unequal masses and puts the top reward
    # on the zero-mass response. Non-integer N: the law is bon_law at that N (W = 1 - U^(1/N)).
    trials = 200_000
    logp = jnp.log(jnp.asarray(P8))[None]
    reward = jnp.asarray(R8)[None] if with_reward else None
    prompts = _repeat_prompts(1, trials)
    picks = np.asarray(
        SAMPLE_BON(logp, prompts, num_samples, key=jax.random.key(20), reward_XxY=reward)
    )
    law = sharpen.bon_law(logp, num_samples, reward=reward)
    _assert_rows_match_law(picks, prompts, law, trials)
    assert not np.any(picks == 5)  # zero mass: never drawn, whatever its reward


@pytest.mark.parametrize("with_reward", [False, True], ids=["loglik", "reward"])
def test_sample_best_of_n_matches_bon_law_on_mixed_instances(with_reward):
    # 24 prompts with unique argmaxes, 2-way ties and exact zeros; one N per prompt (a [B] array).
    trials = 20_000
    logp = mixed_instances()
    reward = jnp.round(4.0 * jnp.exp(logp)) if with_reward else None  # coarse: many ties
    nums_X = jnp.asarray(np.resize([1.0, 2.0, 5.0, 40.0], logp.shape[0]), logp.dtype)
    prompts = _repeat_prompts(logp.shape[0], trials)
    picks = np.asarray(
        SAMPLE_BON(logp, prompts, nums_X[prompts], key=jax.random.key(21), reward_XxY=reward)
    )
    _assert_rows_match_law(
        picks,
        prompts,
        BON_LAW(logp, nums_X) if reward is None else sharpen.bon_law(logp, nums_X, reward=reward),
        trials,
    )
    assert np.all(probs_of(logp)[np.asarray(prompts), picks] > 0.0)


def test_sample_best_of_n_equals_best_of_n_batch_in_distribution():
    # Two-sample version of the band: |f_fast - f_literal| <= 5 sqrt(2 q (1 - q) / T) + 2/T, q
    # the exact law (the difference of two independent frequencies has twice the variance).
    trials = 40_000
    logp = tied_logp(jax.random.key(1), 3, 6)
    prompts = _repeat_prompts(3, trials)
    fast = np.asarray(SAMPLE_BON(logp, prompts, 5, key=jax.random.key(22)))
    literal = np.asarray(
        jax.jit(sharpen.best_of_n_batch, static_argnums=2)(logp, prompts, 5, key=jax.random.key(23))
    )
    q = np.clip(probs_of(BON_LAW(logp, 5)), 0.0, 1.0)
    for x in range(3):
        rows = np.asarray(prompts) == x
        gap = np.abs(frequencies(fast[rows], 6) - frequencies(literal[rows], 6))
        assert np.all(gap <= 5.0 * np.sqrt(2.0 * q[x] * (1.0 - q[x]) / trials) + 2.0 / trials), x


@pytest.mark.parametrize("x64", [False, True], ids=["default", "float64"])
@pytest.mark.parametrize("num_samples", [1e3, 1e9, 1e12])
def test_sample_best_of_n_tiny_top_mass_with_huge_n(x64, num_samples):
    # The reward ranks a mass-1e-9 response first: P(selected) = 1 - (1 - 1e-9)^N, i.e. 1e-6,
    # 1 - 1/e and ~1. Only an exact W = -expm1(log1p(-u) / N) resolves these.
    trials = 20_000
    with jax.enable_x64(x64 or jax.config.jax_enable_x64):
        logp = jnp.log(jnp.array([[1e-9, 0.5, 0.5 - 1e-9]], dtype=float))
        reward = jnp.array([[1.0, 0.0, 0.0]], dtype=float)
        picks = np.asarray(
            SAMPLE_BON(
                logp,
                _repeat_prompts(1, trials),
                num_samples,
                key=jax.random.key(24),
                reward_XxY=reward,
            )
        )
    p_top = -np.expm1(num_samples * np.log1p(-1e-9))
    assert abs(np.mean(picks == 0) - p_top) <= freq_band(p_top, trials)


def test_sample_best_of_n_rows_ignore_batch_size_and_signed_zero_ties():
    logp = mixed_instances()
    prompts = jnp.asarray(np.random.default_rng(0).integers(0, logp.shape[0], 100), jnp.int32)
    full = np.asarray(SAMPLE_BON(logp, prompts, 3.0, key=jax.random.key(25)))
    head = sample_best_of_n(logp, prompts[:7], 3.0, key=jax.random.key(25))
    np.testing.assert_array_equal(head, full[:7])  # row b uses fold_in(key, b) only
    # -0.0 and 0.0 are one reward level: both equally likely under equal mass.
    logp2 = jnp.log(jnp.full((1, 2), 0.5))
    reward2 = jnp.array([[-0.0, 0.0]])
    picks = np.asarray(
        SAMPLE_BON(logp2, _repeat_prompts(1, 20_000), 8, key=jax.random.key(26), reward_XxY=reward2)
    )
    assert abs(np.mean(picks) - 0.5) <= freq_band(0.5, 20_000)


@pytest.mark.parametrize("num_samples", [0.5, 0, float("nan")])
def test_sample_best_of_n_rejects_fewer_than_one_sample(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        sample_best_of_n(
            jnp.log(jnp.array([[0.5, 0.5]])), jnp.array([0]), num_samples, key=jax.random.key(0)
        )


# --------------------------------------------------------------------------------------------
# Adaptive best-of-N (Eq. 10, App. D).


def _ada_trials(logp_IxY, mu_I, num_trials: int, seed: int):
    """[I, T] responses and numbers of draws of adaptive BoN, instance i with mu_I[i]."""
    keys = jax.random.split(jax.random.key(seed), (logp_IxY.shape[0], num_trials))

    def one(lp, mu, k):
        out = sharpen.adaptive_best_of_n(lp, mu_stop=mu, key=k)
        return out.response, out.num_draws

    over_trials = jax.vmap(one, in_axes=(None, None, 0))
    response, draws = jax.jit(jax.vmap(over_trials))(logp_IxY, mu_I, keys)
    return np.asarray(response), np.asarray(draws)


def test_adaptive_sampler_matches_adaptive_law():
    logp = jnp.stack(
        [
            jnp.log(jnp.array([0.3, 0.3, 0.2, 0.1, 0.1, 0.0])),  # tie at the top, a zero
            jnp.log(jnp.array([0.12, 0.5, 0.08, 0.1, 0.1, 0.1])),
            random_logp(jax.random.key(5), 1, 6)[0],
            jnp.log(jnp.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])),
        ]
    )
    mu = jnp.array([2.0, 1.5, 2.7, 0.4])
    num_trials = 60_000
    response, draws = _ada_trials(logp, mu, num_trials, seed=6)
    law, expected_draws = ADA_LAW(logp, mu)
    q = probs_of(law)
    tol.assert_close(q.sum(axis=-1), np.ones(4), "composite", dtype=logp.dtype)
    for i in range(4):
        freq = frequencies(response[i], 6)
        assert np.all(np.abs(freq - q[i]) <= freq_band(q[i], num_trials)), (i, freq, q[i])
        # Plus the rounding of the closed form itself (relative, from the dtype table).
        slack = tol.rtol("composite", logp.dtype) * float(expected_draws[i])
        assert abs(draws[i].mean() - float(expected_draws[i])) <= mean_band(draws[i]) + slack, i


@pytest.mark.parametrize("mu_stop", [0.3, 1.0, 2.5, 3.0, 7.2])
def test_point_mass_stops_after_ceil_mu_draws(mu_stop):
    logp = jnp.log(jnp.array([0.0, 1.0, 0.0]))
    out = sharpen.adaptive_best_of_n(logp, mu_stop=mu_stop, key=jax.random.key(0))
    assert int(out.response) == 1
    assert int(out.num_draws) == max(1, math.ceil(mu_stop))
    law, expected = sharpen.adaptive_bon_law(logp, mu_stop=mu_stop)
    tol.assert_close(probs_of(law), [0.0, 1.0, 0.0], dtype=logp.dtype, abs_floor=True)
    tol.assert_close(expected, max(1, math.ceil(mu_stop)), dtype=logp.dtype)


def _lemma_i1_instances():
    """36 instances [36, 100] and their mu [36] (Lemma I.1, THEORY §5.6).

    Dirichlet rows with K in {20, 100} (K = 20 rows padded with zero-mass responses, so all
    share one shape and one compile), mu in {1, 2, 3}, concentrations {0.3, 1, 3}: 18 rows with
    a unique argmax, and 18 whose levels each repeat 2 or 4 times (|y*| in {2, 4}).
    """
    rows, mus = [], []
    for K in [20, 100]:
        for seed, (mu, conc) in enumerate(itertools.product([1.0, 2.0, 3.0], [0.3, 1.0, 3.0])):
            key = jax.random.key(100 * K + seed)
            copies = 2 if seed % 2 == 0 else 4
            for row in [random_logp(key, 1, K, conc)[0], tied_logp(key, 1, K, copies=copies)[0]]:
                rows.append(jnp.concatenate([row, jnp.full(100 - K, -jnp.inf, row.dtype)]))
                mus.append(mu)
    logp = jnp.stack(rows)
    return logp, jnp.asarray(mus, dtype=logp.dtype)


def _lemma_i1_bounds(logp, mu):
    """E[N_mu] <= (mu + 1/|y*|) / P*  and  P[y_hat not in y*] <= exp(-|y*| mu)  (Lemma I.1)."""
    mask = np.asarray(ARGMAX_MASK(logp))
    size = mask.sum(axis=-1)
    p_star = probs_of(logp).max(axis=-1)
    mu = np.asarray(mu, np.float64)
    return (mu + 1.0 / size) / p_star, np.exp(-size * mu), mask


def test_lemma_i1_closed_form():
    logp, mu = _lemma_i1_instances()
    assert logp.shape[0] >= 20
    draw_bound, miss_bound, mask = _lemma_i1_bounds(logp, mu)
    assert set(mask.sum(axis=-1).tolist()) == {1, 2, 4}
    law, expected_draws = ADA_LAW(logp, mu)
    expected_draws = np.asarray(expected_draws, np.float64)
    miss = np.sum(np.where(mask, 0.0, probs_of(law)), axis=-1)  # mass off y*, summed directly
    slack = tol.rtol("composite", logp.dtype)
    assert np.all(expected_draws <= draw_bound * (1 + slack))
    assert np.all(miss <= miss_bound * (1 + slack) + tol.atol(logp.dtype))
    # Every likelihood is at most P*, so at least mu / P* draws are always made.
    assert np.all(expected_draws >= np.asarray(mu) / probs_of(logp).max(-1) * (1 - slack))


def test_lemma_i1_monte_carlo():
    num_trials = 4000
    logp, mu = _lemma_i1_instances()
    draw_bound, miss_bound, mask = _lemma_i1_bounds(logp, mu)
    response, draws = _ada_trials(logp, mu, num_trials, seed=200)
    missed = ~np.take_along_axis(mask, response, axis=-1)
    for i in range(logp.shape[0]):
        assert draws[i].mean() <= draw_bound[i] + mean_band(draws[i]), i
        assert missed[i].mean() <= miss_bound[i] + freq_band(miss_bound[i], num_trials), i

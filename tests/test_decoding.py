"""Tests of :mod:`sharpen.decoding` against exact enumeration (THEORY §3.2, Prop 3.1, S2).

Monte-Carlo bound (fixed keys and counts): with ``T`` draws, the frequency ``f_y`` of each
sequence has standard deviation ``sqrt(q_y (1 - q_y) / T)`` around its probability ``q_y``; we
require ``|f_y - q_y| <= 5 sqrt(q_y (1 - q_y) / T) + 1/T`` (5 sigma, two-sided normal tail
5.7e-7 per sequence; ``1/T`` absorbs the lattice of frequencies at tiny ``q_y``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from sharpen import autoregressive as ar
from sharpen import decoding as dec
from tests import tolerances as tol


def freq_band(q, num_trials: int) -> np.ndarray:
    q = np.clip(np.asarray(q, np.float64), 0.0, 1.0)
    return 5.0 * np.sqrt(q * (1.0 - q) / num_trials) + 1.0 / num_trials


def frequencies(tokens_TxH, vocab_size: int) -> np.ndarray:
    """Empirical law over sequences, indexed like :func:`ar.enumerate_sequences`."""
    tokens = np.asarray(tokens_TxH, np.int64)
    horizon = tokens.shape[1]
    index = tokens @ (vocab_size ** np.arange(horizon - 1, -1, -1))
    return np.bincount(index, minlength=vocab_size**horizon) / tokens.shape[0]


def tightness_model(eta: float = 0.1) -> ar.ARModel:
    """S2: V={a,b}, H=2, pi(a)=0.5+eta, pi(.|a) uniform, pi(b|b)=1; argmax (b,b) has 0.5-eta."""
    probs = np.array([[0.5 + eta, 0.5 - eta], [0.5, 0.5], [0.0, 1.0]])
    with np.errstate(divide="ignore"):
        table = jnp.asarray(np.log(probs), jnp.zeros(()).dtype)
    return ar.tabular_ar_from_table(table, vocab_size=2, horizon=2)


# (V, H, number of random models): V in {2,3,4}, H up to 6; few where enumeration is costly.
PROP31_GRID = [(2, 6, 3000), (3, 4, 3000), (4, 3, 3000), (3, 5, 600), (4, 6, 150)]


def _prop31_trial(key, vocab_size, horizon):
    conc_key, model_key = jax.random.split(key)
    # log-uniform concentration in [0.005, 1]: sharp models (mass > 1/2) and flat ones.
    conc = jnp.exp(jax.random.uniform(conc_key, (), minval=jnp.log(0.005), maxval=jnp.log(1.0)))
    model = ar.tabular_ar(model_key, vocab_size=vocab_size, horizon=horizon, concentration=conc)
    tokens_SxH, logp_S = ar.enumerate_sequences(model)
    unique = jnp.sum(ar.argmax_set(logp_S)) == 1
    y_star = tokens_SxH[jnp.argmax(logp_S)]
    success = jnp.all(dec.greedy(model) == y_star)
    return jnp.max(logp_S), unique, success


def test_prop31_greedy_returns_unique_argmax_above_one_half():
    """Acceptance (Prop 3.1): greedy = y* on every model with unique argmax of mass > 1/2."""
    checked, failures_below = 0, 0
    for i, (vocab_size, horizon, num_models) in enumerate(PROP31_GRID):
        keys = jax.random.split(jax.random.key(100 + i), num_models)
        trial = jax.jit(
            jax.vmap(functools.partial(_prop31_trial, vocab_size=vocab_size, horizon=horizon))
        )
        logp_star, unique, success = (np.asarray(a) for a in trial(keys))
        above = unique & (logp_star > np.log(0.5))
        assert success[above].all(), (vocab_size, horizon, np.flatnonzero(above & ~success))
        checked += int(above.sum())
        failures_below += int((~success & ~above).sum())
    assert checked >= 5000, checked
    assert failures_below > 0  # S2 prediction: failures exist below 1/2


def test_tightness_instance_greedy_fails():
    model = tightness_model(0.1)
    tokens, logp = ar.enumerate_sequences(model)
    tol.assert_close(jnp.exp(logp), [0.3, 0.3, 0.0, 0.4], "simple", abs_floor=True)
    y_star = np.asarray(tokens[jnp.argmax(logp)])
    np.testing.assert_array_equal(y_star, [1, 1])
    assert dec.greedy(model)[0] == 0  # greedy commits to 'a' and misses (b, b)
    for seed in range(5):
        assert dec.greedy_random_ties(model, key=jax.random.key(seed))[0] == 0


@pytest.mark.parametrize(("vocab_size", "horizon"), [(2, 4), (3, 3), (4, 3)])
def test_beam_search_full_width_is_exact_argmax(vocab_size, horizon):
    for seed in range(3):
        model = ar.tabular_ar(
            jax.random.key(seed), vocab_size=vocab_size, horizon=horizon, concentration=0.3
        )
        _, logp = ar.enumerate_sequences(model)
        beams, scores = dec.beam_search(model, vocab_size**horizon)
        assert beams.shape == (vocab_size**horizon, horizon)
        top = int(np.asarray(beams[0]) @ (vocab_size ** np.arange(horizon - 1, -1, -1)))
        assert bool(ar.argmax_set(logp)[top])
        np.testing.assert_array_equal(np.sort(np.asarray(scores))[::-1], np.asarray(scores))
        tol.assert_close(scores, np.sort(np.asarray(logp))[::-1], "composite")
        tol.assert_close(scores, ar.sequence_logprob(model, beams), "composite")


def test_beam_search_finds_tightness_argmax_with_width_two():
    beams, scores = dec.beam_search(tightness_model(0.1), 2)
    np.testing.assert_array_equal(beams[0], [1, 1])
    tol.assert_close(jnp.exp(scores), [0.4, 0.3], "simple")


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampler_frequencies_match_enumeration(temperature):
    vocab_size, horizon, num = 3, 3, 20_000
    model = ar.tabular_ar(
        jax.random.key(7), vocab_size=vocab_size, horizon=horizon, concentration=1.0
    )
    tokens, base = dec.sample(model, num, key=jax.random.key(8), temperature=temperature)
    tol.assert_close(base, ar.sequence_logprob(model, tokens), "composite")
    # The tempered sampler is the tabular model with conditionals softmax(logp / temperature).
    tempered = ar.tabular_ar_from_table(
        jax.nn.log_softmax(model.params["logp_PxV"] / temperature, axis=-1),
        vocab_size=vocab_size,
        horizon=horizon,
    )
    _, logp = ar.enumerate_sequences(tempered)
    q = np.exp(np.asarray(logp, np.float64))
    assert np.all(np.abs(frequencies(tokens, vocab_size) - q) <= freq_band(q, num))


def test_zero_temperature_limit_is_greedy():
    for seed in range(5):
        model = ar.tabular_ar(jax.random.key(seed), vocab_size=4, horizon=5, concentration=1.0)
        tokens, _ = dec.sample(model, 16, key=jax.random.key(seed), temperature=1e-4)
        np.testing.assert_array_equal(tokens, jnp.broadcast_to(dec.greedy(model), (16, 5)))


def test_best_of_one_is_a_plain_sample():
    model = ar.tabular_ar(jax.random.key(9), vocab_size=3, horizon=4, concentration=1.0)
    for seed in range(5):
        key = jax.random.key(seed)
        tokens, logp = dec.best_of_n(model, 1, key=key)
        ref_tokens, ref_logp = dec.sample(model, 1, key=jax.random.split(key)[0])
        np.testing.assert_array_equal(tokens, ref_tokens[0])
        np.testing.assert_array_equal(logp, ref_logp[0])


def test_best_of_n_law_matches_closed_form():
    vocab_size, horizon, num_samples, trials = 2, 3, 4, 4000
    model = ar.tabular_ar(
        jax.random.key(11), vocab_size=vocab_size, horizon=horizon, concentration=1.0
    )
    _, logp = ar.enumerate_sequences(model)
    keys = jax.random.split(jax.random.key(12), trials)
    tokens, _ = jax.jit(jax.vmap(lambda k: dec.best_of_n(model, num_samples, key=k)))(keys)
    q = np.exp(np.asarray(sharpen.bon_law(logp, num_samples), np.float64))
    assert np.all(np.abs(frequencies(tokens, vocab_size) - q) <= freq_band(q, trials))


def test_greedy_tie_breaking():
    uniform = ar.tabular_ar_from_table(jnp.log(jnp.full((3, 2), 0.5)), vocab_size=2, horizon=2)
    np.testing.assert_array_equal(dec.greedy(uniform), [0, 0])
    keys = jax.random.split(jax.random.key(13), 200)
    draws = jax.vmap(lambda k: dec.greedy_random_ties(uniform, key=k))(keys)
    assert len({tuple(r) for r in np.asarray(draws).tolist()}) == 4
    cont = dec.greedy_continue(uniform, jnp.array([[1, 1], [1, 0]]), jnp.array([1, 2]))
    np.testing.assert_array_equal(cont, [[1, 0], [1, 0]])


def test_bad_inputs_raise():
    model = tightness_model()
    with pytest.raises(ValueError, match="width"):
        dec.beam_search(model, 0)
    with pytest.raises(ValueError, match="num"):
        dec.sample(model, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="temperature"):
        dec.sample(model, 2, key=jax.random.key(0), temperature=0.0)
    with pytest.raises(ValueError, match="num_samples"):
        dec.best_of_n(model, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="prefix_BxH"):
        dec.greedy_continue(model, jnp.zeros((1, 3), jnp.int32), jnp.zeros((1,), jnp.int32))

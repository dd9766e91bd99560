"""Tests of :mod:`sharpen.autoregressive`: tabular and linear-softmax models, exact enumeration."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import autoregressive as ar
from tests import tolerances as tol


def _prefix_row(prefix, vocab_size: int) -> int:
    """Table row of a prefix, written independently of the library (offset + base-V value)."""
    row = sum(vocab_size**k for k in range(len(prefix)))
    value = 0
    for tok in prefix:
        value = value * vocab_size + int(tok)
    return row + value


@pytest.mark.parametrize(("vocab_size", "horizon"), [(2, 1), (3, 4), (5, 2)])
def test_enumeration_sums_to_one_tabular(vocab_size, horizon):
    model = ar.tabular_ar(
        jax.random.key(vocab_size * 10 + horizon),
        vocab_size=vocab_size,
        horizon=horizon,
        concentration=0.7,
    )
    tokens, logp = ar.enumerate_sequences(model)
    assert tokens.shape == (vocab_size**horizon, horizon)
    expected = np.array(list(itertools.product(range(vocab_size), repeat=horizon)))
    np.testing.assert_array_equal(np.asarray(tokens), expected)
    tol.assert_close(jnp.sum(jnp.exp(logp)), 1.0, "composite")


def test_enumeration_chunked_path_sums_to_one():
    # 2^15 sequences > the 2^14 chunk, so the lax.map path (with padding: 3^10) is exercised.
    for vocab_size, horizon in [(2, 15), (3, 10)]:
        model = ar.tabular_ar(
            jax.random.key(horizon), vocab_size=vocab_size, horizon=horizon, concentration=1.0
        )
        tokens, logp = ar.enumerate_sequences(model)
        assert logp.shape == (vocab_size**horizon,)
        direct = ar.sequence_logprob(model, tokens[-5:])
        tol.assert_close(logp[-5:], direct, "composite")
        # float32 summation of 59049 terms: relative error ~ S * eps32 ~ 1e-3 at worst
        np.testing.assert_allclose(np.exp(np.asarray(logp, np.float64)).sum(), 1.0, rtol=1e-3)


def test_sequence_logprob_is_product_of_conditionals():
    vocab_size, horizon = 3, 4
    model = ar.tabular_ar(
        jax.random.key(1), vocab_size=vocab_size, horizon=horizon, concentration=0.5
    )
    table = np.asarray(model.params["logp_PxV"], np.float64)
    tokens = np.asarray(
        jax.random.randint(jax.random.key(2), (50, horizon), 0, vocab_size), np.int32
    )
    expected = [
        sum(table[_prefix_row(seq[:t], vocab_size), seq[t]] for t in range(horizon))
        for seq in tokens
    ]
    tol.assert_close(ar.sequence_logprob(model, tokens), expected, "composite")


def test_next_logprobs_ignores_positions_at_or_after_t():
    model = ar.tabular_ar(jax.random.key(3), vocab_size=3, horizon=4, concentration=1.0)
    base = jnp.array([[2, 1, 0, 2]] * 4, jnp.int32)
    garbage = jnp.array([[2, 1, 0, 2], [2, 1, 2, 0], [2, 1, 1, 1], [2, 1, 0, 0]], jnp.int32)
    t = jnp.full((4,), 2, jnp.int32)
    np.testing.assert_array_equal(
        model.next_logprobs(model.params, base, t), model.next_logprobs(model.params, garbage, t)
    )
    row = model.next_logprobs(model.params, base[:1], jnp.array([2], jnp.int32))[0]
    np.testing.assert_array_equal(row, model.params["logp_PxV"][_prefix_row([2, 1], 3)])


def test_linear_softmax_matches_eq11_by_hand():
    horizon = 4
    feats = ar.product_features(3)
    theta = jax.random.normal(jax.random.key(4), (horizon, feats.dim(horizon)))
    model = ar.linear_softmax_ar(theta, feats, vocab_size=2)
    tokens, logp = ar.enumerate_sequences(model)
    tol.assert_close(jnp.sum(jnp.exp(logp)), 1.0, "composite")
    th = np.asarray(theta, np.float64)

    def phi(seq, t):
        s = np.zeros(horizon)
        s[: t + 1] = 2 * np.asarray(seq[: t + 1]) - 1
        return np.concatenate([s, np.outer(s, s).ravel(), np.einsum("i,j,k->ijk", s, s, s).ravel()])

    expected = []
    for seq in np.asarray(tokens):
        total = 0.0
        for t in range(horizon):
            logits = [phi(np.r_[seq[:t], v, seq[t + 1 :]], t) @ th[t] for v in (0, 1)]
            total += logits[seq[t]] - np.logaddexp(*logits)
        expected.append(total)
    tol.assert_close(logp, expected, "composite")


def test_prop_e1_reduction_argmax_structure():
    """Prop E.1 (robust variant, THEORY §4.6): argmax has y_{H-1}=y_H=1 and a max-cut prefix."""
    n_vertices = 5
    horizon = n_vertices + 2
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 2)]  # 5 edges (odd)
    feats = ar.product_features(3)
    theta = np.zeros((horizon, feats.dim(horizon)))
    off3 = horizon + horizon**2
    kappa = 0.05
    for i, j in edges:
        for a, b in ((i, j), (j, i)):
            theta[horizon - 2, off3 + (a * horizon + b) * horizon + horizon - 2] = -kappa
    theta[horizon - 1, horizon + (horizon - 2) * horizon + horizon - 1] = horizon
    theta[horizon - 1, horizon - 1] = horizon
    model = ar.linear_softmax_ar(jnp.asarray(theta, jnp.zeros(()).dtype), feats, vocab_size=2)
    tokens, logp = ar.enumerate_sequences(model)
    best = np.asarray(tokens)[np.asarray(ar.argmax_set(logp))]
    cut = lambda y: sum(y[i] != y[j] for i, j in edges)  # noqa: E731
    max_cut = max(cut(y) for y in itertools.product((0, 1), repeat=n_vertices))
    assert len(best) >= 1
    for y in best:
        assert y[-2] == 1 and y[-1] == 1
        assert cut(y[:n_vertices]) == max_cut


def test_argmax_set_exact_ties_and_atol():
    logp = jnp.array([-2.0, -0.5, -0.5, -0.51])
    np.testing.assert_array_equal(ar.argmax_set(logp), [False, True, True, False])
    np.testing.assert_array_equal(ar.argmax_set(logp, atol=0.02), [False, True, True, True])


def test_tabular_from_table_roundtrip_and_no_recompile():
    table = jnp.log(jnp.array([[0.6, 0.4], [0.5, 0.5], [0.0, 1.0]]))
    model = ar.tabular_ar_from_table(table, vocab_size=2, horizon=2)
    _, logp = ar.enumerate_sequences(model)
    tol.assert_close(jnp.exp(logp), [0.3, 0.3, 0.0, 0.4], "simple", abs_floor=True)
    other = ar.tabular_ar_from_table(table[::-1, ::-1], vocab_size=2, horizon=2)
    ar.sequence_logprob(model, jnp.zeros((3, 2), jnp.int32))
    before = ar._sequence_logprob_jit._cache_size()
    ar.sequence_logprob(other, jnp.ones((3, 2), jnp.int32))
    assert ar._sequence_logprob_jit._cache_size() == before


def test_bad_inputs_raise():
    model = ar.linear_softmax_ar(jnp.zeros((21, 21)), ar.product_features(1), vocab_size=2)
    with pytest.raises(ValueError, match="vocab_size=2, horizon=21"):
        ar.enumerate_sequences(model)
    with pytest.raises(ValueError, match="vocab_size=4, horizon=12"):
        ar.tabular_ar(jax.random.key(0), vocab_size=4, horizon=12, concentration=1.0)
    with pytest.raises(ValueError, match="concentration"):
        ar.tabular_ar(jax.random.key(0), vocab_size=2, horizon=2, concentration=0.0)
    with pytest.raises(ValueError, match="vocab_size"):
        ar.tabular_ar(jax.random.key(0), vocab_size=0, horizon=2, concentration=1.0)
    feats = ar.product_features(3)
    with pytest.raises(ValueError, match="malformed features"):
        ar.linear_softmax_ar(jnp.zeros((3, feats.dim(3) + 1)), feats, vocab_size=2)
    with pytest.raises(ValueError, match="malformed features"):
        ar.linear_softmax_ar(jnp.zeros((3, 5)), lambda p, t, c: jnp.zeros((1, 2)), vocab_size=2)
    with pytest.raises(ValueError, match="theta_HxD"):
        ar.linear_softmax_ar(jnp.zeros((3,)), feats, vocab_size=2)
    with pytest.raises(ValueError, match="logp_PxV"):
        ar.tabular_ar_from_table(jnp.zeros((3, 2)), vocab_size=2, horizon=2)
    with pytest.raises(ValueError, match="tokens_BxH"):
        ar.sequence_logprob(model, jnp.full((1, 21), 2, jnp.int32))
    with pytest.raises(ValueError, match="atol"):
        ar.argmax_set(jnp.zeros(3), atol=-1.0)

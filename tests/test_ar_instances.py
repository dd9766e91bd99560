"""The autoregressive constructions of theory/ar_instances.py, checked by exhaustive enumeration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import autoregressive as ar
from sharpen import decoding
from theory import ar_instances


def _random_odd_graph(key, num_vertices):
    """A random graph with an odd number of edges (edge probability 1/2, fixed up by one edge)."""
    upper = jax.random.bernoulli(key, 0.5, (num_vertices, num_vertices))
    upper = jnp.triu(upper, k=1)
    if int(upper.sum()) % 2 == 0:
        upper = upper.at[0, 1].set(~upper[0, 1])
    adjacency = upper | upper.T
    return np.asarray(adjacency, np.float64)


def test_greedy_tightness_instance_makes_greedy_fail():
    model = ar_instances.greedy_tightness_instance(0.1)
    tokens, logp = ar.enumerate_sequences(model)
    best = np.asarray(tokens)[np.argmax(np.asarray(logp))]
    assert best.tolist() == [1, 1]  # (b, b)
    assert np.exp(np.max(np.asarray(logp))) == pytest.approx(0.4, abs=1e-6)
    assert decoding.greedy(model).tolist()[0] == 0  # greedy starts with a and misses (b, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_maxcut_argmax_is_a_maximum_cut_on_30_graphs(dtype):
    # Prop E.1 acceptance: >= 30 random graphs, every sequence argmax = (max cut, +1, +1).
    context = jax.enable_x64(dtype == "float64")
    with context:
        for i in range(30):
            n = 4 + i % 5  # 4..8 vertices, H = 6..10
            adjacency = _random_odd_graph(jax.random.key(i), n)
            model = ar_instances.maxcut_instance(adjacency)
            tokens, logp = ar.enumerate_sequences(model)
            tokens, logp = np.asarray(tokens), np.asarray(logp)
            modes = tokens[logp == logp.max()]
            assert (modes[:, n:] == 1).all()
            cuts = np.asarray(ar_instances.cut_values(adjacency, jnp.asarray(tokens[:, :n])))
            best_cut = cuts.max()
            mode_cuts = np.asarray(ar_instances.cut_values(adjacency, jnp.asarray(modes[:, :n])))
            assert (mode_cuts == best_cut).all()
            # Every maximum cut (and its complement) is a mode: the argmax set is exactly them.
            assert len(modes) == int(
                ((cuts == best_cut) & (tokens[:, n] == 1) & (tokens[:, n + 1] == 1)).sum()
            )


def test_non_closure_reference_values():
    model = ar_instances.non_closure_instance(n=1000)
    first = np.exp(
        np.asarray(
            model.next_logprobs(model.params, jnp.zeros((1, 2), jnp.int32), jnp.zeros(1, jnp.int32))
        )
    )[0]
    after_two = np.exp(
        np.asarray(model.next_logprobs(model.params, jnp.array([[1, 0]]), jnp.ones(1, jnp.int32)))
    )[0]
    after_one = np.exp(
        np.asarray(model.next_logprobs(model.params, jnp.array([[0, 0]]), jnp.ones(1, jnp.int32)))
    )[0]
    assert first[1] * after_two[0] == pytest.approx(0.413, abs=1e-3)  # pi(2, 1)
    assert first[0] * after_one[5] == pytest.approx(4.7e-4, rel=0.02)  # pi(1, j)
    assert first[1] * after_two[5] == pytest.approx(5.6e-5, rel=0.02)  # pi(2, j != 1)
    assert first[0] == first[1]  # the tie greedy faces


def test_non_closure_every_member_is_at_most_one_half():
    # Prop E.2 acceptance: pi(2, 1) <= 1/2 + 1e-6 for every member, at any norm.
    thetas = (
        5.0 * jax.random.normal(jax.random.key(0), (200, 4)) * jnp.array([[1.0, 1.0, 10.0, 10.0]])
    )
    for row in np.asarray(thetas):
        model = ar_instances.non_closure_instance(n=50, theta1=row[:2], theta2=row[2:])
        first = jnp.exp(
            model.next_logprobs(model.params, jnp.zeros((1, 2), jnp.int32), jnp.zeros(1, jnp.int32))
        )[0]
        second = jnp.exp(
            model.next_logprobs(model.params, jnp.array([[1, 0]]), jnp.ones(1, jnp.int32))
        )[0]
        assert float(first[1] * second[0]) <= 0.5 + 1e-6


def test_bad_constructions_raise():
    with pytest.raises(ValueError, match="eta"):
        ar_instances.greedy_tightness_instance(0.2)
    even = np.zeros((4, 4))
    even[0, 1] = even[1, 0] = even[2, 3] = even[3, 2] = 1.0
    with pytest.raises(ValueError, match="odd"):
        ar_instances.maxcut_instance(even)
    with pytest.raises(ValueError, match="adjacency"):
        ar_instances.maxcut_instance(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n"):
        ar_instances.non_closure_instance(n=2)

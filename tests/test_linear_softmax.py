"""Tests for sharpen.linear_softmax: the class Pi_{phi,B} (Def. J.3) and its closure."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import linear_softmax as ls
from sharpen import rlhf
from tests.tolerances import assert_close


def unit_features(key, shape):
    """Random features with ||phi(x, y)||_2 = 1."""
    phi = jax.random.normal(key, shape)
    return phi / jnp.linalg.norm(phi, axis=-1, keepdims=True)


def test_policy_logprobs_is_a_softmax_of_linear_scores():
    key_phi, key_theta = jax.random.split(jax.random.key(0))
    phi = unit_features(key_phi, (3, 5, 4))
    theta = jax.random.normal(key_theta, (4,))
    logp = ls.policy_logprobs(theta, phi)
    chex.assert_shape(logp, (3, 5))
    assert_close(jnp.sum(jnp.exp(logp), axis=-1), np.ones(3))
    scores = np.asarray(phi, np.float64) @ np.asarray(theta, np.float64)
    want = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    assert_close(logp, want, "composite")
    assert_close(ls.policy_logprobs(theta, phi[1]), want[1], "composite")  # [Y, d] form


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0, 50.0])
def test_closed_under_sharpening(beta):
    """pi*_beta of pi_theta equals pi_{(1 + 1/beta) theta} (App. J.2.4)."""
    key_phi, key_theta = jax.random.split(jax.random.key(1))
    phi = unit_features(key_phi, (4, 7, 3))
    theta = 0.8 * jax.random.normal(key_theta, (3,))
    star = rlhf.pi_beta_star(ls.policy_logprobs(theta, phi), beta)
    closed = ls.policy_logprobs(ls.sharpened_theta(theta, beta), phi)
    # Probabilities (not log-probs): at beta = 1e-3 the logs of the losers are ~ -1e3 and carry
    # float32 rounding of order 1e-4 relative to their size, invisible in probability.
    chex.assert_trees_all_close(jnp.exp(star), jnp.exp(closed), atol=1e-6)


def test_project_to_ball():
    theta = jnp.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    out = ls.project_to_ball(theta, 1.0)
    assert_close(jnp.linalg.norm(out, axis=-1), np.array([1.0, 0.5, 0.0]))
    assert_close(out[0], np.array([0.6, 0.8]))
    assert_close(out[1], theta[1])  # inside: unchanged
    assert_close(ls.project_to_ball(out, 1.0), out)  # idempotent


def test_sample_frequencies_match_the_policy():
    """Monte-Carlo: |freq - p| <= 5 sqrt(p (1 - p) / n) per response (5-sigma, fixed key)."""
    key_phi, key_theta = jax.random.split(jax.random.key(2))
    phi = unit_features(key_phi, (2, 6, 3))
    theta = 1.5 * jax.random.normal(key_theta, (3,))
    n = 20_000
    prompts = jnp.array([0, 1], jnp.int32)
    ys = ls.sample(theta, phi, prompts, key=jax.random.key(3), num_samples=n)
    chex.assert_shape(ys, (2, n))
    assert ys.dtype == jnp.int32
    p = np.exp(np.asarray(ls.policy_logprobs(theta, phi), np.float64))
    for x in range(2):
        freq = np.bincount(np.asarray(ys[x]), minlength=6) / n
        assert np.all(np.abs(freq - p[x]) <= 5 * np.sqrt(p[x] * (1 - p[x]) / n) + 1e-12)


def test_sample_single_prompt_features():
    phi = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    ys = ls.sample(jnp.array([40.0, 0.0]), phi, jnp.zeros(3, jnp.int32), key=jax.random.key(0),
                   num_samples=4)  # fmt: skip
    assert ys.tolist() == [[0] * 4] * 3


def test_validation_names_the_argument():
    phi = unit_features(jax.random.key(4), (2, 3, 2))
    theta = jnp.array([0.5, -0.5])
    with pytest.raises(ValueError, match="features"):
        ls.policy_logprobs(theta, 1.01 * phi)
    with pytest.raises(ValueError, match="features"):
        ls.policy_logprobs(theta, phi[0, 0])  # rank 1
    with pytest.raises(ValueError, match="theta"):
        ls.policy_logprobs(jnp.zeros(3), phi)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="radius"):
            ls.project_to_ball(theta, bad)
        with pytest.raises(ValueError, match="beta"):
            ls.sharpened_theta(theta, bad)
    with pytest.raises(ValueError, match="prompts"):
        ls.sample(theta, phi, jnp.array([0, 2]), key=jax.random.key(0), num_samples=1)
    with pytest.raises(ValueError, match="num_samples"):
        ls.sample(theta, phi, jnp.array([0]), key=jax.random.key(0), num_samples=0)
    # Norm slack: features normalized in float32 pass.
    ls.policy_logprobs(theta, phi * (1 + 5e-7))

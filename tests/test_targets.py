"""Tests for :mod:`sharpen.targets`: argmax sets, gamma masks, the exact sharpening error.

THEORY §1.3 (y*(x) is a set; y*_gamma(x) = {y : pi(y) >= (1 - gamma) max pi}) and §1.4
(sharpening error P_x[pi_hat(y*(x)|x) <= 1 - delta], Def. 3.1 / F.1).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from tests import tolerances as tol


def random_logp(key, num_prompts: int, num_responses: int, concentration: float = 1.0):
    """Rows of log Dirichlet(concentration) draws, [num_prompts <= 64, num_responses <= 128].

    Log-normalized log-gammas sliced from one fixed [64, 128] block: every instance in the file
    then shares one compiled sampler (each new ``jax.random.dirichlet`` shape costs seconds).
    """
    log_g = jax.random.loggamma(key, jnp.full((64, 128), concentration))
    return jax.nn.log_softmax(log_g[:num_prompts, :num_responses], axis=-1)


def test_argmax_mask_keeps_ties():
    logp = jnp.log(jnp.array([[0.4, 0.4, 0.2], [0.1, 0.2, 0.7], [0.25, 0.25, 0.5]]))
    expected = [[True, True, False], [False, False, True], [False, False, True]]
    np.testing.assert_array_equal(sharpen.argmax_mask(logp), expected)
    uniform = jnp.log(jnp.full((1, 5), 0.2))
    assert bool(jnp.all(sharpen.argmax_mask(uniform)))


@pytest.mark.parametrize(
    ("gamma", "expected"),
    [
        (0.0, [True, False, False, False]),
        (0.3, [True, True, False, False]),
        (0.7, [True, True, True, False]),
    ],
)
def test_gamma_mask_hand_built(gamma, expected):
    # Thresholds (1 - gamma) * 0.45 = 0.45, 0.315, 0.135: no entry sits on a boundary.
    logp = jnp.log(jnp.array([0.45, 0.35, 0.15, 0.05]))
    np.testing.assert_array_equal(sharpen.argmax_mask(logp, gamma=gamma), expected)


def test_gamma_mask_matches_probability_space_definition():
    logp = random_logp(jax.random.key(0), 64, 12, concentration=0.5)
    p = np.exp(np.asarray(logp, np.float64))
    ratio = p / p.max(axis=-1, keepdims=True)
    for gamma in [0.0, 0.1, 0.5, 0.9]:
        mask = np.asarray(sharpen.argmax_mask(logp, gamma=gamma))
        reference = ratio >= 1.0 - gamma
        far = np.abs(ratio - (1.0 - gamma)) > 1e-4  # entries not within rounding of the boundary
        np.testing.assert_array_equal(mask[far], reference[far])
        assert np.all(mask[ratio == 1.0])


def test_gamma_masks_are_nested_and_contain_the_argmax():
    logp = random_logp(jax.random.key(1), 32, 20)
    gammas = [0.0, 0.05, 0.2, 0.5, 0.8, 0.99]
    masks = [np.asarray(sharpen.argmax_mask(logp, gamma=g)) for g in gammas]
    for smaller, larger in itertools.pairwise(masks):
        assert np.all(smaller <= larger)
    top = np.argmax(np.asarray(logp), axis=-1)
    assert np.all(masks[0][np.arange(32), top])


def test_argmax_mask_invariant_to_a_constant_shift():
    # With gamma = 0 the mask only compares entries to the row maximum, and a shift moves both
    # by the same rounding, so ties stay ties.
    logp = jnp.log(jnp.array([[0.3, 0.3, 0.4 - 1e-3, 1e-3], [0.5, 0.5, 0.0, 0.0]]))
    np.testing.assert_array_equal(sharpen.argmax_mask(logp), sharpen.argmax_mask(logp + 3.0))


def test_per_prompt_gamma_equals_rowwise_scalar_gamma():
    logp = random_logp(jax.random.key(2), 4, 10)
    gammas = jnp.array([0.0, 0.2, 0.5, 0.9])
    per_row = sharpen.argmax_mask(logp, gamma=gammas)
    for x in range(4):
        np.testing.assert_array_equal(per_row[x], sharpen.argmax_mask(logp[x], gamma=gammas[x]))


def test_set_mass_and_target_mass_hand_built():
    logp = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]))
    mask = jnp.array([[True, False, True], [False, False, False]])
    tol.assert_close(sharpen.set_mass(logp, mask), [0.75, 0.0], "composite")
    base = jnp.log(jnp.array([[0.4, 0.4, 0.2], [0.2, 0.5, 0.3]]))
    hat = jnp.log(jnp.array([[0.1, 0.6, 0.3], [0.6, 0.3, 0.1]]))
    tol.assert_close(sharpen.target_mass(hat, base), [0.7, 0.3], "composite")
    # gamma = 0.45 adds response 2 of prompt 1 (0.3 >= 0.275) to the target.
    tol.assert_close(sharpen.target_mass(hat, base, gamma=0.45), [0.7, 0.4], "composite")


def test_sharpening_error_hand_built():
    base = jnp.log(jnp.array([[0.4, 0.4, 0.2], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    hat = jnp.log(jnp.array([[0.45, 0.45, 0.1], [0.5, 0.1, 0.4], [0.0, 0.0, 1.0], [0.3, 0.5, 0.2]]))
    mu = jnp.array([0.1, 0.2, 0.3, 0.4])
    # Target masses 0.9, 0.5, 1.0, 0.2. delta = 0.3: failures are prompts 1 and 3 (0.5, 0.2
    # <= 0.7); delta = 0.6: only prompt 3 (0.2 <= 0.4); delta = 0.05: prompts 0, 1, 3.
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.3), 0.6)
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.6), 0.4)
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.05), 0.7)
    # gamma = 0.55 (thresholds 0.18, 0.27, 0.225, 0.36) enlarges the targets: masses 1.0, 0.6,
    # 1.0, 0.2. delta = 0.45 (fail iff <= 0.55): gamma 0 fails prompts 1 and 3, gamma 0.55 only 3.
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.45), 0.6)
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.45, gamma=0.55), 0.4)


def test_sharpening_error_properties_on_random_instances():
    k_base, k_hat, k_mu = jax.random.split(jax.random.key(3), 3)
    base = random_logp(k_base, 64, 8)
    hat = random_logp(k_hat, 64, 8, concentration=0.3)
    mu = jnp.exp(random_logp(k_mu, 1, 64)[0])
    deltas = [0.01, 0.1, 0.3, 0.5, 0.9]
    errors = [float(sharpen.sharpening_error(hat, base, mu, delta=d)) for d in deltas]
    assert all(0.0 <= e <= 1.0 + tol.rtol() for e in errors)
    assert all(a >= b for a, b in itertools.pairwise(errors))  # non-increasing in delta
    # A larger gamma enlarges the target set, so the error cannot grow.
    by_gamma = [
        float(sharpen.sharpening_error(hat, base, mu, delta=0.3, gamma=g)) for g in [0.0, 0.3, 0.7]
    ]
    assert by_gamma[0] >= by_gamma[1] >= by_gamma[2]
    # A model that puts all its mass on the base argmax is sharpened for every delta.
    onto_argmax = jnp.log(jax.nn.one_hot(jnp.argmax(base, axis=-1), 8, dtype=base.dtype))
    assert float(sharpen.sharpening_error(onto_argmax, base, mu, delta=1e-6)) == 0.0
    # And the error equals the mu-weighted indicator computed in numpy.
    mass = np.asarray(sharpen.target_mass(hat, base), np.float64)
    expected = float(np.sum(np.asarray(mu, np.float64) * (mass <= 1.0 - 0.3)))
    tol.assert_close(sharpen.sharpening_error(hat, base, mu, delta=0.3), expected, "composite")


def test_sharpening_error_under_jit_with_traced_delta():
    base = random_logp(jax.random.key(4), 16, 5)
    hat = random_logp(jax.random.key(5), 16, 5)
    mu = jnp.full(16, 1.0 / 16)
    jitted = jax.jit(lambda h, b, m, d: sharpen.sharpening_error(h, b, m, delta=d))
    for delta in [0.1, 0.5]:
        tol.assert_close(
            jitted(hat, base, mu, jnp.asarray(delta)),
            sharpen.sharpening_error(hat, base, mu, delta=delta),
        )

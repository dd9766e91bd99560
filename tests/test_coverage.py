"""Tests for :mod:`sharpen.coverage` (THEORY §2, Lemma 4.1 in §4.3, the hard instance of §5.6).

Inequalities are checked with a relative slack from the dtype table (they are exact in real
arithmetic, so only rounding may push one side past the other); identities with
``tol.assert_close``.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from tests import tolerances as tol
from tests.random_policies import random_logp, tied_logp
from theory import instances


def uniform_mu(num_prompts: int):
    return jnp.full(num_prompts, 1.0 / num_prompts)


def instance(kind: str, seed: int):
    """A random [16, 12] instance with unique argmaxes ("unique") or 2- or 3-way ties."""
    key = jax.random.key(seed)
    if kind == "unique":
        logp = random_logp(key, 16, 12)
    elif kind == "ties2":
        logp = tied_logp(key, 16, 12, copies=2)
    else:
        logp = tied_logp(key, 16, 12, copies=3)
    mu = jnp.exp(random_logp(jax.random.fold_in(key, 1), 1, 16)[0])
    return logp, mu


KINDS_SEEDS = list(itertools.product(["unique", "ties2", "ties3"], [0, 1]))


def leq(a, b, kind: str = "composite") -> bool:
    """``a <= b`` up to the dtype's relative rounding slack."""
    return float(a) <= float(b) * (1.0 + tol.rtol(kind))


def test_c_cov_hand_built():
    logp = jnp.log(jnp.array([[0.5, 0.5, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]]))
    mu = jnp.array([0.5, 0.25, 0.25])
    # Set masses 1 (tie), 0.8, 0.5: C_cov = 0.5 + 0.25 / 0.8 + 0.25 / 0.5 = 1.3125.
    tol.assert_close(sharpen.c_cov(logp, mu), 1.3125, "composite")
    # gamma = 0.5: prompt 2's set becomes {0.3, 0.5} (0.3 >= 0.25), prompt 1 unchanged.
    tol.assert_close(sharpen.c_cov(logp, mu, gamma=0.5), 0.5 + 0.25 / 0.8 + 0.25 / 0.8, "composite")
    # C_bar uses the single largest mass: 0.5 / 0.5 + 0.25 / 0.8 + 0.25 / 0.5.
    tol.assert_close(sharpen.c_cov_bar(logp, mu), 1.0 + 0.3125 + 0.5, "composite")


@pytest.mark.parametrize(("kind", "seed"), KINDS_SEEDS)
def test_coverage_coefficient_orderings(kind, seed):
    logp, mu = instance(kind, seed)
    c = sharpen.c_cov(logp, mu)
    assert leq(1.0, c)
    by_gamma = [sharpen.c_cov(logp, mu, gamma=g) for g in [0.0, 0.2, 0.5, 0.9]]
    assert all(leq(b, a) for a, b in itertools.pairwise(by_gamma))
    tol.assert_close(by_gamma[0], c)
    by_p = [sharpen.c_cov_p(logp, mu, p=p) for p in [1, 2, 3, 5]]  # power means grow with p
    assert all(leq(a, b) for a, b in itertools.pairwise(by_p))
    tol.assert_close(by_p[0], c, "composite")
    tol.assert_close(sharpen.c_cov_p(logp, mu, gamma=0.5, p=1), by_gamma[2], "composite")
    c_bar = sharpen.c_cov_bar(logp, mu)
    if kind == "unique":
        tol.assert_close(c_bar, c, "composite")  # equality iff every argmax is unique
    else:
        # Every argmax set holds exactly `copies` equal masses: C_bar = copies * C_cov > C_cov.
        copies = 2 if kind == "ties2" else 3
        tol.assert_close(c_bar, copies * c, "composite")


def test_c_cov_bar_equals_c_cov_iff_argmax_unique_per_prompt():
    unique = jnp.log(jnp.array([[0.5, 0.3, 0.2]]))
    tied = jnp.log(jnp.array([[0.4, 0.4, 0.2]]))
    one = jnp.ones(1)
    tol.assert_close(sharpen.c_cov_bar(unique, one), sharpen.c_cov(unique, one), "composite")
    assert float(sharpen.c_cov_bar(tied, one)) > float(sharpen.c_cov(tied, one)) * 1.5


def test_c_cov_is_one_exactly_for_point_masses_on_the_argmax_set():
    logp = jnp.log(jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    tol.assert_close(sharpen.c_cov(logp, jnp.array([0.3, 0.7])), 1.0)


def test_prompts_with_zero_mu_do_not_count():
    logp = jnp.log(jnp.array([[0.9, 0.1], [1e-3, 1.0 - 1e-3]]))
    logp_bad = logp.at[0].set(jnp.log(jnp.array([0.5, 0.5])))
    mu = jnp.array([0.0, 1.0])
    tol.assert_close(sharpen.c_cov(logp, mu), sharpen.c_cov(logp_bad, mu))
    tol.assert_close(sharpen.c_cov(logp, mu), 1.0 / (1.0 - 1e-3), "composite")


@pytest.mark.parametrize(("kind", "seed"), KINDS_SEEDS)
def test_concentrability_of_pi_base_is_one(kind, seed):
    logp, mu = instance(kind, seed)
    tol.assert_close(sharpen.concentrability(logp, logp, mu), 1.0, "composite")
    tol.assert_close(sharpen.concentrability_beta(logp, logp, mu, beta=0.3), 1.0, "composite")


def power_policy(logp_base, beta: float):
    """pi*_beta = pi_base^(1 + 1/beta) / Z_beta = softmax((1 + 1/beta) log pi_base) (Eq. 3)."""
    return jax.nn.log_softmax((1.0 + 1.0 / beta) * logp_base, axis=-1)


@pytest.mark.parametrize(("kind", "seed"), KINDS_SEEDS)
@pytest.mark.parametrize("beta", [0.05, 0.5, 2.0])
def test_lemma_4_1_on_random_instances(kind, seed, beta):
    logp, mu = instance(kind, seed)
    logp_star = power_policy(logp, beta)
    # (i) C_{pi*_beta} <= C_cov.
    assert leq(sharpen.concentrability(logp_star, logp, mu), sharpen.c_cov(logp, mu))
    # (ii) as an identity: (pi_base / pi*_beta)^beta = Z_beta^beta / pi_base, so
    # C_{pi_base / pi*_beta; beta} = |Y| E_x[Z_beta(x)^beta] <= |Y|  (THEORY §4.3).
    log_z = jax.nn.logsumexp((1.0 + 1.0 / beta) * logp, axis=-1)
    identity = logp.shape[-1] * jnp.sum(mu * jnp.exp(beta * log_z))
    c_loss = sharpen.concentrability_beta(logp, logp_star, mu, beta=beta)
    tol.assert_close(c_loss, identity, "composite")
    assert leq(c_loss, logp.shape[-1])


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("gamma", [0.2, 0.6])
def test_lemma_4_1_prime_corrected_bound_holds(beta, gamma):
    # THEORY §8 item 9: what holds for gamma > 0 is
    # C_{pi*_beta} <= E_x[min(1 / pi_base(y*), (1 - gamma)^(-1/beta) / pi_base(y*_gamma))].
    logp, mu = instance("unique", 7)
    mass = np.asarray(sharpen.target_mass(logp, logp), np.float64)
    mass_g = np.asarray(sharpen.target_mass(logp, logp, gamma=gamma), np.float64)
    bound = np.sum(
        np.asarray(mu, np.float64) * np.minimum(1 / mass, (1 - gamma) ** (-1 / beta) / mass_g)
    )
    assert leq(sharpen.concentrability(power_policy(logp, beta), logp, mu), bound)


def test_lemma_4_1_prime_as_printed_fails_on_the_counterexample():
    # THEORY §8 item 9: p* = 0.02 unique, 98 responses at 0.0099, one at 0.0098, gamma = 0.6.
    probs = np.concatenate([[0.02], np.full(98, 0.0099), [0.0098]])
    logp = jnp.log(jnp.asarray(probs / probs.sum()))[None]
    one = jnp.ones(1)
    printed = sharpen.c_cov(logp, one, gamma=0.6) / (1.0 - 0.6)
    tol.assert_close(printed, 2.5, "composite")
    assert float(sharpen.concentrability(power_policy(logp, 0.1), logp, one)) > 40.0
    assert leq(sharpen.concentrability(power_policy(logp, 1.0), logp, one), printed)


@pytest.mark.parametrize(
    ("d", "M", "Delta"), [(1, 4, 0.5), (3, 10, 0.1), (5, 201, 0.16), (2, 1000, 0.9)]
)
def test_hard_instance_rows_argmax_and_c_cov(d, M, Delta):
    inst = instances.hard_instance(d=d, M=M, Delta=Delta)
    tol.assert_close(jnp.sum(jnp.exp(inst.logp_base), axis=-1), np.ones(d + 1), "composite")
    tol.assert_close(jnp.sum(inst.mu), 1.0, "composite")
    mask = sharpen.argmax_mask(inst.logp_base, gamma=0.5)
    np.testing.assert_array_equal(jnp.sum(mask, axis=-1), np.ones(d + 1))  # y*_{1/2} singleton
    # THEORY §5.6: C_cov,1/2 = 1 - Delta + Delta M / 2 (p = 1); each hard prompt has
    # 1 / P_i(y_i) = (1 - gamma) M = M / 2. For p = 2: ((1 - Delta) + Delta (M/2)^2)^(1/2).
    expected = 1.0 - Delta + Delta * M / 2.0
    tol.assert_close(sharpen.c_cov(inst.logp_base, inst.mu, gamma=0.5), expected, "composite")
    tol.assert_close(
        sharpen.c_cov_p(inst.logp_base, inst.mu, gamma=0.5, p=1), expected, "composite"
    )
    tol.assert_close(
        sharpen.c_cov_p(inst.logp_base, inst.mu, gamma=0.5, p=2),
        np.sqrt(1.0 - Delta + Delta * (M / 2.0) ** 2),
        "composite",
    )

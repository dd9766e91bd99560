"""Tests for sharpen.xpo: theory defaults, offline Eq. 8 / DPO, XPO (Alg. 1) and SEC diagnostics."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import linear_softmax as ls
from sharpen import rlhf, xpo
from sharpen.targets import sharpening_error
from tests.test_linear_softmax import unit_features
from tests.tolerances import assert_close

NUM_X, NUM_Y, DIM = 3, 6, 3
BETA, RADIUS, DELTA = 0.2, 10.0, 0.2


@pytest.fixture(scope="module")
def instance():
    key_phi, key_theta = jax.random.split(jax.random.key(0))
    phi = unit_features(key_phi, (NUM_X, NUM_Y, DIM))
    theta = jax.random.normal(key_theta, (DIM,))
    theta_base = 1.5 * theta / jnp.linalg.norm(theta)  # (1 + 1/beta) * 1.5 = 9 <= RADIUS
    mu = jnp.full(NUM_X, 1.0 / NUM_X)
    return phi, theta_base, mu


@pytest.fixture(scope="module")
def xpo_run(instance):
    phi, theta_base, mu = instance
    return xpo.xpo(phi, theta_base, key=jax.random.key(1), num_rounds=40, radius=RADIUS,
                   mu=mu, beta=BETA, inner_steps=100, learning_rate=0.3)  # fmt: skip


# --------------------------------------------------------------------------- defaults


def test_default_beta_and_alpha_formulas():
    assert_close(xpo.default_beta(0.5, 100, 0.1), 0.5 / (2 * math.log(2000.0)))
    beta, t, d, b, y, eps, delta, rho = 0.1, 50, 4, 3.0, 20, 0.1, 0.2, 0.05
    want = (beta / (b + math.log(y))) * math.sqrt(
        (d * math.log(b * d * t / (eps * delta)) + math.log(t / rho)) / (d * t * math.log(t))
    )
    got = xpo.default_alpha(beta, num_rounds=t, dim=d, radius=b, num_responses=y,
                            epsilon=eps, delta=delta, rho=rho)  # fmt: skip
    assert_close(got, want)
    with pytest.raises(ValueError, match="num_rounds"):
        xpo.default_alpha(beta, num_rounds=1, dim=d, radius=b, num_responses=y,
                          epsilon=eps, delta=delta, rho=rho)  # fmt: skip
    with pytest.raises(ValueError, match="gamma_margin"):
        xpo.default_beta(0.0, 10, 0.1)
    with pytest.raises(ValueError, match="delta"):
        xpo.default_beta(0.5, 10, 1.0)


def test_theory_beta_makes_pi_beta_star_sharp(instance):
    """At beta = gamma / (2 log(2|Y|/delta)), pi*_beta(y*) >= 1 - delta/2 (proof of Thm J.2)."""
    phi, theta_base, _ = instance
    logp = ls.policy_logprobs(theta_base, phi)
    gamma = rlhf.gamma_margin(logp)
    beta = xpo.default_beta(gamma, NUM_Y, DELTA)
    star = rlhf.pi_beta_star(logp, beta)
    assert np.all(np.asarray(gamma) <= 2.5)  # log(1 + gamma) >= gamma / 2 needs gamma <~ 2.51
    assert np.all(np.asarray(jnp.max(jnp.exp(star), axis=-1)) >= 1 - DELTA / 2)


# --------------------------------------------------------------------------- offline


def test_offline_eq8_recovers_the_sharpened_parameter(instance):
    phi, theta_base, _ = instance
    prompts = jnp.arange(30, dtype=jnp.int32) % NUM_X
    out = xpo.offline_rlhf_sharpening(phi, theta_base, prompts, beta=BETA, radius=RADIUS,
                                      key=jax.random.key(2), n_steps=400, learning_rate=0.3)  # fmt: skip
    chex.assert_shape(out.responses, (30, 2))
    # Realizable and noiseless: zero loss at (1 + 1/beta) theta_base (Eq. 8, Assumption 4.3).
    chex.assert_trees_all_close(out.theta, ls.sharpened_theta(theta_base, BETA), atol=1e-3)
    assert float(out.loss[-1]) < 1e-6
    assert float(out.loss[0]) > 1e-2


def test_dpo_sharpening_moves_towards_the_argmax_and_respects_the_ball(instance):
    phi, theta_base, mu = instance
    prompts = jnp.arange(30, dtype=jnp.int32) % NUM_X
    out = xpo.dpo_sharpening(phi, theta_base, prompts, beta=BETA, radius=RADIUS,
                             key=jax.random.key(2), n_steps=300, learning_rate=0.3)  # fmt: skip
    assert float(jnp.linalg.norm(out.theta)) <= RADIUS * (1 + 1e-6)
    diag = xpo.iterate_diagnostics(jnp.stack([theta_base, out.theta]), phi, theta_base, mu,
                                   beta=BETA, delta=DELTA)  # fmt: skip
    assert float(diag.target_mass[1]) > float(diag.target_mass[0])
    assert float(out.loss[-1]) < float(out.loss[0])


# --------------------------------------------------------------------------- XPO


def test_xpo_improves_j_beta_and_sharpening_error(instance, xpo_run):
    phi, theta_base, mu = instance
    res = xpo_run
    chex.assert_shape(res.iterates, (41, DIM))
    chex.assert_shape([res.prompts, res.responses, res.base_responses, res.inner_loss], (40,))
    chex.assert_trees_all_close(res.iterates[0], theta_base)
    assert np.all(np.asarray(jnp.linalg.norm(res.iterates, axis=-1)) <= RADIUS * (1 + 1e-6))
    assert int(res.best_index) == int(jnp.argmax(res.j_beta))
    chex.assert_trees_all_close(res.theta_hat, res.iterates[res.best_index])
    diag = xpo.iterate_diagnostics(res.iterates, phi, theta_base, mu, beta=BETA, delta=DELTA)
    assert_close(diag.j_beta, res.j_beta, "composite")  # held-out = exact under mu here
    best = int(res.best_index)
    assert float(diag.j_beta[best]) > float(diag.j_beta[0])
    # Near pi*_beta: KL(pi_hat || pi*_beta) is small, and pi_hat is as sharp as pi*_beta.
    assert float(diag.kl_to_target[best]) < 0.05 * float(diag.kl_to_target[0])
    logp_base = ls.policy_logprobs(theta_base, phi)
    target_error = sharpening_error(rlhf.pi_beta_star(logp_base, BETA), logp_base, mu, delta=DELTA)
    assert float(diag.sharpening_error[best]) == float(target_error)
    assert float(diag.sharpening_error[best]) < float(diag.sharpening_error[0]) == 1.0
    assert float(diag.target_mass[best]) > float(diag.target_mass[0]) + 0.1
    assert float(diag.concentrability[0]) == pytest.approx(1.0, rel=1e-5)


def test_xpo_second_call_does_not_recompile(instance, xpo_run):
    phi, theta_base, mu = instance
    del xpo_run  # compiled the loop for these shapes and static arguments
    before = xpo._xpo_jit._cache_size()
    res = xpo.xpo(phi, theta_base, key=jax.random.key(7), num_rounds=40, radius=0.5 * RADIUS,
                  mu=mu, beta=0.5, alpha=0.01, inner_steps=100, learning_rate=0.1)  # fmt: skip
    jax.block_until_ready(res)
    assert xpo._xpo_jit._cache_size() == before


def test_xpo_defaults_heldout_prompts_and_prompt_distribution(instance):
    phi, theta_base, _ = instance
    mu = jnp.array([0.0, 0.5, 0.5])
    res = xpo.xpo(phi, theta_base, key=jax.random.key(3), num_rounds=8, radius=RADIUS, mu=mu,
                  heldout_prompts=jnp.array([1, 2, 2]), inner_steps=10)  # fmt: skip
    assert np.all(np.asarray(res.prompts) > 0)  # mu(0) = 0 is never drawn
    gamma = rlhf.instance_gamma_margin(ls.policy_logprobs(theta_base, phi), mu)
    assert_close(res.beta, xpo.default_beta(gamma, NUM_Y, 0.1), "composite")
    alpha = xpo.default_alpha(res.beta, num_rounds=8, dim=DIM, radius=RADIUS,
                              num_responses=NUM_Y, epsilon=0.1, delta=0.1, rho=0.1)  # fmt: skip
    assert_close(res.alpha, alpha, "composite")
    weights = jnp.array([0.0, 1 / 3, 2 / 3])
    diag = xpo.iterate_diagnostics(res.iterates, phi, theta_base, weights, beta=res.beta,
                                   delta=0.1)  # fmt: skip
    assert_close(res.j_beta, diag.j_beta, "composite")


# --------------------------------------------------------------------------- diagnostics


def _brute_sigma(theta, phi, theta_base, mu, r_max):
    """E[(psi - psi')(psi - psi')^T] by enumerating all (x, y, y') in float64."""
    phi = np.asarray(phi, np.float64)
    logp = np.asarray(ls.policy_logprobs(theta, phi), np.float64)
    logb = np.asarray(ls.policy_logprobs(theta_base, phi), np.float64)
    psi = np.concatenate([phi, (logb / r_max)[..., None]], axis=-1)
    sigma = np.zeros((psi.shape[-1],) * 2)
    for x in range(phi.shape[0]):
        for y in range(phi.shape[1]):
            for yp in range(phi.shape[1]):
                diff = psi[x, y] - psi[x, yp]
                w = float(mu[x]) * np.exp(logp[x, y] + logb[x, yp])
                sigma += w * np.outer(diff, diff)
    return sigma


def test_sec_potential_matches_brute_force_and_lemma_j5(instance, xpo_run):
    phi, theta_base, mu = instance
    iterates = xpo_run.iterates[:-1]
    out = xpo.sec_potential(iterates, phi, theta_base, mu, beta=BETA, radius=RADIUS)
    r_max = xpo.reward_bound(RADIUS, NUM_Y)
    assert float(out.r_max) == pytest.approx(r_max)
    assert float(out.lam) == pytest.approx(4 * BETA**2 * RADIUS**2 + r_max**2)
    # Potential of the first two rounds by enumeration.
    s1 = _brute_sigma(iterates[0], phi, theta_base, mu, r_max)
    s2 = _brute_sigma(iterates[1], phi, theta_base, mu, r_max)
    eye = np.eye(DIM + 1)
    assert_close(out.trace[:2], [np.trace(s1), np.trace(s2)], "composite")
    assert_close(out.potential[0], np.trace(s1), "composite")
    assert_close(out.potential[1], np.trace(np.linalg.solve(eye + s1, s2)), "composite")
    # Lemma J.5 chain: sec_t <= 2 potential_t (lam >= ||w_t||^2), potential <= Lemma F.2 bound.
    assert np.all(np.asarray(out.sec) <= 2 * np.asarray(out.potential) + 1e-6)
    assert np.all(np.asarray(out.trace) <= 8.0)
    bound = xpo.elliptic_potential_bound(DIM + 1, np.arange(1, 41), trace_bound=8.0)
    assert np.all(np.asarray(out.potential_cum) <= np.asarray(bound))
    assert np.all(np.diff(np.asarray(out.sec_cum)) >= 0)


def test_iterate_diagnostics_at_the_target(instance):
    phi, theta_base, mu = instance
    star = ls.sharpened_theta(theta_base, BETA)
    diag = xpo.iterate_diagnostics(jnp.stack([theta_base, star]), phi, theta_base, mu,
                                   beta=BETA, delta=DELTA)  # fmt: skip
    assert abs(float(diag.kl_to_target[1])) < 1e-4
    logp_star = ls.policy_logprobs(star, phi)
    logp_base = ls.policy_logprobs(theta_base, phi)
    assert_close(diag.sharpening_error[1], sharpening_error(logp_star, logp_base, mu, delta=DELTA))


# --------------------------------------------------------------------------- validation


def test_validation_names_the_argument(instance):
    phi, theta_base, mu = instance
    prompts = jnp.array([0, 1], jnp.int32)
    common = dict(key=jax.random.key(0), num_rounds=2, radius=RADIUS, inner_steps=1)
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError, match="beta"):
            xpo.xpo(phi, theta_base, beta=bad, **common)
        with pytest.raises(ValueError, match="beta"):
            xpo.offline_rlhf_sharpening(phi, theta_base, prompts, beta=bad, radius=RADIUS,
                                        key=jax.random.key(0))  # fmt: skip
        with pytest.raises(ValueError, match="radius"):
            xpo.xpo(phi, theta_base, beta=BETA, **{**common, "radius": bad})
        with pytest.raises(ValueError, match="radius"):
            xpo.dpo_sharpening(phi, theta_base, prompts, beta=BETA, radius=bad,
                               key=jax.random.key(0))  # fmt: skip
    with pytest.raises(ValueError, match="alpha"):
        xpo.xpo(phi, theta_base, beta=BETA, alpha=-0.1, **common)
    with pytest.raises(ValueError, match="features"):
        xpo.xpo(1.5 * phi, theta_base, beta=BETA, **common)
    with pytest.raises(ValueError, match="theta_base"):
        xpo.xpo(phi, theta_base[:2], beta=BETA, **common)
    with pytest.raises(ValueError, match="mu"):
        xpo.xpo(phi, theta_base, beta=BETA, mu=jnp.array([0.5, 0.5]), **common)
    with pytest.raises(ValueError, match="heldout_prompts"):
        xpo.xpo(phi, theta_base, beta=BETA, heldout_prompts=jnp.array([5]), **common)
    with pytest.raises(ValueError, match="prompts"):
        xpo.offline_rlhf_sharpening(phi, theta_base, jnp.array([3]), beta=BETA, radius=RADIUS,
                                    key=jax.random.key(0))  # fmt: skip
    with pytest.raises(ValueError, match="iterates"):
        xpo.sec_potential(jnp.zeros((3, 2)), phi, theta_base, mu, beta=BETA, radius=RADIUS)
    with pytest.raises(ValueError, match="learning_rate"):
        xpo.xpo(phi, theta_base, beta=BETA, learning_rate=0.0, **common)

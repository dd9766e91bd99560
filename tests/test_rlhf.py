"""Tests for sharpen.rlhf: closed form of Eq. 3, the solver, margins, pair losses, Lemma 4.1."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import rlhf
from sharpen.xpo import default_beta
from tests.tolerances import assert_close, float_dtype


def _random_logp(key, num_prompts, num_responses, concentration=1.0):
    p = jax.random.dirichlet(key, jnp.full(num_responses, concentration), (num_prompts,))
    logp = jnp.log(p)
    return logp - jax.nn.logsumexp(logp, axis=-1, keepdims=True)


def _tied_logp(key, num_prompts, num_responses):
    """Log-probs from integer logits: exact ties (also at the argmax) are common."""
    logits = 0.7 * jax.random.randint(key, (num_prompts, num_responses), 0, 4).astype(float_dtype())
    return jax.nn.log_softmax(logits, axis=-1)


# --------------------------------------------------------------------------- pi_beta_star


def test_pi_beta_star_is_the_power_distribution():
    logp = _random_logp(jax.random.key(0), 5, 7)
    host = np.exp(np.asarray(logp, np.float64))
    for beta in (0.1, 1.0, 3.0):
        want = host ** (1 + 1 / beta)
        want /= want.sum(-1, keepdims=True)
        assert_close(jnp.exp(rlhf.pi_beta_star(logp, beta)), want, "composite", abs_floor=True)


@pytest.mark.parametrize("x64", [False, True], ids=["default", "float64"])
def test_pi_beta_star_finite_for_extreme_beta_and_tiny_masses(x64):
    with jax.enable_x64(x64 or jax.config.jax_enable_x64):
        logits = jnp.array([0.0, -1e-3, -30.0, -300.0, -700.0, -jnp.inf])
        logp = jax.nn.log_softmax(logits)
        for beta in np.logspace(-6, 3, 28):
            star = rlhf.pi_beta_star(logp, float(beta))
            assert not np.any(np.isnan(np.asarray(star)))
            assert np.all(np.asarray(star) < np.inf)
            assert star[-1] == -np.inf  # zero base mass stays zero
            assert abs(float(jnp.sum(jnp.exp(star))) - 1.0) < 1e-5
            assert int(jnp.argmax(star)) == 0
        # beta -> 0: all mass on the unique argmax; beta -> inf: back to pi_base.
        assert float(jnp.exp(rlhf.pi_beta_star(logp, 1e-6))[0]) > 1 - 1e-6
        chex.assert_trees_all_close(jnp.exp(rlhf.pi_beta_star(logp, 1e6)), jnp.exp(logp), atol=1e-5)


def test_pi_beta_star_splits_ties_evenly_as_beta_goes_to_zero():
    logp = jnp.log(jnp.array([0.3, 0.3, 0.2, 0.2]))
    star = jnp.exp(rlhf.pi_beta_star(logp, 1e-6))
    chex.assert_trees_all_close(star, jnp.array([0.5, 0.5, 0.0, 0.0]), atol=1e-6)


def test_pi_beta_star_per_prompt_beta():
    logp = _random_logp(jax.random.key(1), 3, 4)
    betas = jnp.array([0.1, 1.0, 10.0], logp.dtype)
    rows = jnp.stack([rlhf.pi_beta_star(logp[i], float(betas[i])) for i in range(3)])
    assert_close(rlhf.pi_beta_star(logp, betas), rows, "composite")


# --------------------------------------------------------------------------- KL and J_beta


def test_kl_divergence_handles_zero_mass_and_support_mismatch():
    base = jnp.log(jnp.array([0.5, 0.25, 0.25]))
    pi = jnp.log(jnp.array([0.5, 0.5, 0.0]))
    want = 0.5 * np.log(0.5 / 0.25)
    assert_close(rlhf.kl_divergence(pi, base), want)
    assert float(rlhf.kl_divergence(base, base)) == 0.0
    assert float(rlhf.kl_divergence(base, pi)) == np.inf  # pi_base charges y with pi(y) = 0
    assert np.isfinite(float(rlhf.j_beta(pi, base, 0.5)))


def test_j_beta_maximum_and_gap_identity():
    """max J_beta = beta log Z_beta at pi*; J(pi*) - J(pi) = beta KL(pi || pi*) (Thm J.1)."""
    key_base, key_pi = jax.random.split(jax.random.key(2))
    logp = _random_logp(key_base, 6, 9)
    logp_pi = _random_logp(key_pi, 6, 9, 0.5)
    for beta in (0.2, 1.0, 5.0):
        star = rlhf.pi_beta_star(logp, beta)
        j_star = rlhf.j_beta(star, logp, beta)
        log_z = jax.nn.logsumexp((1 + 1 / beta) * logp, axis=-1)
        assert_close(j_star, beta * log_z, "composite")
        gap = j_star - rlhf.j_beta(logp_pi, logp, beta)
        assert_close(gap, beta * rlhf.kl_divergence(logp_pi, star), "composite")
        assert np.all(np.asarray(gap) > 0)


# --------------------------------------------------------------------------- solver


@pytest.mark.parametrize("num_responses", [4, 32])
def test_solver_converges_to_closed_form(num_responses):
    """||pi_learned - pi*_beta||_1 <= 1e-4 on 8 random prompts per (beta, concentration)."""
    betas = (0.01, 0.1, 1.0, 10.0)
    keys = jax.random.split(jax.random.key(num_responses), 2)
    logp = jnp.concatenate(
        [
            _random_logp(k, 8 * len(betas), num_responses, c)
            for k, c in zip(keys, (0.3, 2.0), strict=True)
        ]
    )
    beta_X = jnp.tile(jnp.repeat(jnp.asarray(betas, logp.dtype), 8), 2)
    sol = rlhf.solve_rlhf_tabular(logp, beta_X)
    chex.assert_shape(sol.logp, logp.shape)
    star = rlhf.pi_beta_star(logp, beta_X)
    l1_X = jnp.sum(jnp.abs(jnp.exp(sol.logp) - jnp.exp(star)), axis=-1)
    assert float(jnp.max(l1_X)) <= 1e-4, float(jnp.max(l1_X))
    # The objective ends at the optimum: the mean over prompts of beta log Z_beta.
    opt = jnp.mean(rlhf.j_beta(star, logp, beta_X))
    assert float(sol.objective[-1]) <= float(opt) + 1e-5
    assert float(opt - sol.objective[-1]) < 1e-4


def test_solver_keeps_zero_mass_responses_at_zero():
    logp = jnp.log(jnp.array([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]]))
    sol = rlhf.solve_rlhf_tabular(logp, 0.5, steps=500)
    assert sol.logp[0, 3] == -np.inf
    assert not np.any(np.isnan(np.asarray(sol.logp)))


# --------------------------------------------------------------------------- margin


def test_gamma_margin_cases():
    logp = jnp.log(
        jnp.array([[0.4, 0.4, 0.2], [0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.4, 0.0]])
    )
    gamma = np.asarray(rlhf.gamma_margin(logp))
    np.testing.assert_allclose(gamma[:2], [1.0, 1.0], rtol=1e-5)
    assert gamma[2] == np.inf  # every response is an argmax
    np.testing.assert_allclose(gamma[3], 0.5, rtol=1e-5)
    mu = jnp.array([0.0, 0.5, 0.5, 0.0])
    assert float(rlhf.instance_gamma_margin(logp, mu)) == pytest.approx(1.0, rel=1e-5)
    assert float(rlhf.instance_gamma_margin(logp, jnp.full(4, 0.25))) == pytest.approx(
        0.5, rel=1e-5
    )


def test_gamma_margin_is_the_largest_valid_gamma():
    logp = _random_logp(jax.random.key(3), 50, 6)
    gamma = rlhf.gamma_margin(logp)
    p = np.exp(np.asarray(logp, np.float64))
    ratio = p.max(-1, keepdims=True) / np.where(p < p.max(-1, keepdims=True), p, np.nan)
    np.testing.assert_allclose(np.asarray(gamma), np.nanmin(ratio, -1) - 1.0, rtol=1e-4)


# --------------------------------------------------------------------------- pair losses


def _all_pairs(logp_XxY):
    num_x, num_y = logp_XxY.shape
    x, y, yp = jnp.meshgrid(jnp.arange(num_x), jnp.arange(num_y), jnp.arange(num_y), indexing="ij")
    return x.ravel(), y.ravel(), yp.ravel()


def test_eq8_loss_is_zero_at_pi_beta_star_and_positive_at_base():
    logp = _random_logp(jax.random.key(4), 4, 6)
    x, y, yp = _all_pairs(logp)
    for beta in (0.05, 0.5, 2.0):
        star = rlhf.pi_beta_star(logp, beta)
        loss = rlhf.eq8_loss(star[x, y], star[x, yp], logp[x, y], logp[x, yp], beta)
        chex.assert_shape(loss, x.shape)
        # residual = (1 + beta) * (error of a difference of logs): ~ a few ulps of |logp| ~ 10.
        assert float(jnp.max(jnp.sqrt(loss))) < 1e-4
        at_base = rlhf.eq8_loss(logp[x, y], logp[x, yp], logp[x, y], logp[x, yp], beta)
        assert_close(at_base, (logp[x, y] - logp[x, yp]) ** 2, "composite")


def test_eq8_loss_ignores_per_prompt_normalization():
    logp = _random_logp(jax.random.key(5), 3, 5)
    pi = _random_logp(jax.random.key(6), 3, 5)
    x, y, yp = _all_pairs(logp)
    shifted = pi + jnp.array([[1.0], [-2.0], [30.0]], pi.dtype)
    a = rlhf.eq8_loss(pi[x, y], pi[x, yp], logp[x, y], logp[x, yp], 0.3)
    b = rlhf.eq8_loss(shifted[x, y], shifted[x, yp], logp[x, y], logp[x, yp], 0.3)
    chex.assert_trees_all_close(a, b, atol=1e-3)


def test_dpo_loss_properties():
    args = (jnp.array([-1.0, -3.0, -2.0]), jnp.array([-2.0, -1.0, -2.5]))
    base = (jnp.array([-1.5, -2.0, -2.0]), jnp.array([-2.5, -2.0, -1.0]))
    loss = rlhf.dpo_logistic_loss(*args, *base, 0.7)
    # Symmetric in the order of the pair (the winner is picked by the base log-probs).
    swapped = rlhf.dpo_logistic_loss(args[1], args[0], base[1], base[0], 0.7)
    assert_close(loss, swapped)
    # pi = pi_base: zero implicit reward margin, loss log 2, ties included.
    at_base = rlhf.dpo_logistic_loss(base[0], base[1], base[0], base[1], 0.7)
    assert_close(at_base, np.full(3, np.log(2.0)))
    # Tie (second pair): average of both orderings, minimized at equal implicit rewards.
    h = 0.7 * ((-3.0 + 2.0) - (-1.0 + 2.0))
    assert_close(loss[1], 0.5 * (np.logaddexp(0, h) + np.logaddexp(0, -h)))
    # Moving mass towards the winner decreases the loss; huge margins stay finite.
    winner_up = rlhf.dpo_logistic_loss(0.0, -2.0, -1.0, -2.0, 1.0)
    assert float(winner_up) < np.log(2.0)
    assert float(rlhf.dpo_logistic_loss(-1e4, 0.0, -1.0, -2.0, 1.0)) == pytest.approx(1e4 + 1.0)
    assert float(rlhf.dpo_logistic_loss(0.0, -1e4, -1.0, -2.0, 1.0)) == 0.0


def test_dpo_loss_gradients():
    base_y, base_yp = jnp.array([-1.0, -2.0]), jnp.array([-2.0, -2.0])
    f = lambda a, b: jnp.sum(rlhf.dpo_logistic_loss(a, b, base_y, base_yp, 0.5))  # noqa: E731
    with jax.numpy_dtype_promotion("standard"):  # check_grads mixes float64 test points
        jax.test_util.check_grads(f, (jnp.array([-0.5, -1.0]), jnp.array([-1.5, -0.5])), order=1)


# --------------------------------------------------------------------------- Lemma 4.1


def _lemma_batch(logp_KxXxY, beta_K):
    mu = jnp.full(logp_KxXxY.shape[1], 1.0 / logp_KxXxY.shape[1], logp_KxXxY.dtype)
    return jax.jit(jax.vmap(lambda lp, b: rlhf.lemma_4_1(lp, mu, b)))(logp_KxXxY, beta_K)


def test_lemma_4_1_on_random_instances_float64():
    """Both inequalities of Lemma 4.1 on 1200 random 3-prompt instances (half with ties), float64."""
    num_responses, half = 6, 600
    with jax.enable_x64(True):
        key_a, key_b, key_beta = jax.random.split(jax.random.key(0), 3)
        logp = jnp.concatenate(
            [
                _random_logp(key_a, half * 3, num_responses, 0.5).reshape(half, 3, -1),
                _tied_logp(key_b, half * 3, num_responses).astype(jnp.float64).reshape(half, 3, -1),
            ]
        )
        beta = jnp.exp(
            jax.random.uniform(key_beta, (2 * half,), jnp.float64, np.log(1e-3), np.log(1e2))
        )
        out = _lemma_batch(logp, beta)
        assert out.conc_star.dtype == jnp.float64
        assert np.all(np.asarray(out.conc_star) <= np.asarray(out.c_cov) * (1 + 1e-10))
        assert np.all(np.asarray(out.loss_conc) <= num_responses * (1 + 1e-10))
        chex.assert_trees_all_close(out.loss_conc, out.loss_conc_identity, rtol=1e-10)
        assert np.all(np.asarray(out.conc_star) >= 1 - 1e-10)


def test_exact_beta_threshold_is_tight_and_above_the_theory_value():
    with jax.enable_x64(True):
        logp = jnp.concatenate(
            [
                _random_logp(jax.random.key(7), 300, 8, 1.0),
                _tied_logp(jax.random.key(8), 100, 8).astype(jnp.float64),
            ]
        )
        delta = 0.2
        thr = rlhf.exact_beta_threshold(logp, delta)
        finite = np.isfinite(np.asarray(thr))
        from sharpen.targets import target_mass

        mass_at = jax.jit(jax.vmap(lambda lp, b: target_mass(rlhf.pi_beta_star(lp, b), lp)))
        lp_f, thr_f = logp[finite], thr[finite]
        assert np.all(np.asarray(mass_at(lp_f, thr_f)) >= 1 - delta / 2 - 1e-12)
        assert np.all(np.asarray(mass_at(lp_f, thr_f * (1 + 1e-6))) < 1 - delta / 2)
        # Infinite threshold: already sharp at beta -> inf, i.e. pi_base itself.
        assert np.all(np.asarray(target_mass(logp[~finite], logp[~finite])) >= 1 - delta / 2)
        # Thm 4.3 / J.2: the theory's beta suffices whenever gamma_margin <= 1.
        gamma = rlhf.gamma_margin(logp)
        ok = np.asarray(gamma) <= 1.0
        sufficient = default_beta(gamma[ok], 8, delta)
        assert ok.sum() > 100
        assert np.all(np.asarray(sufficient) <= np.asarray(thr[ok]))


# --------------------------------------------------------------------------- validation


def test_validation_names_the_argument():
    logp = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="beta"):
            rlhf.pi_beta_star(logp, bad)
        with pytest.raises(ValueError, match="beta"):
            rlhf.j_beta(logp, logp, bad)
        with pytest.raises(ValueError, match="beta"):
            rlhf.solve_rlhf_tabular(logp, bad)
        with pytest.raises(ValueError, match="beta"):
            rlhf.eq8_loss(0.0, 0.0, 0.0, 0.0, bad)
        with pytest.raises(ValueError, match="beta"):
            rlhf.dpo_logistic_loss(0.0, 0.0, 0.0, 0.0, bad)
        with pytest.raises(ValueError, match="beta"):
            rlhf.lemma_4_1(logp, jnp.array([0.5, 0.5]), bad)
    with pytest.raises(ValueError, match="logp_pi and logp_base"):
        rlhf.kl_divergence(logp, logp[:1])
    with pytest.raises(ValueError, match="logp_base"):
        rlhf.pi_beta_star(jnp.array([0.5, 0.5]), 1.0)  # not log-probabilities
    with pytest.raises(ValueError, match="logp_y_prime"):
        rlhf.eq8_loss(jnp.zeros(3), jnp.zeros(2), jnp.zeros(3), jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match="logp_base_y"):
        rlhf.dpo_logistic_loss(jnp.zeros(3), jnp.zeros(3), jnp.zeros(2), jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match="steps"):
        rlhf.solve_rlhf_tabular(logp, 1.0, steps=0)
    with pytest.raises(ValueError, match="final_learning_rate"):
        rlhf.solve_rlhf_tabular(logp, 1.0, learning_rate=0.1, final_learning_rate=1.0)
    with pytest.raises(ValueError, match="delta"):
        rlhf.exact_beta_threshold(logp, 1.5)
    with pytest.raises(ValueError, match="mu"):
        rlhf.instance_gamma_margin(logp, jnp.array([1.0]))

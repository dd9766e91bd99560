"""Tests of theory/rlhf_instances.py: margins and coverage are what the constructors promise."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from sharpen import linear_softmax, rlhf
from theory import rlhf_instances as ri


def test_margin_policy_has_exact_margin_and_coverage():
    p_star = jnp.array([0.5, 0.2, 0.3])
    lp = ri.margin_policy(p_star, 10, 0.5)
    np.testing.assert_allclose(np.exp(np.asarray(lp)).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(rlhf.gamma_margin(lp)), 0.5, rtol=1e-4)
    mu = jnp.full(3, 1.0 / 3.0)
    want = float(np.mean(1.0 / np.asarray(p_star)))
    assert float(sharpen.c_cov(lp, mu)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(("p_star", "name"), [([0.05], "p_star_X"), ([0.9], "p_star_X")])
def test_margin_policy_rejects_infeasible_masses(p_star, name):
    with pytest.raises(ValueError, match=name):
        ri.margin_policy(jnp.array(p_star), 10, 0.5)


def test_random_tabular_policy_ties():
    lp = ri.random_tabular_policy(key=jax.random.key(0), num_prompts=4, num_responses=8, num_ties=2)
    assert lp.shape == (4, 8)
    assert (np.asarray(sharpen.argmax_mask(lp)).sum(axis=1) == 3).all()


@pytest.mark.parametrize("dim", [3, 5])
def test_sphere_packing_is_a_packing(dim):
    pts = np.asarray(ri.sphere_packing(key=jax.random.key(1), dim=dim, num_candidates=4000))
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-6)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + 3.0 * np.eye(len(pts))
    assert dist.min() >= 0.25 - 1e-6


def test_sphere_packing_is_deterministic_and_capped():
    a = ri.sphere_packing(key=jax.random.key(2), dim=4, num_candidates=3000, max_size=50)
    b = ri.sphere_packing(key=jax.random.key(2), dim=4, num_candidates=3000, max_size=50)
    assert a.shape == (50, 4)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dim", [4, 6])
def test_example_j1_guarantees(dim):
    inst = ri.example_j1(key=jax.random.key(dim), dim=dim, num_candidates=20_000)
    st = ri.linear_instance_stats(inst, delta=0.1)
    assert st.gamma_margin >= math.expm1(1 / 32)
    assert st.c_cov >= st.num_responses / math.e**2
    # (1 + 1/beta) theta_base lies in the ball, and pi*_beta is itself sharp (Thm J.2 key step).
    assert (1 + 1 / st.beta) * float(jnp.linalg.norm(inst.theta_base)) <= st.radius
    logp = linear_softmax.policy_logprobs(inst.theta_base, inst.features)
    assert float(jnp.exp(rlhf.pi_beta_star(logp, st.beta)[0])) >= 1 - 0.1 / 2


def test_hidden_instance_margin_and_offline_failure_condition():
    inst = ri.hidden_argmax_instance(key=jax.random.key(0), dim=6, num_candidates=20_000)
    st = ri.linear_instance_stats(inst, delta=0.1)
    assert st.gamma_margin == pytest.approx(math.expm1(9 / 32), rel=1e-4)
    # Bulk features have no component along e_d; y* does.
    feats = np.asarray(inst.features)
    assert np.all(feats[1:, -1] == 0.0) and feats[0, -1] > 0
    # The offline fit that keeps theta_d = a and sharpens the bulk puts < 1/2 on y*.
    theta = np.asarray(inst.theta_base, np.float64)
    fit = np.concatenate([(1 + 1 / st.beta) * theta[:-1], theta[-1:]])
    logits = feats @ fit
    assert math.exp(logits[0] - np.logaddexp.reduce(logits)) < 0.5
    # The target (1 + 1/beta) theta_base is sharp.
    logits = feats @ ((1 + 1 / st.beta) * theta)
    assert math.exp(logits[0] - np.logaddexp.reduce(logits)) >= 0.95

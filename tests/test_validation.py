"""Boundary validation: bad input raises ``ValueError`` naming the argument (STYLE house rules).

Checks run on concrete inputs before any jitted work; under ``jit`` they see tracers and only
check static properties, which the last test pins down.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from theory import instances

NAN = float("nan")
KEY = jax.random.key(0)


def logp_of(*probs):
    return jnp.log(jnp.asarray(probs, dtype=float))


GOOD_2x3 = jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
MU_2 = jnp.array([0.4, 0.6])


# Each case: (call taking one bad log-probability table [2, 3], name the error must carry).
LOGP_CONSUMERS = {
    "c_cov": (lambda lp: sharpen.c_cov(lp, MU_2), "logp_base"),
    "c_cov_bar": (lambda lp: sharpen.c_cov_bar(lp, MU_2), "logp_base"),
    "c_cov_p": (lambda lp: sharpen.c_cov_p(lp, MU_2, p=2), "logp"),
    "concentrability": (lambda lp: sharpen.concentrability(lp, GOOD_2x3, MU_2), "logp_pi"),
    "concentrability_prime": (
        lambda lp: sharpen.concentrability_beta(GOOD_2x3, lp, MU_2, beta=0.5),
        "logp_pi_prime",
    ),
    "bon_law": (lambda lp: sharpen.bon_law(lp, 4), "logp_base"),
    "adaptive_bon_law": (lambda lp: sharpen.adaptive_bon_law(lp, mu_stop=1.0), "logp_base"),
    "collect_bon_data": (
        lambda lp: sharpen.collect_bon_data(lp, MU_2, n=3, num_samples=2, key=KEY),
        "logp_base",
    ),
    "collect_adaptive_bon_data": (
        lambda lp: sharpen.collect_adaptive_bon_data(lp, MU_2, n=3, mu_stop=1.0, key=KEY),
        "logp_base",
    ),
}

BAD_TABLES = {
    "nan": jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])).at[0, 1].set(NAN),
    "plus_inf": jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])).at[1, 2].set(jnp.inf),
    "positive": jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])).at[0, 0].set(0.5),
    "unnormalized": jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.79]])),
    "all_but_one_eps": jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8 - 1e-5]])),
    "rank_1": jnp.log(jnp.array([0.5, 0.3, 0.2])),
}


# The laws accept any rank [..., Y], so a rank-1 table is valid input for them.
BAD_CASES = [
    (consumer, bad)
    for consumer in sorted(LOGP_CONSUMERS)
    for bad in sorted(BAD_TABLES)
    if not (bad == "rank_1" and consumer in ("bon_law", "adaptive_bon_law"))
]


@pytest.mark.parametrize(("consumer", "bad"), BAD_CASES)
def test_bad_log_probabilities_are_rejected_by_name(consumer, bad):
    call, name = LOGP_CONSUMERS[consumer]
    with pytest.raises(ValueError, match=name):
        call(BAD_TABLES[bad])


def test_normalization_slack_is_1e_minus_6():
    # Row sums within 1e-6 of 1 are accepted (float32 rounding of log-probabilities alone moves
    # the sum by ~1e-7); beyond it they are rejected.
    slightly_off = logp_of(0.5, 0.3, 0.2 + 3e-7)[None]
    sharpen.bon_law(slightly_off, 3)
    sharpen.c_cov(slightly_off, jnp.ones(1))
    clearly_off = logp_of(0.5, 0.3, 0.2 + 1e-5)[None]
    with pytest.raises(ValueError, match="logp_base"):
        sharpen.bon_law(clearly_off, 3)
    with pytest.raises(ValueError, match="mu"):
        sharpen.c_cov(GOOD_2x3, jnp.array([0.4, 0.6 + 1e-5]))
    sharpen.c_cov(GOOD_2x3, jnp.array([0.4, 0.6 + 3e-7]))


@pytest.mark.parametrize(
    "mu", [[-0.1, 1.1], [NAN, 1.0], [0.5, 0.6], [0.2, 0.3], [1.0, float("inf")]]
)
def test_bad_prompt_distribution_is_rejected(mu):
    with pytest.raises(ValueError, match="mu"):
        sharpen.c_cov(GOOD_2x3, jnp.asarray(mu))
    with pytest.raises(ValueError, match="mu"):
        sharpen.collect_bon_data(GOOD_2x3, jnp.asarray(mu), n=2, num_samples=2, key=KEY)


@pytest.mark.parametrize("mu", [jnp.ones(3) / 3, jnp.ones((2, 1)) / 2, jnp.ones(1)])
def test_prompt_axis_mismatch_is_rejected(mu):
    with pytest.raises(ValueError, match="mu"):
        sharpen.c_cov(GOOD_2x3, mu)
    with pytest.raises(ValueError, match="mu"):
        sharpen.sharpening_error(GOOD_2x3, GOOD_2x3, mu, delta=0.1)


def test_shape_mismatch_between_models_is_rejected():
    with pytest.raises(ValueError, match="logp_hat"):
        sharpen.sharpening_error(GOOD_2x3[:, :2], GOOD_2x3, MU_2, delta=0.1)
    with pytest.raises(ValueError, match="logp_pi"):
        sharpen.concentrability(GOOD_2x3[:1], GOOD_2x3, MU_2)
    with pytest.raises(ValueError, match="reward"):
        sharpen.bon_law(GOOD_2x3, 3, reward=jnp.zeros((2, 4)))


@pytest.mark.parametrize("delta", [0.0, 1.0, 1.5, -0.2, NAN])
def test_delta_outside_open_unit_interval(delta):
    with pytest.raises(ValueError, match="delta"):
        sharpen.sharpening_error(GOOD_2x3, GOOD_2x3, MU_2, delta=delta)


@pytest.mark.parametrize("epsilon", [0.0, 1.0, 1.5, NAN])
def test_epsilon_outside_open_unit_interval(epsilon):
    # sharpen takes epsilon only through theory.bounds; the Thm 4.1 settings validate it.
    from theory import bounds

    with pytest.raises(ValueError, match="epsilon"):
        bounds.sft_settings(
            c_cov=4.0, log_class_size=10.0, epsilon=epsilon, delta=0.25, rho=0.05, c=2.0
        )


@pytest.mark.parametrize("gamma", [1.0, 1.5, -0.1, NAN])
def test_gamma_outside_zero_one(gamma):
    with pytest.raises(ValueError, match="gamma"):
        sharpen.argmax_mask(GOOD_2x3, gamma=gamma)
    with pytest.raises(ValueError, match="gamma"):
        sharpen.c_cov(GOOD_2x3, MU_2, gamma=gamma)
    with pytest.raises(ValueError, match="gamma"):
        sharpen.sharpening_error(GOOD_2x3, GOOD_2x3, MU_2, delta=0.1, gamma=gamma)


@pytest.mark.parametrize("num_samples", [0, 0.5, -3, NAN, [1.0, 0.0]])
def test_bon_law_rejects_fewer_than_one_sample(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        sharpen.bon_law(
            GOOD_2x3, jnp.asarray(num_samples) if isinstance(num_samples, list) else num_samples
        )


@pytest.mark.parametrize("num_samples", [0, -1, 2.0, True])
def test_samplers_need_a_static_positive_integer(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        sharpen.best_of_n(GOOD_2x3[0], num_samples, key=KEY)
    with pytest.raises(ValueError, match="num_samples"):
        sharpen.best_of_n_batch(GOOD_2x3, jnp.array([0, 1]), num_samples, key=KEY)
    with pytest.raises(ValueError, match="num_samples"):
        sharpen.sample_responses(GOOD_2x3, jnp.array([0, 1]), num_samples, key=KEY)
    with pytest.raises(ValueError, match="num_samples"):
        sharpen.collect_bon_data(GOOD_2x3, MU_2, n=3, num_samples=num_samples, key=KEY)


def test_number_of_prompts_must_be_positive():
    with pytest.raises(ValueError, match="n must"):
        sharpen.sample_prompts(MU_2, 0, key=KEY)


@pytest.mark.parametrize("mu_stop", [0.0, -1.0, NAN, float("inf")])
def test_mu_stop_must_be_positive_and_finite(mu_stop):
    with pytest.raises(ValueError, match="mu_stop"):
        sharpen.adaptive_best_of_n(GOOD_2x3[0], mu_stop=mu_stop, key=KEY)
    with pytest.raises(ValueError, match="mu_stop"):
        sharpen.adaptive_bon_law(GOOD_2x3, mu_stop=mu_stop)
    with pytest.raises(ValueError, match="mu_stop"):
        sharpen.collect_adaptive_bon_data(GOOD_2x3, MU_2, n=2, mu_stop=mu_stop, key=KEY)


@pytest.mark.parametrize("beta", [0.0, -0.5, NAN])
def test_beta_must_be_positive(beta):
    with pytest.raises(ValueError, match="beta"):
        sharpen.concentrability_beta(GOOD_2x3, GOOD_2x3, MU_2, beta=beta)


def test_c_cov_p_order_must_be_a_positive_integer():
    for p in [0, 1.5]:
        with pytest.raises(ValueError, match="p must"):
            sharpen.c_cov_p(GOOD_2x3, MU_2, p=p)


def test_instance_constructors_validate():
    with pytest.raises(ValueError, match="Delta"):
        instances.hard_instance(d=2, M=4, Delta=1.0)
    with pytest.raises(ValueError, match="index"):
        instances.hard_instance(d=2, M=4, Delta=0.5, index=jnp.array([1, 5]))
    with pytest.raises(ValueError, match="index"):
        instances.hard_instance(d=2, M=4, Delta=0.5, index=jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="M"):
        instances.hard_response_probs(2, 0.5)  # (1 - gamma) M = 1: p_top would be 1
    with pytest.raises(ValueError, match="p_star_X"):
        instances.policy_with_top_mass(jnp.array([0.1, 0.5]), 5, key=KEY)
    with pytest.raises(ValueError, match="c_cov"):
        instances.two_point_top_mass(10, 20.0, 0.1)


def test_validation_skips_values_under_jit():
    # Inside jit the inputs are tracers: only static shapes are checked, so a traced delta of
    # 0.5 works and a static shape mismatch still raises at trace time.
    err = jax.jit(lambda d: sharpen.sharpening_error(GOOD_2x3, GOOD_2x3, MU_2, delta=d))(0.5)
    assert np.isfinite(float(err))
    with pytest.raises(ValueError, match="mu"):
        jax.jit(lambda m: sharpen.c_cov(GOOD_2x3, m))(jnp.ones(3) / 3)

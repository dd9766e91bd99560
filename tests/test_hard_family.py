"""The batched learners of experiments/hard_family.py against the literal algorithms.

S3-S5 draw per-prompt statistics from their exact laws instead of running the sampler draw by
draw. These tests run the real pipeline (inverse-CDF sampler -> best-of-N selection -> MLE by
enumeration over the best-of-N class -> exact sharpening error) on small instances and check
that the mean error over seeds matches the batched simulation within a Monte-Carlo bound.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharpen
from experiments import hard_family as hf
from theory import instances

D, M, DELTA_MASS = 2, 6, 0.5
FAM = hf.Family(epsilon=DELTA_MASS / 16, c=1.0, p=1, d=D, M=M, Delta=DELTA_MASS, gamma=0.5)
SEEDS = 4000


def _literal_sft_error(law_fn, collect, n):
    inst = instances.hard_instance(d=D, M=M, Delta=DELTA_MASS)
    candidates = law_fn(instances.hard_class_candidates(d=D, M=M))

    def one(key):
        data_key, mle_key = jax.random.split(key)
        prompts, responses = collect(inst.logp_base, inst.mu, data_key)[:2]
        counts = sharpen.counts_from_pairs(prompts, responses, D + 1, M + 1)
        idx = sharpen.product_class_mle(counts, candidates, key=mle_key)
        logp_hat = candidates[jnp.arange(D + 1), idx]
        return sharpen.sharpening_error(logp_hat, inst.logp_base, inst.mu, delta=0.5, gamma=0.5)

    keys = jax.random.split(jax.random.key(7), SEEDS)
    return np.asarray(jax.jit(jax.vmap(one))(keys))


def _batched_error(q, n):
    keys = jax.random.split(jax.random.key(8), SEEDS)
    run = jax.vmap(hf.sft_errors, in_axes=(0, None, None, None, None, None))
    err, _, capped = run(keys, float(n), q, 0.5, jnp.asarray(FAM.mu, float), float(M))
    assert not bool(jnp.any(capped))
    return np.asarray(err)


def _assert_same_mean(a, b):
    # Two independent sample means of errors bounded by Delta: |diff| <= 5 sigma of the difference.
    sigma = math.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) <= 5 * sigma + 1e-6, (a.mean(), b.mean(), sigma)


@pytest.mark.parametrize("n,num_samples", [(3, 4), (8, 6), (20, 3)])
def test_sft_batched_matches_literal_pipeline(n, num_samples):
    literal = _literal_sft_error(
        lambda c: sharpen.bon_law(c, num_samples),
        lambda lp, mu, k: sharpen.collect_bon_data(lp, mu, n=n, num_samples=num_samples, key=k),
        n,
    )
    q = float(hf.argmax_pick_prob(FAM, np.array([num_samples]))[0])
    _assert_same_mean(literal, _batched_error(q, n))


def test_adaptive_sft_batched_matches_literal_pipeline():
    mu_stop, n = math.log(4.0), 6
    literal = _literal_sft_error(
        lambda c: sharpen.adaptive_bon_law(c, mu_stop=mu_stop)[0],
        lambda lp, mu, k: sharpen.collect_adaptive_bon_data(lp, mu, n=n, mu_stop=mu_stop, key=k),
        n,
    )
    q, _, _ = hf.adaptive_pick_prob_and_cost(FAM, mu_stop)
    _assert_same_mean(literal, _batched_error(q, n))


def test_bayes_batched_matches_literal_learner():
    inst = instances.hard_instance(d=D, M=M, Delta=DELTA_MASS)
    n, num_samples = 6, 2

    def one(key):
        p_key, d_key, g_key = jax.random.split(key, 3)
        prompts = sharpen.sample_prompts(inst.mu, n, key=p_key)
        draws = sharpen.sample_responses(inst.logp_base, prompts, num_samples, key=d_key)
        counts = sharpen.counts_from_pairs(
            jnp.repeat(prompts, num_samples), draws.reshape(-1), D + 1, M + 1
        )
        guess = instances.bayes_learner(counts, inst.logp_base, M=M, key=g_key)
        return jnp.sum(inst.mu[1:] * (guess != inst.index).astype(inst.mu.dtype))

    literal = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), SEEDS)))
    table = instances.unseen_guess_table(M, 200)
    keys = jax.random.split(jax.random.key(4), SEEDS)
    batched = jax.vmap(hf.bayes_errors, in_axes=(0, None, None, None, None, None))(
        keys, float(n), float(num_samples), jnp.asarray(FAM.mu, float), FAM.p_top, table
    )
    _assert_same_mean(literal, np.asarray(batched))


def test_family_parameters_follow_the_theorem():
    fam = hf.family(0.01, 2.0)
    assert fam.Delta == pytest.approx(0.16)
    assert fam.M == 201
    assert fam.c_cov == pytest.approx(1 - fam.Delta + fam.Delta * fam.M / 2)
    with pytest.raises(ValueError, match="epsilon"):
        hf.family(0.1, 2.0)

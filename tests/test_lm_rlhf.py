"""RLHF-Sharpening on an LM (sharpen.lm.rlhf_lm): Eq. 8 / DPO / XPO losses, steps, online XPO."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen import rlhf
from sharpen.lm import rlhf_lm as R
from sharpen.lm import sampler
from sharpen.lm import train as T
from sharpen.lm.scorer import score
from tests import tiny_lm

_HYPER = {"beta": jnp.float32(0.5), "alpha": jnp.float32(0.1), "loss_weight": jnp.float32(1.0)}


def _pairs():
    cfg, params = tiny_lm.tiny_model("llama", seed=1, sharpness=4.0)
    batch = tiny_lm.prompts([4, 3, 6, 5], seed=2)
    out = sampler.generate(params, batch.tokens, batch.mask, cfg=cfg, key=jax.random.key(0),
                           num_samples=2, max_new_tokens=6, eos_id=tiny_lm.EOS,
                           pad_id=tiny_lm.PAD)  # fmt: skip
    pairs = R.pairs_from_samples(batch.tokens, batch.mask, out.tokens, out.lengths,
                                 out.base_logprobs)  # fmt: skip
    return cfg, params, batch, out, pairs


def test_sequence_logprobs_match_scorer_and_sampler():
    cfg, params, batch, out, pairs = _pairs()
    got = R.sequence_logprobs(params, pairs.y, cfg=cfg)
    ref = score(params, batch.tokens, batch.mask, out.tokens, out.lengths, cfg=cfg).sum_logprob
    np.testing.assert_allclose(got, ref[:, 0], atol=1e-4)
    np.testing.assert_allclose(pairs.base_y, ref[:, 0], atol=1e-4)
    np.testing.assert_allclose(pairs.base_y_prime, ref[:, 1], atol=1e-4)


def test_losses_equal_the_tabular_pair_losses():
    cfg, _, _, _, pairs = _pairs()
    _, policy = tiny_lm.tiny_model("llama", seed=9, sharpness=4.0)
    lp_y = R.sequence_logprobs(policy, pairs.y, cfg=cfg)
    lp_yp = R.sequence_logprobs(policy, pairs.y_prime, cfg=cfg)
    args = (lp_y, lp_yp, pairs.base_y, pairs.base_y_prime, 0.5)
    eq8, _ = R.eq8_lm_loss(policy, pairs, _HYPER, cfg=cfg)
    np.testing.assert_allclose(eq8, jnp.mean(rlhf.eq8_loss(*args)), rtol=1e-4)
    dpo, _ = R.dpo_lm_loss(policy, pairs, _HYPER, cfg=cfg)
    np.testing.assert_allclose(dpo, jnp.mean(rlhf.dpo_logistic_loss(*args)), rtol=1e-4)
    xpo, aux = R.xpo_lm_loss(policy, pairs, _HYPER, cfg=cfg)
    want = jnp.mean(0.1 * lp_yp + 1.0 * rlhf.eq8_loss(*args))  # plus sign, as sharpen.xpo
    np.testing.assert_allclose(xpo, want, rtol=1e-4)
    np.testing.assert_allclose(aux["eq8"], eq8, rtol=1e-4)


def test_eq8_is_zero_at_the_power_policy_up_to_a_constant():
    # Eq. 8 is a function of sequence log-probs: feed those of pi* = base^(1+1/beta) shifted by a
    # per-prompt constant (normalizer) and check the residual vanishes.
    _, _, _, _, pairs = _pairs()
    beta = 0.5
    c = jnp.array([0.3, -1.0, 2.0, 0.0])
    star = lambda b: (1 + 1 / beta) * b + c  # noqa: E731
    loss = rlhf.eq8_loss(star(pairs.base_y), star(pairs.base_y_prime), pairs.base_y,
                         pairs.base_y_prime, beta)  # fmt: skip
    np.testing.assert_allclose(loss, 0.0, atol=1e-8)


@pytest.mark.slow
def test_dpo_prefers_the_higher_base_logprob():
    cfg, params, _, _, pairs = _pairs()
    swapped = R.Pairs(pairs.y_prime, pairs.y, pairs.base_y_prime, pairs.base_y)
    a, _ = R.dpo_lm_loss(params, pairs, _HYPER, cfg=cfg)
    b, _ = R.dpo_lm_loss(params, swapped, _HYPER, cfg=cfg)
    np.testing.assert_allclose(a, b, rtol=1e-5)  # argument order does not matter
    # A step on DPO raises the log-ratio margin of the winner over the loser.
    opt = T.make_optimizer(1e-2, warmup=0, total_steps=5, weight_decay=0.0, clip_norm=1.0)
    state = T.init_train_state(params, opt)
    win = jnp.where(pairs.base_y >= pairs.base_y_prime, 1.0, -1.0)
    for _ in range(3):
        state, _m = R.policy_step(state, pairs, _HYPER, loss_fn=R.dpo_lm_loss, cfg=cfg,
                                 optimizer=opt)  # fmt: skip
    lp_y = R.sequence_logprobs(state.params, pairs.y, cfg=cfg) - pairs.base_y
    lp_yp = R.sequence_logprobs(state.params, pairs.y_prime, cfg=cfg) - pairs.base_y_prime
    decided = pairs.base_y != pairs.base_y_prime
    assert float(jnp.sum(jnp.where(decided, win * (lp_y - lp_yp), 0.0))) > 0


@pytest.mark.slow
def test_full_and_lora_steps_agree_at_init_and_reduce_eq8():
    cfg, _params, _, _, pairs = _pairs()
    _, policy = tiny_lm.tiny_model("llama", seed=9, sharpness=4.0)
    opt = T.make_optimizer(3e-3, warmup=0, total_steps=20, weight_decay=0.0, clip_norm=1.0)
    state = T.init_train_state(policy, opt)
    lora = T.init_lora_state(policy, T.lora_init(policy, rank=4, key=jax.random.key(0)), opt)
    step = dict(loss_fn=R.eq8_lm_loss, cfg=cfg, optimizer=opt)
    _, m_full = R.policy_step(state, pairs, _HYPER, **step)
    _, m_lora = R.lora_policy_step(lora, pairs, _HYPER, lora_alpha=8.0, **step)
    np.testing.assert_allclose(m_full["loss"], m_lora["loss"], rtol=1e-5)
    first = float(m_full["loss"])
    for _ in range(10):
        state, m = R.policy_step(state, pairs, _HYPER, **step)
    assert float(m["loss"]) < first


def test_xpo_rounds_run_and_do_not_recompile():
    cfg, params, batch, _, _ = _pairs()
    opt = T.make_optimizer(1e-3, warmup=0, total_steps=10, weight_decay=0.0, clip_norm=1.0)
    state = R.xpo_init(T.init_train_state(params, opt), capacity=12,
                       prompt_len=batch.tokens.shape[1], max_new_tokens=6)  # fmt: skip
    kw = dict(cfg=cfg, optimizer=opt, hyper=_HYPER, steps=2, batch_size=3, max_new_tokens=6,
              eos_id=tiny_lm.EOS, pad_id=tiny_lm.PAD)  # fmt: skip
    state, info = R.xpo_round(state, params, batch.tokens, batch.mask, key=jax.random.key(0), **kw)
    caches = (R.policy_step._cache_size(), sampler._generate_jit._cache_size(),
              R._minibatch._cache_size(), R._append._cache_size())  # fmt: skip
    state, info = R.xpo_round(state, params, batch.tokens, batch.mask, key=jax.random.key(1), **kw)
    assert caches == (R.policy_step._cache_size(), sampler._generate_jit._cache_size(),
                      R._minibatch._cache_size(), R._append._cache_size())  # fmt: skip
    assert int(state.num_pairs) == 8 and int(state.round) == 2
    assert info["loss"].shape == (2,) and np.isfinite(info["loss"]).all()
    # The buffer's base scores of on-policy responses are the base model's sequence log-probs.
    y = jax.tree.map(lambda x: x[4:8], state.data.y)
    np.testing.assert_allclose(state.data.base_y[4:8], R.sequence_logprobs(params, y, cfg=cfg),
                               atol=1e-4)  # fmt: skip

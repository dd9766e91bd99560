"""Power sampling by suffix Metropolis–Hastings: the chain targets pi_base^alpha exactly.

A V = 5 model with horizon M = 3 (``tests/tiny_lm.py``) has few enough responses that the exact
target ``pi_base(y|x)^alpha / Z`` is enumerated by brute force (EOS-absorbing, truncated at M,
the sampler's response space). ``C`` independent chains are run; their final states are ``C``
draws from the chain's law after ``K`` steps. For i.i.d. draws from ``p``,
``E TV(emp, p) <= 1/2 sum_y sqrt(p_y (1 - p_y) / C)`` and TV concentrates (McDiarmid, each draw
moves it by <= 1/C) within ``sqrt(log(1/delta) / (2C))``; the tolerance is their sum with
delta = 1e-3, plus the stated mixing allowance.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sharpen.lm import power_sampling as ps
from tests import tiny_lm

_DELTA = 1e-3


def _index(tokens, v, m):
    return (np.asarray(tokens) * v ** np.arange(m - 1, -1, -1)).sum(-1)


def _tv_bound(p, n):
    return 0.5 * np.sum(np.sqrt(p * (1 - p) / n)) + np.sqrt(np.log(1 / _DELTA) / (2 * n))


def _run(alpha, chains, steps, prompt=0):
    cfg, params, batch, (_, _, logp) = tiny_lm.small_problem()
    out = ps.power_sample(
        params,
        batch.tokens[prompt : prompt + 1],
        batch.mask[prompt : prompt + 1],
        cfg=cfg,
        key=jax.random.key(7),
        alpha=alpha,
        num_chains=chains,
        num_steps=steps,
        max_new_tokens=tiny_lm.M,
        eos_id=tiny_lm.EOS,
        pad_id=tiny_lm.PAD,
    )
    lp = alpha * logp[prompt]
    target = np.exp(lp - np.logaddexp.reduce(lp))
    base = np.exp(logp[prompt] - np.logaddexp.reduce(logp[prompt]))
    emp = np.bincount(_index(out.state.tokens[0], tiny_lm.V, tiny_lm.M), minlength=target.size)
    return out, emp / chains, target, base


def test_alpha_one_leaves_pi_base_invariant():
    # Chains start at exact base draws; with alpha = 1 every step must keep that law.
    out, emp, target, base = _run(1.0, chains=2000, steps=8)
    np.testing.assert_allclose(target, base, atol=1e-6)
    tv = 0.5 * np.abs(emp - base).sum()
    assert tv <= _tv_bound(base, 2000), tv
    assert 0.5 < out.acceptance.mean() < 1.0  # only the length ratio n(y)/n(y') rejects


@pytest.mark.slow
def test_chain_matches_exact_power_target():
    # alpha = 4 is far from the base (TV > 0.5); 60 steps mix to within ~0.02 (measured: the TV
    # to the target falls 0.61 -> 0.10 -> 0.02 at steps 0 / 30 / 60), the allowance below.
    out, emp, target, base = _run(4.0, chains=2000, steps=60)
    assert 0.5 * np.abs(base - target).sum() > 0.5
    tv = 0.5 * np.abs(emp - target).sum()
    assert tv <= _tv_bound(target, 2000) + 0.02, tv
    assert out.decode_tokens.shape == (1, 2000)
    assert (out.decode_tokens >= out.state.lengths).all()


def test_state_is_consistent_and_step_does_not_recompile():
    cfg, params, batch, _ = tiny_lm.small_problem()
    kw = dict(cfg=cfg, eos_id=tiny_lm.EOS, pad_id=tiny_lm.PAD)
    state = ps.init_chains(
        params, batch.tokens, batch.mask, key=jax.random.key(0), num_chains=4,
        max_new_tokens=tiny_lm.M, **kw,
    )  # fmt: skip
    state, _ = ps.mh_step(params, batch.tokens, batch.mask, state, key=jax.random.key(1),
                          alpha=2.0, **kw)  # fmt: skip
    before = ps._mh_step_jit._cache_size()
    for k in range(3):
        state, info = ps.mh_step(params, batch.tokens, batch.mask, state,
                                 key=jax.random.key(2 + k), alpha=3.0 + k, **kw)  # fmt: skip
    assert ps._mh_step_jit._cache_size() == before
    # Carried per-token log-probs equal a fresh scoring of the current responses.
    from sharpen.lm.scorer import score

    toks = np.asarray(state.tokens).reshape(3, 4, -1)
    lens = np.asarray(state.lengths).reshape(3, 4)
    got = score(params, batch.tokens, batch.mask, toks, lens, cfg=cfg).sum_logprob
    carried = np.asarray(state.token_logprobs).sum(-1).reshape(3, 4)
    np.testing.assert_allclose(carried, np.asarray(got), atol=1e-4)
    assert (np.asarray(info.cut) < np.asarray(lens).reshape(-1) + 1).all()


def test_bad_arguments_raise():
    cfg, params, batch, _ = tiny_lm.small_problem()
    kw = dict(cfg=cfg, key=jax.random.key(0), num_chains=2, max_new_tokens=3, eos_id=2, pad_id=0)
    with pytest.raises(ValueError, match="alpha"):
        ps.power_sample(params, batch.tokens, batch.mask, alpha=0.0, num_steps=1, **kw)
    with pytest.raises(ValueError, match="keep_last"):
        ps.power_sample(params, batch.tokens, batch.mask, alpha=2.0, num_steps=1, keep_last=2, **kw)

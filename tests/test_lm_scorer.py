"""Scorer (sharpen.lm.scorer): one-pass self-rewards, held to the sampler and to direct sums."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen.lm.model import forward
from sharpen.lm.sampler import generate
from sharpen.lm.scorer import score
from tests.tiny_lm import EOS, PAD, prompts, tiny_model

# Sampler (KV cache, one token per step) vs scorer (one full pass): the same fp32 maths in a
# different association order; a few ulps of log-probs of magnitude ~3.
PARITY_ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def batch():
    return prompts([5, 2, 8])


@pytest.mark.parametrize(
    "setting", [dict(temperature=1.0), dict(temperature=0.7, top_p=0.9)], ids=["plain", "tempered"]
)
def test_sampler_base_logprobs_equal_scorer(model, batch, setting):
    cfg, params = model
    out = generate(
        params, batch.tokens, batch.mask, cfg=cfg, key=jax.random.key(5), num_samples=4,
        max_new_tokens=10, eos_id=EOS, pad_id=PAD, **setting,
    )  # fmt: skip
    scored = score(params, batch.tokens, batch.mask, out.tokens, out.lengths, cfg=cfg)
    assert scored.token_logprobs.shape == out.base_logprobs.shape
    err = np.abs(np.asarray(scored.token_logprobs) - np.asarray(out.base_logprobs)).max()
    assert err <= PARITY_ATOL, err
    np.testing.assert_allclose(
        scored.sum_logprob, np.asarray(out.base_logprobs).sum(-1), atol=10 * PARITY_ATOL, rtol=0
    )
    differ = np.abs(np.asarray(out.sample_logprobs) - np.asarray(out.base_logprobs)).max()
    if "top_p" in setting:
        assert differ > 0.05  # the tempered, truncated distribution is not the base one
    else:
        assert differ <= 1e-6


def test_scores_match_direct_computation_on_unpadded_sequences(model, batch):
    """Every field, row by row, from a forward pass over the bare ``prompt + response``."""
    cfg, params = model
    rng = np.random.default_rng(0)
    responses = rng.integers(3, cfg.vocab_size, size=(3, 2, 6)).astype(np.int32)
    lengths = np.array([[6, 3], [1, 0], [4, 5]], np.int32)
    out = jax.tree.map(
        np.asarray, score(params, batch.tokens, batch.mask, responses, lengths, cfg=cfg)
    )
    assert out.sum_logprob.shape == out.entropy.shape == (3, 2)
    assert out.token_logprobs.shape == (3, 2, 6)
    V = cfg.vocab_size
    for b in range(3):
        prompt = batch.tokens[b][batch.mask[b]]
        for n in range(2):
            k = lengths[b, n]
            # unpadded on the left; right-filled to one shape (causality: the fill is unseen)
            seq = np.zeros((1, 16), np.int32)
            seq[0, : len(prompt) + k] = np.concatenate([prompt, responses[b, n, :k]])
            logp = np.asarray(jax.nn.log_softmax(forward(params, jnp.asarray(seq), cfg=cfg), -1))[0]
            logp = logp[len(prompt) - 1 : len(prompt) - 1 + k].astype(np.float64)
            tok = logp[np.arange(k), responses[b, n, :k]]
            ent = -(np.exp(logp) * logp).sum(-1)
            cert = -np.log(V) - logp.mean(-1)
            np.testing.assert_allclose(out.token_logprobs[b, n, :k], tok, atol=PARITY_ATOL)
            assert (out.token_logprobs[b, n, k:] == 0).all()
            np.testing.assert_allclose(out.sum_logprob[b, n], tok.sum(), atol=5 * PARITY_ATOL)
            if k == 0:
                assert out.mean_logprob[b, n] == out.entropy[b, n] == out.self_certainty[b, n] == 0
                continue
            np.testing.assert_allclose(out.mean_logprob[b, n], tok.mean(), atol=PARITY_ATOL)
            np.testing.assert_allclose(out.entropy[b, n], ent.mean(), atol=PARITY_ATOL)
            np.testing.assert_allclose(out.self_certainty[b, n], cert.mean(), atol=PARITY_ATOL)
            assert 0 <= out.entropy[b, n] <= np.log(V) + 1e-6 and out.self_certainty[b, n] >= 0
    # [B, M] responses are the N = 1 case
    flat = score(params, batch.tokens, batch.mask, responses[:, 0], lengths[:, 0], cfg=cfg)
    np.testing.assert_allclose(flat.sum_logprob, out.sum_logprob[:, 0], atol=PARITY_ATOL, rtol=0)


@pytest.mark.parametrize(
    ("response", "lengths", "match"),
    [
        (np.zeros((3, 4), np.int32), np.zeros((3, 2), np.int32), r"response_lengths must be integers of shape \(3,\)"),
        (np.zeros((3, 4), np.int32), np.full((3,), 5), r"response_lengths must lie in \[0, 4\]"),
        (np.full((3, 4), 20), np.ones((3,), np.int32), r"response_tokens must hold ids in \[0, cfg.vocab_size=20\)"),
        (np.zeros((2, 4), np.int32), np.ones((2,), np.int32), "response_tokens has 2 prompts, prompt_tokens has 3"),
        (np.zeros((3,), np.int32), np.ones((), np.int32), r"must be \[B, M\] or \[B, N, M\]"),
        (np.zeros((3, 4)), np.ones((3,), np.int32), "must hold integer ids"),
    ],
)  # fmt: skip
def test_bad_inputs(model, batch, response, lengths, match):
    cfg, params = model
    with pytest.raises(ValueError, match=match):
        score(params, batch.tokens, batch.mask, response, lengths, cfg=cfg)


def test_gpt2_context_limit():
    cfg, params = tiny_model("gpt2")
    long = prompts([60])
    response = np.zeros((1, 6), np.int32)
    with pytest.raises(ValueError, match=r"cfg\.max_len=64"):
        score(params, long.tokens, long.mask, response, np.array([5]), cfg=cfg)


def test_stats_false_gives_the_same_logprobs(model, batch):
    """``stats=False`` skips entropy and self-certainty (NaN) and keeps the log-probs."""
    cfg, params = model
    rng = np.random.default_rng(1)
    responses = rng.integers(3, cfg.vocab_size, size=(3, 2, 6)).astype(np.int32)
    lengths = np.array([[6, 3], [1, 0], [4, 5]], np.int32)
    full = score(params, batch.tokens, batch.mask, responses, lengths, cfg=cfg)
    lean = score(params, batch.tokens, batch.mask, responses, lengths, cfg=cfg, stats=False)
    for field in ("sum_logprob", "mean_logprob", "token_logprobs"):
        np.testing.assert_allclose(getattr(lean, field), getattr(full, field), atol=1e-6, rtol=0)
    assert lean.entropy.shape == lean.self_certainty.shape == (3, 2)
    assert np.isnan(lean.entropy).all() and np.isnan(lean.self_certainty).all()

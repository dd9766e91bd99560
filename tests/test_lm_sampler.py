"""KV-cache sampler (sharpen.lm.sampler) and prompt batching (sharpen.lm.batching)."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen.lm import sampler
from sharpen.lm.batching import check_prompts, encode_prompts, left_pad
from sharpen.lm.model import forward
from sharpen.lm.sampler import generate, sample_texts, sampling_logprobs
from sharpen.lm.tokenizer import CharTokenizer
from tests.tiny_lm import BOS, EOS, PAD, prompts, tiny_model

N, M = 4, 12


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def batch():
    return prompts([5, 2, 8])


def _gen(model, batch, **kw):
    cfg, params = model
    args = dict(
        cfg=cfg, key=jax.random.key(7), num_samples=N, max_new_tokens=M, eos_id=EOS, pad_id=PAD
    )
    return generate(params, batch.tokens, batch.mask, **{**args, **kw})


def test_shapes_eos_and_padding(model, batch):
    out = jax.tree.map(np.asarray, _gen(model, batch))
    B = batch.tokens.shape[0]
    assert out.tokens.shape == out.sample_logprobs.shape == out.base_logprobs.shape == (B, N, M)
    assert out.lengths.shape == out.finished.shape == (B, N)
    assert out.tokens.dtype == np.int32 and out.base_logprobs.dtype == np.float32
    assert out.finished.any() and not out.finished.all()  # the fixed key exercises both cases
    steps = np.arange(M)
    for b in range(B):
        for n in range(N):
            length, done, tok = out.lengths[b, n], out.finished[b, n], out.tokens[b, n]
            if done:
                assert tok[length - 1] == EOS and (tok[: length - 1] != EOS).all()
            else:
                assert length == M and (tok != EOS).all()
            after = steps >= length
            assert (tok[after] == PAD).all()
            assert (out.base_logprobs[b, n, after] == 0).all()
            assert (out.sample_logprobs[b, n, after] == 0).all()
            assert (out.base_logprobs[b, n, ~after] < 0).all()
    # temperature 1, no truncation: the sampling distribution is the model's own.
    np.testing.assert_allclose(out.sample_logprobs, out.base_logprobs, atol=1e-6)


def test_greedy_equals_argmax_chain_of_full_recompute(model, batch):
    cfg, params = model
    out = _gen(model, batch, greedy=True, key=None, num_samples=1)
    # Full recompute on a fixed [B, P + M] buffer (one compile): step t reads the logits at
    # column P - 1 + t and writes the argmax into column P + t; later columns are causally unseen.
    P = batch.tokens.shape[1]
    tokens = jnp.pad(jnp.asarray(batch.tokens), ((0, 0), (0, M)))
    mask = jnp.pad(jnp.asarray(batch.mask), ((0, 0), (0, M)), constant_values=True)
    for t in range(M):
        logits = forward(params, tokens, cfg=cfg, key_mask_BxL=mask)[:, P - 1 + t]
        tokens = tokens.at[:, P + t].set(jnp.argmax(logits, axis=-1).astype(jnp.int32))
    ref = np.asarray(tokens[:, P:])
    got = np.asarray(out.tokens[:, 0])
    for b in range(ref.shape[0]):  # equal up to the EOS, pad after it
        length = int(out.lengths[b, 0])
        np.testing.assert_array_equal(got[b, :length], ref[b, :length])
        assert (got[b, length:] == PAD).all()
        assert length == M or ref[b, length - 1] == EOS
    assert (np.asarray(out.sample_logprobs) == 0).all()  # greedy is a point mass


@pytest.mark.parametrize(
    "setting",
    [
        dict(temperature=0.7),
        dict(temperature=1.3, top_k=4),
        dict(temperature=0.8, top_k=6, top_p=0.7),
    ],
    ids=["temp", "top_k", "top_p"],
)
def test_first_token_frequencies_match_truncated_distribution(model, setting):
    """Empirical first-token frequencies over S draws match ``sampling_logprobs``.

    Pearson's statistic over the K kept tokens is ~ chi2(K - 1) (mean K - 1, sd sqrt(2(K - 1)));
    the bound K - 1 + 6 sd is exceeded with probability < 1e-4 for K <= 20. Tokens outside the
    kept set must never be drawn.
    """
    cfg, params = model
    S = 20_000
    one = prompts([6], seed=3)
    out = generate(
        params, one.tokens, one.mask, cfg=cfg, key=jax.random.key(11), num_samples=S,
        max_new_tokens=1, eos_id=EOS, pad_id=PAD, **setting,
    )  # fmt: skip
    logits = forward(params, jnp.asarray(one.tokens), cfg=cfg, key_mask_BxL=jnp.asarray(one.mask))
    q = np.exp(np.asarray(sampling_logprobs(logits[:, -1], **setting))[0].astype(np.float64))
    counts = np.bincount(np.asarray(out.tokens[0, :, 0]), minlength=cfg.vocab_size)
    kept = q > 0
    assert counts[~kept].sum() == 0
    if "top_k" in setting:
        assert kept.sum() <= setting["top_k"]
    if "top_p" in setting or "top_k" in setting:
        assert kept.sum() < cfg.vocab_size  # the truncation is active on this model
    chi2 = ((counts[kept] - S * q[kept]) ** 2 / (S * q[kept])).sum()
    dof = kept.sum() - 1
    assert chi2 <= dof + 6 * np.sqrt(2 * dof), (chi2, dof)
    # recorded log-probs are those of the sampling distribution at the drawn token
    np.testing.assert_allclose(
        np.asarray(out.sample_logprobs[0, :, 0]),
        np.log(q[np.asarray(out.tokens[0, :, 0])]),
        atol=1e-5,
    )


def test_sampling_logprobs_truncation_rules():
    logits = jnp.log(jnp.array([[0.4, 0.3, 0.2, 0.1]]))
    p = np.exp(np.asarray(sampling_logprobs(logits, top_p=0.7)))[0]  # 0.4 + 0.3 reaches 0.7
    np.testing.assert_allclose(p, [4 / 7, 3 / 7, 0, 0], atol=1e-6)
    p = np.exp(np.asarray(sampling_logprobs(logits, top_p=0.71)))[0]
    np.testing.assert_allclose(p, [4 / 9, 3 / 9, 2 / 9, 0], atol=1e-6)
    p = np.exp(np.asarray(sampling_logprobs(logits, top_k=1)))[0]
    np.testing.assert_allclose(p, [1, 0, 0, 0], atol=1e-6)
    p = np.exp(np.asarray(sampling_logprobs(logits, top_p=1.0, top_k=4)))[0]
    np.testing.assert_allclose(p, [0.4, 0.3, 0.2, 0.1], atol=1e-6)
    ties = jnp.log(jnp.array([[0.25, 0.25, 0.25, 0.25]]))
    assert (np.asarray(sampling_logprobs(ties, top_k=2)) > -np.inf).all()  # ties at k kept
    p = np.exp(np.asarray(sampling_logprobs(logits, 0.5)))[0]
    np.testing.assert_allclose(p, np.array([16, 9, 4, 1]) / 30, atol=1e-6)


@pytest.mark.parametrize("scale", [3.0, 0.05], ids=["nucleus_in_candidates", "full_sort_fallback"])
def test_top_p_over_large_vocab_matches_sorted_reference(scale):
    """V = 3000 > TOP_P_CANDIDATES: the candidate search (or its fallback) is the exact nucleus."""
    assert sampler.TOP_P_CANDIDATES < 3000
    logits = np.asarray(jax.random.normal(jax.random.key(1), (4, 3000)), np.float64) * scale
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = np.zeros_like(logp)
    for r, row in enumerate(logp):
        desc = np.sort(row)[::-1]
        before = np.cumsum(np.exp(desc)) - np.exp(desc)
        keep = row >= desc[before < 0.9].min()
        want[r] = np.where(keep, np.exp(row), 0) / np.exp(row[keep]).sum()
    got = np.exp(np.asarray(sampling_logprobs(jnp.asarray(logits, jnp.float32), top_p=0.9)))
    np.testing.assert_array_equal(got > 0, want > 0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    kept = (want > 0).sum(1)
    assert (
        (kept < sampler.TOP_P_CANDIDATES).all()
        if scale > 1
        else (kept > sampler.TOP_P_CANDIDATES).all()
    )


def test_prompt_padding_does_not_change_samples(model, batch):
    """Same prompts, same key, different left padding: identical tokens and base log-probs."""
    a, b = batch, prompts([5, 2, 8], min_length=24)
    assert a.tokens.shape != b.tokens.shape
    out_a, out_b = _gen(model, a), _gen(model, b)
    np.testing.assert_array_equal(np.asarray(out_a.tokens), np.asarray(out_b.tokens))
    np.testing.assert_allclose(
        np.asarray(out_a.base_logprobs), np.asarray(out_b.base_logprobs), atol=1e-5, rtol=0
    )


def test_second_call_does_not_recompile(model, batch, caplog):
    """Same shapes with new temperature, top_p, key and ids reuse the compiled program."""
    common = dict(top_p=0.9, num_samples=2, max_new_tokens=5)
    _gen(model, batch, temperature=0.9, **common)
    size = sampler._generate_jit._cache_size()
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        out = _gen(model, batch, temperature=0.6, key=jax.random.key(3), eos_id=5, **common)
        jax.block_until_ready(out)
    compiled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]
    assert compiled == []
    assert sampler._generate_jit._cache_size() == size


def test_sample_texts_with_char_tokenizer():
    tok = CharTokenizer("abcdefghijklmnopq")  # 17 + 3 specials = 20 ids
    cfg, params = tiny_model("gpt2")
    res = sample_texts(
        params, cfg, tok, ["abc", "q"], key=jax.random.key(0), num_samples=3, max_new_tokens=6,
        temperature=0.9,
    )  # fmt: skip
    assert len(res.texts) == 2 and all(len(row) == 3 for row in res.texts)
    lengths, finished = np.asarray(res.output.lengths), np.asarray(res.output.finished)
    for b in range(2):
        for n in range(3):
            text = res.texts[b][n]
            assert len(text) <= lengths[b, n] - finished[b, n]  # specials decode to nothing
            assert set(text) <= set(tok.alphabet)


def test_encode_prompts_left_pads_and_buckets():
    tok = CharTokenizer("abc")
    cfg, _ = tiny_model("gpt2", vocab_size=6)
    batch = encode_prompts(tok, ["abc", "b", ""], cfg=cfg, bucket=4)
    np.testing.assert_array_equal(batch.tokens, [[BOS, 3, 4, 5], [0, 0, BOS, 4], [0, 0, 0, BOS]])
    np.testing.assert_array_equal(batch.mask, batch.tokens != PAD)
    np.testing.assert_array_equal(batch.lengths, [4, 2, 1])
    assert encode_prompts(tok, ["a" * 17], cfg=cfg).tokens.shape == (1, 32)
    with pytest.raises(ValueError, match="prompt 2 has no tokens"):
        encode_prompts(tok, ["a", "b", ""], cfg=cfg, add_bos=False)
    with pytest.raises(
        ValueError, match=r"prompt 1 is longer than the context: 65 tokens > cfg\.max_len=64"
    ):
        encode_prompts(tok, ["a", "b" * 64], cfg=cfg)
    with pytest.raises(ValueError, match=r"tokenizer\.vocab_size=6 exceeds .*cfg\.vocab_size=5"):
        encode_prompts(tok, ["a"], cfg=cfg.replace(vocab_size=5))
    with pytest.raises(ValueError, match="at least one prompt"):
        left_pad([], pad_id=0)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(num_samples=0), "num_samples must be an integer >= 1, got 0"),
        (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1, got 0"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(temperature=-1.0), "temperature must be > 0"),
        (dict(top_p=0.0), r"top_p must be in \(0, 1\], got 0.0"),
        (dict(top_p=1.5), r"top_p must be in \(0, 1\], got 1.5"),
        (dict(top_k=0), r"top_k must be in \[1, cfg.vocab_size=20\], got 0"),
        (dict(top_k=21), r"top_k must be in \[1, cfg.vocab_size=20\], got 21"),
        (dict(eos_id=20), r"eos_id must be in \[0, cfg.vocab_size=20\), got 20"),
        (dict(pad_id=-1), r"pad_id must be in \[0, cfg.vocab_size=20\), got -1"),
        (dict(key=None), "key is required unless greedy=True"),
    ],
)
def test_bad_arguments(model, batch, changes, match):
    with pytest.raises(ValueError, match=match):
        _gen(model, batch, **changes)


def test_bad_prompts(model, batch):
    cfg, params = model
    kw = dict(
        cfg=cfg, key=jax.random.key(0), num_samples=1, max_new_tokens=4, eos_id=EOS, pad_id=PAD
    )
    right_padded = batch.mask.copy()
    right_padded[1, -1] = False
    with pytest.raises(ValueError, match="row 1 of prompt_mask_BxP ends in padding"):
        generate(params, batch.tokens, right_padded, **kw)
    with pytest.raises(ValueError, match=r"ids in \[0, cfg.vocab_size=20\)"):
        generate(params, batch.tokens + 20, batch.mask, **kw)
    with pytest.raises(ValueError, match="prompt_mask_BxP must have the shape"):
        generate(params, batch.tokens, batch.mask[:, 1:], **kw)
    gpt_cfg, gpt_params = tiny_model("gpt2")
    long = prompts([60])
    with pytest.raises(ValueError, match=r"prompt 0 has 60 tokens; with 5 more .*cfg\.max_len=64"):
        generate(gpt_params, long.tokens, long.mask, **{**kw, "cfg": gpt_cfg, "max_new_tokens": 5})
    generate(gpt_params, long.tokens, long.mask, **{**kw, "cfg": gpt_cfg})  # 60 + 4 fits
    # RoPE has no learned table: a Llama model may run past max_len.
    check_prompts(long.tokens, long.mask, cfg, 5)


def test_stats_equal_the_scorer_and_leave_the_draws_unchanged():
    """``generate(stats=True)``: entropy / self-certainty as ``score`` computes them, same draws."""
    from sharpen.lm.scorer import score

    cfg, params = tiny_model("llama")
    batch = prompts([5, 2, 8])
    kw = dict(cfg=cfg, key=jax.random.key(3), num_samples=4, max_new_tokens=10, eos_id=EOS,
              pad_id=PAD)  # fmt: skip
    plain = generate(params, batch.tokens, batch.mask, **kw)
    out = generate(params, batch.tokens, batch.mask, stats=True, **kw)
    assert plain.entropy is None and plain.self_certainty is None
    np.testing.assert_array_equal(out.tokens, plain.tokens)
    np.testing.assert_array_equal(out.base_logprobs, plain.base_logprobs)
    scored = score(params, batch.tokens, batch.mask, out.tokens, out.lengths, cfg=cfg)
    # fp32 sums of the same per-step values in a different association order (cf. test_lm_scorer).
    np.testing.assert_allclose(out.entropy, scored.entropy, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out.self_certainty, scored.self_certainty, atol=1e-5, rtol=1e-5)
    assert np.all(np.asarray(out.entropy) > 0)


def test_first_true_matches_argmax_with_ties_and_reports_v_when_none():
    """The decode loop's argmax replacement (two plain reductions) agrees with ``jnp.argmax``:
    first index on ties, and ``V`` for an all-false row."""
    _first_true = sampler._first_true
    x = jax.random.randint(jax.random.key(3), (64, 37), 0, 4)  # many ties per row
    is_max = x == jnp.max(x, axis=-1, keepdims=True)
    np.testing.assert_array_equal(_first_true(is_max), jnp.argmax(x, axis=-1))
    mask = jax.random.bernoulli(jax.random.key(4), 0.05, (64, 37)).at[0].set(False)
    expect = np.where(np.asarray(mask).any(-1), np.argmax(np.asarray(mask), -1), 37)
    np.testing.assert_array_equal(_first_true(mask), expect)
    assert int(_first_true(mask)[0]) == 37

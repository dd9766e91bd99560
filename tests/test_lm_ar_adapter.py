"""LM + prompt as an ARModel (sharpen.lm.ar_adapter): exact mode finding and decoding on LMs."""

from __future__ import annotations

import numpy as np
import pytest

from sharpen.autoregressive import enumerate_sequences
from sharpen.decoding import greedy
from sharpen.lm.ar_adapter import lm_ar_model
from sharpen.lm.sampler import generate
from sharpen.mode_finder import find_modes
from tests.tiny_lm import EOS, PAD, M, V, prompts, small_problem, tiny_model


@pytest.fixture(scope="module")
def small():
    return small_problem()


def _adapter(cfg, params, batch, b):
    prompt = batch.tokens[b][batch.mask[b]]
    return lm_ar_model(params, prompt, cfg=cfg, horizon=M, eos_id=EOS, pad_id=PAD)


def test_mode_finder_equals_brute_force_argmax(small):
    cfg, params, batch, (seqs, _, logp) = small
    for b in range(batch.tokens.shape[0]):
        model = _adapter(cfg, params, batch, b)
        res = find_modes(model, batch_size=16)
        assert res.exact
        best = int(np.argmax(logp[b]))
        np.testing.assert_array_equal(res.sequences, seqs[best][None])
        np.testing.assert_allclose(res.logprob, logp[b, best], atol=1e-5)
        assert res.expansions < (V**M - 1) // (V - 1)  # the bound pruned something


def test_eos_completion_is_exact_and_saves_expansions(small):
    """``find_modes(eos_id=...)`` completes ended responses at once: same modes, fewer calls."""
    cfg, params, batch, _ = small
    for b in range(batch.tokens.shape[0]):
        model = _adapter(cfg, params, batch, b)
        walked = find_modes(model, batch_size=1)
        ended = find_modes(model, batch_size=1, eos_id=EOS, pad_id=PAD)
        assert ended.exact
        np.testing.assert_array_equal(ended.sequences, walked.sequences)
        assert ended.logprob == walked.logprob  # the same float64 sums, left to right
        # Each ended prefix shorter than M costs one walk-to-horizon expansion less, at least.
        assert ended.expansions < walked.expansions


def test_enumeration_matches_scorer_and_normalizes(small):
    """EOS-absorbing log-probs equal the scorer's; valid responses carry all the mass."""
    cfg, params, batch, (seqs, _, logp) = small
    tokens, lp = enumerate_sequences(_adapter(cfg, params, batch, 0))
    np.testing.assert_array_equal(np.asarray(tokens), seqs)  # same lexicographic order
    lp = np.asarray(lp, np.float64)
    finite = np.isfinite(logp[0])
    np.testing.assert_array_equal(np.isfinite(lp), finite)
    np.testing.assert_allclose(lp[finite], logp[0, finite], atol=1e-5)
    np.testing.assert_allclose(np.exp(lp).sum(), 1.0, atol=1e-5)


def test_decoding_greedy_equals_sampler_greedy():
    cfg, params = tiny_model("llama")
    batch, H = prompts([5, 2, 8]), 12  # the shapes of the sampler's greedy test: no new compile
    ref = generate(
        params, batch.tokens, batch.mask, cfg=cfg, key=None, num_samples=1, max_new_tokens=H,
        eos_id=EOS, pad_id=PAD, greedy=True,
    )  # fmt: skip
    model = lm_ar_model(
        params, batch.tokens[0][batch.mask[0]], cfg=cfg, horizon=H, eos_id=EOS, pad_id=PAD
    )
    np.testing.assert_array_equal(np.asarray(greedy(model)), np.asarray(ref.tokens[0, 0]))


def test_next_logprobs_is_shared_across_prompts(small):
    cfg, params, batch, _ = small
    a, b = _adapter(cfg, params, batch, 0), _adapter(cfg, params, batch, 1)
    assert a.next_logprobs == b.next_logprobs and hash(a.next_logprobs) == hash(b.next_logprobs)
    assert a.vocab_size == cfg.vocab_size and a.horizon == M


@pytest.mark.parametrize(
    ("prompt", "changes", "match"),
    [
        ([], {}, "non-empty 1-D int sequence"),
        ([3, V], {}, rf"ids in \[0, cfg.vocab_size={V}\)"),
        ([3], {"horizon": 0}, "horizon must be an integer >= 1, got 0"),
        ([3], {"eos_id": V}, rf"eos_id must be in \[0, cfg.vocab_size={V}\)"),
    ],
)
def test_bad_arguments(small, prompt, changes, match):
    cfg, params, _, _ = small
    with pytest.raises(ValueError, match=match):
        lm_ar_model(params, np.asarray(prompt, np.int32), cfg=cfg, **{"horizon": M, **changes})


def test_gpt2_context_limit():
    cfg, params = tiny_model("gpt2")
    with pytest.raises(ValueError, match=r"prompt length 60 \+ horizon 5 exceeds .*max_len=64"):
        lm_ar_model(params, np.ones(60, np.int32), cfg=cfg, horizon=5)

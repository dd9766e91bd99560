"""Beam search (sharpen.lm.beam) against brute-force enumeration and greedy decoding."""

from __future__ import annotations

import numpy as np
import pytest

from sharpen.lm.beam import beam_search
from sharpen.lm.sampler import generate
from tests.tiny_lm import EOS, PAD, M, V, prompts, small_problem, tiny_model


@pytest.fixture(scope="module")
def small():
    return small_problem()


def test_exhaustive_beam_is_exact_enumeration(small):
    """Width V^M prunes nothing: the beams are every valid response, sorted by log-prob."""
    cfg, params, batch, (seqs, lengths, logp) = small
    out = beam_search(
        params,
        batch.tokens,
        batch.mask,
        cfg=cfg,
        width=V**M,
        max_new_tokens=M,
        eos_id=EOS,
        pad_id=PAD,
    )
    valid = np.isfinite(logp[0])
    n_valid = int(valid.sum())
    assert n_valid == sum((V - 1) ** j for j in range(M)) + (V - 1) ** M  # EOS at j, or none
    for b in range(batch.tokens.shape[0]):
        order = np.argsort(-logp[b], kind="stable")[:n_valid]
        np.testing.assert_array_equal(np.asarray(out.tokens[b, 0]), seqs[order[0]])  # the argmax
        np.testing.assert_allclose(
            np.asarray(out.sum_logprobs[b, :n_valid]), logp[b, order], atol=1e-5
        )
        got = {tuple(t) for t in np.asarray(out.tokens[b, :n_valid]).tolist()}
        assert got == {tuple(t) for t in seqs[valid].tolist()}
        np.testing.assert_array_equal(np.asarray(out.lengths[b, :n_valid]), lengths[order])
        np.testing.assert_array_equal(
            np.asarray(out.finished[b, :n_valid]), (seqs[order] == EOS).any(1)
        )
        assert np.isneginf(np.asarray(out.sum_logprobs[b, n_valid:])).all()  # placeholders


def test_exhaustive_beam_with_length_penalty(small):
    cfg, params, batch, (seqs, lengths, logp) = small
    alpha = 1.0
    out = beam_search(
        params, batch.tokens, batch.mask, cfg=cfg, width=V**M, max_new_tokens=M, eos_id=EOS,
        pad_id=PAD, length_penalty=alpha,
    )  # fmt: skip
    penalised = logp / lengths[None, :].astype(np.float64) ** alpha
    for b in range(batch.tokens.shape[0]):
        best = int(np.argmax(penalised[b]))
        np.testing.assert_array_equal(np.asarray(out.tokens[b, 0]), seqs[best])
        np.testing.assert_allclose(float(out.scores[b, 0]), penalised[b, best], atol=1e-5)
        np.testing.assert_allclose(float(out.sum_logprobs[b, 0]), logp[b, best], atol=1e-5)


def test_width_one_is_greedy():
    cfg, params = tiny_model("llama")
    batch = prompts([5, 2, 8])
    kw = dict(cfg=cfg, max_new_tokens=12, eos_id=EOS, pad_id=PAD)
    beam = beam_search(params, batch.tokens, batch.mask, width=1, **kw)
    greedy = generate(params, batch.tokens, batch.mask, key=None, num_samples=1, greedy=True, **kw)
    np.testing.assert_array_equal(np.asarray(beam.tokens), np.asarray(greedy.tokens))
    np.testing.assert_array_equal(np.asarray(beam.lengths), np.asarray(greedy.lengths))
    np.testing.assert_allclose(
        np.asarray(beam.sum_logprobs), np.asarray(greedy.base_logprobs).sum(-1), atol=1e-5
    )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(width=0), "width must be an integer >= 1, got 0"),
        (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1, got 0"),
        (dict(length_penalty=-0.5), "length_penalty must be a finite number >= 0, got -0.5"),
        (dict(eos_id=V), rf"eos_id must be in \[0, cfg.vocab_size={V}\), got {V}"),
    ],
)
def test_bad_arguments(small, changes, match):
    cfg, params, batch, _ = small
    kw = dict(cfg=cfg, width=2, max_new_tokens=2, eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match=match):
        beam_search(params, batch.tokens, batch.mask, **{**kw, **changes})

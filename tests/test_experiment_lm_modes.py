"""Exact modes of the LM experiments (experiments.lm_modes): certified search vs brute force,
the policy's scored mass on them, and best-of-n's closed-form probability of outputting y*."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

from experiments import lm_modes
from tests.tiny_lm import EOS, PAD, M, small_problem

_TOK = types.SimpleNamespace(eos_id=EOS, pad_id=PAD, decode=lambda ids: ",".join(map(str, ids)))


@pytest.fixture(scope="module")
def problem():
    cfg, params, batch, (seqs, lengths, logp) = small_problem()
    ids = [batch.tokens[b][batch.mask[b]].tolist() for b in range(batch.tokens.shape[0])]
    return cfg, params, ids, seqs, lengths, logp


def test_certified_modes_are_the_brute_force_argmax_and_score_to_their_logprob(problem):
    """y* of each prompt is the brute-force argmax; re-scoring it (float32 scorer, one or
    several calls) gives the search's log-prob (float64 sums of float32 steps: 1e-5 nats)."""
    cfg, params, ids, seqs, lengths, logp = problem
    graded = []
    modes = lm_modes.certified_modes(
        params, ids, cfg=cfg, tokenizer=_TOK, max_new_tokens=M, budget=10**4, task="t",
        grade=lambda text, p: graded.append((text, p)) or p == 1,
    )  # fmt: skip
    assert tuple(modes.columns) == lm_modes.MODE_COLUMNS and (modes["exact"] == 1).all()
    for b, r in enumerate(modes.itertuples()):
        best = int(np.argmax(logp[b]))
        assert json.loads(r.response_ids) == seqs[best, : lengths[best]].tolist()
        np.testing.assert_allclose(r.mode_logprob, logp[b, best], atol=1e-5)
    assert [p for _, p in graded] == [0, 1, 2] and modes["correct"].tolist() == [0, 1, 0]
    lp_all = lm_modes.mode_logprobs(params, ids, modes, cfg=cfg, pad_id=PAD, max_new_tokens=M)
    lp_one = lm_modes.mode_logprobs(
        params, ids, modes, cfg=cfg, pad_id=PAD, max_new_tokens=M, rows=2
    )
    np.testing.assert_allclose(lp_all, modes["mode_logprob"], atol=1e-5)
    np.testing.assert_allclose(lp_one, lp_all, atol=1e-6)
    mass = lm_modes.mode_mass(lp_all)
    np.testing.assert_allclose(mass["mode_mass"], np.exp(lp_all).mean(), rtol=1e-12)


def test_unfinished_search_is_left_out(problem):
    cfg, params, ids, *_ = problem
    modes = lm_modes.certified_modes(
        params, ids[:1], cfg=cfg, tokenizer=_TOK, max_new_tokens=M, budget=1, task="t",
        grade=lambda text, p: True,
    )  # fmt: skip
    row = modes.iloc[0]
    assert row["exact"] == 0 and row["response_ids"] == "[]" and row["correct"] == 0
    assert math.isnan(row["mode_logprob"])
    lp = lm_modes.mode_logprobs(params, ids, modes, cfg=cfg, pad_id=PAD, max_new_tokens=M)
    assert lp.shape == (0,)
    assert all(math.isnan(v) for v in lm_modes.mode_mass(lp).values())


def test_bon_probability_of_the_mode():
    """Best-of-1 is the identity; the closed form matches ``1 - (1 - p)^n`` and stays finite
    (first order) where ``p`` underflows; n < 1 is rejected."""
    lp = np.log(np.array([0.9, 0.3, 1e-3]))
    np.testing.assert_allclose(lm_modes.bon_mode_logprob(lp, 1), lp, rtol=1e-12)
    np.testing.assert_allclose(
        np.exp(lm_modes.bon_mode_logprob(lp, 4)), 1 - (1 - np.exp(lp)) ** 4, rtol=1e-12
    )
    tiny = lm_modes.bon_mode_logprob(np.array([-800.0, -20.0 - 1e-9, -20.0]), 8)
    np.testing.assert_allclose(tiny[:2], np.log(8) + np.array([-800.0, -20.0 - 1e-9]))
    np.testing.assert_allclose(tiny[1], tiny[2], rtol=1e-7)  # the two branches meet
    with pytest.raises(ValueError, match="n must"):
        lm_modes.bon_mode_logprob(lp, 0)

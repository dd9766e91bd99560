"""Chunked, device-sharded sampling (sharpen.lm.chunked): chunk c is generate with fold_in(key, c)
on that chunk's prompts, greedy decoding does not depend on the chunking, bad input is named."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

from sharpen.lm import chunked, sampler
from tests.tiny_lm import EOS, PAD, prompts, tiny_model

_KW = {"num_samples": 2, "max_new_tokens": 4, "eos_id": EOS, "pad_id": PAD}


@pytest.fixture(scope="module")
def setup():
    cfg, params = tiny_model("llama")
    return cfg, params, prompts([3, 5, 2, 4, 6], seed=1)


def test_chunks_are_generate_on_each_chunk_with_folded_keys(setup):
    """5 prompts, rows = 4 -> chunks of 2 prompts (the last one padded by repeating prompt 4)."""
    cfg, params, batch = setup
    key = jax.random.key(7)
    got = chunked.generate_chunked(
        params, batch.tokens, batch.mask, cfg=cfg, key=key, rows=4, stats=True, **_KW
    )
    chex.assert_shape(got.tokens, (5, 2, 4))
    for c, idx in enumerate(([0, 1], [2, 3], [4, 4])):
        want = sampler.generate(
            params, batch.tokens[idx], batch.mask[idx], cfg=cfg, key=jax.random.fold_in(key, c),
            stats=True, **_KW,
        )  # fmt: skip
        keep = list(dict.fromkeys(idx))
        for field in ("tokens", "lengths", "base_logprobs", "finished", "entropy"):
            np.testing.assert_array_equal(
                getattr(got, field)[keep], np.asarray(getattr(want, field))[: len(keep)]
            )


def test_greedy_does_not_depend_on_the_chunk_size(setup):
    cfg, params, batch = setup
    one = chunked.generate_chunked(
        params, batch.tokens, batch.mask, cfg=cfg, key=None, rows=100, greedy=True, **_KW
    )
    many = chunked.generate_chunked(
        params, batch.tokens, batch.mask, cfg=cfg, key=None, rows=1, greedy=True, **_KW
    )
    assert many.entropy is None
    np.testing.assert_array_equal(one.tokens, many.tokens)
    np.testing.assert_allclose(one.base_logprobs, many.base_logprobs, atol=1e-5)


def test_bad_input_is_named(setup):
    cfg, params, batch = setup
    for kw, match in (
        ({"rows": 0, "key": jax.random.key(0)}, "rows"),
        ({"rows": 4, "key": None}, "key"),
    ):
        with pytest.raises(ValueError, match=match):
            chunked.generate_chunked(params, batch.tokens, batch.mask, cfg=cfg, **kw, **_KW)
    assert chunked.chunk_size(5, 2, 4, 1) == 2 and chunked.chunk_size(5, 2, 100, 4) == 8

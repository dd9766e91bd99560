"""Tiny random transformers shared by the LM tests (fast to compile, peaked enough to test).

``init_params`` draws kernels from N(0, 0.02), which makes the next-token distribution almost
uniform; :func:`tiny_model` multiplies the final-norm scale by ``sharpness`` so logits spread
over a few nats and greedy/top-k/top-p behave like a trained model's (no near-ties).
"""

from __future__ import annotations

import functools
import itertools

import jax
import numpy as np

from sharpen.lm.batching import left_pad
from sharpen.lm.config import LMConfig
from sharpen.lm.model import init_params
from sharpen.lm.scorer import score

PAD, BOS, EOS = 0, 1, 2

CONFIGS = {
    "gpt2": LMConfig("gpt2", vocab_size=20, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=64),
    "llama": LMConfig(
        "llama",
        vocab_size=20,
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        d_ff=64,
        max_len=64,
        qkv_bias=True,
        tie_embeddings=False,
    ),
}


def tiny_model(arch: str = "llama", *, seed: int = 0, sharpness: float = 30.0, **changes):
    """``(cfg, params)`` of a random 2-layer, d=32 model with a sharpened output head."""
    cfg = CONFIGS[arch].replace(**changes) if changes else CONFIGS[arch]
    params = init_params(cfg, key=jax.random.key(seed))
    params["final_norm"]["scale"] = params["final_norm"]["scale"] * sharpness
    return cfg, params


def prompts(lengths, *, seed: int = 0, vocab: int = 20, bucket: int = 8, min_length: int = 0):
    """A left-padded batch of random prompts (BOS first, no special ids after it)."""
    rng = np.random.default_rng(seed)
    seqs = [[BOS, *rng.integers(3, vocab, size=n - 1).tolist()] for n in lengths]
    return left_pad(seqs, pad_id=PAD, bucket=bucket, min_length=min_length)


#: Exhaustive-search size: ids pad, bos, eos, 3, 4; V^M = 125 candidate responses.
V, M = 5, 3


def brute_force(params, cfg, batch):
    """All V^M responses with EOS-absorbing semantics: ``(tokens [S, M], lengths [S], logp [B, S])``.

    A response is valid when every token after its first EOS is PAD; its length counts the EOS.
    Invalid ones get ``-inf``. Log-probs come from the one-pass scorer.
    """
    seqs = np.array(list(itertools.product(range(V), repeat=M)), np.int32)
    is_eos = seqs == EOS
    first = np.where(is_eos.any(1), is_eos.argmax(1), M)
    lengths = np.minimum(first + 1, M).astype(np.int32)
    after = np.arange(M)[None, :] > first[:, None]
    valid = ((seqs == PAD) | ~after).all(1)
    B = batch.tokens.shape[0]
    tiled = np.broadcast_to(seqs, (B, *seqs.shape))
    out = score(
        params, batch.tokens, batch.mask, tiled, np.broadcast_to(lengths, (B, len(seqs))), cfg=cfg
    )
    return seqs, lengths, np.where(valid[None], np.asarray(out.sum_logprob), -np.inf)


@functools.cache
def small_problem():
    """``(cfg, params, batch, brute_force(...))`` for a V = 5 model and 3 prompts (cached)."""
    cfg, params = tiny_model("llama", vocab_size=V, seed=3, sharpness=8.0)
    batch = prompts([4, 2, 6], vocab=V, seed=5)
    return cfg, params, batch, brute_force(params, cfg, batch)

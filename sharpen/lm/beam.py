"""Beam search over an LM's responses, with a KV cache and finished hypotheses kept.

For each prompt, ``W`` hypotheses are extended by one token per step; the ``W`` best of the
``W * V`` children (by the length-penalised score below) survive. A hypothesis that emits
``eos_id`` is finished: its only child is ``pad_id`` at log-prob 0 (EOS is absorbing), so it
keeps its place in the beam and competes with the live ones until the end. Scores:

.. math::

    s(y) = \\frac{\\log \\pi(y \\mid x)}{|y|^{\\alpha}}, \\qquad
    \\log \\pi(y \\mid x) = \\sum_{t \\le |y|} \\log \\pi(y_t \\mid x, y_{<t}),

with ``|y|`` the generated tokens including EOS and ``alpha = length_penalty`` (0: the plain
sequence log-likelihood, the sharpening target ``y*`` of Huang et al., ICLR 2025, §1.3; > 0
favours longer responses as in Wu et al. 2016). With ``W`` at least the number of distinct
responses (``V^M``) nothing is pruned, so the top beam is the exact argmax; ``W = 1`` is greedy
decoding. In between it is a heuristic (it can miss ``y*``, Prop. E.2).

The cache rows are re-ordered by parent at every step (one gather of the cache).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen._checks import check_static_int
from sharpen.lm.batching import bucket_length, check_prompts, check_token_id, real_scalar
from sharpen.lm.config import LMConfig
from sharpen.lm.model import KVCache
from sharpen.lm.sampler import CACHE_MULTIPLE, decode_step, prefill, repeat_cache, repeat_rows

__all__ = ["BeamOutput", "beam_search"]


class BeamOutput(NamedTuple):
    """Beams sorted by score, best first (``B`` prompts, ``W`` beams, ``M`` steps).

    Attributes:
      tokens: ``[B, W, M]`` int32 ids, ``pad_id`` after EOS.
      lengths: ``[B, W]`` int32 tokens including the EOS.
      sum_logprobs: ``[B, W]`` float32 base ``log pi(y | x)`` (``-inf`` for the placeholder
        beams that only exist when fewer than ``W`` responses have positive probability).
      scores: ``[B, W]`` the length-penalised scores that ranked them.
      finished: ``[B, W]`` bool, true when the beam ended with EOS.
    """

    tokens: jax.Array
    lengths: jax.Array
    sum_logprobs: jax.Array
    scores: jax.Array
    finished: jax.Array


@functools.partial(jax.jit, static_argnames=("cfg", "width", "max_new_tokens", "cache_len"))
def _beam_jit(
    params, prompt_BxP, mask_BxP, eos_id, pad_id, alpha, *, cfg, width, max_new_tokens, cache_len
):
    batch, plen = prompt_BxP.shape
    w, m = width, max_new_tokens
    rows = batch * w
    cache, key_mask_BxT, positions_BxP = prefill(
        params, prompt_BxP, mask_BxP, cfg=cfg, cache_len=cache_len
    )
    cache = repeat_cache(cache, w)
    key_mask_RxT = repeat_rows(key_mask_BxT, w)
    last_pos_R = repeat_rows(positions_BxP[:, -1], w)
    first_R = jnp.arange(rows, dtype=jnp.int32) // w * w  # row of each prompt's beam 0

    def select(i, logits_RxV, beams):
        tokens_RxM, sum_R, len_R, fin_R = beams
        vocab = logits_RxV.shape[-1]
        logp_RxV = jax.nn.log_softmax(logits_RxV.astype(jnp.float32), axis=-1)
        absorbed_V = jnp.where(jnp.arange(vocab, dtype=jnp.int32) == pad_id, 0.0, -jnp.inf)
        logp_RxV = jnp.where(fin_R[:, None], absorbed_V[None, :], logp_RxV)
        cand_sum_RxV = sum_R[:, None] + logp_RxV
        cand_len_R = len_R + (~fin_R).astype(jnp.int32)
        penalty_R = jnp.maximum(cand_len_R, 1).astype(jnp.float32) ** alpha
        cand_score_BxWV = (cand_sum_RxV / penalty_R[:, None]).reshape(batch, w * vocab)
        score_BxW, idx_BxW = jax.lax.top_k(cand_score_BxWV, w)
        parent_R = (first_R.reshape(batch, w) + idx_BxW // vocab).reshape(rows)
        tok_R = (idx_BxW % vocab).reshape(rows).astype(jnp.int32)
        new_sum_R = jnp.take_along_axis(cand_sum_RxV.reshape(batch, w * vocab), idx_BxW, axis=1)
        beams = (
            jax.lax.dynamic_update_index_in_dim(tokens_RxM[parent_R], tok_R, i, axis=1),
            new_sum_R.reshape(rows),
            cand_len_R[parent_R],
            fin_R[parent_R] | (tok_R == eos_id),
        )
        return beams, parent_R, tok_R, score_BxW.reshape(rows)

    def step(carry, i):
        # Step i feeds token i - 1 (the last prompt token when i = 0) into slot P - 1 + i,
        # after re-ordering the cache rows by the parents chosen at step i - 1.
        parent_R, feed_R, cache, beams, _ = carry
        cache = KVCache(cache.k[:, parent_R], cache.v[:, parent_R])
        logits_RxV, cache = decode_step(
            params, feed_R, last_pos_R + i, key_mask_RxT, cache, plen - 1 + i, cfg=cfg, plen=plen
        )
        beams, parent_R, tok_R, score_R = select(i, logits_RxV, beams)
        return (parent_R, tok_R, cache, beams, score_R), None

    # One live beam per prompt at the start; the others are -inf placeholders.
    sum_R = jnp.where(jnp.arange(rows) % w == 0, 0.0, -jnp.inf).astype(jnp.float32)
    beams = (
        jnp.full((rows, m), pad_id, jnp.int32),
        sum_R,
        jnp.zeros((rows,), jnp.int32),
        jnp.zeros((rows,), bool),
    )
    init = (
        jnp.arange(rows, dtype=jnp.int32),
        repeat_rows(prompt_BxP[:, -1], w),
        cache,
        beams,
        sum_R,
    )
    (_, _, _, beams, score_R), _ = jax.lax.scan(step, init, jnp.arange(m, dtype=jnp.int32))
    tokens_RxM, sum_R, len_R, fin_R = beams
    return BeamOutput(
        tokens_RxM.reshape(batch, w, m),
        len_R.reshape(batch, w),
        sum_R.reshape(batch, w),
        score_R.reshape(batch, w),
        fin_R.reshape(batch, w),
    )


def beam_search(
    params: dict,
    prompt_tokens_BxP: jax.typing.ArrayLike,
    prompt_mask_BxP: jax.typing.ArrayLike,
    *,
    cfg: LMConfig,
    width: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    length_penalty: float = 0.0,
) -> BeamOutput:
    """Beam search of ``width`` hypotheses per prompt, ``max_new_tokens`` steps, KV-cached.

    One jitted program per ``(shapes, cfg, width, max_new_tokens)``: prefill once per prompt,
    broadcast the cache to the ``W`` beams, then a ``lax.scan`` of single-token steps; each step
    takes ``lax.top_k`` of the ``W * V`` children (ties to the lower ``parent * V + token``)
    and gathers the cache rows of the surviving parents. At the start only beam 0 is live; the
    others are ``-inf`` placeholders that survive only when fewer than ``W`` children have
    positive probability.

    Args:
      params: model parameters.
      prompt_tokens_BxP: ``[B, P]`` int ids, left-padded.
      prompt_mask_BxP: ``[B, P]`` bool, true at real tokens.
      cfg: the model's :class:`~sharpen.lm.config.LMConfig` (static).
      width: ``W >= 1`` beams per prompt (static).
      max_new_tokens: ``M >= 1`` steps (static).
      eos_id: id that finishes a hypothesis.
      pad_id: the only continuation of a finished hypothesis (log-prob 0).
      length_penalty: ``alpha >= 0`` in ``score = log pi(y|x) / |y|^alpha`` (traced).

    Returns:
      A :class:`BeamOutput`, beams sorted by score (best first).

    Raises:
      ValueError: naming the argument, for ``width < 1``, ``max_new_tokens < 1``, a negative
        ``length_penalty``, bad ids or prompt arrays, or (GPT-2) prompt ``+ M > cfg.max_len``.
    """
    width = check_static_int(width, "width")
    max_new_tokens = check_static_int(max_new_tokens, "max_new_tokens")
    alpha = real_scalar(length_penalty, "length_penalty")
    if not (alpha >= 0 and np.isfinite(alpha)):
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")
    eos_id = check_token_id(eos_id, "eos_id", cfg)
    pad_id = check_token_id(pad_id, "pad_id", cfg)
    tokens, mask, _ = check_prompts(prompt_tokens_BxP, prompt_mask_BxP, cfg, max_new_tokens)
    return _beam_jit(
        params,
        tokens,
        mask,
        np.int32(eos_id),
        np.int32(pad_id),
        np.float32(alpha),
        cfg=cfg,
        width=width,
        max_new_tokens=max_new_tokens,
        cache_len=bucket_length(tokens.shape[1] + max_new_tokens, CACHE_MULTIPLE),
    )

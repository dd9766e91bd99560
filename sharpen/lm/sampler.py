"""KV-cache sampling of ``N`` responses per prompt, one jitted program per shape.

:func:`generate` prefills the (left-padded) prompts once, broadcasts the cache to the ``N``
samples of each prompt, then decodes inside a ``lax.while_loop`` that stops as soon as every
row has emitted EOS. Everything from prefill to the last token is ONE ``jax.jit`` program;
``cfg``, ``num_samples``, ``max_new_tokens``, ``greedy``, ``top_k`` (and whether ``top_p`` is
used) are static, ``temperature``, ``top_p``, ``eos_id`` and ``pad_id`` are traced, so changing
them does not recompile.

Each step draws one token per row from the *sampling distribution*

.. math::

    q(v) \\propto \\exp(\\log\\pi(v \\mid x, y_{<t}) / \\tau)\\,
      \\mathbb 1[v \\in \\mathrm{TopK}]\\,\\mathbb 1[v \\in \\mathrm{TopP}],

by the inverse CDF (one uniform per row per step, ``jax.random.fold_in(key, t)``), and records
both ``log q(y_t)`` (``sample_logprobs``) and ``log pi(y_t | x, y_<t)`` under the unmodified
model at temperature 1 (``base_logprobs``): the sum of the latter is the self-reward
``log pi_base(y | x)`` (Eq. 2 of Huang et al., ICLR 2025).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from sharpen._checks import check_static_int
from sharpen.lm.batching import (
    bucket_length,
    check_prompts,
    check_token_id,
    check_tokenizer,
    encode_prompts,
    real_scalar,
)
from sharpen.lm.config import LMConfig
from sharpen.lm.model import (
    KVCache,
    default_positions,
    forward_cached,
    forward_layers,
    init_cache,
    split_layers,
    to_layer_cache,
)
from sharpen.lm.sharding import shard_batch
from sharpen.lm.tokenizer import Tokenizer

__all__ = ["SampleOutput", "TextSamples", "generate", "sample_texts", "sampling_logprobs"]

#: Cache length is ``P + M`` rounded up to a multiple of this.
CACHE_MULTIPLE = 8


class SampleOutput(NamedTuple):
    """What :func:`generate` returns (``B`` prompts, ``N`` samples each, ``M`` new tokens).

    Attributes:
      tokens: ``[B, N, M]`` int32 generated ids; ``pad_id`` after EOS (and after early stop).
      lengths: ``[B, N]`` int32 generated tokens including the EOS.
      sample_logprobs: ``[B, N, M]`` float32 ``log q(y_t)`` under the sampling distribution
        (temperature, top-k and top-p applied and renormalized; 0 under ``greedy``, a point
        mass); 0 at padded steps.
      base_logprobs: ``[B, N, M]`` float32 ``log pi(y_t | x, y_<t)`` under the unmodified model
        at temperature 1 (the self-reward terms); 0 at padded steps.
      finished: ``[B, N]`` bool, true when the row emitted EOS.
      entropy: ``[B, N]`` float32 mean per-token entropy ``H(pi(. | x, y_<t))`` (nats) of the
        base model at ``T = 1`` over the response's tokens (EOS included; 0 for an empty
        response), as :func:`sharpen.lm.scorer.score` computes it; ``None`` unless
        ``generate(..., stats=True)``.
      self_certainty: ``[B, N]`` float32 mean per-token ``KL(Uniform_V || pi(. | x, y_<t))``,
        likewise (the self-certainty of Kang et al., 2025, as in the scorer); ``None`` unless
        ``stats=True``.
    """

    tokens: jax.Array
    lengths: jax.Array
    sample_logprobs: jax.Array
    base_logprobs: jax.Array
    finished: jax.Array
    entropy: jax.Array | None = None
    self_certainty: jax.Array | None = None


class TextSamples(NamedTuple):
    """What :func:`sample_texts` returns: ``texts[b][n]`` (EOS stripped) and the raw output."""

    texts: list[list[str]]
    output: SampleOutput


def sampling_logprobs(
    logits_RxV: jax.Array,
    temperature: jax.typing.ArrayLike = 1.0,
    *,
    top_k: int | None = None,
    top_p: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Log-probabilities of the truncated, tempered sampling distribution (renormalized).

    .. math::

        q(v) \\propto \\exp(\\ell_v / \\tau) \\,\\mathbb 1[\\ell_v \\ge \\ell_{(k)}]\\,
          \\mathbb 1\\Big[\\sum_{u:\\, q'_u > q'_v} q'_u < p\\Big],

    applied in this order (as Hugging Face ``generate``): temperature, top-k (keep the ``k``
    largest, ties at the ``k``-th value kept too), top-p on the result ``q'`` (keep every
    token whose strictly-more-probable mass is ``< p``: the smallest nucleus reaching ``p``,
    ties kept; ``p = 1`` keeps everything).

    Args:
      logits_RxV: ``[R, V]`` float logits (or log-probabilities).
      temperature: ``> 0`` scalar (may be traced).
      top_k: static ``1 <= k <= V`` or ``None``.
      top_p: scalar in ``(0, 1]`` (may be traced) or ``None``.

    Returns:
      ``[R, V]`` float32 log-probabilities, ``-inf`` outside the kept set.

    >>> lp = sampling_logprobs(jnp.log(jnp.array([[0.5, 0.3, 0.2]])), top_p=0.6)
    >>> [round(float(x), 3) for x in jnp.exp(lp)[0]]
    [0.625, 0.375, 0.0]
    """
    logits = logits_RxV.astype(jnp.float32)
    scaled = jax.nn.log_softmax(logits / jnp.asarray(temperature, jnp.float32), axis=-1)
    if top_k is not None and top_k < scaled.shape[-1]:
        # min over the k values, not [:, -1]: XLA CPU turns top_k + slice into a full sort.
        kth_Rx1 = jnp.min(jax.lax.top_k(scaled, top_k)[0], axis=-1, keepdims=True)
        scaled = jax.nn.log_softmax(jnp.where(scaled >= kth_Rx1, scaled, -jnp.inf), axis=-1)
    if top_p is not None:
        p = jnp.asarray(top_p, jnp.float32)
        keep = (scaled >= _nucleus_cutoff(scaled, p)) | (p >= 1.0)  # p = 1: no truncation
        scaled = jax.nn.log_softmax(jnp.where(keep, scaled, -jnp.inf), axis=-1)
    return scaled


#: Top-p looks for its cutoff among this many largest log-probs first (a full sort of a
#: 49k vocabulary costs ~1 s per step on CPU); it sorts everything only when some row's
#: nucleus is larger.
TOP_P_CANDIDATES = 1024


def _cutoff_in(sorted_RxK: jax.Array, p: jax.Array):
    """Smallest kept value (mass strictly ahead ``< p``) and the total mass of the candidates."""
    probs_RxK = jnp.exp(sorted_RxK)
    cum_RxK = jnp.cumsum(probs_RxK, axis=-1)
    before_RxK = cum_RxK - probs_RxK
    cutoff_Rx1 = jnp.min(jnp.where(before_RxK < p, sorted_RxK, jnp.inf), axis=-1, keepdims=True)
    return cutoff_Rx1, cum_RxK[:, -1]


def _nucleus_cutoff(logq_RxV: jax.Array, p: jax.Array) -> jax.Array:
    """``[R, 1]`` top-p threshold on normalized log-probs: exact, sorting only when needed."""

    def full_sort(_):
        return _cutoff_in(-jnp.sort(-logq_RxV, axis=-1), p)[0]

    if logq_RxV.shape[-1] <= TOP_P_CANDIDATES:
        return full_sort(None)
    cutoff_Rx1, mass_R = _cutoff_in(jax.lax.top_k(logq_RxV, TOP_P_CANDIDATES)[0], p)
    # Every row's nucleus lies within its candidates when their mass reaches p.
    return jax.lax.cond(jnp.all(mass_R >= p) | (p >= 1.0), lambda _: cutoff_Rx1, full_sort, None)


def _first_true(mask_RxV: jax.Array) -> jax.Array:
    """Index of the first true entry of each row, ``V`` where there is none.

    One plain ``min`` reduction: XLA:CPU lowers ``jnp.argmax`` to a variadic (value, index)
    reduce, about 1.7x slower per decode step at ``[64, 2048]`` (BENCHMARKS.md, Round 5).
    """
    iota_RxV = jax.lax.broadcasted_iota(jnp.int32, mask_RxV.shape, mask_RxV.ndim - 1)
    return jnp.min(jnp.where(mask_RxV, iota_RxV, mask_RxV.shape[-1]), axis=-1)


def _inverse_cdf_rows(logq_RxV: jax.Array, u_R: jax.Array) -> jax.Array:
    """One draw per row: the first token with positive mass whose CDF exceeds ``u * total``."""
    max_Rx1 = jnp.max(logq_RxV, axis=-1, keepdims=True)
    q_RxV = jnp.exp(logq_RxV - max_Rx1)
    cdf_RxV = jnp.cumsum(q_RxV, axis=-1)
    hit_R = _first_true((cdf_RxV > u_R[:, None] * cdf_RxV[:, -1:]) & (q_RxV > 0))
    # u * total can round up to total: fall back to the mode (never a zero-mass token).
    fallback_R = _first_true(logq_RxV == max_Rx1)
    return jnp.where(hit_R < logq_RxV.shape[-1], hit_R, fallback_R).astype(jnp.int32)


def _take(x_RxV: jax.Array, idx_R: jax.Array) -> jax.Array:
    return jnp.take_along_axis(x_RxV, idx_R[:, None], axis=-1)[:, 0]


def _choose(logits_RxV, key, temperature, top_p, *, greedy, top_k, use_top_p):
    """Token, its sampling log-prob and its base log-prob, for every row."""
    if greedy:
        # The first maximum of the logits; its log-softmax is exactly 0 - log sum exp(z - max),
        # as jax.nn.log_softmax computes it, without writing the [R, V] log-probs.
        z_RxV = logits_RxV.astype(jnp.float32)
        max_Rx1 = jnp.max(z_RxV, axis=-1, keepdims=True)
        tok_R = _first_true(z_RxV == max_Rx1).astype(jnp.int32)
        base_R = -jnp.log(jnp.sum(jnp.exp(z_RxV - max_Rx1), axis=-1))
        return tok_R, jnp.zeros(tok_R.shape, jnp.float32), base_R
    base_RxV = jax.nn.log_softmax(logits_RxV.astype(jnp.float32), axis=-1)
    logq_RxV = sampling_logprobs(
        base_RxV, temperature, top_k=top_k, top_p=top_p if use_top_p else None
    )
    tok_R = _inverse_cdf_rows(
        logq_RxV, jax.random.uniform(key, (logits_RxV.shape[0],), jnp.float32)
    )
    return tok_R, _take(logq_RxV, tok_R), _take(base_RxV, tok_R)


def prefill(params, prompt_BxP, mask_BxP, *, cfg: LMConfig, cache_len: int):
    """Write all but the last column of a left-padded prompt batch into a fresh cache.

    The last prompt token is left for the first decode step, which yields the logits of the
    first new token: the prefill's own logits are never used, so XLA drops its output head
    (no ``[B, P, V]`` array) and the decode loop needs no separate first step.

    Returns:
      ``(cache with T = cache_len slots, key_mask_BxT, positions_BxP)``; the key mask marks the
      prompt's real tokens (all ``P`` columns; later slots are opened by the decode loop).
    """
    batch, plen = prompt_BxP.shape
    key_mask_BxT = jnp.pad(mask_BxP, ((0, 0), (0, cache_len - plen)))
    positions_BxP = default_positions(mask_BxP)
    cache = init_cache(cfg, batch, cache_len)
    if plen > 1:
        _, cache = forward_cached(
            params, prompt_BxP[:, :-1], positions_BxP[:, :-1], key_mask_BxT, cache, 0, cfg=cfg
        )
    return cache, key_mask_BxT, positions_BxP


def decode_step(params, feed_R, position_R, key_mask_RxT, cache, slot, *, cfg: LMConfig, plen: int):
    """Feed one token per row into cache ``slot``; ``[R, V]`` logits of the next token.

    ``key_mask_RxT`` marks the prompt's real slots (``< plen``); slots ``plen .. slot`` (the
    generated tokens so far) are opened here.
    """
    slot_T = jnp.arange(key_mask_RxT.shape[1], dtype=jnp.int32)
    mask_RxT = key_mask_RxT | ((slot_T >= plen) & (slot_T <= slot))[None, :]
    logits_Rx1xV, cache = forward_cached(
        params, feed_R[:, None], position_R[:, None], mask_RxT, cache, slot, cfg=cfg
    )
    return logits_Rx1xV[:, 0], cache


def _decode_step_layers(
    params, layer_params, feed_R, position_R, key_mask_RxT, cache, slot, *, cfg, plen
):
    """:func:`decode_step` on the unrolled fast path (:func:`~sharpen.lm.model.forward_layers`)."""
    slot_T = jnp.arange(key_mask_RxT.shape[1], dtype=jnp.int32)
    mask_RxT = key_mask_RxT | ((slot_T >= plen) & (slot_T <= slot))[None, :]
    logits_Rx1xV, cache = forward_layers(
        params, layer_params, feed_R[:, None], position_R[:, None], mask_RxT, cache, slot, cfg=cfg
    )
    return logits_Rx1xV[:, 0], cache


def repeat_rows(x, n: int, axis: int = 0):
    """``x`` with every row along ``axis`` repeated ``n`` times in place (``b -> b*n .. b*n+n-1``)."""
    return jnp.repeat(x, n, axis=axis, total_repeat_length=x.shape[axis] * n)


def repeat_cache(cache: KVCache, n: int) -> KVCache:
    """Repeat each batch row of a cache ``n`` times (the batch is axis 1, after layers)."""
    return KVCache(repeat_rows(cache.k, n, axis=1), repeat_rows(cache.v, n, axis=1))


@functools.partial(
    jax.jit,
    static_argnames=(
        "cfg",
        "num_samples",
        "max_new_tokens",
        "greedy",
        "top_k",
        "use_top_p",
        "cache_len",
        "stats",
    ),
)
def _generate_jit(
    params,
    prompt_BxP,
    mask_BxP,
    key,
    temperature,
    top_p,
    eos_id,
    pad_id,
    *,
    cfg,
    num_samples,
    max_new_tokens,
    greedy,
    top_k,
    use_top_p,
    cache_len,
    stats=False,
):
    batch, plen = prompt_BxP.shape
    n, m = num_samples, max_new_tokens
    rows = batch * n
    cache, key_mask_BxT, positions_BxP = prefill(
        params, prompt_BxP, mask_BxP, cfg=cfg, cache_len=cache_len
    )
    # Decode on the unrolled fast path: per-layer weights sliced once here, per-layer
    # heads-major caches updated in place inside the loop.
    cache = to_layer_cache(repeat_cache(cache, n))
    layer_params = split_layers(params)
    key_mask_RxT = repeat_rows(key_mask_BxT, n)
    last_pos_R = repeat_rows(positions_BxP[:, -1], n)
    choose = functools.partial(
        _choose,
        temperature=temperature,
        top_p=top_p,
        greedy=greedy,
        top_k=top_k,
        use_top_p=use_top_p,
    )

    def emit(i, logits_RxV, out):
        tokens_RxM, slp_RxM, blp_RxM, lengths_R, finished_R, ent_R, cert_R = out
        tok_R, slp_R, blp_R = choose(logits_RxV, jax.random.fold_in(key, i))
        live_R = ~finished_R
        tok_R = jnp.where(live_R, tok_R, pad_id)
        slp_R = jnp.where(live_R, slp_R, 0.0)
        blp_R = jnp.where(live_R, blp_R, 0.0)
        if stats:  # the same float32 formulas as sharpen.lm.scorer
            base_RxV = jax.nn.log_softmax(logits_RxV.astype(jnp.float32), axis=-1)
            step_ent_R = -jnp.sum(jnp.exp(base_RxV) * base_RxV, axis=-1)
            step_cert_R = -jnp.mean(base_RxV, axis=-1) - jnp.log(jnp.float32(base_RxV.shape[-1]))
            ent_R = ent_R + jnp.where(live_R, step_ent_R, 0.0)
            cert_R = cert_R + jnp.where(live_R, step_cert_R, 0.0)
        put = functools.partial(jax.lax.dynamic_update_index_in_dim, index=i, axis=1)
        out = (
            put(tokens_RxM, tok_R),
            put(slp_RxM, slp_R),
            put(blp_RxM, blp_R),
            lengths_R + live_R.astype(jnp.int32),
            finished_R | (live_R & (tok_R == eos_id)),
            ent_R,
            cert_R,
        )
        return tok_R, out

    zeros_RxM = jnp.zeros((rows, m), jnp.float32)
    out = (
        jnp.full((rows, m), pad_id, jnp.int32),
        zeros_RxM,
        zeros_RxM,
        jnp.zeros((rows,), jnp.int32),
        jnp.zeros((rows,), bool),
        jnp.zeros((rows,), jnp.float32),
        jnp.zeros((rows,), jnp.float32),
    )

    def cond(carry):
        i, _, _, out = carry
        return (i < m) & ~jnp.all(out[4])

    def body(carry):
        # Step i feeds token i - 1 (the last prompt token when i = 0) into slot P - 1 + i.
        i, feed_R, cache, out = carry
        logits_RxV, cache = _decode_step_layers(
            params,
            layer_params,
            feed_R,
            last_pos_R + i,
            key_mask_RxT,
            cache,
            plen - 1 + i,
            cfg=cfg,
            plen=plen,
        )
        tok_R, out = emit(i, logits_RxV, out)
        return i + 1, tok_R, cache, out

    feed_R = repeat_rows(prompt_BxP[:, -1], n)
    _, _, _, out = jax.lax.while_loop(cond, body, (jnp.int32(0), feed_R, cache, out))
    tokens_RxM, slp_RxM, blp_RxM, lengths_R, finished_R, ent_R, cert_R = out
    denom_R = jnp.maximum(lengths_R, 1).astype(jnp.float32)
    per_token = lambda x_R: (x_R / denom_R).reshape(batch, n)  # noqa: E731
    return SampleOutput(
        tokens_RxM.reshape(batch, n, m),
        lengths_R.reshape(batch, n),
        slp_RxM.reshape(batch, n, m),
        blp_RxM.reshape(batch, n, m),
        finished_R.reshape(batch, n),
        per_token(ent_R) if stats else None,
        per_token(cert_R) if stats else None,
    )


def generate(
    params: dict,
    prompt_tokens_BxP: jax.typing.ArrayLike,
    prompt_mask_BxP: jax.typing.ArrayLike,
    *,
    cfg: LMConfig,
    key: jax.Array | None,
    num_samples: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    stats: bool = False,
    mesh: Mesh | None = None,
) -> SampleOutput:
    """Sample ``N`` responses of up to ``M`` tokens for each of ``B`` left-padded prompts.

    One jitted program per ``(shapes, cfg, N, M, greedy, top_k, top_p is None)``: prefill of
    the prompt batch, cache broadcast to ``B * N`` rows (row ``b * N + n``), then a
    ``lax.while_loop`` of single-token cache steps that exits when every row has emitted
    ``eos_id``. Token ``t`` of every row uses the uniform ``fold_in(key, t)`` (one draw per
    row), so results do not depend on ``M`` beyond the steps taken.

    With a ``mesh`` (:func:`sharpen.lm.sharding.make_mesh`) the prompts are validated on the
    host, then their ``B`` rows are split along its ``"data"`` axis
    (:func:`~sharpen.lm.sharding.shard_batch`) and the same program runs data-parallel (pass
    ``params`` replicated, e.g. via :func:`~sharpen.lm.sharding.shard_params`). Each row's maths
    is unchanged and the per-step uniforms do not depend on the layout, so the tokens equal the
    1-device ones and the log-probs agree up to float32 rounding; on a 1-device mesh the
    outputs are identical.

    Args:
      params: model parameters.
      prompt_tokens_BxP: ``[B, P]`` int ids, left-padded (see :mod:`sharpen.lm.batching`).
      prompt_mask_BxP: ``[B, P]`` bool, true at real tokens (a non-empty suffix of each row).
      cfg: the model's :class:`~sharpen.lm.config.LMConfig` (static).
      key: PRNG key (may be ``None`` when ``greedy``).
      num_samples: ``N >= 1`` samples per prompt (static).
      max_new_tokens: ``M >= 1`` (static); the cache holds ``P + M`` slots rounded up to 8.
      eos_id: id that ends a response (traced).
      pad_id: id written after EOS (traced).
      temperature: ``> 0`` (traced; ignored when ``greedy``).
      top_k: ``1 <= k <= V`` or ``None`` (static).
      top_p: ``0 < p <= 1`` or ``None`` (value traced).
      greedy: argmax decoding (static); ties go to the lowest id.
      stats: also return the per-response mean entropy and self-certainty of the base model
        (static; one more pass over each step's ``[B * N, V]`` log-probs, which saves a
        separate :func:`~sharpen.lm.scorer.score` pass over prompt + response).
      mesh: split the prompt rows over this mesh's ``"data"`` axis; ``B`` must then be a
        multiple of ``mesh.shape["data"]`` (on several processes: this process's rows, see
        :func:`~sharpen.lm.sharding.shard_batch`). ``None``: no placement.

    Returns:
      A :class:`SampleOutput` with ``[B, N, M]`` tokens and log-probs, ``[B, N]`` lengths and
      finished flags (and ``[B, N]`` entropy / self-certainty when ``stats``); split along
      ``"data"`` when ``mesh`` is given.

    Raises:
      ValueError: naming the argument, for ``num_samples < 1``, ``max_new_tokens < 1``,
        ``temperature <= 0`` (unless greedy), ``top_p`` outside ``(0, 1]``, ``top_k`` outside
        ``[1, V]``, bad prompt arrays or ids, (GPT-2) prompt length ``+ M > cfg.max_len``, or a
        batch size ``B`` that is not a multiple of the mesh's ``"data"`` axis.

    References:
      Huang et al., "Self-Improvement in Language Models: The Sharpening Mechanism", ICLR 2025,
      Eq. 2 (the self-reward ``log pi_base(y|x)``, the sum of ``base_logprobs``).
    """
    num_samples = check_static_int(num_samples, "num_samples")
    max_new_tokens = check_static_int(max_new_tokens, "max_new_tokens")
    if not greedy:
        temp = real_scalar(temperature, "temperature")
        if not temp > 0 or not np.isfinite(temp):
            raise ValueError(f"temperature must be > 0 (or use greedy=True), got {temperature!r}")
        if key is None:
            raise ValueError("key is required unless greedy=True")
    if top_p is not None:
        p = real_scalar(top_p, "top_p")
        if not 0.0 < p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer):
            raise ValueError(f"top_k must be an int in [1, {cfg.vocab_size}], got {top_k!r}")
        if not 1 <= top_k <= cfg.vocab_size:
            raise ValueError(f"top_k must be in [1, cfg.vocab_size={cfg.vocab_size}], got {top_k}")
        top_k = int(top_k)
    eos_id = check_token_id(eos_id, "eos_id", cfg)
    pad_id = check_token_id(pad_id, "pad_id", cfg)
    tokens, mask, _ = check_prompts(prompt_tokens_BxP, prompt_mask_BxP, cfg, max_new_tokens)
    plen = tokens.shape[1]
    if key is None:
        key = jax.random.key(0)  # unused by greedy decoding; keeps the signature uniform
    if mesh is not None:
        data = mesh.shape["data"]
        if jax.process_count() == 1 and tokens.shape[0] % data:
            raise ValueError(
                f"prompt_tokens_BxP batch size {tokens.shape[0]} must be a multiple of the "
                f"mesh's data axis ({data}); pad the prompts (e.g. repeat the last one)"
            )
        # After the host-side checks: they would undo the placement.
        tokens, mask = shard_batch((tokens, mask), mesh)
    return _generate_jit(
        params,
        tokens,
        mask,
        key,
        np.float32(1.0 if greedy else temperature),
        np.float32(1.0 if top_p is None else top_p),
        np.int32(eos_id),
        np.int32(pad_id),
        cfg=cfg,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        greedy=bool(greedy),
        top_k=None if greedy else top_k,
        use_top_p=top_p is not None and not greedy,
        cache_len=bucket_length(plen + max_new_tokens, CACHE_MULTIPLE),
        stats=bool(stats),
    )


def sample_texts(
    params: dict,
    cfg: LMConfig,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    *,
    key: jax.Array | None,
    num_samples: int = 1,
    max_new_tokens: int,
    add_bos: bool = True,
    bucket: int = 16,
    **sampling,
) -> TextSamples:
    """Encode ``prompts``, :func:`generate`, decode: ``texts[b][n]`` without the EOS.

    Args:
      params, cfg: the model.
      tokenizer: its :class:`~sharpen.lm.tokenizer.Tokenizer` (gives ``eos_id``, ``pad_id``).
      prompts: ``B`` strings.
      key, num_samples, max_new_tokens: as in :func:`generate`.
      add_bos, bucket: as in :func:`~sharpen.lm.batching.encode_prompts`.
      **sampling: ``temperature``, ``top_k``, ``top_p``, ``greedy``.

    Returns:
      :class:`TextSamples` ``(texts, output)``.
    """
    check_tokenizer(tokenizer, cfg)
    batch = encode_prompts(tokenizer, prompts, cfg=cfg, add_bos=add_bos, bucket=bucket)
    out = generate(
        params,
        batch.tokens,
        batch.mask,
        cfg=cfg,
        key=key,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        eos_id=tokenizer.eos_id,
        pad_id=tokenizer.pad_id,
        **sampling,
    )
    tokens, lengths, finished = (np.asarray(a) for a in (out.tokens, out.lengths, out.finished))
    texts = [
        [
            tokenizer.decode(tokens[b, n, : lengths[b, n] - int(finished[b, n])].tolist())
            for n in range(tokens.shape[1])
        ]
        for b in range(tokens.shape[0])
    ]
    return TextSamples(texts, out)

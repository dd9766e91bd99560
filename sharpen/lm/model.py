"""Decoder-only transformer (GPT-2 and Llama/Qwen2 families) as pure functions of a params pytree.

The network is a Flax Linen module (:class:`Transformer`), but nothing outside this file sees
the module: samplers, scorers and losses call :func:`forward` / :func:`forward_cached`, pure
functions of ``(params, tokens, ...)`` with the :class:`~sharpen.lm.config.LMConfig` as a
static argument. Layers are stacked and run with ``nn.scan``, so a 30-layer model compiles as
fast as a 1-layer one and every per-layer parameter has a leading ``[n_layers]`` axis.

Parameter tree (``D`` = d_model, ``Hq = n_heads * head_dim``, ``Hk = n_kv_heads * head_dim``,
``F`` = d_ff, ``n`` = n_layers)::

    embed/embedding            [V, D]
    pos_embed/embedding        [max_len, D]          (gpt2)
    blocks/attn_norm/scale     [n, D]   (+ bias [n, D] for gpt2)
    blocks/attn/{q,k,v}/kernel [n, D, Hq | Hk]   (+ bias when gpt2 or qkv_bias)
    blocks/attn/o/kernel       [n, Hq, D]        (+ bias for gpt2)
    blocks/mlp_norm/...        as attn_norm
    blocks/mlp/up/kernel       [n, D, F]   (+ bias for gpt2)
    blocks/mlp/gate/kernel     [n, D, F]             (llama)
    blocks/mlp/down/kernel     [n, F, D]   (+ bias for gpt2)
    final_norm/...             [D]
    lm_head                    [D, V]                (untied llama only)

Kernels are ``[in, out]`` (``y = x @ W``). Padding: rows of a batch may have different
lengths; a boolean key mask marks real tokens and ``positions`` counts real tokens only, so
left-padded prompts get the same logits as unpadded ones (tested).

References: Radford et al. 2019 (GPT-2); Touvron et al. 2023 (Llama); Su et al. 2021 (RoPE);
Ainslie et al. 2023 (grouped-query attention).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sharpen.lm.config import LMConfig

_NEG = -1e30  # finite "minus infinity": a fully masked row softmaxes to uniform, not NaN


class KVCache(NamedTuple):
    """Keys and values of every layer for ``T`` cache slots.

    Attributes:
      k: ``[n_layers, B, T, n_kv_heads, head_dim]``.
      v: same shape as ``k``.
    """

    k: jax.Array
    v: jax.Array


class _Norm(nn.Module):
    cfg: LMConfig

    @nn.compact
    def __call__(self, x):
        cfg = self.cfg
        x32 = x.astype(jnp.float32)
        scale = self.param("scale", nn.initializers.ones, (cfg.d_model,), cfg.storage_dtype)
        if cfg.arch == "gpt2":
            bias = self.param("bias", nn.initializers.zeros, (cfg.d_model,), cfg.storage_dtype)
            mean = jnp.mean(x32, axis=-1, keepdims=True)
            var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
            y = (x32 - mean) * jax.lax.rsqrt(var + cfg.norm_eps)
            y = y * _lift(scale, y.ndim) + _lift(bias, y.ndim)
        else:
            ms = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
            y = x32 * jax.lax.rsqrt(ms + cfg.norm_eps) * _lift(scale, x32.ndim)
        return y.astype(cfg.compute_dtype)


def _lift(v_D: jax.Array, ndim: int) -> jax.Array:
    """``[D]`` float32 vector with leading unit axes, so it broadcasts without rank promotion."""
    return v_D.astype(jnp.float32).reshape((1,) * (ndim - 1) + v_D.shape)


def _dense(cfg: LMConfig, features: int, name: str, use_bias: bool) -> nn.Dense:
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=cfg.compute_dtype,
        param_dtype=cfg.storage_dtype,
        kernel_init=nn.initializers.normal(0.02),
        name=name,
    )


def rope_angles(positions_BxL: jax.Array, head_dim: int, theta: float):
    """``cos`` and ``sin`` of the rotary angles, ``[B, L, 1, head_dim]`` each (float32).

    Half-split layout (Hugging Face's ``rotate_half``): dimension ``i`` and ``i + head_dim/2``
    form a rotation pair with frequency ``theta^(-2i/head_dim)``.
    """
    inv_freq = theta ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angles = positions_BxL.astype(jnp.float32)[..., None] * inv_freq[None, None, :]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
    return jnp.cos(angles), jnp.sin(angles)


def _apply_rope(x_BxLxHxK, cos, sin):
    x32 = x_BxLxHxK.astype(jnp.float32)
    half = x32.shape[-1] // 2
    rotated = jnp.concatenate([-x32[..., half:], x32[..., :half]], axis=-1)
    return (x32 * cos + rotated * sin).astype(x_BxLxHxK.dtype)


class _Attention(nn.Module):
    cfg: LMConfig

    @nn.compact
    def __call__(self, h_BxLxD, positions_BxL, key_mask_BxT, cache_kv, index, layer):
        cfg = self.cfg
        B, L, _ = h_BxLxD.shape
        H, Hk, K = cfg.n_heads, cfg.kv_heads, cfg.dim_per_head
        bias = cfg.arch == "gpt2" or cfg.qkv_bias
        q = _dense(cfg, H * K, "q", bias)(h_BxLxD).reshape(B, L, H, K)
        k = _dense(cfg, Hk * K, "k", bias)(h_BxLxD).reshape(B, L, Hk, K)
        v = _dense(cfg, Hk * K, "v", bias)(h_BxLxD).reshape(B, L, Hk, K)
        if cfg.arch == "llama":
            cos, sin = rope_angles(positions_BxL, K, cfg.rope_theta)
            q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        heads_major = bool(cache_kv) and layer is None
        if heads_major:
            # Decode fast path (:func:`forward_layers`): this layer's own cache buffer in the
            # heads-major layout [B, Hk, T, K], so both attention products are batched matmuls
            # over (b, h) without transposing the cache.
            cache_k, cache_v = cache_kv
            zero = jnp.zeros_like(index)
            start = (zero, zero, index, zero)
            k_new = jnp.swapaxes(k, 1, 2).astype(cache_k.dtype)
            v_new = jnp.swapaxes(v, 1, 2).astype(cache_v.dtype)
            k_all = jax.lax.dynamic_update_slice(cache_k, k_new, start)
            v_all = jax.lax.dynamic_update_slice(cache_v, v_new, start)
            new_kv = (k_all, v_all)
            q_slot_L = index + jnp.arange(L, dtype=index.dtype)
        elif cache_kv:
            # The cache of ALL layers is carried through the layer scan and updated in place:
            # write this layer's new keys / values at [layer, :, index], then read the layer.
            # (Passing per-layer slices as scan xs / ys made XLA zero-fill, copy and copy back
            # the whole stacked cache on every decode step.)
            cache_k, cache_v = cache_kv
            zero = jnp.zeros_like(index)  # same int dtype as index (int64 under x64)
            start = (layer.astype(index.dtype), zero, index, zero, zero)
            cache_k = jax.lax.dynamic_update_slice(cache_k, k[None].astype(cache_k.dtype), start)
            cache_v = jax.lax.dynamic_update_slice(cache_v, v[None].astype(cache_v.dtype), start)
            k_all = jax.lax.dynamic_index_in_dim(cache_k, layer, 0, keepdims=False)
            v_all = jax.lax.dynamic_index_in_dim(cache_v, layer, 0, keepdims=False)
            new_kv = (cache_k, cache_v)
            q_slot_L = index + jnp.arange(L, dtype=index.dtype)
        else:
            k_all, v_all, new_kv = k, v, ()
            q_slot_L = jnp.arange(L, dtype=jnp.int32)
        T = k_all.shape[2 if heads_major else 1]
        kv = "bhtk" if heads_major else "bthk"
        allowed_BxLxT = (
            jnp.arange(T, dtype=q_slot_L.dtype)[None, None, :] <= q_slot_L[None, :, None]
        ) & key_mask_BxT[:, None, :]
        q5 = q.reshape(B, L, Hk, H // Hk, K)
        scores = jnp.einsum(
            f"blhgk,{kv}->bhglt", q5, k_all.astype(q.dtype), preferred_element_type=jnp.float32
        ) / jnp.sqrt(jnp.float32(K))
        scores = jnp.where(allowed_BxLxT[:, None, None, :, :], scores, _NEG)
        probs = jax.nn.softmax(scores, axis=-1).astype(cfg.compute_dtype)
        out = jnp.einsum(f"bhglt,{kv}->blhgk", probs, v_all.astype(cfg.compute_dtype))
        out = out.reshape(B, L, H * K)
        return _dense(cfg, cfg.d_model, "o", cfg.arch == "gpt2")(out), new_kv


class _MLP(nn.Module):
    cfg: LMConfig

    @nn.compact
    def __call__(self, h):
        cfg = self.cfg
        if cfg.arch == "gpt2":
            up = _dense(cfg, cfg.d_ff, "up", True)(h)
            return _dense(cfg, cfg.d_model, "down", True)(nn.gelu(up, approximate=True))
        gate = _dense(cfg, cfg.d_ff, "gate", False)(h)
        up = _dense(cfg, cfg.d_ff, "up", False)(h)
        return _dense(cfg, cfg.d_model, "down", False)(nn.silu(gate) * up)


class _Block(nn.Module):
    """Pre-norm block; scanned over layers.

    Carry = (residual stream, stacked cache of all layers or ``()``), xs = the layer index.
    """

    cfg: LMConfig

    @nn.compact
    def __call__(self, carry, layer, positions_BxL, key_mask_BxT, index):
        x, cache_kv = carry
        attn, new_kv = _Attention(self.cfg, name="attn")(
            _Norm(self.cfg, name="attn_norm")(x),
            positions_BxL,
            key_mask_BxT,
            cache_kv,
            index,
            layer,
        )
        x = x + attn
        x = x + _MLP(self.cfg, name="mlp")(_Norm(self.cfg, name="mlp_norm")(x))
        return (x, new_kv), None


def _token_embed(cfg: LMConfig, name: str | None = "embed") -> nn.Embed:
    return nn.Embed(
        cfg.vocab_size,
        cfg.d_model,
        dtype=cfg.compute_dtype,
        param_dtype=cfg.storage_dtype,
        embedding_init=nn.initializers.normal(0.02),
        name=name,
    )


def _pos_embed(cfg: LMConfig, name: str | None = "pos_embed") -> nn.Embed:
    return nn.Embed(
        cfg.max_len,
        cfg.d_model,
        dtype=cfg.compute_dtype,
        param_dtype=cfg.storage_dtype,
        embedding_init=nn.initializers.normal(0.01),
        name=name,
    )


class Transformer(nn.Module):
    """The whole network; use :func:`init_params`, :func:`forward`, :func:`forward_cached`."""

    cfg: LMConfig

    @nn.compact
    def __call__(self, tokens_BxL, positions_BxL, key_mask_BxT, cache_kv, index):
        cfg = self.cfg
        embed = _token_embed(cfg)
        x = embed(tokens_BxL)
        if cfg.arch == "gpt2":
            x = x + _pos_embed(cfg)(positions_BxL)
        block = nn.remat(_Block) if cfg.remat else _Block
        blocks = nn.scan(
            block,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast),
            length=cfg.n_layers,
        )
        layers = jnp.arange(cfg.n_layers, dtype=jnp.int32)
        (x, new_kv), _ = blocks(cfg, name="blocks")(
            (x, cache_kv), layers, positions_BxL, key_mask_BxT, index
        )
        x = _Norm(cfg, name="final_norm")(x)
        if cfg.tie_embeddings:
            head = embed.embedding
        else:
            head = self.param(
                "lm_head",
                nn.initializers.normal(0.02),
                (cfg.d_model, cfg.vocab_size),
                cfg.storage_dtype,
            )
        return _output_logits(x, head, cfg), new_kv


def _output_logits(x_BxLxD: jax.Array, head: jax.Array, cfg: LMConfig) -> jax.Array:
    """float32 logits from the final-norm output: tied ``[V, D]`` table or untied ``[D, V]`` head."""
    if cfg.tie_embeddings:
        table = head.astype(cfg.compute_dtype)
        return jnp.einsum("bld,vd->blv", x_BxLxD, table, preferred_element_type=jnp.float32)
    return jnp.einsum(
        "bld,dv->blv", x_BxLxD, head.astype(cfg.compute_dtype), preferred_element_type=jnp.float32
    )


def init_params(cfg: LMConfig, *, key: jax.Array) -> dict:
    """Random parameters (normal(0.02) kernels, unit norms) for ``cfg``; see the module docstring."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    variables = jax.jit(Transformer(cfg).init)(
        key, tokens, tokens, jnp.ones((1, 1), bool), (), jnp.int32(0)
    )
    return variables["params"]


def default_positions(key_mask_BxL: jax.Array) -> jax.Array:
    """Position of each token counting real tokens only: ``cumsum(mask) - 1`` clipped at 0."""
    return jnp.maximum(jnp.cumsum(key_mask_BxL.astype(jnp.int32), axis=-1) - 1, 0)


@functools.partial(jax.jit, static_argnames="cfg")
def forward(
    params: dict,
    tokens_BxL: jax.Array,
    *,
    cfg: LMConfig,
    key_mask_BxL: jax.Array | None = None,
    positions_BxL: jax.Array | None = None,
) -> jax.Array:
    """Next-token logits for every position of a batch, in one pass (training and scoring).

    Position ``i`` attends to positions ``j <= i`` with ``key_mask[b, j]`` true. Logits are
    float32 whatever the compute dtype.

    Args:
      params: parameter tree from :func:`init_params` or a checkpoint loader.
      tokens_BxL: int token ids ``[B, L]``.
      cfg: the model's :class:`LMConfig` (static).
      key_mask_BxL: bool ``[B, L]``, true at real tokens (all true by default).
      positions_BxL: int positions; by default :func:`default_positions` of the mask.

    Returns:
      ``[B, L, V]`` float32 logits; ``logits[b, i]`` predicts token ``i + 1``.
    """
    if key_mask_BxL is None:
        key_mask_BxL = jnp.ones(tokens_BxL.shape, bool)
    if positions_BxL is None:
        positions_BxL = default_positions(key_mask_BxL)
    logits, _ = Transformer(cfg).apply(
        {"params": params}, tokens_BxL, positions_BxL, key_mask_BxL, (), jnp.int32(0)
    )
    return logits


def init_cache(cfg: LMConfig, batch: int, length: int | None = None) -> KVCache:
    """An all-zero :class:`KVCache` with ``length`` slots (``cfg.max_len`` by default)."""
    length = cfg.max_len if length is None else length
    shape = (cfg.n_layers, batch, length, cfg.kv_heads, cfg.dim_per_head)
    zeros = jnp.zeros(shape, cfg.compute_dtype)
    return KVCache(zeros, zeros)


def forward_cached(
    params: dict,
    tokens_BxL: jax.Array,
    positions_BxL: jax.Array,
    key_mask_BxT: jax.Array,
    cache: KVCache,
    index: jax.Array,
    *,
    cfg: LMConfig,
) -> tuple[jax.Array, KVCache]:
    """Logits for ``L`` new tokens written into cache slots ``index … index + L - 1``.

    Prefill is a call with the (padded) prompt at ``index = 0``; each decode step is a call
    with ``L = 1``. Query slot ``index + i`` attends to cache slots ``j <= index + i`` with
    ``key_mask[b, j]`` true, so stale slots beyond the written ones are never read.
    Not jitted itself: call it inside the caller's jitted program.

    Args:
      params: parameter tree.
      tokens_BxL: int ``[B, L]`` new tokens.
      positions_BxL: int ``[B, L]`` their positions (real-token counts, see
        :func:`default_positions`).
      key_mask_BxT: bool ``[B, T]`` validity of every cache slot after this call.
      cache: the :class:`KVCache` (``T`` slots).
      index: int scalar, first slot written.
      cfg: the model's :class:`LMConfig`.

    Returns:
      ``(logits [B, L, V] float32, updated cache)``.
    """
    logits, (k, v) = Transformer(cfg).apply(
        {"params": params},
        tokens_BxL,
        positions_BxL,
        key_mask_BxT,
        (cache.k, cache.v),
        jnp.asarray(index, jnp.int32),
    )
    return logits, KVCache(k, v)


class LayerCache(NamedTuple):
    """KV cache of the decode fast path (:func:`forward_layers`): one buffer per layer.

    Attributes:
      k: ``n_layers`` arrays ``[B, n_kv_heads, T, head_dim]`` (heads-major).
      v: same as ``k``.
    """

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]


def split_layers(params: dict) -> tuple[dict, ...]:
    """The per-layer parameter trees of the stacked ``params["blocks"]`` (static slices).

    Call it once, outside a decode loop, so the loop reads every layer's weights in place
    instead of slicing the stacked arrays on every step.
    """
    blocks = params["blocks"]
    n = jax.tree.leaves(blocks)[0].shape[0]
    return tuple(jax.tree.map(lambda p, i=i: p[i], blocks) for i in range(n))


def to_layer_cache(cache: KVCache) -> LayerCache:
    """A :class:`KVCache` (``[n, B, T, Hk, K]``) as a :class:`LayerCache` (per layer ``[B, Hk, T, K]``)."""
    n = cache.k.shape[0]
    return LayerCache(
        tuple(jnp.swapaxes(cache.k[i], 1, 2) for i in range(n)),
        tuple(jnp.swapaxes(cache.v[i], 1, 2) for i in range(n)),
    )


def forward_layers(
    params: dict,
    layer_params: tuple[dict, ...],
    tokens_BxL: jax.Array,
    positions_BxL: jax.Array,
    key_mask_BxT: jax.Array,
    cache: LayerCache,
    index: jax.Array,
    *,
    cfg: LMConfig,
) -> tuple[jax.Array, LayerCache]:
    """:func:`forward_cached` with the layers unrolled over per-layer weights and caches.

    Same logits as :func:`forward_cached` (same operations per layer), but built for a decode
    loop on CPU: ``layer_params`` (from :func:`split_layers`, computed once outside the loop)
    are read in place, and each layer's cache is its own heads-major buffer updated in place,
    so a step touches each weight and each cache entry once (the scanned version slices the
    stacked weights and transposes the cache on every step). Not jitted itself.

    Args:
      params: the full parameter tree (embeddings, final norm, head are read from it).
      layer_params: ``split_layers(params)``.
      tokens_BxL, positions_BxL, key_mask_BxT, index, cfg: as in :func:`forward_cached`.
      cache: a :class:`LayerCache` with ``T`` slots.

    Returns:
      ``(logits [B, L, V] float32, updated cache)``.
    """
    x = _token_embed(cfg, None).apply({"params": params["embed"]}, tokens_BxL)
    if cfg.arch == "gpt2":
        x = x + _pos_embed(cfg, None).apply({"params": params["pos_embed"]}, positions_BxL)
    index = jnp.asarray(index, jnp.int32)
    block = _Block(cfg)
    ks, vs = [], []
    for lp, k, v in zip(layer_params, cache.k, cache.v, strict=True):
        (x, (k, v)), _ = block.apply(
            {"params": lp}, (x, (k, v)), None, positions_BxL, key_mask_BxT, index
        )
        ks.append(k)
        vs.append(v)
    x = _Norm(cfg).apply({"params": params["final_norm"]}, x)
    head = params["embed"]["embedding"] if cfg.tie_embeddings else params["lm_head"]
    return _output_logits(x, head, cfg), LayerCache(tuple(ks), tuple(vs))


def cast_params(params: dict, dtype) -> dict:
    """``params`` with every floating leaf cast to ``dtype`` (e.g. ``jnp.bfloat16``)."""
    return jax.tree.map(
        lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params
    )


def param_count(params: dict) -> int:
    """Number of scalars in ``params``."""
    return int(sum(p.size for p in jax.tree.leaves(params)))

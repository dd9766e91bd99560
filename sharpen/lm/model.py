"""Decoder-only transformer (GPT-2 and Llama/Qwen2 families) as pure functions of a params pytree.

The network is a Flax Linen module (:class:`Transformer`), but nothing outside this file sees
the module: samplers, scorers and losses call :func:`forward` / :func:`forward_cached`, pure
functions of ``(params, tokens, ...)`` with the :class:`~sharpen.lm.config.LMConfig` as a
static argument. Layers are stacked and run with ``nn.scan``, so a 30-layer model compiles as
fast as a 1-layer one and every per-layer parameter has a leading ``[n_layers]`` axis. Two
CPU fast paths unroll the layers over :func:`split_layers` instead: decoding
(:func:`forward_layers`) and forward-only passes (:func:`hidden_states` with ``unroll=True``,
used by the scorer); training keeps the scan (see :func:`hidden_states`). In the scan the
backward pass keeps each block's matmul outputs and recomputes its elementwise operations
(a ``dots_saveable`` remat policy; ``cfg.remat`` recomputes the whole block). Every Dense
projection and the tied head have hand-written backward passes (:func:`_project`,
:func:`_tied_head`) that keep XLA:CPU's weight-gradient matmuls on its fast row-major path.

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
import itertools
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


@jax.custom_vjp
def _project(x_NxI: jax.Array, kernel_IxO: jax.Array) -> jax.Array:
    """``x @ W`` for ``[N, I] x [I, O]`` with a backward pass that transposes no activation.

    Autodiff's weight gradient ``x^T g`` contracts the row axis of both ``[N, ·]`` operands;
    XLA:CPU then writes ``g`` transposed (a strided copy per layer) and runs the product
    outside its fast matmul path. Here the narrower of ``x`` / ``g`` is transposed explicitly
    (``x^T g``, or ``(g^T x)^T`` with a small ``[O, I]`` transpose), so the product is a plain
    row-major matmul; optimization barriers stop XLA from folding the transposes back.
    """
    return jax.lax.dot_general(x_NxI, kernel_IxO, (((1,), (0,)), ((), ())))


def _project_fwd(x_NxI, kernel_IxO):
    return _project(x_NxI, kernel_IxO), (x_NxI, kernel_IxO)


def _project_bwd(res, g_NxO):
    x_NxI, kernel_IxO = res
    nn_dims = (((1,), (0,)), ((), ()))
    dx_NxI = jax.lax.dot_general(g_NxO, kernel_IxO, (((1,), (1,)), ((), ())))
    if x_NxI.shape[1] <= g_NxO.shape[1]:
        xt_IxN = jax.lax.optimization_barrier(x_NxI.T)
        dk_IxO = jax.lax.dot_general(xt_IxN, g_NxO, nn_dims)
    else:
        gt_OxN = jax.lax.optimization_barrier(g_NxO.T)
        dk_IxO = jax.lax.optimization_barrier(jax.lax.dot_general(gt_OxN, x_NxI, nn_dims)).T
    return dx_NxI.astype(x_NxI.dtype), dk_IxO.astype(kernel_IxO.dtype)


_project.defvjp(_project_fwd, _project_bwd)


def _dense_dot(x, kernel, dimension_numbers, precision=None):
    """``nn.Dense``'s ``dot_general`` hook: :func:`_project` over the flattened leading axes."""
    del precision  # nn.Dense passes None; XLA:CPU runs float32 matmuls at full precision
    if dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())) or kernel.ndim != 2:
        raise ValueError(f"unexpected Dense contraction {dimension_numbers}")
    y = _project(x.reshape(-1, x.shape[-1]), kernel)
    return y.reshape(*x.shape[:-1], kernel.shape[1])


def _dense(cfg: LMConfig, features: int, name: str, use_bias: bool) -> nn.Dense:
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=cfg.compute_dtype,
        param_dtype=cfg.storage_dtype,
        kernel_init=nn.initializers.normal(0.02),
        dot_general=_dense_dot,
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


_QUERY_BLOCK = 64  # query rows per block of the cache-free causal attention


def _attend(q_BxLxHxGxK, k_all, v_all, allowed_BxLxT, kv: str, cfg: LMConfig) -> jax.Array:
    """Masked softmax attention ``[B, L, Hk, G, K]``; ``kv`` is the key/value layout einsum spec
    (``"bthk"``, or ``"bhtk"`` for the heads-major decode cache)."""
    K = q_BxLxHxGxK.shape[-1]
    scores = jnp.einsum(
        f"blhgk,{kv}->bhglt",
        q_BxLxHxGxK,
        k_all.astype(q_BxLxHxGxK.dtype),
        preferred_element_type=jnp.float32,
    ) / jnp.sqrt(jnp.float32(K))
    scores = jnp.where(allowed_BxLxT[:, None, None, :, :], scores, _NEG)
    probs = jax.nn.softmax(scores, axis=-1).astype(cfg.compute_dtype)
    return jnp.einsum(f"bhglt,{kv}->blhgk", probs, v_all.astype(cfg.compute_dtype))


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
        if cache_kv:
            out = _attend(q5, k_all, v_all, allowed_BxLxT, kv, cfg)
        else:
            # Causal, no cache: query block [a, b) needs keys [0, b) only, so skip the
            # all-masked upper-right blocks (~40% of the work at L = 256). Only rows with no
            # allowed key at all (left padding) change, and those are never read.
            n_blocks = max(1, L // _QUERY_BLOCK)
            bounds = [L * i // n_blocks for i in range(n_blocks + 1)]
            out = jnp.concatenate(
                [
                    _attend(
                        q5[:, a:b], k_all[:, :b], v_all[:, :b], allowed_BxLxT[:, a:b, :b], kv, cfg
                    )
                    for a, b in itertools.pairwise(bounds)
                ],
                axis=1,
            )
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
    def __call__(self, tokens_BxL, positions_BxL, key_mask_BxT, cache_kv, index, logits=True):
        cfg = self.cfg
        embed = _token_embed(cfg)
        x = embed(tokens_BxL)
        if cfg.arch == "gpt2":
            x = x + _pos_embed(cfg)(positions_BxL)
        if cfg.remat:
            block = nn.remat(_Block)
        else:
            # Keep only matmul outputs for the backward pass, recompute the elementwise ops:
            # stacking every intermediate of every layer through the scan (zero-filled
            # buffers, per-layer copies) cost more on CPU than the recompute (BENCHMARKS.md).
            policy = jax.checkpoint_policies.dots_saveable
            block = nn.remat(_Block, prevent_cse=False, policy=policy)
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
        if not logits:
            return x, new_kv
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


def _tied_logits(x_BxLxD: jax.Array, table_VxD: jax.Array) -> jax.Array:
    return jnp.einsum("bld,vd->blv", x_BxLxD, table_VxD, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _tied_head(x_BxLxD: jax.Array, table_VxD: jax.Array) -> jax.Array:
    """:func:`_tied_logits` with a backward pass that never transposes the ``[B, L, V]``
    cotangent.

    Autodiff's table gradient ``g^T x`` contracts the leading axis of both operands, and
    XLA:CPU's matmul then materializes ``g`` transposed (a strided write of the largest
    tensor of the step). Computing ``(x^T g)^T`` instead transposes only the small ``x`` and
    ``[D, V]`` result; the optimization barrier stops XLA from folding it back.
    """
    return _tied_logits(x_BxLxD, table_VxD)


def _tied_head_fwd(x_BxLxD, table_VxD):
    return _tied_logits(x_BxLxD, table_VxD), (x_BxLxD, table_VxD)


def _tied_head_bwd(res, g_BxLxV):
    x_BxLxD, table_VxD = res
    _, vjp_x = jax.vjp(lambda x: _tied_logits(x, table_VxD), x_BxLxD)
    (dx_BxLxD,) = vjp_x(g_BxLxV)
    n, d = x_BxLxD.shape[0] * x_BxLxD.shape[1], x_BxLxD.shape[2]
    xt_DxN = jax.lax.optimization_barrier(x_BxLxD.reshape(n, d).T)
    dims = (((1,), (0,)), ((), ()))  # as autodiff: g stays float32 (mixed-dtype product)
    dtable_DxV = jax.lax.dot_general(
        xt_DxN, g_BxLxV.reshape(n, -1), dims, preferred_element_type=jnp.float32
    )
    return dx_BxLxD, jax.lax.optimization_barrier(dtable_DxV).T.astype(table_VxD.dtype)


_tied_head.defvjp(_tied_head_fwd, _tied_head_bwd)


def _output_logits(x_BxLxD: jax.Array, head: jax.Array, cfg: LMConfig) -> jax.Array:
    """float32 logits from the final-norm output: tied ``[V, D]`` table or untied ``[D, V]`` head."""
    if cfg.tie_embeddings:
        return _tied_head(x_BxLxD, head.astype(cfg.compute_dtype))
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


def _embed_tokens(params: dict, tokens_BxL, positions_BxL, cfg: LMConfig) -> jax.Array:
    """Token (+ learned position, GPT-2) embeddings ``[B, L, D]`` in the compute dtype."""
    x = _token_embed(cfg, None).apply({"params": params["embed"]}, tokens_BxL)
    if cfg.arch == "gpt2":
        x = x + _pos_embed(cfg, None).apply({"params": params["pos_embed"]}, positions_BxL)
    return x


def hidden_states(
    params: dict,
    tokens_BxL: jax.Array,
    *,
    cfg: LMConfig,
    key_mask_BxL: jax.Array | None = None,
    positions_BxL: jax.Array | None = None,
    unroll: bool = False,
) -> jax.Array:
    """Final-norm outputs ``[B, L, D]`` (compute dtype): :func:`forward` without the output head.

    Two equivalent layer loops (same per-layer operations, same values up to float32
    rounding; tested): the module's ``nn.scan`` (default), or with ``unroll=True`` the layers
    unrolled over :func:`split_layers` (static slices of the stacked weights). Unrolled is
    faster for a forward pass on CPU (no per-layer ``dynamic_slice`` of the weights) but
    slower to differentiate for deep models: XLA fuses the residual stream's elementwise
    gradient chain across layers and recomputes it in every consumer (GPT-2-small train
    step 0.73-0.79x, compile 3x; BENCHMARKS.md), which the scan's loop boundary prevents.
    ``cfg.remat`` applies to the scanned loop only. Not jitted.

    Args:
      params, tokens_BxL, cfg, key_mask_BxL, positions_BxL: as in :func:`forward`.
      unroll: unroll the layers (for forward-only uses such as scoring).

    Returns:
      ``[B, L, D]``; row ``i`` feeds the prediction of token ``i + 1``.
    """
    if key_mask_BxL is None:
        key_mask_BxL = jnp.ones(tokens_BxL.shape, bool)
    if positions_BxL is None:
        positions_BxL = default_positions(key_mask_BxL)
    if not unroll:
        x, _ = Transformer(cfg).apply(
            {"params": params}, tokens_BxL, positions_BxL, key_mask_BxL, (), jnp.int32(0), False
        )
        return x
    x = _embed_tokens(params, tokens_BxL, positions_BxL, cfg)
    block = _Block(cfg)
    for layer_params in split_layers(params):
        (x, _), _ = block.apply(
            {"params": layer_params}, (x, ()), None, positions_BxL, key_mask_BxL, None
        )
    return _Norm(cfg).apply({"params": params["final_norm"]}, x)


def output_logits(params: dict, h_BxLxD: jax.Array, *, cfg: LMConfig) -> jax.Array:
    """float32 logits ``[B, L, V]`` of final-norm outputs (from :func:`hidden_states`).

    Slice ``h_BxLxD`` to the positions you need first: the head matmul is the largest single
    product of a small-model forward.
    """
    head = params["embed"]["embedding"] if cfg.tie_embeddings else params["lm_head"]
    return _output_logits(h_BxLxD, head, cfg)


def target_logprobs_from_logits(logits_BxTxV: jax.Array, targets_BxT: jax.Array) -> jax.Array:
    r"""``log_softmax(logits)`` at the target ids, without materializing the log-softmax.

    .. math:: \log p(y) = z_y - \log \sum_v e^{z_v}

    The target logit is a masked sum over the vocabulary rather than a gather, so under
    ``jax.grad`` the cotangent is one fused elementwise pass (``softmax - onehot``), not a
    zero-filled buffer plus a scatter.

    Args:
      logits_BxTxV: float ``[..., V]`` logits.
      targets_BxT: int ``[...]`` ids in ``[0, V)``.

    Returns:
      float ``[...]`` log-probabilities.
    """
    vocab = logits_BxTxV.shape[-1]
    vocab_V = jnp.arange(vocab, dtype=targets_BxT.dtype)
    hit_BxTxV = vocab_V.reshape((1,) * targets_BxT.ndim + (vocab,)) == targets_BxT[..., None]
    target_BxT = jnp.sum(jnp.where(hit_BxTxV, logits_BxTxV, 0.0), axis=-1)
    return target_BxT - jax.nn.logsumexp(logits_BxTxV, axis=-1)


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
    float32 whatever the compute dtype. Equals :func:`output_logits` of :func:`hidden_states`.

    Args:
      params: parameter tree from :func:`init_params` or a checkpoint loader.
      tokens_BxL: int token ids ``[B, L]``.
      cfg: the model's :class:`LMConfig` (static).
      key_mask_BxL: bool ``[B, L]``, true at real tokens (all true by default).
      positions_BxL: int positions; by default :func:`default_positions` of the mask.

    Returns:
      ``[B, L, V]`` float32 logits; ``logits[b, i]`` predicts token ``i + 1``.
    """
    h_BxLxD = hidden_states(
        params, tokens_BxL, cfg=cfg, key_mask_BxL=key_mask_BxL, positions_BxL=positions_BxL
    )
    return output_logits(params, h_BxLxD, cfg=cfg)


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
    instead of slicing the stacked arrays on every step. Built on ``jnp.split``, whose
    transpose is one concatenation: gradients flow back into the stacked ``[n_layers, ...]``
    leaves without a zero-filled buffer per layer.
    """
    leaves, treedef = jax.tree.flatten(params["blocks"])
    n = leaves[0].shape[0]
    parts = [jnp.split(p, n, axis=0) for p in leaves]
    return tuple(jax.tree.unflatten(treedef, [ps[i][0] for ps in parts]) for i in range(n))


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
    x = _embed_tokens(params, tokens_BxL, positions_BxL, cfg)
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
    return output_logits(params, x, cfg=cfg), LayerCache(tuple(ks), tuple(vs))


def cast_params(params: dict, dtype) -> dict:
    """``params`` with every floating leaf cast to ``dtype`` (e.g. ``jnp.bfloat16``)."""
    return jax.tree.map(
        lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params
    )


def param_count(params: dict) -> int:
    """Number of scalars in ``params``."""
    return int(sum(p.size for p in jax.tree.leaves(params)))

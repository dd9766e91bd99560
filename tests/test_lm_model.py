"""Properties of the transformer forward passes (sharpen.lm.model) the sampler relies on."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen.lm import model as M
from sharpen.lm.config import LMConfig
from sharpen.lm.model import (
    _project,
    _tied_head,
    _tied_logits,
    default_positions,
    forward,
    forward_cached,
    hidden_states,
    init_cache,
    output_logits,
    target_logprobs_from_logits,
)
from tests.tiny_lm import tiny_model

ARCHS = ("gpt2", "llama")
# fp32 reassociation between a cached single-token step and the full pass (different matmul
# and softmax shapes), on logits of magnitude ~5: a few ulps.
LOGIT_ATOL = 1e-5


def _left_padded_batch(cfg):
    rng = np.random.default_rng(1)
    tokens = rng.integers(3, cfg.vocab_size, size=(3, 10)).astype(np.int32)
    mask = np.ones((3, 10), bool)
    mask[1, :4] = False  # row 1: 6 real tokens
    mask[2, :7] = False  # row 2: 3 real tokens
    return jnp.asarray(np.where(mask, tokens, 0)), jnp.asarray(mask)


@pytest.mark.parametrize("arch", ARCHS)
def test_kv_cache_decode_matches_full_recompute(arch):
    """Prefill 6 columns, then decode 4 one at a time: logits equal the full pass's."""
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    full = forward(params, tokens, cfg=cfg, key_mask_BxL=mask)
    positions = default_positions(mask)
    cache_len = 16
    key_mask = jnp.pad(mask, ((0, 0), (0, cache_len - 10)))
    step = jax.jit(forward_cached, static_argnames="cfg")
    logits, cache = step(
        params, tokens[:, :6], positions[:, :6], key_mask, init_cache(cfg, 3, cache_len), 0, cfg=cfg
    )
    got = [logits]
    for i in range(6, 10):
        logits, cache = step(
            params, tokens[:, i : i + 1], positions[:, i : i + 1], key_mask, cache, i, cfg=cfg
        )
        got.append(logits)
    got = jnp.concatenate(got, axis=1)
    real = np.asarray(mask)
    np.testing.assert_allclose(
        np.asarray(got)[real], np.asarray(full)[real], atol=LOGIT_ATOL, rtol=0
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_left_padding_invariance(arch):
    """A left-padded row gives the logits of the same tokens run alone without padding."""
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    padded = np.asarray(forward(params, tokens, cfg=cfg, key_mask_BxL=mask))
    for row, start in ((1, 4), (2, 7)):
        alone = forward(params, tokens[row : row + 1, start:], cfg=cfg)
        np.testing.assert_allclose(
            padded[row, start:], np.asarray(alone)[0], atol=LOGIT_ATOL, rtol=0
        )


@pytest.mark.parametrize("arch", ARCHS)
def test_causality(arch):
    """Logits at a real position i do not depend on tokens after i (bit-for-bit).

    (Padding positions attend to no key, so their softmax is uniform over every slot: their
    logits are garbage by design and are never read.)"""
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    changed = tokens.at[:, 7:].set((tokens[:, 7:] + 5) % cfg.vocab_size)
    a = np.asarray(forward(params, tokens, cfg=cfg, key_mask_BxL=mask))
    b = np.asarray(forward(params, changed, cfg=cfg, key_mask_BxL=mask))
    real = np.asarray(mask)[:, :7]
    np.testing.assert_array_equal(a[:, :7][real], b[:, :7][real])
    assert np.abs(a[:, 7:] - b[:, 7:]).max() > 1e-3  # the change is visible downstream


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_forward_close_to_fp32(arch):
    """bf16 compute (fp32 params, fp32 softmax/logits) stays close to the fp32 model.

    bf16 keeps 8 significand bits (relative rounding 2^-9 ~ 2e-3 per op); through 2 blocks and
    a head sharpened to logits of a few nats the error compounds to a few 1e-2 nats. Stated
    bound: next-token distributions within total variation 0.05 of the fp32 ones, and max
    |delta log-prob| <= 0.15 nats.
    """
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    lp32 = jax.nn.log_softmax(forward(params, tokens, cfg=cfg, key_mask_BxL=mask), axis=-1)
    cfg16 = cfg.replace(dtype="bfloat16")
    lp16 = jax.nn.log_softmax(forward(params, tokens, cfg=cfg16, key_mask_BxL=mask), axis=-1)
    real = np.asarray(mask)
    lp32, lp16 = np.asarray(lp32)[real], np.asarray(lp16)[real]
    assert lp16.dtype == np.float32
    tv = 0.5 * np.abs(np.exp(lp32) - np.exp(lp16)).sum(-1).max()
    assert tv <= 0.05, tv
    assert np.abs(lp32 - lp16).max() <= 0.15
    assert np.abs(lp32 - lp16).max() > 0  # bf16 really ran


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"arch": "bert"}, "arch must be one of"),
        ({"vocab_size": 0}, "vocab_size must be a positive int"),
        ({"d_model": 30}, "d_model=30 must be divisible by n_heads=4"),
        ({"n_kv_heads": 3}, "n_kv_heads must divide n_heads=4"),
        ({"head_dim": 7}, "head_dim must be even for RoPE"),
        ({"norm_eps": 0.0}, "norm_eps must be positive"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"arch": "gpt2", "tie_embeddings": False}, "tie_embeddings must be True"),
    ],
)
def test_config_validation(changes, match):
    base = dict(arch="llama", vocab_size=20, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=64)
    with pytest.raises(ValueError, match=match):
        LMConfig(**{**base, **changes})


def test_config_roundtrip_and_unknown_fields():
    cfg, _ = tiny_model("llama")
    assert LMConfig.from_dict(cfg.to_dict()) == cfg
    assert hash(LMConfig.from_dict(cfg.to_dict())) == hash(cfg)
    with pytest.raises(ValueError, match="unknown LMConfig fields"):
        LMConfig.from_dict({**cfg.to_dict(), "n_expert": 2})


@pytest.mark.parametrize("arch", ARCHS)
def test_unrolled_layers_match_the_scan(arch):
    """``hidden_states(unroll=True)`` (scoring) equals the scanned layers (training), values
    and gradients, and ``output_logits`` of it equals :func:`forward`."""
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    real = np.asarray(mask)

    def loss(params, unroll):
        h = hidden_states(params, tokens, cfg=cfg, key_mask_BxL=mask, unroll=unroll)
        return jnp.sum(jnp.where(mask[:, :, None], h, 0.0) ** 2), h

    (_, h_scan), g_scan = jax.value_and_grad(loss, has_aux=True)(params, False)
    (_, h_unroll), g_unroll = jax.value_and_grad(loss, has_aux=True)(params, True)
    # Final-norm outputs reach ~50 (tiny_model sharpens the norm scale): a few ulps relative.
    np.testing.assert_allclose(
        np.asarray(h_unroll)[real], np.asarray(h_scan)[real], atol=LOGIT_ATOL, rtol=1e-5
    )
    # fp32 reassociation only: relative-norm error of the whole gradient a few ulps (some
    # leaves, e.g. the key bias, are exactly 0 in exact arithmetic and pure rounding here).
    assert jax.tree.structure(g_unroll) == jax.tree.structure(g_scan)
    flat_u, flat_s = (
        jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]) for g in (g_unroll, g_scan)
    )
    assert float(jnp.linalg.norm(flat_u - flat_s) / jnp.linalg.norm(flat_s)) <= 1e-5
    logits = output_logits(params, h_unroll, cfg=cfg)
    full = forward(params, tokens, cfg=cfg, key_mask_BxL=mask)
    np.testing.assert_allclose(
        np.asarray(logits)[real], np.asarray(full)[real], atol=LOGIT_ATOL, rtol=0
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_tied_head_gradient_equals_autodiff(dtype):
    """The tied head's hand-written backward pass equals autodiff of the plain product."""
    kx, kt, kg = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(kx, (2, 5, 8)).astype(dtype)
    table = jax.random.normal(kt, (11, 8)).astype(dtype)
    g = jax.random.normal(kg, (2, 5, 11), jnp.float32)
    out, vjp = jax.vjp(_tied_head, x, table)
    ref_out, ref_vjp = jax.vjp(_tied_logits, x, table)
    np.testing.assert_array_equal(out, ref_out)
    for a, b in zip(vjp(g), ref_vjp(g), strict=True):
        assert a.dtype == b.dtype == dtype
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        # A reassociated length-10 (or 11) sum: error relative to the terms' scale, not to a
        # result that may cancel to ~0; for bf16 one rounding of the result.
        tol = 1e-5 if dtype == jnp.float32 else 1e-2
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [(12, 5, 9), (12, 9, 5)])  # x^T g, and (g^T x)^T branches
def test_project_gradient_equals_autodiff(dtype, shape):
    """The Dense projection's hand-written backward pass equals autodiff of ``x @ W``."""
    n, d_in, d_out = shape
    kx, kw, kg = jax.random.split(jax.random.key(4), 3)
    x = jax.random.normal(kx, (n, d_in)).astype(dtype)
    w = jax.random.normal(kw, (d_in, d_out)).astype(dtype)
    g = jax.random.normal(kg, (n, d_out)).astype(dtype)
    out, vjp = jax.vjp(_project, x, w)
    ref_out, ref_vjp = jax.vjp(lambda a, b: a @ b, x, w)
    np.testing.assert_array_equal(out, ref_out)
    for a, b in zip(vjp(g), ref_vjp(g), strict=True):
        assert a.dtype == b.dtype == dtype
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        # Reassociated sums of <= 12 terms: error relative to the terms' scale; bf16: one
        # rounding of the result.
        tol = 1e-5 if dtype == jnp.float32 else 1e-2
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_gradient_equals_plain_dense_reference(arch, monkeypatch):
    """Forward values and parameter gradients of the scanned, rematerialized model with the
    custom-VJP projections equal those with plain ``lax.dot_general`` Dense layers."""
    cfg, params = tiny_model(arch)
    tokens, mask = _left_padded_batch(cfg)
    weights = jax.random.normal(jax.random.key(5), (3, 10, cfg.vocab_size))

    def loss(p):
        # Not the jitted ``forward``: its trace cache would survive the monkeypatch.
        h = hidden_states(p, tokens, cfg=cfg, key_mask_BxL=mask)
        return jnp.sum(weights * output_logits(p, h, cfg=cfg))

    got = jax.jit(jax.value_and_grad(loss))(params)
    monkeypatch.setattr(M, "_dense_dot", jax.lax.dot_general)
    want = jax.jit(jax.value_and_grad(loss))(params)  # a new trace: plain autodiff
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    # fp32 reassociation of the weight-gradient sums (30 rows): relative to each leaf's scale.
    # The key bias's exact gradient is 0 (a per-row shift of the scores), so both sides are
    # rounding noise: hold it to the key kernel's gradient scale.
    grads, ref = got[1], want[1]
    k_ref = ref["blocks"]["attn"]["k"]
    for path, a in jax.tree_util.tree_flatten_with_path(grads)[0]:
        b = np.asarray(functools.reduce(lambda node, key: node[key.key], path, ref))
        scale = (
            np.abs(k_ref["kernel"]).max()
            if jax.tree_util.keystr(path).endswith("['k']['bias']")
            else np.abs(b).max()
        )
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=str(path))


def test_target_logprobs_from_logits_equal_log_softmax_gather():
    """Values and gradients equal ``take_along_axis(log_softmax(z), y)``."""
    logits = 3.0 * jax.random.normal(jax.random.key(0), (3, 4, 7))
    targets = jax.random.randint(jax.random.key(1), (3, 4), 0, 7)

    def ref(z):
        return jnp.take_along_axis(jax.nn.log_softmax(z, -1), targets[..., None], -1)[..., 0]

    np.testing.assert_allclose(
        target_logprobs_from_logits(logits, targets), ref(logits), rtol=1e-6, atol=1e-6
    )
    weights = jax.random.normal(jax.random.key(2), (3, 4))
    got = jax.grad(lambda z: jnp.sum(weights * target_logprobs_from_logits(z, targets)))(logits)
    want = jax.grad(lambda z: jnp.sum(weights * ref(z)))(logits)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

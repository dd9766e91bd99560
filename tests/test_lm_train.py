"""Tests for :mod:`sharpen.lm.train`: the loss against a hand computation, masking, batch
packing, data order, optimizer schedule, a training run, bf16 vs fp32, and LoRA.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sharpen.lm import LMConfig, forward, init_params
from sharpen.lm import train as T
from sharpen.lm.tokenizer import CharTokenizer
from tests import tolerances as tol

TOK = CharTokenizer("0123456789+=")
CFG = LMConfig(
    "llama", vocab_size=TOK.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=12
)
PAIRS = [(f"{a}+{b}=", str(a + b)) for a in range(8) for b in range(8)]
# One optimizer (and batch shape) for every fp32 step in the file: one compiled program.
OPT = T.make_optimizer(1e-2, warmup=5, total_steps=60, weight_decay=0.0, clip_norm=1.0)


@pytest.fixture(scope="module")
def params():
    return init_params(CFG, key=jax.random.key(0))


@pytest.fixture(scope="module")
def data():
    return T.encode_pairs(TOK, PAIRS, seq_len=CFG.max_len, loss_on="all")


def _jnp(batch):
    return T.Batch(*(jnp.asarray(x) for x in batch))


def test_encode_pairs_layout():
    batch = T.encode_pairs(TOK, [("1+2=", "3"), ("9+9=", "18")], seq_len=8)
    bos, eos, pad = TOK.bos_id, TOK.eos_id, TOK.pad_id
    assert batch.tokens.tolist()[0] == [bos, *TOK.encode("1+2=3"), eos, pad]
    assert batch.key_mask.tolist()[0] == [True] * 7 + [False]
    # SFT targets: the response and <eos>, not the prompt or <bos>.
    assert batch.loss_mask.tolist()[1] == [False] * 5 + [True] * 3
    pre = T.encode_pairs(TOK, [("1+2=", "3")], seq_len=8, loss_on="all")
    assert pre.loss_mask.tolist()[0] == [False] + [True] * 6 + [False]
    with pytest.raises(ValueError, match="seq_len"):
        T.encode_pairs(TOK, [("1+2=", "3")], seq_len=5)
    with pytest.raises(ValueError, match="loss_on"):
        T.encode_pairs(TOK, [("1", "2")], seq_len=8, loss_on="prompt")


def test_loss_matches_hand_computed_cross_entropy(params):
    batch = T.encode_pairs(TOK, [("1+2=", "3"), ("12+3=", "15")], seq_len=9)
    logits = np.asarray(forward(params, jnp.asarray(batch.tokens), cfg=CFG), np.float64)
    nll, count = 0.0, 0
    for b in range(2):
        for i in range(1, 9):
            if batch.loss_mask[b, i]:
                row = logits[b, i - 1]
                lse = np.log(np.sum(np.exp(row - row.max()))) + row.max()
                nll += lse - row[batch.tokens[b, i]]
                count += 1
    assert count == 2 + 3
    loss = T.token_loss(params, *map(jnp.asarray, (batch.tokens, batch.loss_mask)), cfg=CFG)
    assert loss.dtype == jnp.float32
    tol.assert_close(loss, nll / count, "composite", dtype=np.float32)


def test_masked_targets_do_not_count(params):
    batch = T.encode_pairs(TOK, [("1+2=", "3"), ("4+4=", "8")], seq_len=10)
    tokens, mask = jnp.asarray(batch.tokens), jnp.asarray(batch.loss_mask)
    base = T.token_loss(params, tokens, mask, cfg=CFG)
    # The last column is padding (masked) and no later token reads it: any value, same loss.
    changed = tokens.at[:, -1].set(TOK.encode("7")[0])
    assert T.token_loss(params, changed, mask, cfg=CFG) == base
    # Masked equals subset: dropping row 1's targets equals the loss of row 0 alone.
    only0 = mask.at[1].set(False)
    tol.assert_close(
        T.token_loss(params, tokens, only0, cfg=CFG),
        T.token_loss(params, tokens[:1], mask[:1], cfg=CFG),
        dtype=np.float32,
    )
    # An all-false mask gives 0, not NaN.
    assert float(T.token_loss(params, tokens, jnp.zeros_like(mask), cfg=CFG)) == 0.0


def test_batch_indices_are_deterministic_epoch_shuffles():
    key = jax.random.key(3)
    seen = np.concatenate(
        [T.batch_indices(key, s, batch_size=8, num_examples=64) for s in range(8)]
    )
    assert sorted(seen.tolist()) == list(range(64))  # one epoch covers every example once
    again = T.batch_indices(key, 5, batch_size=8, num_examples=64)
    assert again.tolist() == seen[40:48].tolist()
    assert T.batch_indices(key, 8, batch_size=8, num_examples=64).tolist() != seen[:8].tolist()
    with pytest.raises(ValueError, match="batch_size"):
        T.batch_indices(key, 0, batch_size=65, num_examples=64)


def test_optimizer_schedule_cache_and_validation():
    opt = T.make_optimizer(1e-3, warmup=10, total_steps=100, weight_decay=0.1, clip_norm=1.0)
    assert opt is T.make_optimizer(
        1e-3, warmup=10, total_steps=100, weight_decay=0.1, clip_norm=1.0
    )
    for bad, match in (
        (dict(lr=0.0), "lr"),
        (dict(warmup=100), "warmup"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(clip_norm=0.0), "clip_norm"),
        (dict(schedule="step"), "schedule"),
    ):
        kwargs = dict(lr=1e-3, warmup=10, total_steps=100, weight_decay=0.1, clip_norm=1.0)
        kwargs.update(bad)
        with pytest.raises(ValueError, match=match):
            T.make_optimizer(kwargs.pop("lr"), **kwargs)


def test_decay_mask_skips_norms(params):
    mask = T.decay_mask(params)
    assert mask["blocks"]["attn"]["q"]["kernel"] is True
    assert mask["embed"]["embedding"] is True
    assert mask["blocks"]["attn_norm"]["scale"] is False
    assert mask["final_norm"]["scale"] is False


@pytest.mark.slow
def test_training_reduces_loss_without_recompiling(params, data):
    opt = OPT
    state = T.init_train_state(params, opt)
    key = jax.random.key(1)
    losses = []
    for step in range(60):
        idx = T.batch_indices(key, step, batch_size=32, num_examples=len(PAIRS))
        state, metrics = T.train_step(state, _jnp(T.take(data, idx)), cfg=CFG, optimizer=opt)
        losses.append(float(metrics["loss"]))
        if step == 0:
            # Other tests in the session may have compiled other shapes already: count from here.
            programs = T.train_step._cache_size()
    assert int(state.step) == 60
    assert T.train_step._cache_size() == programs  # steps 2..60 reuse the first step's program
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    held = T.eval_loss(state.params, _jnp(data), cfg=CFG)
    assert float(held) < 0.6 * losses[0]


@pytest.mark.slow
def test_bf16_step_close_to_fp32(params, data):
    """bf16 matmuls (8-bit mantissa, relative rounding 2^-8 ≈ 4e-3 per product, averaged over
    many terms) move the step-1 loss by ~1e-3 relative; 1e-2 leaves room. The master
    params and Adam moments stay float32."""
    opt = OPT
    batch = _jnp(T.take(data, np.arange(32)))
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = CFG.replace(dtype=dtype)
        state, metrics = T.train_step(
            T.init_train_state(params, opt), batch, cfg=cfg, optimizer=opt
        )
        state, metrics2 = T.train_step(state, batch, cfg=cfg, optimizer=opt)
        assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state.params))
        out[dtype] = (float(metrics["loss"]), float(metrics2["loss"]), float(metrics["grad_norm"]))
    f32, b16 = out["float32"], out["bfloat16"]
    assert abs(b16[0] - f32[0]) <= 1e-2 * f32[0], out
    assert abs(b16[1] - f32[1]) <= 1e-2 * f32[1], out
    assert abs(b16[2] - f32[2]) <= 5e-2 * f32[2], out


@pytest.mark.slow
def test_lora_zero_b_equals_base_and_trains_only_adapters(params, data):
    adapters = T.lora_init(params, rank=4, key=jax.random.key(2))
    assert adapters["blocks"]["attn"]["q"]["lora_a"].shape == (CFG.n_layers, CFG.d_model, 4)
    assert adapters["blocks"]["mlp"]["down"]["lora_b"].shape == (CFG.n_layers, 4, CFG.d_model)
    batch = _jnp(T.take(data, np.arange(16)))
    merged = T.lora_merge(params, adapters, alpha=8.0)
    np.testing.assert_array_equal(
        np.asarray(forward(merged, batch.tokens, cfg=CFG)),
        np.asarray(forward(params, batch.tokens, cfg=CFG)),
    )
    opt = T.make_optimizer(1e-2, warmup=0, total_steps=10, weight_decay=0.0, clip_norm=1.0)
    state = T.init_lora_state(params, adapters, opt)
    for _ in range(3):
        state, _ = T.lora_train_step(state, batch, cfg=CFG, optimizer=opt, alpha=8.0)
    jax.tree.map(np.testing.assert_array_equal, state.base, params)  # base frozen
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.adapters, adapters)
    assert all(jax.tree.leaves(moved))  # every adapter leaf (A and B) was updated
    after = T.token_loss(
        T.lora_merge(state.base, state.adapters, alpha=8.0),
        batch.tokens,
        batch.loss_mask,
        cfg=CFG,
    )
    assert float(after) < float(T.token_loss(params, batch.tokens, batch.loss_mask, cfg=CFG))
    with pytest.raises(ValueError, match="rank"):
        T.lora_init(params, rank=0, key=jax.random.key(0))

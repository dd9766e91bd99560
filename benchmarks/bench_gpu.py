"""Accelerator efficiency of the LM stack: decode bandwidth utilisation and training MFU.

On a machine where ``jax.devices()`` shows a GPU or a TPU this measures, for a ~124M GPT-2-shaped
model in bf16 (``sharpen.lm``):

1. **Reference rates** of the device itself: device-to-device copy bandwidth (a jitted
   ``x + 1`` over a large bf16 array: ``2 * nbytes`` moved per call) and the bf16 matmul rate
   (a chain of square ``n x n`` matmuls in one jitted ``fori_loop``: ``2 n^3`` FLOPs each).
2. **Decode**: tokens/s of a jitted ``lax.scan`` of single-token ``forward_cached`` steps
   (greedy) at batch 1, 16, 64 with a ``max_len``-slot cache. Bytes moved per step are the
   parameters (all read once per step) plus the KV cache read. ``forward_cached`` attends over
   every cache slot (masked), so "as implemented" counts all ``T`` slots; "ideal" counts only
   the slots filled on average. Utilisation = bytes per step / time per step / copy bandwidth.
3. **Training**: one ``sharpen.lm.train.train_step`` (forward + backward + AdamW, global-norm
   clipping) on ``B x L`` tokens. FLOPs per step ``= B L (6 N_mm + 12 n_layers d_model L)``
   (the PaLM / nanoGPT count: ``N_mm`` = parameters that enter a matmul, i.e. all but the
   position table, norms and biases, the tied embedding counted once for the output head;
   ``12 n_layers d L`` per token is the attention score and value matmuls, forward + backward,
   without causal halving since the implementation computes the full ``L x L`` scores).
   MFU = achieved FLOP/s / measured bf16 matmul rate (also printed vs the vendor peak when the
   device is recognised).

Without a GPU/TPU it prints ``no GPU/TPU present: nothing measured`` and exits 0.
``--tiny --force-cpu`` runs the same code path with a tiny model on the CPU (a smoke test of the
script, not a measurement worth reporting).

Usage::

    python benchmarks/bench_gpu.py                     # on a GPU/TPU machine; writes BENCHMARKS.md
    python benchmarks/bench_gpu.py --tiny --force-cpu  # code-path smoke on CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

import _harness as H
import jax
import jax.numpy as jnp

from sharpen.lm import LMConfig, forward_cached, init_cache, init_params, param_count
from sharpen.lm import train as lm_train

ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")
# Dense bf16 peak (no sparsity), TFLOP/s, for context only; MFU uses the measured rate.
VENDOR_PEAK_BF16 = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "TPU v4": 275.0, "TPU v5": 459.0}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of one run (full on an accelerator, tiny for the CPU smoke)."""

    cfg: LMConfig
    copy_mib: int
    matmul_n: int
    matmul_chain: int
    decode_batches: tuple[int, ...]
    decode_steps: int
    decode_start: int
    train_batch: int
    train_len: int
    repeats: int


def full_plan() -> Plan:
    cfg = LMConfig(
        arch="gpt2",
        vocab_size=50257,
        d_model=768,
        n_layers=12,
        n_heads=12,
        d_ff=3072,
        max_len=1024,
        dtype="bfloat16",
        param_dtype="bfloat16",
    )
    return Plan(cfg, 2048, 8192, 16, (1, 16, 64), 128, 512, 16, 1024, 10)


def tiny_plan() -> Plan:
    cfg = LMConfig(
        arch="gpt2",
        vocab_size=512,
        d_model=64,
        n_layers=2,
        n_heads=2,
        d_ff=256,
        max_len=128,
        dtype="bfloat16",
        param_dtype="bfloat16",
    )
    return Plan(cfg, 16, 256, 4, (1, 16, 64), 8, 64, 4, 64, 5)


def accelerator() -> jax.Device | None:
    """The first GPU/TPU device JAX sees, or ``None``."""
    for device in jax.devices():
        if device.platform.lower() in ACCELERATORS:
            return device
    return None


def _per_second(summary: dict, amount: float) -> float:
    return amount / summary["median_s"]


# --------------------------------------------------------------------------------------------
# Reference rates
# --------------------------------------------------------------------------------------------


@jax.jit
def _copy(x):
    return x + jnp.asarray(1, x.dtype)


@functools.partial(jax.jit, static_argnames="chain")
def _matmul_chain(a, b, chain):
    return jax.lax.fori_loop(0, chain, lambda _, x: x @ b, a)


def reference_rates(plan: Plan, device) -> dict:
    with jax.default_device(device):
        n_elems = plan.copy_mib * 2**20 // 2
        x = jnp.zeros((n_elems,), jnp.bfloat16)
        n = plan.matmul_n
        ka, kb = jax.random.split(jax.random.key(0))
        a = jax.random.normal(ka, (n, n), jnp.bfloat16)
        b = (jax.random.normal(kb, (n, n), jnp.float32) / jnp.sqrt(n)).astype(jnp.bfloat16)
        copy, copy_compile = H.compile_timed(_copy, x)
        mm, mm_compile = H.compile_timed(_matmul_chain, a, b, plan.matmul_chain)
        timing = H.time_alternating(
            {"copy": lambda: copy(x), "matmul": lambda: mm(a, b)}, warmup=2, repeats=plan.repeats
        )
    copy_bytes = 2 * x.nbytes
    flops = 2 * n**3 * plan.matmul_chain
    return {
        "copy_bytes": copy_bytes,
        "copy_bw_Bps": _per_second(timing["copy"], copy_bytes),
        "matmul_flops": flops,
        "matmul_flops_per_s": _per_second(timing["matmul"], flops),
        "timing": timing,
        "compile_s": {"copy": copy_compile, "matmul": mm_compile},
    }


# --------------------------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("cfg", "steps"))
def decode_loop(params, cache, tokens_B, start, *, cfg, steps):
    """``steps`` greedy single-token decode steps from cache slot ``start``; returns tokens."""
    slot_T = jnp.arange(cache.k.shape[2])
    batch = tokens_B.shape[0]

    def step(carry, i):
        cache, tok_B = carry
        slot = start + i
        mask_BxT = jnp.broadcast_to(slot_T[None, :] <= slot, (batch, slot_T.shape[0]))
        pos_Bx1 = jnp.full((batch, 1), slot, jnp.int32)
        logits, cache = forward_cached(
            params, tok_B[:, None], pos_Bx1, mask_BxT, cache, slot, cfg=cfg
        )
        nxt_B = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)
        return (cache, nxt_B), nxt_B

    (_, _), toks = jax.lax.scan(step, (cache, tokens_B), jnp.arange(steps))
    return toks


def _bytes(tree) -> int:
    return int(sum(leaf.nbytes for leaf in jax.tree.leaves(tree)))


def decode_bench(plan: Plan, params, device, copy_bw: float) -> list[dict]:
    cfg = plan.cfg
    param_bytes = _bytes(params)
    rows = []
    with jax.default_device(device):
        for batch in plan.decode_batches:
            cache = init_cache(cfg, batch)
            tokens = jnp.zeros((batch,), jnp.int32)
            start = jnp.int32(plan.decode_start)
            run, compile_s = H.compile_timed(
                decode_loop, params, cache, tokens, start, cfg=cfg, steps=plan.decode_steps
            )
            t = H.time_alternating(
                {"decode": lambda run=run, c=cache, tk=tokens, s=start: run(params, c, tk, s)},
                warmup=2,
                repeats=plan.repeats,
            )["decode"]
            step_s = t["median_s"] / plan.decode_steps
            kv_full = _bytes(cache)  # every slot is read each step, as implemented
            filled = plan.decode_start + plan.decode_steps / 2
            kv_ideal = kv_full * filled / cfg.max_len
            logits_bytes = batch * cfg.vocab_size * 4
            moved_full = param_bytes + kv_full + logits_bytes
            moved_ideal = param_bytes + kv_ideal + logits_bytes
            rows.append(
                {
                    "batch": batch,
                    "tokens_per_s": batch / step_s,
                    "step_s": step_s,
                    "timing": t,
                    "compile_s": compile_s,
                    "bytes_per_step_full": moved_full,
                    "bytes_per_step_ideal": moved_ideal,
                    "bw_util_full": moved_full / step_s / copy_bw,
                    "bw_util_ideal": moved_ideal / step_s / copy_bw,
                }
            )
            print(
                f"decode B={batch}: {batch / step_s:,.0f} tok/s, step {H.fmt_s(step_s)}, "
                f"util {moved_full / step_s / copy_bw:.1%} (full cache) "
                f"{moved_ideal / step_s / copy_bw:.1%} (filled slots)",
                flush=True,
            )
    return rows


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def matmul_params(params, cfg: LMConfig) -> int:
    """Parameters that enter a matmul: kernels (rank >= 2 leaves) minus the position table."""
    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        if "pos_embed" in name:
            continue
        if name.endswith("['kernel']") or "embed" in name:
            total += leaf.size
    return total


def train_bench(plan: Plan, params, device, matmul_rate: float) -> dict:
    cfg = plan.cfg
    optimizer = lm_train.make_optimizer(
        3e-4, warmup=10, total_steps=1000, weight_decay=0.1, clip_norm=1.0
    )
    with jax.default_device(device):
        state = lm_train.init_train_state(params, optimizer)
        shape = (plan.train_batch, plan.train_len)
        tokens = jax.random.randint(jax.random.key(3), shape, 0, cfg.vocab_size, jnp.int32)
        ones = jnp.ones(shape, bool)
        batch = lm_train.Batch(tokens, ones, ones)
        step, compile_s = H.compile_timed(
            lm_train.train_step, state, batch, cfg=cfg, optimizer=optimizer
        )
        # The same state every call: a steady-state step, no growing Python-side chain.
        t = H.time_alternating(
            {"train": lambda: step(state, batch)}, warmup=2, repeats=plan.repeats
        )["train"]
    n_mm = matmul_params(params, cfg)
    n_tokens = plan.train_batch * plan.train_len
    flops = n_tokens * (6 * n_mm + 12 * cfg.n_layers * cfg.d_model * plan.train_len)
    achieved = flops / t["median_s"]
    out = {
        "n_params": param_count(params),
        "n_matmul_params": n_mm,
        "tokens_per_step": n_tokens,
        "flops_per_step": flops,
        "timing": t,
        "compile_s": compile_s,
        "tokens_per_s": n_tokens / t["median_s"],
        "achieved_flops_per_s": achieved,
        "mfu_vs_measured": achieved / matmul_rate,
    }
    print(
        f"train: {n_tokens / t['median_s']:,.0f} tok/s, {achieved / 1e12:.2f} TFLOP/s, "
        f"MFU {achieved / matmul_rate:.1%} of measured matmul rate; compile {H.fmt_s(compile_s)}",
        flush=True,
    )
    return out


# --------------------------------------------------------------------------------------------


def vendor_peak(device) -> float | None:
    kind = getattr(device, "device_kind", "")
    for name, tflops in VENDOR_PEAK_BF16.items():
        if name.lower() in kind.lower():
            return tflops * 1e12
    return None


def report_rows(ref, decode, train) -> list[dict]:
    rows = [
        {
            "measurement": "device-to-device copy (bf16 `x + 1`)",
            "median": H.fmt_s(ref["timing"]["copy"]["median_s"]),
            "rate": f"{ref['copy_bw_Bps'] / 1e9:,.4g} GB/s",
            "utilisation": "reference",
            "compile": H.fmt_s(ref["compile_s"]["copy"]),
        },
        {
            "measurement": "bf16 square matmul chain",
            "median": H.fmt_s(ref["timing"]["matmul"]["median_s"]),
            "rate": f"{ref['matmul_flops_per_s'] / 1e12:,.4g} TFLOP/s",
            "utilisation": "reference",
            "compile": H.fmt_s(ref["compile_s"]["matmul"]),
        },
    ]
    for d in decode:
        rows.append(
            {
                "measurement": f"decode, batch {d['batch']} (per token step)",
                "median": H.fmt_s(d["step_s"]),
                "rate": f"{d['tokens_per_s']:,.0f} tok/s",
                "utilisation": (
                    f"{d['bw_util_full']:.1%} of copy BW (full cache read, "
                    f"{d['bytes_per_step_full'] / 1e6:,.4g} MB/step); {d['bw_util_ideal']:.1%} "
                    f"counting filled slots only"
                ),
                "compile": H.fmt_s(d["compile_s"]),
            }
        )
    rows.append(
        {
            "measurement": f"train step (fwd+bwd+AdamW), {train['tokens_per_step']:,} tokens",
            "median": H.fmt_s(train["timing"]["median_s"]),
            "rate": (
                f"{train['tokens_per_s']:,.0f} tok/s, "
                f"{train['achieved_flops_per_s'] / 1e12:,.4g} TFLOP/s"
            ),
            "utilisation": f"MFU {train['mfu_vs_measured']:.1%} of measured matmul rate",
            "compile": H.fmt_s(train["compile_s"]),
        }
    )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model, few steps")
    parser.add_argument("--force-cpu", action="store_true", help="measure on the CPU")
    args = parser.parse_args(argv)
    device = accelerator()
    if device is None and not args.force_cpu:
        print(f"no GPU/TPU present: nothing measured (jax.devices() = {jax.devices()})")
        return 0
    if args.force_cpu:
        device = jax.devices("cpu")[0]
    plan = tiny_plan() if args.tiny else full_plan()
    print(f"device: {device} ({getattr(device, 'device_kind', '?')}); tiny={args.tiny}", flush=True)
    info = H.machine_info()

    ref = reference_rates(plan, device)
    print(
        f"copy {ref['copy_bw_Bps'] / 1e9:,.1f} GB/s; matmul "
        f"{ref['matmul_flops_per_s'] / 1e12:,.2f} TFLOP/s",
        flush=True,
    )
    with jax.default_device(device):
        params = init_params(plan.cfg, key=jax.random.key(0))
    print(f"model: {param_count(params):,} parameters ({_bytes(params) / 1e6:,.0f} MB)", flush=True)
    decode = decode_bench(plan, params, device, ref["copy_bw_Bps"])
    train = train_bench(plan, params, device, ref["matmul_flops_per_s"])
    peak = vendor_peak(device)
    if peak:
        print(f"MFU vs vendor dense bf16 peak: {train['achieved_flops_per_s'] / peak:.1%}")

    rows = report_rows(ref, decode, train)
    print(H.markdown_table(rows))
    smoke = args.tiny or args.force_cpu
    flags = " ".join(f for f, on in (("--tiny", args.tiny), ("--force-cpu", args.force_cpu)) if on)
    command = f"python benchmarks/bench_gpu.py {flags}".strip()
    kind = getattr(device, "device_kind", device.platform)
    title = (
        "GPU/TPU: decode bandwidth and training MFU — not yet measured on an accelerator "
        "(CPU smoke of the code path, tiny model; numbers mean nothing)"
        if smoke
        else f"GPU/TPU: decode bandwidth and training MFU, ~124M GPT-2 in bf16 on {kind}"
    )
    notes = f"""
Model: `{plan.cfg}` ({train["n_params"]:,} parameters, {train["n_matmul_params"]:,} in matmuls).
Decode: jitted `lax.scan` of {plan.decode_steps} greedy `forward_cached` steps from slot
{plan.decode_start} of a {plan.cfg.max_len}-slot cache; bytes per step = parameter bytes + KV-cache
bytes read + float32 logits written. Training: `sharpen.lm.train.train_step` (AdamW, clipping)
on {plan.train_batch} x {plan.train_len} tokens; FLOPs/step = `B L (6 N_mm + 12 n_layers d L)`.
MFU vs vendor peak: {f"{train['achieved_flops_per_s'] / peak:.1%}" if peak else "device not recognised"}.
Utilisation is against the *measured* copy bandwidth and matmul rate above, not datasheet peaks.
"""
    existing = H.BENCHMARKS_MD.read_text() if H.BENCHMARKS_MD.exists() else ""
    real = "<!-- BEGIN gpu -->" in existing and "not yet measured" not in existing
    if smoke and real:
        print("BENCHMARKS.md holds accelerator numbers: the smoke run does not replace them")
        return 0
    H.append_result(
        "gpu",
        rows,
        command,
        title=title,
        notes=notes,
        info=info,
        raw={"reference": ref, "decode": decode, "train": train, "tiny": args.tiny},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

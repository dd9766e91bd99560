"""Decode with per-token log-probs: ``sharpen.lm.sampler.generate`` vs transformers ``generate``.

Issue 7 (and the sampler half of issue 5). Identical weights: a random transformers model is
saved with ``save_pretrained`` and ours is loaded from that directory with
``load_hf_checkpoint`` (SmolLM2: our GGUF conversion, written out as a transformers Llama
checkpoint and loaded back by both); logits are compared before timing.

Work per call, both sides: ``B`` prompts of 32 random tokens, exactly 128 new tokens per row
(EOS cannot end the run: ours checks that some row ran all 128 steps; the peer gets
``min_new_tokens=128``), greedy or temperature 1 over the full vocabulary, and the per-token
base log-probs of the emitted tokens (ours returns them; the peer stacks ``output_logits`` and
takes ``log_softmax`` + gather). The peer runs under ``torch.inference_mode()`` with the thread
count chosen by a calibration run (1 or 2 threads, whichever is faster on this machine now).

This module also holds the helpers the other LM benchmark scripts import (model builders,
alternating timer that allows 3 repeats for the biggest configurations, table formatting).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _harness as H
import jax
import jax.numpy as jnp
import numpy as np

from sharpen.lm.batching import bucket_length
from sharpen.lm.checkpoint import _llama_source, load_hf_checkpoint
from sharpen.lm.model import forward, param_count
from sharpen.lm.sampler import CACHE_MULTIPLE, _generate_jit

PROMPT_LEN = 32
NEW_TOKENS = 128

# --------------------------------------------------------------------------------------------
# Shared helpers (imported by bench_score / bench_train / bench_scaling)
# --------------------------------------------------------------------------------------------

TINY = dict(n_embd=128, n_layer=4, n_head=4, vocab_size=2048, n_positions=256)  # ~1.09M params
GPT2_SMALL = dict(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024)  # 124M


def torch_setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)


def make_gpt2(shape: dict, workdir: Path, *, seed: int = 0):
    """Random transformers GPT-2 (eval mode) saved to ``workdir``; ours loaded from it."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        **shape, n_inner=4 * shape["n_embd"], bos_token_id=0, eos_token_id=shape["vocab_size"] - 1
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(workdir, safe_serialization=True)
    cfg, params = load_hf_checkpoint(workdir)
    return model, cfg, params


def make_smollm2(workdir: Path):
    """SmolLM2-135M-Instruct: our fp32 GGUF conversion, saved as a transformers Llama
    checkpoint; the transformers model and ours are both loaded from that directory."""
    import torch
    import transformers

    from sharpen.lm.gguf_import import load_smollm2

    cfg0, params0, _ = load_smollm2()
    state = {}

    def put(key_path, leaf):
        path = tuple(k.key for k in key_path)
        name, transform, _ = _llama_source(path)
        arr = np.asarray(leaf, np.float32)
        for i in range(cfg0.n_layers) if path[0] == "blocks" else [None]:
            a = arr[i] if i is not None else arr
            state[name.format(i=i)] = torch.from_numpy(np.ascontiguousarray(transform(a)))

    jax.tree_util.tree_map_with_path(put, params0)
    config = transformers.LlamaConfig(
        vocab_size=cfg0.vocab_size,
        hidden_size=cfg0.d_model,
        intermediate_size=cfg0.d_ff,
        num_hidden_layers=cfg0.n_layers,
        num_attention_heads=cfg0.n_heads,
        num_key_value_heads=cfg0.kv_heads,
        max_position_embeddings=cfg0.max_len,
        rms_norm_eps=cfg0.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg0.rope_theta},
        tie_word_embeddings=cfg0.tie_embeddings,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    model = transformers.LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise RuntimeError(f"state dict mismatch: {missing=} {unexpected=}")
    model.tie_weights()
    model.save_pretrained(workdir, safe_serialization=True)
    model = transformers.LlamaForCausalLM.from_pretrained(workdir, dtype=torch.float32).eval()
    cfg, params = load_hf_checkpoint(workdir)
    del params0
    return model, cfg, params


def logit_gap(model, cfg, params, *, batch: int = 2, length: int = 24) -> float:
    """max |Δlogit| between ours and transformers on random tokens."""
    import torch

    tokens = np.random.default_rng(5).integers(0, cfg.vocab_size, (batch, length)).astype(np.int32)
    ours = np.asarray(forward(params, jnp.asarray(tokens), cfg=cfg))
    with torch.inference_mode():
        peer = model(torch.from_numpy(tokens.astype(np.int64))).logits.float().numpy()
    return float(np.max(np.abs(ours - peer)))


def time_alt(fns: dict, *, warmup: int = 1, repeats: int = 5) -> dict:
    """:func:`_harness.time_alternating`, but allowing 3 repeats for the biggest configs."""
    if repeats >= 5:
        return H.time_alternating(fns, warmup=warmup, repeats=repeats)
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            jax.block_until_ready(fns[name]())
    times = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            jax.block_until_ready(fns[name]())
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, ts in times.items():
        out[name] = {
            "median_s": statistics.median(ts),
            "q25_s": min(ts),  # with 3 repeats the "IQR" column shows min – max
            "q75_s": max(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "times_s": ts,
        }
    return out


def calibrate_threads(fn_for_threads) -> tuple[int, dict]:
    """Time a short peer workload at 1 and 2 torch threads (alternated, 3 each); pick the faster."""
    import torch

    res = {}
    for t in (1, 2):
        torch.set_num_threads(t)
        fn_for_threads()
    ts = {1: [], 2: []}
    for r in range(3):
        for t in (1, 2) if r % 2 == 0 else (2, 1):
            torch.set_num_threads(t)
            start = time.perf_counter()
            fn_for_threads()
            ts[t].append(time.perf_counter() - start)
    res = {t: statistics.median(v) for t, v in ts.items()}
    best = min(res, key=res.get)
    torch.set_num_threads(best)
    return best, res


def spread(s: dict) -> str:
    return f"{H.fmt_s(s['q25_s'])} – {H.fmt_s(s['q75_s'])}"


def ratio(peer: dict, ours: dict) -> str:
    return f"**{peer['median_s'] / ours['median_s']:.2f}×**"


# --------------------------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------------------------


def ours_decoder(cfg, params, prompts: np.ndarray, *, greedy: bool):
    """Compiled ``_generate_jit`` (what ``generate`` calls) + its compile time."""
    eos = cfg.vocab_size - 1
    args = (
        params,
        jnp.asarray(prompts),
        jnp.ones(prompts.shape, bool),
        jax.random.key(1),
        np.float32(1.0),
        np.float32(1.0),
        np.int32(eos),
        np.int32(0),
    )
    static = dict(
        cfg=cfg,
        num_samples=1,
        max_new_tokens=NEW_TOKENS,
        greedy=greedy,
        top_k=None,
        use_top_p=False,
        cache_len=bucket_length(prompts.shape[1] + NEW_TOKENS, CACHE_MULTIPLE),
    )
    compiled, compile_s = H.compile_timed(_generate_jit, *args, **static)

    def run():
        out = compiled(*args)
        return out.tokens, out.base_logprobs, out.lengths

    return run, compile_s


def peer_decoder(model, prompts: np.ndarray, *, greedy: bool, vocab: int):
    import torch

    ids = torch.from_numpy(prompts.astype(np.int64))
    attn = torch.ones_like(ids)
    eos = vocab - 1
    kwargs = dict(
        do_sample=not greedy,
        max_new_tokens=NEW_TOKENS,
        min_new_tokens=NEW_TOKENS,
        output_logits=True,
        return_dict_in_generate=True,
        eos_token_id=eos,
        pad_token_id=0,
    )
    if not greedy:
        kwargs.update(temperature=1.0, top_k=0, top_p=1.0)

    def run():
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=attn, **kwargs)
            logits = torch.stack(out.logits, dim=1).float()
            new = out.sequences[:, ids.shape[1] :]
            logp = torch.log_softmax(logits, dim=-1).gather(-1, new[..., None])[..., 0]
        return new.numpy(), logp.numpy()

    return run


def bench_decode_model(label, model, cfg, params, batches, modes, repeats_for, rows, raw):
    import torch

    vocab = cfg.vocab_size
    for batch in batches:
        prompts = np.random.default_rng(batch).integers(0, vocab - 1, (batch, PROMPT_LEN))
        prompts = prompts.astype(np.int32)
        for greedy in modes:
            ours, compile_s = ours_decoder(cfg, params, prompts, greedy=greedy)
            peer = peer_decoder(model, prompts, greedy=greedy, vocab=vocab)
            # Sanity: greedy tokens and log-probs agree; all 128 steps ran.
            toks, lp, lengths = (np.asarray(a) for a in ours())
            if int(lengths.max()) != NEW_TOKENS:
                raise RuntimeError("every row hit EOS early; choose another eos id")
            check = ""
            if greedy and batch <= 16:
                ptoks, plp = peer()
                agree = float(np.mean(toks[:, 0] == ptoks))
                check = f"greedy token agreement {agree:.3f}, max |Δ logp| " + (
                    f"{float(np.max(np.abs(lp[:, 0] - plp))):.1e}" if agree == 1.0 else "n/a"
                )
            reps = repeats_for(batch)
            t = time_alt({"ours": ours, "peer": peer}, warmup=1, repeats=reps)
            new_tokens = batch * NEW_TOKENS
            rows.append(
                {
                    "model": label,
                    "batch": batch,
                    "mode": "greedy" if greedy else "T=1",
                    "ours median (spread)": f"{H.fmt_s(t['ours']['median_s'])} ({spread(t['ours'])})",
                    "ours new tok/s": f"{new_tokens / t['ours']['median_s']:,.0f}",
                    "peer median (spread)": f"{H.fmt_s(t['peer']['median_s'])} ({spread(t['peer'])})",
                    "peer new tok/s": f"{new_tokens / t['peer']['median_s']:,.0f}",
                    "peer / ours": ratio(t["peer"], t["ours"]),
                    "repeats": reps,
                    "ours compile": H.fmt_s(compile_s),
                }
            )
            raw[f"{label}/B{batch}/{'greedy' if greedy else 'T1'}"] = {
                "ours": t["ours"],
                "peer": t["peer"],
                "compile_s": compile_s,
                "check": check,
                "torch_threads": torch.get_num_threads(),
            }
            print(rows[-1], check, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,gpt2,smollm2")
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, batch 1 and 16; writes nothing"
    )
    args = parser.parse_args()
    info = H.machine_info()
    models = args.models.split(",")
    rows: list[dict] = []
    raw: dict = {}
    notes_extra = []
    torch_setup(2)
    with tempfile.TemporaryDirectory() as tmp:
        if "tiny" in models or args.quick:
            model, cfg, params = make_gpt2(TINY, Path(tmp) / "tiny")
            gap = logit_gap(model, cfg, params)
            p = np.random.default_rng(0).integers(0, 2000, (16, PROMPT_LEN)).astype(np.int32)
            threads, cal = calibrate_threads(
                functools.partial(
                    lambda f: f(), peer_decoder(model, p, greedy=True, vocab=cfg.vocab_size)
                )
            )
            notes_extra.append(
                f"Peer torch threads: {threads} (calibration on tiny B=16 greedy: "
                + ", ".join(f"{k} thread(s) {H.fmt_s(v)}" for k, v in cal.items())
                + ")."
            )
            notes_extra.append(
                f"tiny: {param_count(params):,} params, max |Δlogit| vs transformers {gap:.1e}."
            )
            print(notes_extra, flush=True)
            batches = (1, 16) if args.quick else (1, 16, 64)
            bench_decode_model(
                "tiny (~1M)", model, cfg, params, batches, (True, False), lambda b: 5, rows, raw
            )
        if "gpt2" in models and not args.quick:
            model, cfg, params = make_gpt2(GPT2_SMALL, Path(tmp) / "gpt2")
            gap = logit_gap(model, cfg, params)
            notes_extra.append(
                f"gpt2-small: {param_count(params):,} params, max |Δlogit| {gap:.1e}."
            )
            print(notes_extra[-1], flush=True)
            for batches, modes in (((1, 16), (True, False)), ((64,), (False,))):
                bench_decode_model(
                    "GPT-2-small (124M)",
                    model,
                    cfg,
                    params,
                    batches,
                    modes,
                    lambda b: 5 if b == 1 else 3,
                    rows,
                    raw,
                )
            del model, params
        if "smollm2" in models and not args.quick:
            model, cfg, params = make_smollm2(Path(tmp) / "smollm2")
            gap = logit_gap(model, cfg, params)
            notes_extra.append(
                f"SmolLM2-135M-Instruct: {param_count(params):,} params, max |Δlogit| {gap:.1e}."
            )
            print(notes_extra[-1], flush=True)
            bench_decode_model(
                "SmolLM2-135M", model, cfg, params, (16, 64), (False,), lambda b: 3, rows, raw
            )
    if args.quick:
        return
    notes = NOTES + "\n" + "\n".join(f"- {n}" for n in notes_extra)
    H.append_result(
        "lm_decode",
        rows,
        "python benchmarks/bench_decode.py"
        + ("" if args.models == "tiny,gpt2,smollm2" else f" --models {args.models}"),
        title="LM decode with per-token log-probs: sharpen generate vs transformers generate",
        notes=notes,
        info=info,
        raw=raw,
    )


NOTES = f"""Work per call: `B` prompts of {PROMPT_LEN} random tokens, exactly {NEW_TOKENS} new tokens
per row, per-token base log-probs of the emitted tokens. Ours: the compiled `_generate_jit`
that `sharpen.lm.sampler.generate` calls (prefill + `lax.while_loop` decode, one program;
compile time measured separately with `lower().compile()`). Peer: transformers `generate`
(`output_logits=True, return_dict_in_generate=True, min_new_tokens={NEW_TOKENS}`; T=1 with
`top_k=0, top_p=1.0`) under `torch.inference_mode()`, then `log_softmax` + gather of the
stacked logits. Identical fp32 weights (transformers `save_pretrained` → our
`load_hf_checkpoint`; SmolLM2 from our GGUF conversion written as a transformers Llama
checkpoint). Greedy rows check token agreement (in the JSON). Repeats: 5 for the tiny model
and GPT-2 batch 1; 3 for GPT-2 batch 16/64 and SmolLM2 (a call takes tens of seconds on 2
cores; with 3 repeats the spread column is min – max, else the IQR). GPT-2 batch 64 and
SmolLM2 run T=1 only (the sharpening use case) to keep the script near ~20 min."""


if __name__ == "__main__":
    sys.exit(main())

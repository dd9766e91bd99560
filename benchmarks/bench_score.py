"""Sequence log-prob scoring of (prompt, response) batches: ``sharpen.lm.scorer.score`` vs a
transformers forward + ``log_softmax`` gather (issue 7).

Identical weights as in ``bench_decode.py``. Work per call: ``B`` prompts of 32 tokens and
``B`` responses of 128 tokens (random ids, all real); output the per-token and summed response
log-probs. Ours is the compiled ``_score_jit`` behind ``score(..., stats=False)``: the same
work as the peer (per-token and summed log-probs; entropy and self-certainty, which the default
``stats=True`` adds, are skipped); the peer runs the causal-LM forward under
``torch.inference_mode()`` on the concatenation, then ``log_softmax`` over the response
positions and a gather.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import _harness as H
import bench_decode as D
import jax.numpy as jnp
import numpy as np

from sharpen.lm.scorer import _score_jit

PROMPT_LEN = 32
RESPONSE_LEN = 128


def ours_scorer(cfg, params, prompts, responses):
    args = (
        params,
        jnp.asarray(prompts),
        jnp.ones(prompts.shape, bool),
        jnp.asarray(responses),
        jnp.full((responses.shape[0],), responses.shape[1], jnp.int32),
    )
    compiled, compile_s = H.compile_timed(_score_jit, *args, cfg=cfg, num_samples=1, stats=False)

    def run():
        out = compiled(*args)
        return out.sum_logprob, out.token_logprobs

    return run, compile_s


def peer_scorer(model, prompts, responses):
    import torch

    ids = torch.from_numpy(np.concatenate([prompts, responses], axis=1).astype(np.int64))
    resp = torch.from_numpy(responses.astype(np.int64))
    p = prompts.shape[1]

    def run():
        with torch.inference_mode():
            logits = model(ids).logits[:, p - 1 : -1].float()
            tok = torch.log_softmax(logits, dim=-1).gather(-1, resp[..., None])[..., 0]
            return tok.sum(-1).numpy(), tok.numpy()

    return run


def bench(label, model, cfg, params, batches, repeats, rows, raw):
    for batch in batches:
        rng = np.random.default_rng(batch)
        prompts = rng.integers(0, cfg.vocab_size, (batch, PROMPT_LEN)).astype(np.int32)
        responses = rng.integers(0, cfg.vocab_size, (batch, RESPONSE_LEN)).astype(np.int32)
        ours, compile_s = ours_scorer(cfg, params, prompts, responses)
        peer = peer_scorer(model, prompts, responses)
        gap = float(np.max(np.abs(np.asarray(ours()[0]) - peer()[0])))
        t = D.time_alt({"ours": ours, "peer": peer}, warmup=1, repeats=repeats)
        tokens = batch * (PROMPT_LEN + RESPONSE_LEN)
        rows.append(
            {
                "model": label,
                "batch × tokens": f"{batch} × {PROMPT_LEN}+{RESPONSE_LEN}",
                "ours median (spread)": f"{H.fmt_s(t['ours']['median_s'])} ({D.spread(t['ours'])})",
                "ours tok/s": f"{tokens / t['ours']['median_s']:,.0f}",
                "peer median (spread)": f"{H.fmt_s(t['peer']['median_s'])} ({D.spread(t['peer'])})",
                "peer tok/s": f"{tokens / t['peer']['median_s']:,.0f}",
                "peer / ours": D.ratio(t["peer"], t["ours"]),
                "repeats": repeats,
                "ours compile": H.fmt_s(compile_s),
                "max |Δ sum logp|": f"{gap:.1e}",
            }
        )
        raw[f"{label}/B{batch}"] = {"ours": t["ours"], "peer": t["peer"], "compile_s": compile_s}
        print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,gpt2,smollm2")
    args = parser.parse_args()
    info = H.machine_info()
    models = args.models.split(",")
    rows: list[dict] = []
    raw: dict = {}
    notes = []
    D.torch_setup(2)
    with tempfile.TemporaryDirectory() as tmp:
        model, cfg, params = D.make_gpt2(D.TINY, Path(tmp) / "tiny")
        prompts = np.zeros((16, PROMPT_LEN), np.int32)
        threads, cal = D.calibrate_threads(
            functools.partial(lambda f: f(), peer_scorer(model, prompts, prompts))
        )
        notes.append(
            f"Peer torch threads: {threads} (calibration, tiny forward 16 × 64: "
            + ", ".join(f"{k} thread(s) {H.fmt_s(v)}" for k, v in cal.items())
            + ")."
        )
        if "tiny" in models:
            bench("tiny (~1M)", model, cfg, params, (16, 64), 5, rows, raw)
        if "gpt2" in models:
            model, cfg, params = D.make_gpt2(D.GPT2_SMALL, Path(tmp) / "gpt2")
            notes.append(f"GPT-2-small max |Δlogit| {D.logit_gap(model, cfg, params):.1e}.")
            bench("GPT-2-small (124M)", model, cfg, params, (16,), 3, rows, raw)
        if "smollm2" in models:
            model, cfg, params = D.make_smollm2(Path(tmp) / "smollm2")
            notes.append(f"SmolLM2 max |Δlogit| {D.logit_gap(model, cfg, params):.1e}.")
            bench("SmolLM2-135M", model, cfg, params, (16,), 3, rows, raw)
    H.append_result(
        "lm_score",
        rows,
        "python benchmarks/bench_score.py",
        title="LM scoring (sequence log-prob of prompt + response): sharpen score vs transformers forward",
        notes=__doc__.split("\n\n", 1)[1]
        + "\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n- Repeats: 5 for the tiny model, 3 for the 124M/135M models (spread = min – max).",
        info=info,
        raw=raw,
    )


if __name__ == "__main__":
    sys.exit(main())

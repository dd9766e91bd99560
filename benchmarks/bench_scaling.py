"""Scaling of LM sampling cost (issue 7): vs N samples per prompt, vs generated length, vs batch.

Tiny GPT-2-shaped model (~1M params, ``n_positions`` 512) so every point is cheap for both
contenders: ours = ``sharpen.lm.sampler.generate`` (T = 1, per-token log-probs returned);
peer = transformers ``generate`` (T = 1, ``top_k=0``, ``output_logits`` + ``log_softmax``
gather, ``num_return_sequences=N``, ``min_new_tokens`` = M), identical weights. Prompts: 32
random tokens. Each point: 1 warm-up call (ours compiles there; compile is excluded), 5
alternated timed repeats, median. Figures: ``benchmarks/out/lm_scaling_{N,length,batch}.png``.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

import _harness as H
import bench_decode as D
import jax
import numpy as np

from sharpen.lm.sampler import generate

SCALING = dict(D.TINY, n_positions=512)


def contenders(model, cfg, params, batch, n, m):
    import torch

    prompts = np.random.default_rng(batch * 7 + n).integers(0, cfg.vocab_size - 1, (batch, 32))
    prompts = prompts.astype(np.int32)
    mask = np.ones(prompts.shape, bool)
    eos = cfg.vocab_size - 1

    def ours():
        out = generate(
            params,
            prompts,
            mask,
            cfg=cfg,
            key=jax.random.key(0),
            num_samples=n,
            max_new_tokens=m,
            eos_id=eos,
            pad_id=0,
        )
        return out.tokens, out.base_logprobs

    ids = torch.from_numpy(prompts.astype(np.int64))

    def peer():
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                num_return_sequences=n,
                max_new_tokens=m,
                min_new_tokens=m,
                output_logits=True,
                return_dict_in_generate=True,
                eos_token_id=eos,
                pad_token_id=0,
            )
            new = out.sequences[:, 32:]
            lp = torch.log_softmax(torch.stack(out.logits, 1).float(), -1).gather(
                -1, new[..., None]
            )
        return new.numpy(), lp.numpy()

    return {"ours": ours, "peer": peer}


def sweep(model, cfg, params, name, values, make):
    points = []
    for v in values:
        batch, n, m = make(v)
        t = H.time_alternating(contenders(model, cfg, params, batch, n, m), warmup=1, repeats=5)
        points.append({"x": v, "batch": batch, "n": n, "m": m, **t})
        print(name, v, {k: round(t[k]["median_s"], 4) for k in ("ours", "peer")}, flush=True)
    return points


def plot(points, name, xlabel, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    xs = [p["x"] for p in points]
    for who, style in (("ours", "o-"), ("peer", "s--")):
        med = [p[who]["median_s"] for p in points]
        lo = [p[who]["median_s"] - p[who]["q25_s"] for p in points]
        hi = [p[who]["q75_s"] - p[who]["median_s"] for p in points]
        label = "sharpen generate" if who == "ours" else "transformers generate"
        ax.errorbar(xs, med, yerr=[lo, hi], fmt=style, label=label, capsize=2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("seconds per call (median, IQR)")
    ax.set_title(f"~1M-param LM, T=1 sampling: cost vs {name}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    info = H.machine_info()
    D.torch_setup(1)
    rows: list[dict] = []
    raw: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        model, cfg, params = D.make_gpt2(SCALING, Path(tmp) / "scaling")
        p = np.zeros((16, 32), np.int32)
        threads, cal = D.calibrate_threads(
            functools.partial(
                lambda f: f(), D.peer_decoder(model, p, greedy=True, vocab=cfg.vocab_size)
            )
        )
        sweeps = {
            "N": (
                "N samples per prompt (4 prompts, 64 new tokens)",
                (1, 4, 16, 64),
                lambda v: (4, v, 64),
            ),
            "length": ("new tokens M (batch 16)", (16, 64, 256, 448), lambda v: (16, 1, v)),
            "batch": ("batch B (64 new tokens)", (1, 4, 16, 64, 256), lambda v: (v, 1, 64)),
        }
        for key, (xlabel, values, make) in sweeps.items():
            points = sweep(model, cfg, params, key, values, make)
            raw[key] = points
            path = H.OUT_DIR / f"lm_scaling_{key}.png"
            plot(points, key, xlabel, path)
            for pt in points:
                new_tokens = pt["batch"] * pt["n"] * pt["m"]
                rows.append(
                    {
                        "sweep": key,
                        "B × N × M": f"{pt['batch']} × {pt['n']} × {pt['m']}",
                        "ours median (IQR)": f"{H.fmt_s(pt['ours']['median_s'])} "
                        f"({H.fmt_iqr(pt['ours'])})",
                        "ours new tok/s": f"{new_tokens / pt['ours']['median_s']:,.0f}",
                        "peer median (IQR)": f"{H.fmt_s(pt['peer']['median_s'])} "
                        f"({H.fmt_iqr(pt['peer'])})",
                        "peer new tok/s": f"{new_tokens / pt['peer']['median_s']:,.0f}",
                        "peer / ours": D.ratio(pt["peer"], pt["ours"]),
                        "figure": f"`benchmarks/out/{path.name}`",
                    }
                )
    H.append_result(
        "lm_scaling",
        rows,
        "python benchmarks/bench_scaling.py",
        title="LM sampling cost vs N, generated length and batch (tiny model, ours and transformers)",
        notes=__doc__.split("\n\n", 1)[1]
        + f"\n- Peer torch threads: {threads} (calibration: "
        + ", ".join(f"{k} thread(s) {H.fmt_s(v)}" for k, v in cal.items())
        + ").",
        info=info,
        raw=raw,
    )


if __name__ == "__main__":
    sys.exit(main())

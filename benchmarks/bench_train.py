"""SFT step throughput: ``sharpen.lm.train.train_step`` vs a plain PyTorch loop (issue 7; the
training half of issue 5).

Identical weights as in ``bench_decode.py``. One call = one optimizer step on the same batch:
next-token cross-entropy (token mean over the loss mask: the second half of every row, as in
SFT on the response), global-norm clipping at 1.0, AdamW (lr 1e-4, betas 0.9/0.95, eps 1e-8,
weight decay 0.1). Ours: the compiled ``train_step`` with ``make_optimizer`` (compile time
separate). Peer: ``model(ids).logits`` → ``cross_entropy`` → ``backward`` →
``clip_grad_norm_`` → ``torch.optim.AdamW.step`` → ``zero_grad(set_to_none=True)``.
Tokens/s counts all ``B × L`` input tokens.
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

from sharpen.lm.train import Batch, init_train_state, make_optimizer, train_step


def make_batch(cfg, batch, seq):
    rng = np.random.default_rng(seq)
    tokens = rng.integers(0, cfg.vocab_size, (batch, seq)).astype(np.int32)
    loss_mask = np.zeros((batch, seq), bool)
    loss_mask[:, seq // 2 :] = True
    return tokens, loss_mask


def ours_trainer(cfg, params, tokens, loss_mask):
    opt = make_optimizer(1e-4, warmup=0, total_steps=1000, weight_decay=0.1, clip_norm=1.0)
    state = init_train_state(params, opt)
    batch = Batch(jnp.asarray(tokens), jnp.ones(tokens.shape, bool), jnp.asarray(loss_mask))
    compiled, compile_s = H.compile_timed(train_step, state, batch, cfg=cfg, optimizer=opt)

    def run():
        new_state, metrics = compiled(state, batch)
        return new_state.params, metrics["loss"]

    return run, compile_s, compiled, state, batch


def peer_trainer(model, tokens, loss_mask):
    import torch

    model.train()
    for m in model.modules():  # dropout off: same function as ours
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    ids = torch.from_numpy(tokens.astype(np.int64))
    target = ids[:, 1:]
    mask = torch.from_numpy(loss_mask[:, 1:]).float()

    def run():
        logits = model(ids).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
        )
        loss = (nll * mask.reshape(-1)).sum() / mask.sum().clamp(min=1.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach().numpy()

    return run


def bench(label, model, cfg, params, batch, seq, repeats, rows, raw):
    tokens, loss_mask = make_batch(cfg, batch, seq)
    ours, compile_s, _, _, _ = ours_trainer(cfg, params, tokens, loss_mask)
    peer = peer_trainer(model, tokens, loss_mask)
    loss_ours, loss_peer = float(ours()[1]), float(peer())  # same weights before the first step
    t = D.time_alt({"ours": ours, "peer": peer}, warmup=1, repeats=repeats)
    n = batch * seq
    rows.append(
        {
            "model": label,
            "batch × seq": f"{batch} × {seq}",
            "ours median (spread)": f"{H.fmt_s(t['ours']['median_s'])} ({D.spread(t['ours'])})",
            "ours tok/s": f"{n / t['ours']['median_s']:,.0f}",
            "peer median (spread)": f"{H.fmt_s(t['peer']['median_s'])} ({D.spread(t['peer'])})",
            "peer tok/s": f"{n / t['peer']['median_s']:,.0f}",
            "peer / ours": D.ratio(t["peer"], t["ours"]),
            "repeats": repeats,
            "ours compile": H.fmt_s(compile_s),
            "first-step loss ours / peer": f"{loss_ours:.5f} / {loss_peer:.5f}",
        }
    )
    raw[f"{label}/{batch}x{seq}"] = {"ours": t["ours"], "peer": t["peer"], "compile_s": compile_s}
    print(rows[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,gpt2")
    args = parser.parse_args()
    info = H.machine_info()
    rows: list[dict] = []
    raw: dict = {}
    notes = []
    D.torch_setup(2)
    with tempfile.TemporaryDirectory() as tmp:
        model, cfg, params = D.make_gpt2(D.TINY, Path(tmp) / "tiny")
        tokens, loss_mask = make_batch(cfg, 16, 64)
        threads, cal = D.calibrate_threads(
            functools.partial(lambda f: f(), peer_trainer(model, tokens, loss_mask))
        )
        notes.append(
            f"Peer torch threads: {threads} (calibration, tiny step 16 × 64: "
            + ", ".join(f"{k} thread(s) {H.fmt_s(v)}" for k, v in cal.items())
            + ")."
        )
        if "tiny" in args.models:
            for b, s in ((64, 64), (16, 256)):
                model, cfg, params = D.make_gpt2(D.TINY, Path(tmp) / f"tiny{b}")
                bench("tiny (~1M)", model, cfg, params, b, s, 5, rows, raw)
        if "gpt2" in args.models:
            model, cfg, params = D.make_gpt2(D.GPT2_SMALL, Path(tmp) / "gpt2")
            bench("GPT-2-small (124M)", model, cfg, params, 8, 128, 3, rows, raw)
    H.append_result(
        "lm_train",
        rows,
        "python benchmarks/bench_train.py",
        title="SFT step (fwd + bwd + clip + AdamW): sharpen train_step vs PyTorch",
        notes=__doc__.split("\n\n", 1)[1]
        + "\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n- Repeats: 5 for the tiny model, 3 for GPT-2-small (spread = min – max).",
        info=info,
        raw=raw,
    )


if __name__ == "__main__":
    sys.exit(main())

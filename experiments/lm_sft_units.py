"""LM SFT-Sharpening: the cached units of a run (base-model reference, BoN corpus, certified
modes, fine-tuning with periodic evaluation).

Each ``*_unit`` returns one ``units/`` CSV of ``experiments/lm_sft.py``'s ``run``; see the
``lm_sft`` module docstring for the protocol.
"""

from __future__ import annotations

import functools
import json
import math
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import lm_modes
from experiments.lm_sft_base import Cell, Model, bon_pick, draw, grade_draws, score_draws
from sharpen import selection
from sharpen.lm import train as T
from sharpen.lm.batching import bucket_length

if TYPE_CHECKING:
    from experiments.lm_sft import Config

PASS_KS = (1, 2, 4, 8, 16, 32, 64)


def _keys(cfg: Config, task_index: int, seed: int) -> dict[str, jax.Array]:
    root = jax.random.fold_in(jax.random.fold_in(jax.random.key(cfg.seed), task_index), seed)
    names = ("corpus", "pick", "lora", "data", "eval")
    return dict(zip(names, jax.random.split(root, len(names)), strict=True))


def reference_unit(cfg: Config, model: Model, cell: Cell) -> pd.DataFrame:
    """The base model on the eval prompts: greedy, BoN@N (N in ``ns`` and 1) and pass@k.

    ``N_ref = max(ns + (eval_samples,))`` ``T = 1`` draws per prompt (key ``fold_in(seed key,
    10**6)``); BoN@N is the exact average over all ``N``-subsets (:func:`subsample_curves`).
    """
    key = jax.random.fold_in(jax.random.key(cfg.seed), 10**6 + cfg.cell_names().index(cell.name))
    kw = {"max_new_tokens": cfg.max_new_tokens, "sample_rows": cfg.sample_rows}
    greedy = draw(model, cell.eval_ids, key=None, num_samples=1, greedy=True, **kw)
    g_correct, g_parsed = grade_draws(model, cell, greedy, cell.eval_examples)
    n_ref = max(*cfg.ns, cfg.eval_samples)
    samples = draw(model, cell.eval_ids, key=key, num_samples=n_ref, **kw)
    correct, parsed = grade_draws(model, cell, samples, cell.eval_examples)
    b = len(cell.eval_ids)
    pid = np.repeat(np.arange(b), n_ref)
    samples_df = pd.DataFrame(
        {
            "model": "base",
            "task": cell.name,
            "seed": 0,
            "prompt_id": pid,
            "sample": np.tile(np.arange(n_ref), b),
            "sum_logprob": samples.base_logprob.reshape(-1),
            "num_tokens": samples.lengths.reshape(-1),
            "mean_logprob": (samples.base_logprob / np.maximum(samples.lengths, 1)).reshape(-1),
            "entropy": 0.0,  # only the bon_sum rule is kept
            "self_certainty": 0.0,
            "answer": np.where(correct.reshape(-1) == 1, "right", "wrong"),
            "parsed": parsed.reshape(-1),
            "correct": correct.reshape(-1),
        }
    )
    greedy_df = pd.DataFrame(
        {
            "model": "base",
            "task": cell.name,
            "prompt_id": np.arange(b),
            "sum_logprob": greedy.base_logprob[:, 0],
            "num_tokens": greedy.lengths[:, 0],
            "answer": "",
            "parsed": g_parsed[:, 0],
            "correct": g_correct[:, 0],
        }
    )
    ns = sorted({1, *cfg.ns, *(k for k in PASS_KS if k <= n_ref)})
    curves = selection.subsample_curves(samples_df, greedy_df, ns=ns, num_subsets=1, seed=0)
    bon = curves[curves["rule"] == "bon_sum"]
    rows = [
        {
            "task": cell.name,
            "rule": "greedy",
            "num_samples": 1,
            "accuracy": float(g_correct.mean()),
            "sum_logprob": float(greedy.base_logprob.mean()),
            "num_tokens": float(greedy.lengths.mean()),
        }
    ]
    for r in bon.itertuples():
        rows.append(
            {
                "task": cell.name,
                "rule": "bon_sum",
                "num_samples": int(r.num_samples),
                "accuracy": float(r.accuracy),
                "sum_logprob": float(r.sum_logprob),
                "num_tokens": float(r.num_tokens),
            }
        )
        rows.append(
            {
                **rows[-1],
                "rule": "pass_at_n",
                "accuracy": float(r.pass_at_n),
                "sum_logprob": math.nan,
            }
        )
    return pd.DataFrame(rows)


def corpus_unit(cfg: Config, model: Model, cell: Cell, seed: int) -> pd.DataFrame:
    """The SFT corpora of one (task, seed): the BoN winner among the first ``N`` of ``max(ns)``
    ``T = 1`` draws of every training prompt, for each ``N`` in ``ns``.

    ``response_ids`` is the JSON list of the winner's token ids (EOS included when finished);
    ``decode_tokens`` the total length of the ``N`` draws (the generation cost of the pair).
    """
    keys = _keys(cfg, cfg.cell_names().index(cell.name), seed)
    n_max = max(cfg.ns)
    d = draw(
        model,
        cell.train_ids,
        key=keys["corpus"],
        num_samples=n_max,
        max_new_tokens=cfg.max_new_tokens,
        sample_rows=cfg.sample_rows,
    )
    correct, _ = grade_draws(model, cell, d, cell.train_examples)
    rows = []
    for n in sorted(cfg.ns):
        pick = bon_pick(d.base_logprob[:, :n], key=jax.random.fold_in(keys["pick"], n))
        for p, j in enumerate(pick.tolist()):
            length = int(d.lengths[p, j])
            rows.append(
                {
                    "task": cell.name,
                    "seed": seed,
                    "N": n,
                    "prompt_id": p,
                    "sample": j,
                    "sum_logprob": float(d.base_logprob[p, j]),
                    "max_sum_logprob": float(d.base_logprob[p, :n].max()),
                    "mean_draw_logprob": float(d.base_logprob[p, :n].mean()),
                    "num_tokens": length,
                    "correct": int(correct[p, j]),
                    "draw_accuracy": float(correct[p, :n].mean()),
                    "decode_tokens": int(d.lengths[p, :n].sum()),
                    "response_ids": json.dumps(d.tokens[p, j, :length].tolist()),
                }
            )
    return pd.DataFrame(rows)


def pack_corpus(
    prompt_ids: list[list[int]], response_ids: list[list[int]], *, pad_id: int, seq_len: int
) -> T.Batch:
    """Right-padded ``[B, seq_len]`` SFT rows ``prompt + response``, loss on the response only.

    Same layout as :func:`sharpen.lm.train.encode_pairs`, from token ids (a sampled response
    may hold ids that do not survive a decode / encode round trip). A fixed ``seq_len`` for
    every corpus keeps one compiled train step per method.
    """
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
    if max(lengths) > seq_len:
        raise ValueError(f"seq_len={seq_len} is below the longest pair ({max(lengths)} tokens)")
    b = len(prompt_ids)
    tokens = np.full((b, seq_len), pad_id, np.int32)
    key_mask = np.zeros((b, seq_len), bool)
    loss_mask = np.zeros((b, seq_len), bool)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        tokens[i, : len(p) + len(r)] = p + r
        key_mask[i, : len(p) + len(r)] = True
        loss_mask[i, len(p) : len(p) + len(r)] = True
    return T.Batch(tokens, key_mask, loss_mask)


_merge = jax.jit(T.lora_merge, static_argnames=("alpha",))


def mode_unit(cfg: Config, model: Model, cell: Cell) -> pd.DataFrame:
    """The base model's exact sequence mode ``y*`` on the first ``mode_prompts`` eval prompts.

    Certified best-first search over responses of at most ``max_new_tokens`` tokens
    (:func:`lm_modes.certified_modes`); one row per prompt: ``prompt_id``, ``exact`` (0 when the
    budget ran out: such prompts are left out of the mode metrics), ``response_ids`` (JSON, EOS
    included), ``mode_logprob`` and ``correct``.
    """
    return lm_modes.certified_modes(
        model.params,
        cell.eval_ids[: cfg.mode_prompts],
        cfg=model.lm_cfg,
        tokenizer=model.tokenizer,
        max_new_tokens=cfg.max_new_tokens,
        budget=cfg.mode_budget,
        task=cell.name,
        grade=lambda text, p: cell.task.grade(text, cell.eval_examples[p]),
    )


def evaluate(
    cfg: Config,
    base: Model,
    tuned: Model,
    cell: Cell,
    key: jax.Array,
    modes: pd.DataFrame | None = None,
) -> dict:
    """Greedy and ``T = 1`` metrics of ``tuned`` on the eval prompts (log-probs under ``base``),
    and its mean probability ``pi(y*|x)`` of the base model's certified modes ``modes``."""
    kw = {"max_new_tokens": cfg.max_new_tokens, "sample_rows": cfg.sample_rows}
    greedy = draw(tuned, cell.eval_ids, key=None, num_samples=1, greedy=True, **kw)
    g_correct, _ = grade_draws(tuned, cell, greedy, cell.eval_examples)
    g_base, _ = score_draws(base, cell.eval_ids, greedy, sample_rows=cfg.sample_rows)
    k = cfg.eval_samples
    d = draw(tuned, cell.eval_ids, key=key, num_samples=k, **kw)
    correct, parsed = grade_draws(tuned, cell, d, cell.eval_examples)
    s_base, _ = score_draws(base, cell.eval_ids, d, sample_rows=cfg.sample_rows)
    _, s_ent = score_draws(tuned, cell.eval_ids, d, sample_rows=cfg.sample_rows)
    out = {
        "greedy_accuracy": float(g_correct.mean()),
        "greedy_base_logprob": float(g_base.mean()),
        "accuracy": float(correct.mean()),
        "base_logprob": float(s_base.mean()),
        "entropy": float(s_ent.mean()),
        "num_tokens": float(d.lengths.mean()),
        "parse_rate": float(parsed.mean()),
    }
    num_correct = correct.sum(axis=1)
    for kk in PASS_KS:
        if kk <= k:
            out[f"pass@{kk}"] = float(selection.pass_at_k(num_correct, k, kk).mean())
    lp = np.zeros((0,))
    if modes is not None:
        lp = lm_modes.mode_logprobs(
            tuned.params,
            cell.eval_ids,
            modes,
            cfg=tuned.lm_cfg,
            pad_id=tuned.tokenizer.pad_id,
            max_new_tokens=cfg.max_new_tokens,
            rows=cfg.sample_rows,
        )
    return {**out, **lm_modes.mode_mass(lp)}


def sft_unit(
    cfg: Config,
    base: Model,
    cell: Cell,
    corpus: pd.DataFrame,
    n: int,
    seed: int,
    method: str,
    modes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fine-tune on the corpus of ``(task, seed, N)`` with ``method``; one row per eval step."""
    keys = _keys(cfg, cfg.cell_names().index(cell.name), seed)
    rows_df = corpus[(corpus["N"] == n)].sort_values("prompt_id")
    responses = [json.loads(s) for s in rows_df["response_ids"]]
    data = pack_corpus(
        [cell.train_ids[p] for p in rows_df["prompt_id"]],
        responses,
        pad_id=base.tokenizer.pad_id,
        seq_len=bucket_length(max(map(len, cell.train_ids)) + cfg.max_new_tokens, 8),
    )
    lr = cfg.lora_lr if method == "lora" else cfg.full_lr
    opt = T.make_optimizer(
        lr,
        warmup=0,
        total_steps=cfg.total_steps,
        weight_decay=cfg.weight_decay,
        clip_norm=cfg.clip_norm,
        schedule="linear",
    )
    if method == "lora":
        adapters = T.lora_init(base.params, rank=cfg.lora_rank, key=keys["lora"])
        state = T.init_lora_state(base.params, adapters, opt)
        step_fn = functools.partial(
            T.lora_train_step, cfg=base.lm_cfg, optimizer=opt, alpha=cfg.lora_alpha
        )

        def params_of(s):
            return _merge(s.base, s.adapters, alpha=cfg.lora_alpha)
    else:
        state = T.init_train_state(base.params, opt)
        step_fn = functools.partial(T.train_step, cfg=base.lm_cfg, optimizer=opt)

        def params_of(s):
            return s.params

    state = jax.device_put(state, jax.devices()[0])
    per_epoch = cfg.num_train_prompts // cfg.batch_size
    evals = set(cfg.eval_steps())
    rows, window = [], []
    for step in range(cfg.total_steps + 1):
        if step in evals:
            tuned = Model(base.lm_cfg, params_of(state), base.tokenizer)
            metrics = evaluate(
                cfg, base, tuned, cell, jax.random.fold_in(keys["eval"], step), modes
            )
            loss = float(np.mean(window)) if window else math.nan
            rows.append(
                {
                    "task": cell.name,
                    "method": method,
                    "N": n,
                    "seed": seed,
                    "step": step,
                    "epoch": step / per_epoch,
                    "train_loss": loss,
                    **metrics,
                }
            )
            window = []
        if step == cfg.total_steps:
            break
        idx = T.batch_indices(
            keys["data"], step, batch_size=cfg.batch_size, num_examples=len(responses)
        )
        batch = T.Batch(*(jnp.asarray(x) for x in T.take(data, idx)))
        state, m = step_fn(state, batch)
        window.append(float(m["loss"]))
    return pd.DataFrame(rows)

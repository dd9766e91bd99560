"""LM SFT-Sharpening: the base model, its eval / training prompts, and sampling and scoring.

Used by ``experiments/lm_sft.py`` (:func:`load_base` in its ``run``) and by the cached units
of ``experiments/lm_sft_units.py``; see the ``lm_sft`` module docstring for the protocol.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

from experiments import lm_pretrain as lmp
from experiments import lm_real
from sharpen import selection
from sharpen.lm.batching import bucket_length, left_pad
from sharpen.lm.chunked import chunk_ranges, generate_chunked
from sharpen.lm.config import LMConfig
from sharpen.lm.scorer import score
from sharpen.tasks import Task

if TYPE_CHECKING:
    from experiments.lm_sft import Config

TRAIN_SEED_OFFSET = lm_real.TRAIN_SEED_OFFSET  # training prompts: examples(seed = seed + this)


# ----------------------------------------------------------------------------- base model, prompts


class Model(NamedTuple):
    """A char-level model: config, (merged) params and tokenizer."""

    lm_cfg: LMConfig
    params: Any
    tokenizer: Any


class Cell(NamedTuple):
    """One task: its eval / training examples and their prompt token ids (BOS first)."""

    name: str
    task: Task
    eval_examples: list
    train_examples: list
    eval_ids: list[list[int]]
    train_ids: list[list[int]]


def resolve_pretrain(cfg: Config, out_dir: Path) -> Path:
    """The ``lm_pretrain`` run folder holding ``cfg.base_model`` trained on ``cfg.tasks``
    (:func:`lmp.find_or_train`)."""
    return lmp.find_or_train(
        (cfg.base_model,),
        cfg.tasks,
        out_dir,
        pretrain_dir=cfg.pretrain_dir,
        preset=cfg.pretrain_preset,
    )


def build_cells(cfg: Config, pre: lmp.Config, tokenizer) -> list[Cell]:
    """Eval prompts (held out of pretraining) and disjoint training prompts of every task."""
    per_task = pre.num_eval_docs // len(pre.tasks)
    if cfg.num_eval_prompts > per_task:
        raise ValueError(
            f"num_eval_prompts={cfg.num_eval_prompts} exceeds the {per_task} held-out prompts "
            "per task of the pretraining run"
        )
    head = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    cells = []
    for name in cfg.tasks:
        task = lmp.build_task(pre, name)
        eval_examples = task.examples(cfg.num_eval_prompts, seed=pre.seed + 1)
        held = {e.prompt for e in eval_examples}
        pool = task.examples(4 * cfg.num_train_prompts, seed=pre.seed + TRAIN_SEED_OFFSET)
        train, seen = [], set()
        for e in pool:
            if e.prompt not in held and e.prompt not in seen:
                seen.add(e.prompt)
                train.append(e)
        if len(train) < cfg.num_train_prompts:
            raise ValueError(
                f"task {name!r} has only {len(train)} distinct training prompts outside the eval "
                f"set, fewer than num_train_prompts={cfg.num_train_prompts}"
            )
        train = train[: cfg.num_train_prompts]

        def ids(examples, task=task):
            return [head + list(tokenizer.encode(task.format_prompt(e))) for e in examples]

        cells.append(Cell(name, task, eval_examples, train, ids(eval_examples), ids(train)))
    return cells


def build_real_cells(cfg: Config, model: lm_real.Model) -> list[Cell]:
    """Eval and disjoint training prompts of a real model (1-shot prompts of :mod:`lm_real`).

    Eval: the first ``num_eval_prompts`` examples of every task (gym draw ``seed``: the
    ``lm_inference`` prompts; data file: the records after the demonstration). Training:
    ``num_train_prompts`` distinct examples drawn with ``seed + TRAIN_SEED_OFFSET`` past the eval
    records, every eval question excluded.
    """
    splits = lm_real.real_splits(
        model,
        gym_tasks=cfg.gym_tasks,
        data_file=cfg.data_file,
        data_format=cfg.data_format,
        num_eval=cfg.num_eval_prompts,
        num_train=cfg.num_train_prompts,
        seed=cfg.seed,
    )
    enc = functools.partial(lm_real.encode_prompts, model.tokenizer)
    return [
        Cell(ev.task_name, ev.task, ev.examples, tr.examples, enc(ev.prompts), enc(tr.prompts))
        for ev, tr in splits
    ]


def load_base(cfg: Config, out_dir: Path) -> tuple[Model, list[Cell]]:
    """The base model (char model of ``lm_pretrain``, SmolLM2 or ``model_dir``) and its cells."""
    if cfg.real:
        real = lm_real.load_real_model(smollm2=cfg.smollm2, model_dir=cfg.model_dir)
        lm_cfg, params, tok = real.lm_cfg, real.params, real.tokenizer
        cells = build_real_cells(cfg, real)
    else:
        pre_dir = resolve_pretrain(cfg, out_dir)
        lm_cfg, params, tok = lmp.load_pretrained(pre_dir, cfg.base_model)
        cells = build_cells(cfg, lmp.stored_config(pre_dir), tok)
    longest = max(len(ids) for c in cells for ids in (*c.eval_ids, *c.train_ids))
    if lm_cfg.max_len < longest + cfg.max_new_tokens and lm_cfg.arch == "gpt2":
        raise ValueError(
            f"max_new_tokens={cfg.max_new_tokens} plus the longest prompt ({longest} tokens) "
            f"exceeds the model's max_len={lm_cfg.max_len}"
        )
    return Model(lm_cfg, jax.device_put(params, jax.devices()[0]), tok), cells


# ----------------------------------------------------------------------------- sampling, scoring


class Draws(NamedTuple):
    """``[B, N, M]`` tokens, ``[B, N]`` lengths (EOS counted), ``log pi_base`` sums, finished."""

    tokens: np.ndarray
    lengths: np.ndarray
    base_logprob: np.ndarray
    finished: np.ndarray


def draw(
    model: Model,
    prompt_ids: list[list[int]],
    *,
    key: jax.Array | None,
    num_samples: int,
    max_new_tokens: int,
    sample_rows: int,
    greedy: bool = False,
) -> Draws:
    """``num_samples`` responses (``T = 1`` or greedy) per prompt, in fixed-shape chunks.

    The prompts are left-padded to the longest one and drawn by
    :func:`sharpen.lm.chunked.generate_chunked`: chunk ``c`` holds ``min(max(1, sample_rows //
    num_samples), #prompts)`` prompts rounded up to a multiple of the device count (the last one
    padded by repeating its final prompt), split over the ``"data"`` axis of
    :func:`sharpen.lm.sharding.make_mesh` (parameters replicated), and uses ``fold_in(key, c)``;
    its ``base_logprob`` is ``log pi(y|x)`` of ``model`` at ``T = 1`` (the sampler's base
    log-probs).
    """
    tok = model.tokenizer
    batch = left_pad(prompt_ids, pad_id=tok.pad_id, bucket=16)
    out = generate_chunked(
        model.params,
        batch.tokens,
        batch.mask,
        cfg=model.lm_cfg,
        key=key,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        rows=sample_rows,
        greedy=greedy,
    )
    base_logprob = np.asarray(out.base_logprobs, np.float64).sum(axis=-1)
    return Draws(out.tokens, out.lengths, base_logprob, out.finished)


def score_draws(
    model: Model, prompt_ids: list[list[int]], draws: Draws, *, sample_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[B, N]`` ``log pi(y|x)`` and mean per-token entropy of ``draws`` under ``model``."""
    n = draws.tokens.shape[1]
    plen = bucket_length(max(map(len, prompt_ids)), 16)
    per_call = min(max(1, sample_rows // n), len(prompt_ids))
    logp, ent = [], []
    for idx in chunk_ranges(len(prompt_ids), per_call):
        pad = per_call - len(idx)
        part = [prompt_ids[i] for i in idx] + [prompt_ids[idx[-1]]] * pad
        resp = draws.tokens[list(idx) + [idx[-1]] * pad]
        lens = draws.lengths[list(idx) + [idx[-1]] * pad]
        batch = left_pad(part, pad_id=model.tokenizer.pad_id, bucket=16, min_length=plen)
        got = score(model.params, batch.tokens, batch.mask, resp, lens, cfg=model.lm_cfg)
        logp.append(np.asarray(got.sum_logprob, np.float64)[: len(idx)])
        ent.append(np.asarray(got.entropy, np.float64)[: len(idx)])
    return np.concatenate(logp), np.concatenate(ent)


def grade_draws(model: Model, cell: Cell, draws: Draws, examples) -> tuple[np.ndarray, np.ndarray]:
    """``[B, N]`` correct and parsed flags of every response."""
    b, n, _ = draws.tokens.shape
    correct, parsed = np.zeros((b, n), np.int64), np.zeros((b, n), np.int64)
    for p in range(b):
        for j in range(n):
            cut = int(draws.lengths[p, j]) - int(draws.finished[p, j])
            text = model.tokenizer.decode(draws.tokens[p, j, :cut].tolist())
            answer = cell.task.extract_answer(text)
            parsed[p, j] = answer is not None
            correct[p, j] = answer is not None and cell.task.check_answer(answer, examples[p])
    return correct, parsed


def bon_pick(base_logprob_BxN: np.ndarray, *, key: jax.Array) -> np.ndarray:
    """``[B]`` index of the BoN winner by ``log pi_base(y|x)`` (ties uniformly at random).

    .. math:: \\hat y(x) = y_{i^\\star},\\quad
              i^\\star \\sim \\mathrm{Unif}\\,\\arg\\max_{i \\le N} \\log\\pi_{\\mathrm{base}}(y_i|x)

    (Huang et al. 2025, Eq. 2 and §2.1; the SFT-Sharpening corpus of App. A.3.)
    """
    reward = np.asarray(base_logprob_BxN)
    if reward.ndim != 2 or reward.shape[1] < 1:
        raise ValueError(f"base_logprob_BxN must have shape [B, N] with N >= 1, got {reward.shape}")
    return np.asarray(selection.select_bon(reward, key=key))

"""LM inference-time grid: the cells (prompts of one task for one base model) and the per-unit
sampling, grading and exact-mode search.

Each ``*_unit`` returns one ``units/`` CSV of ``experiments/lm_inference.py``'s ``run``; see the
``lm_inference`` module docstring for the protocol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import jax
import numpy as np
import pandas as pd

from experiments import lm_modes, lm_real
from experiments import lm_pretrain as lmp
from experiments.lm_real import Model
from sharpen.lm.batching import bucket_length, left_pad
from sharpen.lm.chunked import chunk_ranges, generate_chunked
from sharpen.lm.scorer import score
from sharpen.tasks import Task

if TYPE_CHECKING:
    from experiments.lm_inference import Config

#: Prompt batches are left-padded to a multiple of this (tasks of similar length share programs).
PROMPT_BUCKET = 32


# ----------------------------------------------------------------------------- models and tasks


class Cell(NamedTuple):
    """One task of one model: prompts (text), examples, and the sampling sizes."""

    task_name: str
    task: Task
    examples: list
    prompts: list[str]
    num_samples: int
    max_new_tokens: int
    sample_rows: int
    score_rows: int


def real_cells(cfg: Config, model: Model) -> list[Cell]:
    """Cells of a real (SmolLM2 / HF) model: the gym tasks and the data file (:mod:`lm_real`)."""
    tasks = lm_real.real_tasks(
        model,
        gym_tasks=cfg.gym_tasks,
        data_file=cfg.data_file,
        data_format=cfg.data_format,
        num_prompts=cfg.hf_num_prompts,
        seed=cfg.seed,
    )
    return [
        Cell(
            t.task_name,
            t.task,
            t.examples,
            t.prompts,
            cfg.hf_num_samples,
            cfg.hf_max_new_tokens,
            cfg.hf_sample_rows,
            cfg.hf_score_rows,
        )
        for t in tasks
    ]


def char_cells(cfg: Config, pretrain: lmp.Config, tasks: Sequence[str]) -> list[Cell]:
    """Cells of a char model: held-out prompts of each pretraining task (``Q: ...\\n``)."""
    per_task = pretrain.num_eval_docs // len(pretrain.tasks)
    if cfg.num_prompts > per_task:
        raise ValueError(
            f"num_prompts={cfg.num_prompts} exceeds the {per_task} held-out prompts per task "
            "of the pretraining run (more would overlap its training corpus)"
        )
    cells = []
    for name in tasks:
        task = lmp.build_task(pretrain, name)
        examples = task.examples(cfg.num_prompts, seed=pretrain.seed + 1)
        cells.append(
            Cell(
                name,
                task,
                examples,
                [task.format_prompt(e) for e in examples],
                cfg.num_samples,
                cfg.max_new_tokens,
                cfg.sample_rows,
                cfg.score_rows,
            )
        )
    return cells


# ----------------------------------------------------------------------------- sampling


class Draws(NamedTuple):
    """Per-prompt responses: ``[B, N, M]`` tokens, ``[B, N]`` lengths (EOS counted), sums of
    ``log pi_base``, finished flags, and the base model's mean entropy / self-certainty."""

    tokens: np.ndarray
    lengths: np.ndarray
    base_logprob: np.ndarray
    finished: np.ndarray
    entropy: np.ndarray
    self_certainty: np.ndarray


def draw(
    model: Model, cell: Cell, *, key: jax.Array | None, num_samples: int, greedy: bool = False
) -> Draws:
    """Sample (or greedily decode) ``num_samples`` responses for every prompt of ``cell``.

    Prompts are left-padded to the task's longest prompt and drawn by
    :func:`sharpen.lm.chunked.generate_chunked`: chunks of ``min(max(1, sample_rows //
    num_samples), #prompts)`` prompts rounded up to a multiple of the device count (the last one
    padded by repeating its final prompt), so every chunk reuses one compiled program; chunk
    ``c`` uses ``fold_in(key, c)``, and its rows are split over the mesh's ``"data"`` axis.
    """
    tok = model.tokenizer
    batch = left_pad(
        lm_real.encode_prompts(model.tokenizer, cell.prompts),
        pad_id=tok.pad_id,
        bucket=PROMPT_BUCKET,
    )
    out = generate_chunked(
        model.params,
        batch.tokens,
        batch.mask,
        cfg=model.lm_cfg,
        key=key,
        num_samples=num_samples,
        max_new_tokens=cell.max_new_tokens,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        rows=cell.sample_rows,
        greedy=greedy,
        stats=True,
    )
    return Draws(
        out.tokens,
        out.lengths,
        np.asarray(out.base_logprobs, np.float64).sum(axis=-1),
        out.finished,
        np.asarray(out.entropy, np.float64),
        np.asarray(out.self_certainty, np.float64),
    )


def score_draws(model: Model, cell: Cell, draws: Draws) -> dict[str, np.ndarray]:
    """``[B, N]`` scorer outputs (sum/mean log-prob, entropy, self-certainty) in row chunks."""
    seqs = lm_real.encode_prompts(model.tokenizer, cell.prompts)
    plen = bucket_length(max(map(len, seqs)), PROMPT_BUCKET)
    n = draws.tokens.shape[1]
    per_call = min(max(1, cell.score_rows // n), len(seqs))
    fields = ("sum_logprob", "mean_logprob", "entropy", "self_certainty")
    out = {f: [] for f in fields}
    m = draws.tokens.shape[2]
    for idx in chunk_ranges(len(seqs), per_call):
        part = [seqs[i] for i in idx]
        resp = draws.tokens[list(idx)]
        lens = draws.lengths[list(idx)]
        pad = per_call - len(part)
        part += [part[-1]] * pad
        resp = np.concatenate([resp, np.repeat(resp[-1:], pad, axis=0)])
        lens = np.concatenate([lens, np.repeat(lens[-1:], pad, axis=0)])
        batch = left_pad(part, pad_id=model.tokenizer.pad_id, bucket=PROMPT_BUCKET, min_length=plen)
        got = score(model.params, batch.tokens, batch.mask, resp[..., :m], lens, cfg=model.lm_cfg)
        for f in fields:
            out[f].append(np.asarray(getattr(got, f), np.float64)[: len(idx)])
    return {f: np.concatenate(v) for f, v in out.items()}


def _decode(model: Model, tokens: np.ndarray, length: int, finished: bool) -> str:
    return model.tokenizer.decode(tokens[: length - int(finished)].tolist())


def _grade(cell: Cell, text: str, example) -> tuple[str, int, int]:
    answer = cell.task.extract_answer(text)
    if answer is None:
        return "", 0, 0
    return answer.strip(), 1, int(cell.task.check_answer(answer, example))


def samples_unit(cfg: Config, model: Model, cell: Cell, seed: int) -> pd.DataFrame:
    """``num_samples`` T=1 responses per prompt for one seed: rows of the samples contract."""
    key = jax.random.fold_in(jax.random.key(cfg.seed), seed)
    draws = draw(model, cell, key=key, num_samples=cell.num_samples)
    # The independent full-forward re-score is a check of the sampler (char models only: on a
    # 135M model it would cost more than the sampling itself).
    rescored = score_draws(model, cell, draws)["sum_logprob"] if cell.score_rows else None
    rows = []
    for p, example in enumerate(cell.examples):
        for j in range(cell.num_samples):
            length, done = int(draws.lengths[p, j]), bool(draws.finished[p, j])
            text = _decode(model, draws.tokens[p, j], length, done)
            answer, parsed, correct = _grade(cell, text, example)
            rows.append(
                {
                    "model": model.name,
                    "task": cell.task_name,
                    "seed": seed,
                    "prompt_id": p,
                    "sample": j,
                    "sum_logprob": float(draws.base_logprob[p, j]),
                    "num_tokens": length,
                    "mean_logprob": float(draws.base_logprob[p, j]) / max(length, 1),
                    "entropy": float(draws.entropy[p, j]),
                    "self_certainty": float(draws.self_certainty[p, j]),
                    "answer": answer,
                    "parsed": parsed,
                    "correct": correct,
                    "scorer_sum_logprob": math.nan if rescored is None else float(rescored[p, j]),
                    "finished": int(done),
                }
            )
    return pd.DataFrame(rows)


def greedy_unit(model: Model, cell: Cell) -> pd.DataFrame:
    """The greedy response of every prompt (one deterministic decode): the greedy contract."""
    draws = draw(model, cell, key=None, num_samples=1, greedy=True)
    rows = []
    for p, example in enumerate(cell.examples):
        length, done = int(draws.lengths[p, 0]), bool(draws.finished[p, 0])
        text = _decode(model, draws.tokens[p, 0], length, done)
        answer, parsed, correct = _grade(cell, text, example)
        rows.append(
            {
                "model": model.name,
                "task": cell.task_name,
                "prompt_id": p,
                "sum_logprob": float(draws.base_logprob[p, 0]),
                "num_tokens": length,
                "answer": answer,
                "parsed": parsed,
                "correct": correct,
                "text": text,
            }
        )
    return pd.DataFrame(rows)


def mode_unit(cfg: Config, model: Model, cell: Cell, greedy: pd.DataFrame) -> pd.DataFrame:
    """Exact sequence argmax ``y*`` (certified best-first search, :func:`lm_modes.search_modes`)
    on the first ``mode_prompts`` prompts, graded, and compared with the greedy response."""
    found = lm_modes.search_modes(
        model.params,
        lm_real.encode_prompts(model.tokenizer, cell.prompts)[: cfg.mode_prompts],
        cfg=model.lm_cfg,
        tokenizer=model.tokenizer,
        max_new_tokens=cell.max_new_tokens,
        budget=cfg.mode_budget,
    )
    rows = []
    for r in found.itertuples():
        p = r.prompt_id
        answer, parsed, correct = _grade(cell, r.text, cell.examples[p]) if r.found else ("", 0, 0)
        g = greedy[greedy["prompt_id"] == p].iloc[0]
        rows.append(
            {
                "model": model.name,
                "task": cell.task_name,
                "prompt_id": p,
                "exact": r.exact,
                "expansions": r.expansions,
                "mode_logprob": r.mode_logprob,
                "greedy_logprob": float(g["sum_logprob"]),
                "greedy_is_mode": int(bool(r.found) and str(g["text"]) == r.text),
                "num_tokens": r.num_tokens,
                "answer": answer,
                "parsed": parsed,
                "correct": correct,
            }
        )
    return pd.DataFrame(rows)

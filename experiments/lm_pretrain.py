"""LM pretraining — character-level base models trained from scratch on a task corpus (EXPERIMENTS §10.2).

For each model size, a Llama-family (by default) decoder is trained with AdamW (linear warmup,
cosine decay, global-norm clip) on next-token cross-entropy over *every* token of documents
``Q: <question>\\n<response>`` drawn by :func:`sharpen.tasks.corpus.generate_corpus`, whose
mixture knobs (``corpus`` = a :func:`~sharpen.tasks.corpus.corpus_preset` name) set the regime:
``default`` (``y*`` correct, greedy ≠ ``y*``), ``no_branch`` (greedy = ``y*``), ``length_bias``,
``weak``, ``clean``. Held-out documents (prompts excluded from training) give the eval loss;
held-out prompts are decoded greedily and at ``T = 1`` with :mod:`sharpen.lm.sampler` and graded
with the task's grader.

Run folder (``<out>/``)::

    config.json                 resolved Config
    tokenizer.json              the CharTokenizer (task alphabet)
    ckpt/<size>/<step>/         Orbax CheckpointManager (TrainState + loss log), last 2 kept
    models/<size>/params/       final float32 params (Orbax StandardCheckpointer)
    models/<size>/model.json    {"lm_config": LMConfig.to_dict(), "step", "param_count"}
    models/<size>@<step>/       the same at each of ``save_steps`` (intermediate budgets)
    units/curve_size=<s>.csv    loss curve of one size (finished units; resume skips them)
    units/acc_size=<s>.csv      greedy / T=1 accuracy of one size
    metrics.csv                 all loss curves: size, param_count, step, tokens (padded token
                                positions seen = step x batch_size x row length), lr (after the
                                step), train_loss (mean over the log window), eval_loss
    accuracy.csv                size, task, decoding, accuracy, parse_rate, ideal_accuracy
    summary.csv                 the checks below
    timing.json                 wall time, compile time, tokens/s per size (not deterministic)

``load_pretrained(run_dir, size)`` returns ``(LMConfig, params, tokenizer)``.

Resume: the run is deterministic in ``seed``; batch ``t`` is a slice of the epoch shuffle
``permutation(fold_in(data_key, epoch))``, so a run killed at any point and restarted resumes
from its last checkpoint and writes byte-identical outputs.

Checks (``summary.csv``): final train loss (mean of the last logged window) below
``train_loss_max``; eval loss minus train loss within ``eval_gap_max`` (no overfitting);
``T = 1`` accuracy vs the corpus's exact sample accuracy (info); greedy accuracy at least
``min_greedy_accuracy`` when the ideal model's greedy decode is correct (``no_branch`` /
``clean``), else info (under ``default`` the ideal greedy decode is wrong by design).

Command: ``sharpen run lm_pretrain [--preset smoke|quick|full]``; feeds
``figures/fig_pretrain_loss.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pandas as pd
from tqdm.auto import tqdm

from experiments import io
from experiments.registry import ExperimentSpec, register
from sharpen.lm import LMConfig, init_params, param_count
from sharpen.lm import train as T
from sharpen.lm.tokenizer import CharTokenizer
from sharpen.tasks import corpus as corpus_lib
from sharpen.tasks import get_task, task_alphabet

NAME = "lm_pretrain"

#: Model shapes by name: (d_model, n_layers, n_heads, d_ff). Params with the 99-char vocab.
SIZES = {
    "micro": (32, 2, 2, 64),  # ~0.02M, smoke tests only
    "tiny": (64, 4, 4, 192),  # ~0.22M
    "small": (128, 4, 4, 512),  # ~1.06M
    "base": (256, 6, 8, 704),  # ~4.85M
}
#: Task variants a base model can be trained on (``Config.tasks``), built by :func:`build_task`.
#: ``arithmetic_easy`` / ``arithmetic_hard`` have one operation less / more than ``arithmetic``
#: (``num_ops``; a difficulty ladder);
#: ``prontoqa_short`` (1 hop, 1 distractor, <= 135 chars) keeps documents short enough for
#: a char model trained next to arithmetic.
#: ``countdown``: three numbers in 1-9, reach a target in 10-100 (:class:`CountdownTask`);
#: ``game24``: four numbers in 1-13, reach 24 (the paper's Game of 24).
TASK_VARIANTS = (
    "arithmetic_easy",
    "arithmetic",
    "arithmetic_hard",
    "prontoqa",
    "prontoqa_short",
    "game24",
    "countdown",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Pretraining of character-level base models on a task corpus (EXPERIMENTS §10.2).

    ``tasks`` are names from :data:`TASK_VARIANTS`; with several, one model is trained on the
    mixture (``num_train_docs`` / ``num_eval_docs`` split evenly) and evaluated per task.
    ``num_ops``, ``max_value`` and ``max_operand`` configure the arithmetic tasks
    (``arithmetic_hard`` uses ``num_ops + 1``). ``save_steps`` also saves the params at those
    steps as separate base models ``<size>@<step>`` (intermediate training budgets).
    ``ckpt_every`` must be a multiple of ``log_every`` (a checkpoint closes a logging window),
    and ``eval_every`` a multiple of ``log_every``. ``pack`` packs whole training documents
    (shuffled) into rows of ``max_len`` tokens (:func:`pack_documents`), so ``batch_size``
    counts rows of several documents; without it every row is one padded document.
    """

    sizes: tuple[str, ...] = ("tiny",)
    arch: str = "llama"
    tasks: tuple[str, ...] = ("arithmetic",)
    num_ops: int = 2
    max_value: int = 50
    max_operand: int = 10
    corpus: str = "no_branch"
    num_train_docs: int = 20000
    num_eval_docs: int = 512
    max_len: int = 128
    dtype: str = "float32"
    batch_size: int = 32
    steps: int = 1500
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    log_every: int = 25
    eval_every: int = 100
    ckpt_every: int = 250
    eval_prompts: int = 128
    max_new_tokens: int = 64
    min_greedy_accuracy: float = 0.05
    train_loss_max: float = 0.9
    eval_gap_max: float = 0.1
    save_steps: tuple[int, ...] = ()
    pack: bool = False
    seed: int = 0

    def __post_init__(self):
        if not self.sizes or any(s not in SIZES for s in self.sizes):
            raise ValueError(
                f"sizes must be non-empty names from {sorted(SIZES)}, got {self.sizes}"
            )
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"sizes must be distinct, got {self.sizes}")
        if self.arch not in ("llama", "gpt2"):
            raise ValueError(f"arch must be 'llama' or 'gpt2', got {self.arch!r}")
        if not self.tasks or any(t not in TASK_VARIANTS for t in self.tasks):
            raise ValueError(
                f"tasks must be non-empty names from {TASK_VARIANTS}, got {self.tasks}"
            )
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct, got {self.tasks}")
        if any(not 1 <= s < self.steps for s in self.save_steps):
            raise ValueError(f"save_steps must lie in [1, steps), got {self.save_steps}")
        corpus_lib.corpus_preset(self.corpus)  # raises naming the bad preset
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        for field in ("num_train_docs", "num_eval_docs", "batch_size", "steps", "log_every"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.batch_size > self.num_train_docs:
            raise ValueError(f"batch_size must be <= num_train_docs, got {self.batch_size}")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"warmup must be in [0, steps), got {self.warmup}")
        for field in ("eval_every", "ckpt_every"):
            value = getattr(self, field)
            if value < 1 or value % self.log_every:
                raise ValueError(f"{field} must be a positive multiple of log_every, got {value}")
        if self.steps % self.log_every:
            raise ValueError(f"steps must be a multiple of log_every, got {self.steps}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be positive, got {self.lr}")
        per_task = self.num_eval_docs // max(len(self.tasks), 1)
        if not 1 <= self.eval_prompts <= per_task:
            raise ValueError(
                f"eval_prompts must be in [1, num_eval_docs / len(tasks) = {per_task}], "
                f"got {self.eval_prompts}"
            )
        if self.max_new_tokens < 1 or self.max_len < 16:
            raise ValueError(f"max_new_tokens must be >= 1 and max_len >= 16, got {self.max_len}")


def smoke() -> Config:
    """CI-sized: a ~0.02M model on packed 2- and 3-step arithmetic, 40 steps (params also kept at
    step 20 as ``micro@20``), seconds on 2 cores (numbers meaningless). The base model of the
    LM experiments' smoke presets.

    ``sharpen run lm_pretrain --preset smoke``; feeds ``figures/fig_pretrain_loss.py``.
    """
    return Config(
        sizes=("micro",),
        tasks=("arithmetic", "arithmetic_hard"),
        pack=True,
        save_steps=(20,),
        num_train_docs=256,
        num_eval_docs=32,
        batch_size=16,
        steps=40,
        warmup=5,
        log_every=5,
        eval_every=10,
        ckpt_every=10,
        eval_prompts=8,
        max_new_tokens=40,
        min_greedy_accuracy=0.0,
        train_loss_max=3.5,
        eval_gap_max=1.0,
    )


def quick() -> Config:
    """``sharpen run lm_pretrain``: one ~0.22M-param model ("tiny") on the mixture of 1-, 2- and
    3-step arithmetic (``arithmetic_easy`` / ``arithmetic`` / ``arithmetic_hard``; values up to
    20, ``+``/``-`` operands up to 9) in the ``default`` corpus regime (``y*`` = the correct
    chain; the ideal model's char-level greedy decode ends in a wrong answer), documents packed
    into 192-token rows, 1200 steps of 8 rows (about 4.2 documents per row). The params after
    400 and 800 steps are kept as the extra base models ``tiny@400`` / ``tiny@800`` (the
    training-budget rows of ``lm_inference``). The base model of the ``lm_inference`` /
    ``lm_sft`` / ``lm_rlhf`` quick presets; runtime in paper_repro.md and the run's
    ``timing.json``. (Short ProntoQA, tried in its place, stayed at chance level for this model
    and budget: AUROC 0.48-0.55.)

    Feeds ``figures/fig_pretrain_loss.py``.
    """
    return Config(
        tasks=("arithmetic_easy", "arithmetic", "arithmetic_hard"),
        max_value=20,
        max_operand=9,
        corpus="default",
        num_train_docs=30000,
        max_len=192,
        pack=True,
        batch_size=8,
        steps=1200,
        save_steps=(400, 800),
    )


def full() -> Config:
    """``sharpen run lm_pretrain --preset full``: tiny / small / base (0.22M / 1.06M / 4.85M params)
    on the ``default`` regime (3- and 4-step arithmetic and short ProntoQA; ``y*`` correct,
    greedy ≠ ``y*``), 5000 steps of
    32 documents each (~11M token positions per model). Not timed yet; from the measured speeds
    (tiny ≈ 2 min per 1500 steps) expect roughly 10 / 40 / 120 minutes on 2 idle cores.

    Feeds ``figures/fig_pretrain_loss.py``.
    """
    return Config(
        sizes=("tiny", "small", "base"),
        tasks=("arithmetic", "arithmetic_hard", "prontoqa_short"),
        num_ops=3,
        max_value=99,
        max_operand=20,
        corpus="default",
        num_train_docs=100000,
        num_eval_docs=1024,
        batch_size=32,
        steps=5000,
        lr=2e-3,
        warmup=200,
        log_every=50,
        eval_every=250,
        ckpt_every=500,
        eval_prompts=256,
        max_new_tokens=96,
        train_loss_max=0.8,
    )


def countdown() -> Config:
    """``sharpen run lm_pretrain --preset countdown``: the base model of our Fig. 5 (the paper's
    single Game-of-24 model): the quick preset's tiny model on the ``countdown`` task only (three
    numbers in 1-9, a reachable target in 10-100, ``default`` regime: the correct chain is
    ``y*``, the failed attempts of :meth:`CountdownTask.corrupted_solutions` share the rest).
    About 110 s on 2 cores. (Game of 24 proper, ``game24``, has too few distinct prompts for a
    model trained from scratch: with three numbers it memorised them, held-out accuracy 0.)
    """
    return dataclasses.replace(quick(), tasks=("countdown",), save_steps=())


def smoke_countdown() -> Config:
    """CI-sized :func:`countdown`: the smoke preset's micro model on ``countdown``."""
    return dataclasses.replace(smoke(), tasks=("countdown",), save_steps=())


PRESETS = {
    "smoke": smoke,
    "quick": quick,
    "full": full,
    "countdown": countdown,
    "smoke_countdown": smoke_countdown,
}


# ----------------------------------------------------------------------------- building blocks


def build_task(cfg: Config, name: str | None = None):
    """The task object of variant ``name`` (default ``cfg.tasks[0]``), arithmetic knobs applied."""
    name = cfg.tasks[0] if name is None else name
    arith = {"max_value": cfg.max_value, "max_operand": cfg.max_operand}
    if name == "arithmetic":
        return get_task("arithmetic", num_ops=cfg.num_ops, **arith)
    if name == "arithmetic_hard":
        return get_task("arithmetic", num_ops=cfg.num_ops + 1, **arith)
    if name == "arithmetic_easy":
        return get_task("arithmetic", num_ops=max(cfg.num_ops - 1, 1), **arith)
    if name == "prontoqa_short":
        return get_task("prontoqa", num_hops=1, num_distractors=1)
    if name == "prontoqa":
        return get_task("prontoqa")
    if name == "game24":
        return get_task("countdown", num_numbers=4, target=24)
    if name == "countdown":
        return get_task("countdown", num_numbers=3, target=None, max_number=9)
    raise ValueError(f"unknown task variant {name!r}; known: {TASK_VARIANTS}")


def model_config(cfg: Config, size: str, vocab_size: int) -> LMConfig:
    """The :class:`LMConfig` of model ``size``."""
    d, n_layers, n_heads, d_ff = SIZES[size]
    return LMConfig(
        cfg.arch,
        vocab_size=vocab_size,
        d_model=d,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ff=d_ff,
        max_len=cfg.max_len,
        dtype=cfg.dtype,
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


class Data:
    """Encoded train / eval documents and the held-out prompts (host numpy arrays).

    With several tasks the documents of all tasks are concatenated (batches are drawn from a
    shuffle of the whole set); ``eval_examples`` / ``ideal`` are per task.
    """

    def __init__(self, cfg: Config):
        ccfg = corpus_lib.corpus_preset(cfg.corpus)
        self.tasks = {name: build_task(cfg, name) for name in cfg.tasks}
        self.task = self.tasks[cfg.tasks[0]]
        self.tokenizer = CharTokenizer(task_alphabet())
        n_train = _split(cfg.num_train_docs, len(cfg.tasks))
        n_eval = _split(cfg.num_eval_docs, len(cfg.tasks))
        self.eval_examples_by_task, self.ideal_by_task = {}, {}
        train_docs, eval_docs = [], []
        for j, (name, task) in enumerate(self.tasks.items()):
            examples = task.examples(n_eval[j], seed=cfg.seed + 1)
            self.eval_examples_by_task[name] = examples
            eval_docs += corpus_lib.generate_corpus(task, ccfg, n_eval[j], seed=cfg.seed + 1)
            train_docs += corpus_lib.generate_corpus(
                task, ccfg, n_train[j], seed=cfg.seed, exclude={e.prompt for e in examples}
            )
            self.ideal_by_task[name] = [
                corpus_lib.ideal_summary(task, e, ccfg) for e in examples[: cfg.eval_prompts]
            ]
        self.eval_examples = self.eval_examples_by_task[cfg.tasks[0]]
        longest = max(len(d.text) for d in train_docs + eval_docs) + 2  # <bos>, <eos>
        self.seq_len = -(-longest // 8) * 8
        if self.seq_len > cfg.max_len:
            raise ValueError(f"max_len={cfg.max_len} is below the longest document ({longest})")
        pairs = lambda docs: [(d.prompt, d.response) for d in docs]  # noqa: E731
        self.train = T.encode_pairs(
            self.tokenizer, pairs(train_docs), seq_len=self.seq_len, loss_on="all"
        )
        if cfg.pack:
            order = np.random.default_rng(cfg.seed).permutation(len(train_docs))
            self.train = pack_documents(T.take(self.train, order), cfg.max_len)
        self.train_len = self.train.tokens.shape[1]
        self.eval = T.encode_pairs(
            self.tokenizer, pairs(eval_docs), seq_len=self.seq_len, loss_on="all"
        )
        self.ideal = self.ideal_by_task[cfg.tasks[0]]


def pack_documents(docs: T.Batch, width: int) -> T.Batch:
    """Pack one-document rows (``encode_pairs`` layout, left-aligned) into rows of ``width``.

    Documents, in order, are appended to the current row while they fit in ``width`` tokens, else a
    new row starts (no document is split, so every document keeps its ``<bos>`` and its loss
    targets; a row's unused tail stays padding). Attention is not reset between the documents
    of a row (plain causal packing as in GPT-2 pretraining): a later document may attend to
    earlier ones, while each row's first document sees no context, exactly as at inference.
    """
    tokens, key_mask, loss_mask = (np.asarray(a) for a in docs)
    lengths = key_mask.sum(axis=1)
    if width < lengths.max():
        raise ValueError(f"width={width} is below the longest document ({lengths.max()} tokens)")
    rows: list[list[int]] = [[]]
    used = 0
    for i, n in enumerate(lengths):
        if rows[-1] and used + n > width:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += n
    pad = tokens[~key_mask].flat[0] if (~key_mask).any() else 0
    out = T.Batch(
        np.full((len(rows), width), pad, tokens.dtype),
        np.zeros((len(rows), width), bool),
        np.zeros((len(rows), width), bool),
    )
    for r, members in enumerate(rows):
        at = 0
        for j in members:
            n = int(lengths[j])
            for dst, src in zip(out, (tokens, key_mask, loss_mask), strict=True):
                dst[r, at : at + n] = src[j, :n]
            at += n
    return out


def _jnp(batch: T.Batch) -> T.Batch:
    return T.Batch(*(jnp.asarray(x) for x in batch))


def _optimizer(cfg: Config):
    return T.make_optimizer(
        cfg.lr,
        warmup=cfg.warmup,
        total_steps=cfg.steps,
        weight_decay=cfg.weight_decay,
        clip_norm=cfg.clip_norm,
    )


def _lr_at(cfg: Config, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * step / max(cfg.warmup, 1)
    frac = (step - cfg.warmup) / (cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def _manager(path: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(path.resolve(), options=options)


class Interrupted(Exception):
    """Raised by :func:`train_model` at ``stop_after_steps`` (a simulated kill, for tests)."""


def train_model(
    cfg: Config, size: str, data: Data, out_dir: Path, *, stop_after_steps: int | None = None
) -> tuple[pd.DataFrame, dict]:
    """Train (or resume) one size; returns its loss-curve frame and timing info.

    Checkpoints every ``ckpt_every`` steps (TrainState + log rows so far). With
    ``stop_after_steps`` the loop stops *without saving* when that many steps are done, as if
    the process were killed there; a later call resumes from the last checkpoint.
    """
    root = jax.random.key(cfg.seed)
    init_key, data_key = jax.random.split(jax.random.fold_in(root, list(SIZES).index(size)))
    lm_cfg = model_config(cfg, size, data.tokenizer.vocab_size)
    opt = _optimizer(cfg)
    state = T.init_train_state(init_params(lm_cfg, key=init_key), opt)
    rows: list[dict] = []
    mgr = _manager(out_dir / "ckpt" / size)
    try:
        latest = mgr.latest_step()
        if latest is not None:
            restored = mgr.restore(
                latest,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(state), log=ocp.args.JsonRestore()
                ),
            )
            state, rows = restored["state"], list(restored["log"]["rows"])
        # Committed arrays everywhere: a fresh (uncommitted) state would compile its own program.
        state = jax.device_put(state, jax.devices()[0])
        start = int(state.step)
        eval_batch = _jnp(data.eval)
        n = len(data.train.tokens)
        window: list[jax.Array] = []
        tokens_per_step = cfg.batch_size * data.train_len
        t0, compile_s = time.perf_counter(), math.nan
        bar = tqdm(total=cfg.steps, initial=start, desc=f"{NAME} {size}", leave=False)
        for step in range(start, cfg.steps):
            if stop_after_steps is not None and step >= stop_after_steps:
                raise Interrupted(f"stopped at step {step}")
            idx = T.batch_indices(data_key, step, batch_size=cfg.batch_size, num_examples=n)
            state, metrics = T.train_step(
                state, _jnp(T.take(data.train, idx)), cfg=lm_cfg, optimizer=opt
            )
            window.append(metrics["loss"])
            if step == start:
                jax.block_until_ready(metrics["loss"])
                compile_s = time.perf_counter() - t0
                t0 = time.perf_counter()
            done = step + 1
            if done % cfg.log_every == 0:
                train_loss = float(np.mean(np.asarray(jnp.stack(window))))
                window = []
                eval_loss = math.nan
                if done % cfg.eval_every == 0 or done == cfg.steps:
                    eval_loss = float(T.eval_loss(state.params, eval_batch, cfg=lm_cfg))
                rows.append(
                    {
                        "step": done,
                        "tokens": done * tokens_per_step,
                        "lr": _lr_at(cfg, done),
                        "train_loss": train_loss,
                        "eval_loss": eval_loss,
                    }
                )
                bar.set_postfix(loss=f"{train_loss:.3f}")
            if done in cfg.save_steps:
                save_model(out_dir, f"{size}@{done}", lm_cfg, state.params, step=done)
            if done % cfg.ckpt_every == 0 or done == cfg.steps:
                mgr.save(
                    done,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state), log=ocp.args.JsonSave({"rows": rows})
                    ),
                )
            bar.update(1)
        bar.close()
        mgr.wait_until_finished()
    finally:
        mgr.close()
    trained = cfg.steps - start
    wall = time.perf_counter() - t0
    timing = {
        "size": size,
        "param_count": param_count(state.params),
        "steps_this_process": trained,
        "compile_s": compile_s,
        "tokens_per_s": (trained - 1) * tokens_per_step / wall if trained > 1 else math.nan,
    }
    save_model(out_dir, size, lm_cfg, state.params, step=int(state.step))
    frame = pd.DataFrame(rows)
    frame.insert(0, "size", size)
    frame.insert(1, "param_count", param_count(state.params))
    return frame, timing


def save_model(out_dir: Path, size: str, lm_cfg: LMConfig, params: dict, *, step: int) -> None:
    """Write ``models/<size>/params`` (Orbax) and ``models/<size>/model.json``."""
    folder = Path(out_dir) / "models" / size
    folder.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save((folder / "params").resolve(), params, force=True)
    io.write_json(
        folder / "model.json",
        {"lm_config": lm_cfg.to_dict(), "step": step, "param_count": param_count(params)},
    )


def load_pretrained(run_dir: str | Path, size: str | None = None):
    """``(LMConfig, params, CharTokenizer)`` of a finished ``lm_pretrain`` run.

    Args:
      run_dir: the run folder (``<out>/lm_pretrain``).
      size: which model; may be omitted when the run trained exactly one.

    Raises:
      FileNotFoundError: the run (or that size) has no saved model.
      ValueError: ``size`` omitted while several models exist.
    """
    run_dir = Path(run_dir)
    models = run_dir / "models"
    found = sorted(p.name for p in models.glob("*") if (p / "model.json").is_file())
    if size is None:
        if len(found) != 1:
            raise ValueError(f"size must be given: {run_dir} holds models {found}")
        size = found[0]
    folder = models / size
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(f"no model {size!r} in {run_dir} (found {found})")
    meta = io.read_json(folder / "model.json")
    lm_cfg = LMConfig.from_dict(meta["lm_config"])
    abstract = jax.eval_shape(functools.partial(init_params, lm_cfg), key=jax.random.key(0))
    with ocp.StandardCheckpointer() as ckptr:
        params = ckptr.restore((folder / "params").resolve(), abstract)
    return lm_cfg, params, CharTokenizer.load(run_dir / "tokenizer.json")


def stored_config(run_dir: str | Path) -> Config:
    """The :class:`Config` a finished run wrote to ``<run_dir>/config.json``."""
    stored = io.read_json(Path(run_dir) / "config.json")
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in fields}
    )


def holds(run_dir: str | Path, models: Sequence[str], tasks: Sequence[str]) -> bool:
    """Whether ``run_dir`` is a finished run with every model of ``models`` trained on ``tasks``."""
    run_dir = Path(run_dir)
    return (
        (run_dir / "config.json").is_file()
        and all((run_dir / "models" / m / "model.json").is_file() for m in models)
        and set(tasks) <= set(stored_config(run_dir).tasks)
    )


def find_or_train(
    models: Sequence[str],
    tasks: Sequence[str],
    out_dir: Path,
    *,
    pretrain_dir: str,
    preset: str,
    subdir: str = "pretrain",
) -> Path:
    """The ``lm_pretrain`` run folder the LM experiments take their char base models from.

    ``pretrain_dir`` when given (it must hold ``models`` trained on ``tasks``); else the sibling
    run ``<out_dir>/../lm_pretrain`` (``sharpen repro`` runs ``lm_pretrain`` first) or an
    earlier ``<out_dir>/<subdir>`` that holds them; else ``PRESETS[preset]`` is trained (or
    resumed) into ``<out_dir>/<subdir>``.

    Raises:
      FileNotFoundError: ``pretrain_dir`` lacks the models or tasks.
      ValueError: unknown ``preset``, or a preset that does not produce ``models`` on ``tasks``.
    """
    if preset not in PRESETS:
        raise ValueError(f"pretrain_preset must be one of {sorted(PRESETS)}, got {preset!r}")
    if pretrain_dir:
        if not holds(pretrain_dir, models, tasks):
            raise FileNotFoundError(
                f"pretrain_dir {pretrain_dir} holds no models {list(models)} trained on "
                f"{list(tasks)}"
            )
        return Path(pretrain_dir)
    for path in (Path(out_dir).parent / NAME, Path(out_dir) / subdir):
        if holds(path, models, tasks):
            return path
    path = Path(out_dir) / subdir
    run(PRESETS[preset](), path)
    if not holds(path, models, tasks):
        raise ValueError(
            f"lm_pretrain preset {preset!r} did not produce the models {list(models)} on "
            f"{list(tasks)} (see {path / 'models'})"
        )
    return path


def accuracy_unit(cfg: Config, size: str, data: Data, out_dir: Path) -> pd.DataFrame:
    """Greedy and ``T = 1`` accuracy (and parse rate) on the held-out prompts of every task."""
    lm_cfg, params, tok = load_pretrained(out_dir, size)
    key = jax.random.fold_in(jax.random.key(cfg.seed), 1000 + list(SIZES).index(size))
    frames = [
        _task_accuracy(cfg, size, name, data, (lm_cfg, params, tok), key) for name in cfg.tasks
    ]
    return pd.concat(frames, ignore_index=True)


def _task_accuracy(cfg: Config, size: str, name: str, data: Data, model, key) -> pd.DataFrame:
    from sharpen.lm import sampler

    lm_cfg, params, tok = model
    task = data.tasks[name]
    examples = data.eval_examples_by_task[name][: cfg.eval_prompts]
    prompts = [task.format_prompt(e) for e in examples]
    ideal_rows = data.ideal_by_task[name]
    ideal = {
        "greedy": float(np.mean([s["greedy_correct"] for s in ideal_rows])),
        "T=1": float(np.mean([s["sample_accuracy"] for s in ideal_rows])),
    }
    rows = []
    for mode, kwargs in (("greedy", {"greedy": True}), ("T=1", {"temperature": 1.0})):
        texts = sampler.sample_texts(
            params,
            lm_cfg,
            tok,
            prompts,
            key=key,
            num_samples=1,
            max_new_tokens=cfg.max_new_tokens,
            **kwargs,
        ).texts
        graded = [task.grade(t[0], e) for t, e in zip(texts, examples, strict=True)]
        parsed = [task.extract_answer(t[0]) is not None for t in texts]
        rows.append(
            {
                "size": size,
                "task": name,
                "decoding": mode,
                "prompts": len(examples),
                "accuracy": float(np.mean(graded)),
                "parse_rate": float(np.mean(parsed)),
                "ideal_accuracy": ideal[mode],
            }
        )
    return pd.DataFrame(rows)


_row = functools.partial(io.summary_row, NAME)


def summary_rows(cfg: Config, curves: pd.DataFrame, acc: pd.DataFrame) -> list[dict]:
    """The checks of the module docstring, per size."""
    rows = []
    for size in cfg.sizes:
        curve = curves[curves["size"] == size]
        final = curve.iloc[-1]
        rows.append(
            _row(
                f"{size} ({int(final.param_count)} params): final train loss (nats/char)",
                f"<= {cfg.train_loss_max:g}",
                float(final.train_loss),
                verdict="pass" if final.train_loss <= cfg.train_loss_max else "fail",
            )
        )
        gap = float(final.eval_loss - final.train_loss)
        rows.append(
            _row(
                f"{size}: eval loss - train loss on held-out documents "
                f"(eval {final.eval_loss:.4f})",
                f"<= {cfg.eval_gap_max:g}",
                gap,
                verdict="pass" if gap <= cfg.eval_gap_max else "fail",
            )
        )
        for name in cfg.tasks:
            rows += _accuracy_rows(cfg, size, name, acc)
    return rows


def _accuracy_rows(cfg: Config, size: str, name: str, acc: pd.DataFrame) -> list[dict]:
    rows = []
    sub = acc[(acc["size"] == size) & (acc["task"] == name)].set_index("decoding")
    label = size if len(cfg.tasks) == 1 else f"{size} / {name}"
    t1 = sub.loc["T=1"]
    rows.append(
        _row(
            f"{label}: T=1 accuracy on {int(t1.prompts)} held-out prompts "
            f"(parse rate {t1.parse_rate:.3f}; corpus sample accuracy {t1.ideal_accuracy:.3f})",
            f"≈ {t1.ideal_accuracy:.3f}",
            float(t1.accuracy),
            verdict="info",
        )
    )
    g = sub.loc["greedy"]
    ideal_right = g.ideal_accuracy >= 0.5
    rows.append(
        _row(
            f"{label}: greedy accuracy (parse rate {g.parse_rate:.3f}; "
            f"ideal-model greedy {g.ideal_accuracy:.3f})",
            f">= {cfg.min_greedy_accuracy:g}" if ideal_right else f"≈ {g.ideal_accuracy:.3f}",
            float(g.accuracy),
            verdict=("pass" if g.accuracy >= cfg.min_greedy_accuracy else "fail")
            if ideal_right
            else "info",
        )
    )
    return rows


def run(cfg: Config, out_dir: Path, *, stop_after_steps: int | None = None) -> None:
    """Write the run folder of the module docstring.

    ``stop_after_steps`` (tests) simulates a kill: training of the first unfinished size stops
    at that step without a final save and :class:`Interrupted` is raised.
    """
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    data = Data(cfg)
    data.tokenizer.save(out_dir / "tokenizer.json")
    timing = []
    curves, accs = [], []
    for size in cfg.sizes:

        def compute(size=size):
            frame, info = train_model(cfg, size, data, out_dir, stop_after_steps=stop_after_steps)
            timing.append(info)
            return frame

        curves.append(io.cached_unit(out_dir, f"curve_size={size}", compute))
        accs.append(
            io.cached_unit(
                out_dir,
                f"acc_size={size}",
                lambda size=size: accuracy_unit(cfg, size, data, out_dir),
            )
        )
    io.finalize_metrics(out_dir, curves)
    io.finalize_metrics(out_dir, accs, name="accuracy.csv")
    if timing:
        io.atomic_write_text(out_dir / "timing.json", json.dumps(timing, indent=2) + "\n")
    io.write_summary(
        out_dir,
        summary_rows(cfg, pd.concat(curves, ignore_index=True), pd.concat(accs, ignore_index=True)),
    )


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="LM pretraining — char-level base models on a task corpus (issue 5)",
        presets=PRESETS,
        run=run,
    )
)

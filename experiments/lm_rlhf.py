"""LM RLHF-Sharpening vs SFT-Sharpening at equal sample budget, with inference-time references.

Beyond the paper (EXPERIMENTS §10.5, issue 6 item 3). On a char-level base model of
``experiments/lm_pretrain.py`` and one of its tasks, each *training* method draws exactly
``budget`` = m responses in total and takes ``train_steps`` AdamW steps of ``batch_size``:

* ``sft``  — SFT-Sharpening (§2.1): ``m / bon_n`` prompts, ``bon_n`` base draws each, keep the
  best-of-N by ``log pi_base``, minimize the token NLL of the winners.
* ``eq8``  — offline RLHF-Sharpening, the squared loss Eq. 8 on ``m / 2`` pairs ``y, y' ~ pi_base``
  (:func:`sharpen.lm.rlhf_lm.eq8_lm_loss`).
* ``dpo``  — the logistic DPO loss on the same pairs, labelled by ``log pi_base``.
* ``xpo``  — online XPO (Algorithm 1, plus sign): ``xpo_rounds`` rounds of ``m / (2 rounds)``
  prompts, one on-policy and one base response each, ``train_steps / xpo_rounds`` steps per round
  on the growing dataset (:func:`sharpen.lm.rlhf_lm.xpo_round`).

*Inference-time* references on the base model: ``base`` (T = 1 and greedy), ``bon`` (best of
``bon_n`` base draws by ``log pi_base``), and ``power_a=<alpha>`` (suffix Metropolis–Hastings for
``pi_base^alpha``, ``power_steps`` moves from a base draw; :mod:`sharpen.lm.power_sampling`).

Metrics per (seed, method) on ``eval_prompts`` held-out prompts (never in the pretraining corpus),
``eval_samples`` outputs each: T = 1 accuracy (for inference methods: accuracy of the output),
greedy accuracy (trained policies and base), mean ``log pi_base`` of the outputs, mean per-token
entropy of the producing model along its outputs (the base's for inference methods), and decode
tokens spent per output at inference (BoN: all N draws; power: the initial draw plus every
proposed suffix). The evaluation key is shared by all methods (common random numbers).

Mass on the exact mode (char models, as ``lm_sft``): the base model's exact sequence mode ``y*``
of each of the first ``mode_prompts`` eval prompts is found once by certified best-first search
(:func:`lm_modes.certified_modes`, ``mode_budget`` expansions per prompt; prompts where it does
not finish are left out), and every row reports ``mode_mass``, the mean over certified prompts of
the method's probability of outputting ``y*``, and ``mode_logprob``, the mean of its log. Trained
policies and ``base``: ``pi(y*|x)`` scored under the policy. ``bon``: the exact
``1 - (1 - pi_base(y*|x))^bon_n``, since BoN by ``log pi_base`` outputs ``y*`` iff one of its
draws is ``y*`` (log-prob ties aside). ``power_a=*``: NaN (the law of a finite MH chain has no
closed form, and its limit ``pi_base^alpha / Z`` needs the unknown ``Z``). Real models: NaN, no
search (49k-token vocabularies: certified search cannot finish).

Run folder (``<out>/``)::

    config.json   resolved Config
    units/        modes.csv (the base model's certified modes; char models),
                  seed=<s>_method=<m>.csv (one row each; a killed run resumes from these)
    metrics.csv   seed, method, kind, train_responses, train_steps, final_loss, accuracy_t1,
                  accuracy_greedy, base_loglik, entropy, decode_tokens, num_tokens, acceptance,
                  mode_mass, mode_logprob
    modes.csv     task, prompt_id, exact, response_ids, mode_logprob, correct (char models)
    summary.csv   checks: every training method raises mean log pi_base of its T = 1 samples over
                  base sampling; power sampling's mean log pi_base rises with alpha (1 < 2 < 4);
                  info rows for accuracies, budgets and the mass on ``y*`` of every method vs the
                  base model's (checks are info rows unless ``strict``)

Base model: ``pretrain_dir``; else the sibling ``<out>/../lm_pretrain`` when it holds ``model``
trained on ``task``; else ``lm_pretrain``'s ``pretrain_preset`` is trained into ``<out>/pretrain``.
Real base models: ``smollm2`` (SmolLM2-135M-Instruct) or ``model_dir`` (a local Hugging Face
GPT-2 / Llama / Qwen2 checkpoint) on one task, ``gym_tasks=<name>`` or ``data_file`` (local
GSM8K / MATH JSONL, ``data_format``), with the 1-shot prompts of ``experiments/lm_real.py``; the
eval and training prompts are its disjoint held-out splits (:func:`lm_real.real_splits`).
Scale limit: every training method here is *full* fine-tuning (AdamW state for all weights) and
the evaluation scores all eval prompts in one call (logits ``[P x S, L, V]``), so a
49k-vocabulary 135M model fits 2 CPU cores only at toy sizes (a few eval prompts, m ~ 16);
the path is tested on a tiny random Llama checkpoint, and no SmolLM2 run is reported.

Devices: evaluation and SFT / pair corpus sampling shard over all devices
(:func:`sharpen.lm.sampler.generate` with a mesh). A sampling call of more than ``sample_rows``
rows (prompts x samples; e.g. BoN on the full preset, 256 x 64 x 4) is split into chunks of
:func:`sharpen.lm.chunked.generate_chunked` (chunk ``c``: key ``fold_in(key, c)``); calls that
fit run at once on the key itself. XPO's per-round sampling inside its training loop
(:func:`sharpen.lm.rlhf_lm.xpo_round`) and the power-sampling MH chains stay on one device.

Command: ``sharpen run lm_rlhf [--preset smoke|quick|full] [--set model_dir=DIR
data_file=FILE data_format=gsm8k]``; feeds ``figures/fig_lm_rlhf.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import io, lm_modes, lm_real
from experiments import lm_pretrain as lmp
from experiments.registry import ExperimentSpec, register
from sharpen.lm import chunked, power_sampling, sampler, sharding
from sharpen.lm import rlhf_lm as R
from sharpen.lm import train as T
from sharpen.lm.batching import left_pad
from sharpen.lm.scorer import score

NAME = "lm_rlhf"
TRAIN_METHODS = ("sft", "eq8", "dpo", "xpo")
_LOSSES = {"eq8": R.eq8_lm_loss, "dpo": R.dpo_lm_loss}
COLUMNS = (
    "seed", "method", "kind", "train_responses", "train_steps", "final_loss", "accuracy_t1",
    "accuracy_greedy", "base_loglik", "entropy", "decode_tokens", "num_tokens", "acceptance",
    "mode_mass", "mode_logprob",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    """Equal-budget comparison of sharpening methods on an LM (module docstring).

    ``budget`` must be a multiple of ``bon_n``, of 2 and of ``2 * xpo_rounds``; ``train_steps``
    a multiple of ``xpo_rounds``. ``beta`` is the KL coefficient of Eq. 8 / DPO / XPO
    (``pi*_beta ∝ pi_base^(1 + 1/beta)``), ``xpo_alpha`` the optimism weight, ``xpo_loss_weight``
    the weight ``w`` of the squared loss in Algorithm 1 (THEORY §8 item 2).

    ``smollm2`` or ``model_dir`` replaces the char model (``model``, ``task``, ``pretrain_*``
    unused) by a real one on exactly one task: one of ``gym_tasks`` or ``data_file``.

    ``mode_prompts`` eval prompts (char models only) get the base model's certified mode ``y*``
    (``mode_budget`` search expansions each); every evaluation reports the mass on it.
    ``sample_rows`` bounds the rows (prompts x samples) of one sampling call (module docstring).
    """

    pretrain_dir: str = ""
    pretrain_preset: str = "quick"
    model: str = "tiny"
    task: str = "arithmetic"
    smollm2: bool = False
    model_dir: str = ""
    gym_tasks: tuple[str, ...] = ()
    data_file: str = ""
    data_format: str = "gsm8k"
    budget: int = 256
    bon_n: int = 4
    num_train_prompts: int = 256
    eval_prompts: int = 64
    eval_samples: int = 4
    max_new_tokens: int = 48
    beta: float = 2.0
    xpo_alpha: float = 0.02
    xpo_loss_weight: float = 1.0
    xpo_rounds: int = 4
    train_steps: int = 48
    batch_size: int = 16
    lr: float = 1e-4
    power_alphas: tuple[float, ...] = (2.0, 4.0)
    power_steps: int = 8
    mode_prompts: int = 16
    mode_budget: int = 3000
    sample_rows: int = 4096
    num_seeds: int = 1
    strict: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.smollm2 and self.model_dir:
            raise ValueError(f"smollm2 and model_dir each name a base model; set one "
                             f"(model_dir={self.model_dir!r})")  # fmt: skip
        if self.data_format not in lm_real.DATA_FORMATS:
            raise ValueError(f"data_format must be one of {lm_real.DATA_FORMATS}, "
                             f"got {self.data_format!r}")  # fmt: skip
        num_real_tasks = len(self.gym_tasks) + bool(self.data_file)
        if self.real and num_real_tasks != 1:
            raise ValueError(f"a real base model needs exactly one task: one of gym_tasks "
                             f"or data_file, got gym_tasks={self.gym_tasks}, "
                             f"data_file={self.data_file!r}")  # fmt: skip
        if not self.real and num_real_tasks:
            raise ValueError(f"gym_tasks={self.gym_tasks} / data_file={self.data_file!r} need a "
                             "real base model: set smollm2 or model_dir")  # fmt: skip
        if self.pretrain_preset not in lmp.PRESETS:
            raise ValueError(f"pretrain_preset must be one of {sorted(lmp.PRESETS)}, "
                             f"got {self.pretrain_preset!r}")  # fmt: skip
        if self.task not in lmp.TASK_VARIANTS:
            raise ValueError(f"task must be one of {lmp.TASK_VARIANTS}, got {self.task!r}")
        for field in ("budget", "bon_n", "num_train_prompts", "eval_prompts", "eval_samples",
                      "max_new_tokens", "xpo_rounds", "train_steps", "batch_size", "num_seeds",
                      "sample_rows"):  # fmt: skip
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.budget % self.bon_n or self.budget % (2 * self.xpo_rounds):
            raise ValueError(f"budget={self.budget} must be a multiple of bon_n={self.bon_n} "
                             f"and of 2 * xpo_rounds={2 * self.xpo_rounds}")  # fmt: skip
        if self.train_steps % self.xpo_rounds:
            raise ValueError(
                f"train_steps must be a multiple of xpo_rounds, got {self.train_steps}"
            )
        if not (self.beta > 0 and self.lr > 0 and self.xpo_alpha >= 0 and self.xpo_loss_weight > 0):
            raise ValueError("need beta > 0, lr > 0, xpo_alpha >= 0, xpo_loss_weight > 0")
        for field in ("mode_prompts", "mode_budget"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)}")
        if any(a <= 1 for a in self.power_alphas) or self.power_steps < 0:
            raise ValueError(f"power_alphas must be > 1 and power_steps >= 0, got "
                             f"{self.power_alphas}, {self.power_steps}")  # fmt: skip

    @property
    def real(self) -> bool:
        """Whether the base model is SmolLM2 or a Hugging Face checkpoint (not a char model)."""
        return bool(self.smollm2 or self.model_dir)

    def methods(self) -> tuple[str, ...]:
        power = tuple(f"power_a={a:g}" for a in self.power_alphas)
        return ("base", "bon", *power, *TRAIN_METHODS)


def smoke() -> Config:
    """CI-sized: the micro model of ``lm_pretrain``'s smoke preset, m = 16, 4 steps, 8 prompts.

    ``sharpen run lm_rlhf --preset smoke``; numbers meaningless (checks are info rows).
    """
    return Config(
        pretrain_preset="smoke", model="micro", budget=16, bon_n=4, num_train_prompts=16,
        eval_prompts=4, eval_samples=2, max_new_tokens=16, xpo_rounds=2, train_steps=4,
        batch_size=4, power_steps=1, mode_prompts=2, mode_budget=200, strict=False,
    )  # fmt: skip


def quick() -> Config:
    """``sharpen run lm_rlhf``: the ``lm_pretrain`` quick run's ``tiny@800`` (as ``lm_sft``
    quick) on 2-step arithmetic, m = 256 responses per training method, 48 steps of 16, 64
    held-out prompts x 4 outputs, power sampling alpha in {2, 4} with 8 MH moves, exact mode
    ``y*`` on 16 prompts (3000 expansions each). Runtime:
    paper_repro.md. Feeds ``figures/fig_lm_rlhf.py``.
    """
    return Config(model="tiny@800")
    # Tuning (one run each on this model): beta = 0.5 with lr = 3e-4 made Eq. 8, DPO and XPO
    # *lower* the base log-likelihood of their samples by 1.5-4.7 nats (likelihood
    # displacement: the pair losses fix log-ratio differences, not levels); beta = 2 (target
    # pi_base^1.5) with lr = 1e-4 raises it for every method.


def full() -> Config:
    """``sharpen run lm_rlhf --preset full``: m = 1024, 192 steps, 256 held-out prompts x 64
    outputs, 3 seeds, 16 MH moves, exact mode ``y*`` on 64 prompts (5000 expansions each).
    Feeds ``figures/fig_lm_rlhf.py``.
    """
    return Config(
        pretrain_preset="full", budget=1024, num_train_prompts=1024, eval_prompts=256,
        eval_samples=64, max_new_tokens=96, xpo_rounds=8, train_steps=192, power_steps=16,
        mode_prompts=64, mode_budget=5000, num_seeds=3,
    )  # fmt: skip


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


# ----------------------------------------------------------------------------- setup


def resolve_pretrain(cfg: Config, out_dir: Path) -> Path:
    """The ``lm_pretrain`` run holding ``cfg.model`` trained on ``cfg.task`` (:func:`lmp.find_or_train`)."""
    return lmp.find_or_train(
        (cfg.model,),
        (cfg.task,),
        out_dir,
        pretrain_dir=cfg.pretrain_dir,
        preset=cfg.pretrain_preset,
    )


class Setup:
    """Base model, task, held-out eval prompts and the training-prompt pool (encoded, one width).

    ``pre_dir`` is the ``lm_pretrain`` run of a char model; ``None`` for a real model, whose
    prompts are the held-out splits of :func:`lm_real.real_splits`.
    """

    def __init__(self, cfg: Config, pre_dir: Path | None):
        if pre_dir is None:
            ev, tr = self._real(cfg)
        else:
            ev, tr = self._char(cfg, pre_dir)
        width = max(map(len, ev + tr))
        self.eval_ids = ev
        self.eval_batch = left_pad(ev, pad_id=self.tok.pad_id, bucket=16, min_length=width)
        self.train_batch = left_pad(tr, pad_id=self.tok.pad_id, bucket=16, min_length=width)
        self.prompt_len = self.eval_batch.tokens.shape[1]
        self.max_new_tokens = cfg.max_new_tokens
        self.sample_rows = cfg.sample_rows

    def _char(self, cfg: Config, pre_dir: Path) -> tuple[list, list]:
        pre = lmp.stored_config(pre_dir)
        self.lm_cfg, self.params, self.tok = lmp.load_pretrained(pre_dir, cfg.model)
        self.task = lmp.build_task(pre, cfg.task)
        per_task = pre.num_eval_docs // len(pre.tasks)
        if cfg.eval_prompts > per_task:
            raise ValueError(f"eval_prompts={cfg.eval_prompts} exceeds the {per_task} held-out "
                             "prompts of the pretraining run")  # fmt: skip
        self.eval_examples = self.task.examples(per_task, seed=pre.seed + 1)[: cfg.eval_prompts]
        held = {e.prompt for e in self.task.examples(per_task, seed=pre.seed + 1)}
        pool = [e for e in self.task.examples(2 * cfg.num_train_prompts + len(held),
                                              seed=pre.seed + 7919) if e.prompt not in held]  # fmt: skip
        self.train_examples = pool[: cfg.num_train_prompts]
        enc = lambda es: lm_real.encode_prompts(self.tok, [self.task.format_prompt(e) for e in es])  # noqa: E731
        return enc(self.eval_examples), enc(self.train_examples)

    def _real(self, cfg: Config) -> tuple[list, list]:
        model = lm_real.load_real_model(smollm2=cfg.smollm2, model_dir=cfg.model_dir)
        self.lm_cfg, self.params, self.tok = model.lm_cfg, model.params, model.tokenizer
        ((ev, tr),) = lm_real.real_splits(
            model, gym_tasks=cfg.gym_tasks, data_file=cfg.data_file, data_format=cfg.data_format,
            num_eval=cfg.eval_prompts, num_train=cfg.num_train_prompts, seed=cfg.seed,
        )  # fmt: skip
        self.task, self.eval_examples, self.train_examples = ev.task, ev.examples, tr.examples
        enc = functools.partial(lm_real.encode_prompts, self.tok)
        return enc(ev.prompts), enc(tr.prompts)

    def gen(self, params, tokens, mask, *, key, num_samples, greedy=False):
        """``T = 1`` (or greedy) samples as host arrays, rows split over every device.

        Rows are padded to a multiple of the device count by repeating the last prompt (then
        dropped), so the samples equal the 1-device ones whenever the row count divides evenly.
        More than ``sample_rows`` rows go in chunks (module docstring).
        """
        mesh = sharding.make_mesh()
        b = np.shape(tokens)[0]
        kw = dict(cfg=self.lm_cfg, num_samples=num_samples, max_new_tokens=self.max_new_tokens,
                  eos_id=self.tok.eos_id, pad_id=self.tok.pad_id, greedy=greedy, mesh=mesh)  # fmt: skip
        if chunked.chunk_size(b, num_samples, self.sample_rows, mesh.shape["data"]) < b:
            return chunked.generate_chunked(
                params, tokens, mask, key=key, rows=self.sample_rows, **kw
            )
        pad = -b % mesh.shape["data"]
        tokens, mask = (np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
                        for x in (np.asarray(tokens), np.asarray(mask)))  # fmt: skip
        out = sampler.generate(sharding.shard_params(params, mesh), tokens, mask, key=key, **kw)
        return jax.tree.map(lambda x: np.asarray(x)[:b], out)

    def train_prompts(self, idx):
        idx = np.asarray(idx) % len(self.train_examples)
        return self.train_batch.tokens[idx], self.train_batch.mask[idx]


# ----------------------------------------------------------------------------- evaluation


def _grade(setup: Setup, tokens, lengths, finished, examples) -> np.ndarray:
    tokens, lengths, finished = (np.asarray(a) for a in (tokens, lengths, finished))
    out = np.zeros(lengths.shape, np.float64)
    for b, example in enumerate(examples):
        for j in range(lengths.shape[1]):
            n = int(lengths[b, j]) - int(finished[b, j])
            text = setup.tok.decode(tokens[b, j, :n].tolist())
            out[b, j] = float(setup.task.grade(text, example))
    return out


def _scores(setup: Setup, params, tokens, lengths):
    b = setup.eval_batch
    return score(params, b.tokens, b.mask, tokens, lengths, cfg=setup.lm_cfg)


def _row(seed, method, kind, **values) -> pd.DataFrame:
    row = {c: math.nan for c in COLUMNS}
    row.update(seed=seed, method=method, kind=kind, **values)
    return pd.DataFrame([row], columns=list(COLUMNS))


def _mode_logprobs(cfg: Config, setup: Setup, params, modes: pd.DataFrame | None) -> np.ndarray:
    """``[K]`` ``log pi(y*|x)`` under ``params`` of the certified modes (empty without any)."""
    if modes is None:
        return np.zeros((0,))
    return lm_modes.mode_logprobs(params, setup.eval_ids, modes, cfg=setup.lm_cfg,
                                  pad_id=setup.tok.pad_id, max_new_tokens=cfg.max_new_tokens)  # fmt: skip


def eval_policy(
    cfg: Config, setup: Setup, params, *, key, modes: pd.DataFrame | None = None
) -> dict:
    """T = 1 (``eval_samples`` per prompt) and greedy metrics of a policy, and its mass on the
    base model's certified modes ``modes``."""
    b = setup.eval_batch
    out = setup.gen(params, b.tokens, b.mask, key=key, num_samples=cfg.eval_samples)
    correct = _grade(setup, out.tokens, out.lengths, out.finished, setup.eval_examples)
    base = _scores(setup, setup.params, out.tokens, out.lengths)
    own = _scores(setup, params, out.tokens, out.lengths)
    greedy = setup.gen(params, b.tokens, b.mask, key=None, num_samples=1, greedy=True)
    g = _grade(setup, greedy.tokens, greedy.lengths, greedy.finished, setup.eval_examples)
    lengths = np.asarray(out.lengths, np.float64)
    return {
        "accuracy_t1": float(correct.mean()),
        "accuracy_greedy": float(g.mean()),
        "base_loglik": float(np.asarray(base.sum_logprob, np.float64).mean()),
        "entropy": float(np.asarray(own.entropy, np.float64).mean()),
        "decode_tokens": float(lengths.mean()),
        "num_tokens": float(lengths.mean()),
        **lm_modes.mode_mass(_mode_logprobs(cfg, setup, params, modes)),
    }


def _eval_outputs(setup: Setup, tokens, lengths, finished, decode) -> dict:
    correct = _grade(setup, tokens, lengths, finished, setup.eval_examples)
    sc = _scores(setup, setup.params, tokens, lengths)
    return {
        "accuracy_t1": float(correct.mean()),
        "base_loglik": float(np.asarray(sc.sum_logprob, np.float64).mean()),
        "entropy": float(np.asarray(sc.entropy, np.float64).mean()),
        "decode_tokens": float(np.mean(decode)),
        "num_tokens": float(np.asarray(lengths, np.float64).mean()),
    }


def eval_bon(cfg: Config, setup: Setup, *, key, modes: pd.DataFrame | None = None) -> dict:
    """Best of ``bon_n`` base draws by ``log pi_base``, ``eval_samples`` outputs per prompt; its
    probability of outputting ``y*`` is exact (:func:`lm_modes.bon_mode_logprob`)."""
    b, s, n = setup.eval_batch, cfg.eval_samples, cfg.bon_n
    out = setup.gen(setup.params, b.tokens, b.mask, key=key, num_samples=s * n)
    lp = np.asarray(out.base_logprobs, np.float64).sum(-1).reshape(-1, s, n)
    pick = np.argmax(lp, axis=-1)[..., None]

    def sel(x):
        x = np.asarray(x)
        x = x.reshape(x.shape[0], s, n, *x.shape[2:])
        idx = pick.reshape(pick.shape + (1,) * (x.ndim - 3))
        return np.take_along_axis(x, idx, axis=2)[:, :, 0]

    decode = np.asarray(out.lengths).reshape(-1, s, n).sum(-1)
    hit = lm_modes.bon_mode_logprob(_mode_logprobs(cfg, setup, setup.params, modes), n)
    return {**_eval_outputs(setup, sel(out.tokens), sel(out.lengths), sel(out.finished), decode),
            **lm_modes.mode_mass(hit)}  # fmt: skip


def eval_power(cfg: Config, setup: Setup, alpha: float, *, key) -> dict:
    """``eval_samples`` MH chains per prompt targeting ``pi_base^alpha``; final states (mode
    metrics NaN: the chain's law has no closed form, module docstring)."""
    b = setup.eval_batch
    res = power_sampling.power_sample(
        setup.params, b.tokens, b.mask, cfg=setup.lm_cfg, key=key, alpha=alpha,
        num_chains=cfg.eval_samples, num_steps=cfg.power_steps,
        max_new_tokens=setup.max_new_tokens, eos_id=setup.tok.eos_id, pad_id=setup.tok.pad_id,
    )  # fmt: skip
    st = res.state
    metrics = _eval_outputs(setup, st.tokens, st.lengths, st.finished, res.decode_tokens)
    metrics["acceptance"] = float(res.acceptance.mean()) if res.acceptance.size else math.nan
    return metrics


# ----------------------------------------------------------------------------- training


def _optimizer(cfg: Config):
    return T.make_optimizer(cfg.lr, warmup=min(4, cfg.train_steps - 1),
                            total_steps=cfg.train_steps, weight_decay=0.0, clip_norm=1.0,
                            schedule="linear")  # fmt: skip


def _hyper(cfg: Config) -> dict:
    return {k: jnp.float32(v) for k, v in
            (("beta", cfg.beta), ("alpha", cfg.xpo_alpha), ("loss_weight", cfg.xpo_loss_weight))}  # fmt: skip


def _take(tree, idx):
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), tree)


def _fit(cfg: Config, setup: Setup, data, n: int, loss_fn, *, key) -> tuple[dict, float]:
    """``train_steps`` steps on minibatches (uniform with replacement) of the ``n`` examples."""
    opt = _optimizer(cfg)
    state = T.init_train_state(setup.params, opt)
    loss = math.nan
    for step in range(cfg.train_steps):
        idx = jax.random.randint(jax.random.fold_in(key, step), (cfg.batch_size,), 0, n)
        state, m = R.policy_step(state, _take(data, idx), _hyper(cfg), loss_fn=loss_fn,
                                 cfg=setup.lm_cfg, optimizer=opt)  # fmt: skip
        loss = m["loss"]
    return state.params, float(loss)


def _prompt_order(cfg: Config, n: int, *, key) -> np.ndarray:
    perm = np.asarray(jax.random.permutation(key, cfg.num_train_prompts))
    return perm[np.arange(n) % cfg.num_train_prompts]


def train_sft(cfg: Config, setup: Setup, *, key):
    k_p, k_s, k_t = jax.random.split(key, 3)
    n = cfg.budget // cfg.bon_n
    tokens, mask = setup.train_prompts(_prompt_order(cfg, n, key=k_p))
    out = setup.gen(setup.params, tokens, mask, key=k_s, num_samples=cfg.bon_n)
    best = jnp.argmax(jnp.sum(out.base_logprobs, axis=-1), axis=-1)

    def win(x):
        return jnp.take_along_axis(x, best.reshape((-1, 1) + (1,) * (x.ndim - 2)), axis=1)[:, 0]

    data = R.Responses(jnp.asarray(tokens), jnp.asarray(mask), win(out.tokens), win(out.lengths))
    return _fit(cfg, setup, data, n, R.sft_lm_loss, key=k_t)


def train_pairs(cfg: Config, setup: Setup, method: str, *, key):
    k_p, k_s, k_t = jax.random.split(key, 3)
    n = cfg.budget // 2
    tokens, mask = setup.train_prompts(_prompt_order(cfg, n, key=k_p))
    out = setup.gen(setup.params, tokens, mask, key=k_s, num_samples=2)
    pairs = R.pairs_from_samples(tokens, mask, out.tokens, out.lengths, out.base_logprobs)
    return _fit(cfg, setup, pairs, n, _LOSSES[method], key=k_t)


def train_xpo(cfg: Config, setup: Setup, *, key):
    k_p, k_r = jax.random.split(key)
    per_round = cfg.budget // (2 * cfg.xpo_rounds)
    order = _prompt_order(cfg, per_round * cfg.xpo_rounds, key=k_p)
    opt = _optimizer(cfg)
    state = R.xpo_init(T.init_train_state(setup.params, opt), capacity=len(order),
                       prompt_len=setup.prompt_len, max_new_tokens=setup.max_new_tokens)  # fmt: skip
    info = {"loss": np.array([math.nan])}
    for t in range(cfg.xpo_rounds):
        tokens, mask = setup.train_prompts(order[t * per_round : (t + 1) * per_round])
        state, info = R.xpo_round(
            state, setup.params, tokens, mask, key=jax.random.fold_in(k_r, t), cfg=setup.lm_cfg,
            optimizer=opt, hyper=_hyper(cfg), steps=cfg.train_steps // cfg.xpo_rounds,
            batch_size=cfg.batch_size, max_new_tokens=setup.max_new_tokens,
            eos_id=setup.tok.eos_id, pad_id=setup.tok.pad_id,
        )  # fmt: skip
    return state.train.params, float(info["loss"][-1])


def method_unit(
    cfg: Config, setup: Setup, seed: int, method: str, modes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row of ``metrics.csv``: train (if a training method) and evaluate ``method``
    (``modes``: the base model's certified modes, or ``None``: mode metrics NaN)."""
    root = jax.random.fold_in(jax.random.key(cfg.seed), seed)
    eval_key = jax.random.fold_in(root, 0)
    key = jax.random.fold_in(root, 1 + cfg.methods().index(method))
    if method == "base":
        metrics = eval_policy(cfg, setup, setup.params, key=eval_key, modes=modes)
        return _row(seed, method, "inference", **metrics)
    if method == "bon":
        return _row(seed, method, "inference", **eval_bon(cfg, setup, key=eval_key, modes=modes))
    if method.startswith("power_a="):
        alpha = float(method.split("=")[1])
        return _row(seed, method, "inference", **eval_power(cfg, setup, alpha, key=eval_key))
    if method == "sft":
        params, loss = train_sft(cfg, setup, key=key)
    elif method == "xpo":
        params, loss = train_xpo(cfg, setup, key=key)
    else:
        params, loss = train_pairs(cfg, setup, method, key=key)
    return _row(seed, method, "train", train_responses=cfg.budget, train_steps=cfg.train_steps,
                final_loss=loss, **eval_policy(cfg, setup, params, key=eval_key, modes=modes))  # fmt: skip


def mode_unit(cfg: Config, setup: Setup) -> pd.DataFrame:
    """The base model's certified mode ``y*`` on the first ``mode_prompts`` eval prompts
    (:func:`lm_modes.certified_modes`): the ``modes.csv`` rows."""
    return lm_modes.certified_modes(
        setup.params, setup.eval_ids[: cfg.mode_prompts], cfg=setup.lm_cfg, tokenizer=setup.tok,
        max_new_tokens=cfg.max_new_tokens, budget=cfg.mode_budget, task=cfg.task,
        grade=lambda text, p: setup.task.grade(text, setup.eval_examples[p]),
    )  # fmt: skip


# ----------------------------------------------------------------------------- summary

_srow = functools.partial(io.summary_row, NAME)


def summary_rows(
    cfg: Config, metrics: pd.DataFrame, modes: pd.DataFrame | None = None
) -> list[dict]:
    """Checks and info rows of the module docstring (seed means)."""
    mean = metrics.groupby("method", sort=False).mean(numeric_only=True)
    base_ll = float(mean.loc["base", "base_loglik"])
    strict = lambda ok: ("pass" if ok else "fail") if cfg.strict else "info"  # noqa: E731
    rows = []
    for m in TRAIN_METHODS:
        ll = float(mean.loc[m, "base_loglik"])
        rows.append(_srow(f"{m}: mean log pi_base of T=1 samples minus base sampling's "
                          f"({base_ll:.3f}), m={cfg.budget}", "> 0", ll - base_ll,
                          verdict=strict(ll > base_ll)))  # fmt: skip
    chain = [base_ll] + [float(mean.loc[f"power_a={a:g}", "base_loglik"])
                         for a in sorted(cfg.power_alphas)]  # fmt: skip
    rising = all(b > a for a, b in itertools.pairwise(chain))
    alphas = ", ".join(f"{a:g}" for a in (1.0, *sorted(cfg.power_alphas)))
    rows.append(_srow(f"power sampling: mean log pi_base at alpha = {alphas} "
                      f"({', '.join(f'{v:.3f}' for v in chain)}) rises with alpha; measured: "
                      "last minus first", "> 0 and increasing", chain[-1] - chain[0],
                      verdict=strict(rising)))  # fmt: skip
    for m in cfg.methods():
        r = mean.loc[m]
        rows.append(_srow(f"{m}: T=1 accuracy (greedy {r.accuracy_greedy:.3f}; decode tokens/output "
                          f"{r.decode_tokens:.1f}; entropy {r.entropy:.3f}; base loglik "
                          f"{r.base_loglik:.3f})", "", float(r.accuracy_t1), verdict="info"))  # fmt: skip
    rows += _mode_rows(cfg, mean, modes)
    return rows


def _mode_rows(cfg: Config, mean: pd.DataFrame, modes: pd.DataFrame | None) -> list[dict]:
    """Info rows: each method's mass on the base model's certified ``y*`` vs the base's."""
    if modes is None or not (modes["exact"] == 1).any():
        return []
    certified = int((modes["exact"] == 1).sum())
    base = float(mean.loc["base", "mode_mass"])
    rows = [_srow(f"base: mean pi_base(y*|x) of the certified exact mode y* ({certified}/"
                  f"{len(modes)} prompts certified; y* correct on {int(modes['correct'].sum())})",
                  "", base, verdict="info")]  # fmt: skip
    for m in cfg.methods():
        mass = float(mean.loc[m, "mode_mass"])
        if m != "base" and np.isfinite(mass):
            rows.append(_srow(f"{m}: mean probability of outputting y* (sharpening's target) vs "
                              f"base ({base:.4g})", f"> {base:.4g} (info)", mass, verdict="info"))  # fmt: skip
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write the run folder of the module docstring (resumable per (seed, method) unit)."""
    if cfg.real:
        lm_real.check_real_inputs(model_dir=cfg.model_dir, data_file=cfg.data_file,
                                  data_format=cfg.data_format, gym_tasks=cfg.gym_tasks)  # fmt: skip
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    pre_dir = None if cfg.real else resolve_pretrain(cfg, out_dir)
    setup: list[Setup] = []

    def get_setup() -> Setup:
        if not setup:
            setup.append(Setup(cfg, pre_dir))
        return setup[0]

    modes = None
    if cfg.mode_prompts and cfg.mode_budget and not cfg.real:  # 49k-token vocabularies: no
        modes = io.cached_unit(out_dir, "modes", lambda: mode_unit(cfg, get_setup()))
    frames = []
    for seed in range(cfg.num_seeds):
        for method in cfg.methods():
            unit = f"seed={seed}_method={method}"
            frames.append(io.cached_unit(out_dir, unit, lambda s=seed, m=method:
                                         method_unit(cfg, get_setup(), s, m, modes)))  # fmt: skip
    metrics = pd.concat(frames, ignore_index=True)
    io.finalize_metrics(out_dir, frames)
    if modes is not None:
        io.finalize_metrics(out_dir, [modes], name="modes.csv")
    io.write_summary(out_dir, summary_rows(cfg, metrics, modes))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="LM RLHF-Sharpening (Eq. 8, DPO, XPO) vs SFT at equal budget; BoN / power sampling",
        presets=PRESETS,
        run=run,
    )
)

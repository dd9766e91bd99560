"""Selection rules and analysis of sampled LM responses (App. A.1–A.2, EXPERIMENTS §4–5, §9).

The LM experiments draw ``N_max`` temperature-1 responses per prompt and seed, score each under
the base model, grade it, and then ask: which response would each *selection rule* have kept if
only ``N <= N_max`` responses had been drawn, and how accurate is it? This module is the analysis
core: small pure selection rules on ``[P, N]`` arrays (JAX, explicit key for random tie-breaks),
exact coverage estimators, rank statistics, and the tables the figures and the claims check read.
No language model is needed here.

Selection rules (EXPERIMENTS §1). Each returns the index of the kept response per prompt; ties
are broken uniformly at random with the caller's key.

=====================  =======================================  ===================================
rule (``RULES`` key)   score maximised                          note
=====================  =======================================  ===================================
``bon_sum``            ``sum_logprob`` = log pi_base(y|x)       BoN by ``r_self`` (Eq. 2), Fig. 1a
``bon_mean``           ``mean_logprob`` = log pi_base(y|x)/|y|  length-normalized, Fig. 2a
``bon_self_certainty`` ``self_certainty`` (larger = surer)      mean KL(Uniform_V || p_t), Kang 2025
``bon_neg_entropy``    ``-entropy`` (lower entropy = surer)     mean token entropy, nats
``majority``           number of samples with the same answer   self-consistency, Fig. 2b
=====================  =======================================  ===================================

A single temperature-1 sample is ``N = 1`` of any rule. Pass@N (coverage, Fig. 2c) is a skyline
that uses the true answer, not a selection rule.

Data contract (the LM runner writes exactly this into its run folder)::

    samples.csv   one row per sampled response (N_max per prompt per seed):
      model           str    model short name (figure row label)
      task            str    task name (figure column label)
      seed            int    sampling seed; each seed draws its own N_max responses
      prompt_id       int    prompt index within the task (same ids across models and seeds)
      sample          int    0 .. N_max-1, unique within (model, task, seed, prompt_id)
      sum_logprob     float  log pi_base(y|x), summed over response tokens only (nats, <= 0)
      num_tokens      int    |y|, response length in tokens
      mean_logprob    float  sum_logprob / num_tokens (0 when num_tokens = 0)
      entropy         float  mean per-token entropy of pi_base(.|x, y_<t) (nats)
      self_certainty  float  mean per-token KL(Uniform_V || pi_base(.|x, y_<t)) (nats, >= 0)
      answer          str    extracted final answer, canonicalized; empty if unparseable
      parsed          0/1    1 iff an answer could be extracted
      correct         0/1    1 iff parsed and the answer matches the reference (0 if unparsed)

    greedy.csv    one row per (model, task, prompt_id): the greedy (T -> 0) response
      model, task, prompt_id, sum_logprob, num_tokens, answer, parsed, correct
      (same meanings; one deterministic run, no seed)

    metrics.csv   (written by the runner) the output of :func:`subsample_curves`; the figures
                  recompute it from ``samples.csv`` when it is absent.

``answer`` is compared as a string; read the CSVs with :func:`read_samples` / :func:`read_greedy`
(``dtype=str``, no NA parsing) so that answers like ``"None"`` or ``"3"`` survive a round trip.

Subsampling (EXPERIMENTS §4, §10.3). BoN for ``N < N_max`` is the average over random subsets
of size ``N`` drawn *without replacement* from the prompt's ``N_max`` responses. For the BoN rules
:func:`subsample_curves` takes that average exactly, over all ``C(N_max, N)`` subsets (the limit of
infinitely many random subsets: same quantity, no Monte-Carlo noise); for majority vote it draws
``num_subsets`` random subsets per (seed, N), nested across ``N``. Pass@N uses the unbiased
estimator of Chen et al. (2021), computed exactly from the counts.

Metrics. Accuracies are fractions in [0, 1]. ``relative_lift`` is the paper's "% lift over
greedy", ``100 (acc - acc_greedy) / acc_greedy`` (Llama3.2-3B/Phys: greedy 14.7 %, +126.7 %), and
is ``NaN`` when greedy accuracy is 0; always report absolute accuracies beside it.

References:
  Huang et al. (2025), "Self-Improvement in Language Models: The Sharpening Mechanism", App. A.1–A.2.
  Chen et al. (2021), "Evaluating Large Language Models Trained on Code", Eq. 1 (pass@k).
  Kang et al. (2025), "Scalable Best-of-N Selection for LLMs via Self-Certainty".
  Wang et al. (2023), "Self-Consistency Improves Chain of Thought Reasoning" (majority vote).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = [
    "CURVE_COLUMNS",
    "GREEDY_COLUMNS",
    "RULES",
    "SAMPLE_COLUMNS",
    "absolute_lift",
    "auroc",
    "pass_at_k",
    "pass_at_n",
    "quantile_gap",
    "read_greedy",
    "read_samples",
    "relative_lift",
    "select_bon",
    "select_majority",
    "spearman",
    "stochastic_dominance_gap",
    "subsample_curves",
    "summarize",
]

SAMPLE_COLUMNS = (
    "model",
    "task",
    "seed",
    "prompt_id",
    "sample",
    "sum_logprob",
    "num_tokens",
    "mean_logprob",
    "entropy",
    "self_certainty",
    "answer",
    "parsed",
    "correct",
)
GREEDY_COLUMNS = (
    "model",
    "task",
    "prompt_id",
    "sum_logprob",
    "num_tokens",
    "answer",
    "parsed",
    "correct",
)

#: Selection rule -> (samples.csv column, sign); the rule maximises ``sign * column``.
#: ``majority`` has no score column: it counts answers.
RULES: dict[str, tuple[str, float] | None] = {
    "bon_sum": ("sum_logprob", 1.0),
    "bon_mean": ("mean_logprob", 1.0),
    "bon_self_certainty": ("self_certainty", 1.0),
    "bon_neg_entropy": ("entropy", -1.0),
    "majority": None,
}

_BON_RULES = {rule: spec for rule, spec in RULES.items() if spec is not None}

#: Columns of :func:`subsample_curves` (one row per model, task, seed, rule, num_samples).
CURVE_COLUMNS = (
    "model",
    "task",
    "seed",
    "rule",
    "num_samples",
    "num_prompts",
    "accuracy",
    "sum_logprob",
    "num_tokens",
    "parse_rate",
    "pass_at_n",
    "greedy_accuracy",
    "greedy_sum_logprob",
    "greedy_num_tokens",
    "lift",
    "abs_lift",
)

_GROUP = ["model", "task", "seed"]
_FLOAT_FIELDS = ("sum_logprob", "mean_logprob", "self_certainty", "entropy", "num_tokens")


# ----------------------------------------------------------------------------- selection rules


def _argmax_random_ties(score: jax.Array, key: jax.Array) -> jax.Array:
    """Index of the maximum over the last axis, uniformly at random among exact ties."""
    u = jax.random.uniform(key, score.shape)
    is_max = score == jnp.max(score, axis=-1, keepdims=True)
    return jnp.argmax(jnp.where(is_max, u, -1.0), axis=-1).astype(jnp.int32)


def _bon_index(reward: jax.Array, key: jax.Array) -> jax.Array:
    # NaN (e.g. a length-normalized score of an empty response) never wins; all-NaN -> uniform.
    reward = jnp.where(jnp.isnan(reward), -jnp.inf, reward)
    return _argmax_random_ties(reward, key)


def _answer_counts(answer_ids: jax.Array, parsed: jax.Array) -> jax.Array:
    """[..., N] number of *parsed* samples in the row sharing each sample's answer (0 if unparsed)."""
    ids = jnp.where(parsed, answer_ids, -1)
    shape = ids.shape
    rows = ids.reshape(-1, shape[-1])
    sorted_rows = jnp.sort(rows, axis=-1)

    def count(s, q):
        return jnp.searchsorted(s, q, side="right", method="sort") - jnp.searchsorted(
            s, q, side="left", method="sort"
        )

    counts = jax.vmap(count)(sorted_rows, rows).reshape(shape)
    return jnp.where(parsed, counts, 0).astype(jnp.int32)


def _majority_index(answer_ids: jax.Array, parsed: jax.Array, key: jax.Array) -> jax.Array:
    # Tied answers have equal counts, so a uniform pick among tied *samples* is uniform among
    # tied *answers*. With nothing parsed every count is 0 and the pick is uniform over samples.
    return _argmax_random_ties(_answer_counts(answer_ids, parsed), key)


_bon_index_jit = jax.jit(_bon_index)
_majority_index_jit = jax.jit(_majority_index)


def _check_rows(x: Any, name: str) -> jax.Array:
    arr = jnp.asarray(x)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have shape [..., N] with N >= 1, got shape {arr.shape}")
    return arr


def select_bon(reward_PxN: Any, *, key: jax.Array) -> jax.Array:
    """Best-of-N: index of the highest-reward response per prompt, ties uniformly at random.

    .. math:: \\hat y(x) = y_{i^\\star},\\qquad
              i^\\star \\sim \\mathrm{Unif}\\big(\\arg\\max_{i\\le N} r(y_i \\mid x)\\big).

    Use it with ``sum_logprob`` (BoN by ``log pi_base``, Eq. 2), ``mean_logprob``
    (length-normalized), ``self_certainty`` (larger = more peaked = more certain) or
    ``-entropy`` (see :data:`RULES`). ``NaN`` rewards never win; a row of only ``NaN`` (or
    ``-inf``) is a uniform pick.

    Args:
      reward_PxN: [P, N] (or any ``[..., N]``) float rewards, higher is better.
      key: PRNG key for the tie-break.

    Returns:
      [P] int32 indices into the last axis.

    References:
      Huang et al. (2025), §2.1 (BoN, ties at random) and App. A.2.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> select_bon(jnp.array([[-3.0, -1.0, -2.0]]), key=jax.random.key(0)).tolist()
      [1]
    """
    reward = _check_rows(reward_PxN, "reward_PxN")
    if not jnp.issubdtype(reward.dtype, jnp.floating):
        reward = reward.astype(jnp.zeros(()).dtype)
    return _bon_index_jit(reward, key)


def select_majority(answer_ids_PxN: Any, parsed_PxN: Any, *, key: jax.Array) -> jax.Array:
    """Majority vote (self-consistency): a response carrying the most frequent parsed answer.

    .. math:: \\hat a(x) = \\arg\\max_a \\#\\{i \\le N: \\mathrm{parsed}_i,\\ a_i = a\\},

    a sample estimate of ``r_self(y|x) = sum_{y': ans(y') = ans(y)} pi_base(y'|x)`` (App. A.2).
    Unparseable responses never win unless nothing in the row parsed (then the pick is uniform
    over all responses). Ties between answers are broken uniformly at random; the returned index
    is a uniformly random response among those carrying the winning answer.

    Args:
      answer_ids_PxN: [P, N] int answer codes (equal code = equal answer; values of unparsed
        entries are ignored).
      parsed_PxN: [P, N] bool or {0, 1}: the answer could be extracted.
      key: PRNG key for the tie-break.

    Returns:
      [P] int32 indices into the last axis.

    References:
      Huang et al. (2025), App. A.2; Wang et al. (2023).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> ids, ok = jnp.array([[5, 5, 5, 3, 3]]), jnp.array([[0, 0, 1, 1, 1]])
      >>> int(ids[0, select_majority(ids, ok, key=jax.random.key(0))[0]])  # 5 parsed only once
      3
    """
    ids = _check_rows(answer_ids_PxN, "answer_ids_PxN")
    parsed = _check_rows(parsed_PxN, "parsed_PxN")
    if ids.shape != parsed.shape:
        raise ValueError(
            f"answer_ids_PxN and parsed_PxN must have equal shapes, got {ids.shape}, {parsed.shape}"
        )
    if not jnp.issubdtype(ids.dtype, jnp.integer):
        raise ValueError(f"answer_ids_PxN must be integer codes, got dtype {ids.dtype}")
    return _majority_index_jit(ids.astype(jnp.int32), parsed.astype(bool), key)


def pass_at_n(correct_PxN: Any) -> jax.Array:
    """Empirical coverage: 1 if any of the row's ``N`` responses is correct (skyline, Fig. 2c).

    Args:
      correct_PxN: [P, N] bool or {0, 1}.

    Returns:
      [P] float (0 or 1); average it for pass@N accuracy.

    Example:
      >>> pass_at_n([[0, 1, 0], [0, 0, 0]]).tolist()
      [1.0, 0.0]
    """
    correct = _check_rows(correct_PxN, "correct_PxN").astype(bool)
    return jnp.any(correct, axis=-1).astype(jnp.zeros(()).dtype)


def pass_at_k(num_correct: Any, num_samples: int, k: int) -> np.ndarray:
    """Unbiased pass@k from ``c`` correct out of ``n`` draws (Chen et al. 2021, Eq. 1), exactly.

    .. math:: \\mathrm{pass@}k = 1 - \\binom{n-c}{k} \\Big/ \\binom{n}{k},

    the probability that a uniformly random ``k``-subset (without replacement) of the ``n``
    responses holds a correct one. The ratio is evaluated in exact integer arithmetic for each
    ``c = 0..n`` and then looked up, so there is no cancellation for any ``n``.

    Args:
      num_correct: [...] ints in ``[0, n]``.
      num_samples: ``n >= 1``, responses drawn per prompt.
      k: subset size, ``1 <= k <= n``.

    Returns:
      [...] float64 estimates.

    References:
      Chen et al. (2021), "Evaluating Large Language Models Trained on Code", §2.1.

    Example:
      >>> pass_at_k([0, 1, 2], 4, 2).tolist()  # 1 - C(4-c, 2) / C(4, 2)
      [0.0, 0.5, 0.8333333333333334]
    """
    n, k = int(num_samples), int(k)
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= num_samples, got k={k}, num_samples={n}")
    c = np.asarray(num_correct)
    if not np.issubdtype(c.dtype, np.integer) or (c.size and (c.min() < 0 or c.max() > n)):
        raise ValueError(f"num_correct must be integers in [0, {n}], got {c!r}")
    total = math.comb(n, k)
    table = np.array([1.0 - math.comb(n - ci, k) / total for ci in range(n + 1)])
    return table[c]


# ----------------------------------------------------------------------------- lift and ranks


def relative_lift(acc: Any, acc_greedy: Any) -> np.ndarray:
    """The paper's "% lift over greedy": ``100 (acc - acc_greedy) / acc_greedy``.

    Guard: where ``acc_greedy == 0`` (or is NaN) the relative lift is undefined and the result is
    ``NaN``, never ``inf``; report the absolute accuracies (and :func:`absolute_lift`) there.
    Near-zero baselines give huge but finite values (EXPERIMENTS §10.6).

    Args:
      acc: [...] method accuracies, fractions in [0, 1].
      acc_greedy: [...] greedy accuracies (broadcastable to ``acc``).

    Returns:
      [...] float64 relative lifts in percent.

    References:
      Huang et al. (2025), App. A.1 ("normalized improvement in accuracy over greedy").

    Example:
      >>> relative_lift([0.3333, 0.5], [0.147, 0.0]).round(1).tolist()
      [126.7, nan]
    """
    acc = np.asarray(acc, np.float64)
    base = np.asarray(acc_greedy, np.float64)
    ok = np.isfinite(base) & (base != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 100.0 * (acc - base) / np.where(ok, base, 1.0), np.nan)


def absolute_lift(acc: Any, acc_greedy: Any) -> np.ndarray:
    """Absolute improvement over greedy in percentage points: ``100 (acc - acc_greedy)``.

    Args:
      acc: [...] accuracies in [0, 1].
      acc_greedy: [...] greedy accuracies.

    Returns:
      [...] float64 differences in percentage points.

    Example:
      >>> absolute_lift(0.33, 0.147).round(1).tolist()
      18.3
    """
    return 100.0 * (np.asarray(acc, np.float64) - np.asarray(acc_greedy, np.float64))


def _tie_levels(sorted_RxN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted along the last axis: ``[start, end)`` of each entry's run of equal values."""
    n = sorted_RxN.shape[-1]
    pos = np.arange(n)
    tie = sorted_RxN[..., 1:] == sorted_RxN[..., :-1]
    edge = np.ones_like(tie[..., :1])
    new = np.concatenate([edge, ~tie], axis=-1)
    last = np.concatenate([~tie, edge], axis=-1)
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos + 1, n), -1), axis=-1), -1)
    return start, end


def _row_ranks(x_RxN: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average rank (scipy ``rankdata``)."""
    order = np.argsort(x_RxN, axis=-1, kind="stable")
    start, end = _tie_levels(np.take_along_axis(x_RxN, order, axis=-1))
    ranks = np.empty(x_RxN.shape, np.float64)
    np.put_along_axis(ranks, order, (start + end + 1) / 2.0, axis=-1)
    return ranks


def _rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array with ties given their average rank."""
    return _row_ranks(np.asarray(x, np.float64)[None])[0]


def _row_auroc(scores_RxN: np.ndarray, labels_RxN: np.ndarray) -> np.ndarray:
    """[R] :func:`auroc` of each row (``NaN`` where a row has only one class)."""
    y = labels_RxN.astype(bool)
    n1, n0 = y.sum(axis=-1), (~y).sum(axis=-1)
    u = np.where(y, _row_ranks(scores_RxN), 0.0).sum(axis=-1) - n1 * (n1 + 1) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have equal sizes, got {s.size}, {y.size}")
    if np.isnan(s).any():
        raise ValueError("scores must not contain NaN")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0/1 or bool, got values {np.unique(y)[:5]!r}")
    return s, y.astype(bool)


def auroc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (Mann–Whitney U, ties count 1/2).

    .. math:: \\mathrm{AUROC} = \\frac{1}{n_1 n_0} \\sum_{i: y_i=1} \\sum_{j: y_j=0}
              \\Big(\\mathbf 1[s_i > s_j] + \\tfrac12 \\mathbf 1[s_i = s_j]\\Big),

    computed from average ranks in ``O(n log n)``. With ``scores = sum_logprob`` and
    ``labels = correct`` it is the probability that a random correct response is more likely
    under the model than a random incorrect one (EXPERIMENTS §10.3; 0.5 = no signal).

    Args:
      scores: [n] finite floats.
      labels: [n] bool or {0, 1}.

    Returns:
      AUROC in [0, 1]; ``NaN`` if either class is empty.

    Example:
      >>> auroc([-1.0, -2.0, -2.0, -5.0], [1, 1, 0, 0])  # pairs: 1, 1, 1/2, 1
      0.875
    """
    s, y = _scores_labels(scores, labels)
    return float(_row_auroc(s[None], y[None])[0])


def quantile_gap(
    scores: Any, labels: Any, *, quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)
) -> np.ndarray:
    """Quantiles of the positive class minus the same quantiles of the negative class.

    For log-probabilities by correctness, all entries ``> 0`` is the quantile form of the
    paper's "correct responses stochastically dominate" (Fig. 1c, Fig. 6); the entry at 0.5 is
    the median gap in nats.

    Args:
      scores: [n] finite floats.
      labels: [n] bool or {0, 1}.
      quantiles: levels in [0, 1].

    Returns:
      [len(quantiles)] float64 differences; ``NaN`` if either class is empty.

    Example:
      >>> quantile_gap([-1.0, -2.0, -4.0, -6.0], [1, 1, 0, 0], quantiles=(0.5,)).tolist()
      [3.5]
    """
    s, y = _scores_labels(scores, labels)
    q = np.asarray(quantiles, np.float64)
    if y.all() or not y.any():
        return np.full(q.shape, np.nan)
    return np.quantile(s[y], q) - np.quantile(s[~y], q)


def stochastic_dominance_gap(scores: Any, labels: Any) -> float:
    """Largest violation of first-order stochastic dominance of positives over negatives.

    .. math:: \\mathrm{gap} = \\max_t \\big(F_1(t) - F_0(t)\\big) \\in [0, 1],

    with ``F_1``, ``F_0`` the empirical CDFs of the positive and negative scores. ``0`` means the
    positives dominate (every quantile of the positives is at least that of the negatives); it
    is the one-sided Kolmogorov–Smirnov statistic.

    Args:
      scores: [n] finite floats.
      labels: [n] bool or {0, 1}.

    Returns:
      The gap; ``NaN`` if either class is empty.

    Example:
      >>> stochastic_dominance_gap([-1.0, -2.0, -3.0, -4.0], [1, 1, 0, 0])
      0.0
      >>> stochastic_dominance_gap([-1.0, -4.0, -2.0, -3.0], [1, 1, 0, 0])
      0.5
    """
    s, y = _scores_labels(scores, labels)
    if y.all() or not y.any():
        return float("nan")
    t = np.unique(s)
    f1 = np.searchsorted(np.sort(s[y]), t, side="right") / y.sum()
    f0 = np.searchsorted(np.sort(s[~y]), t, side="right") / (~y).sum()
    return float(max(0.0, np.max(f1 - f0)))


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation (average ranks for ties); ``NaN`` if either side is constant.

    Example:
      >>> round(spearman([1, 2, 5, 10], [-9.0, -8.0, -8.5, -7.0]), 6)
      0.8
    """
    rx = _rankdata(np.asarray(x, np.float64).ravel())
    ry = _rankdata(np.asarray(y, np.float64).ravel())
    if rx.size != ry.size:
        raise ValueError(f"x and y must have equal sizes, got {rx.size}, {ry.size}")
    if rx.size < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# ----------------------------------------------------------------------------- run folder I/O


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read ``samples.csv`` keeping ``answer`` as a string (empty = unparseable).

    Args:
      path: the CSV file, or a run folder holding ``samples.csv``.

    Returns:
      The frame, columns in :data:`SAMPLE_COLUMNS` order (extra columns kept after them).
    """
    return _read(path, "samples.csv", SAMPLE_COLUMNS)


def read_greedy(path: str | Path) -> pd.DataFrame:
    """Read ``greedy.csv`` keeping ``answer`` as a string (see :func:`read_samples`)."""
    return _read(path, "greedy.csv", GREEDY_COLUMNS)


def _read(path: str | Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if path.is_dir():
        path = path / name
    df = pd.read_csv(path, dtype={"answer": str, "model": str, "task": str}, keep_default_na=False)
    _check_columns(df, columns, name)
    return df[list(columns) + [c for c in df.columns if c not in columns]]


def _check_columns(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; the contract is {list(columns)}")


def _answers(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str)


# ----------------------------------------------------------------------------- subsampled curves


class _Grid:
    """``samples.csv`` as dense ``[G, P, N_max]`` arrays (G = (model, task, seed) groups).

    Groups are numbered in sorted (model, task, seed) order and prompts in sorted ``prompt_id``
    order within a group; groups with fewer prompts are padded (``prompt_mask`` False). Built
    with integer keys and ``bincount`` only (no pandas groupby), so 6x10^6 rows take seconds.
    """

    def __init__(self, samples: pd.DataFrame):
        _check_columns(samples, SAMPLE_COLUMNS, "samples_df")
        if samples.empty:
            raise ValueError("samples_df is empty")
        df = samples.reset_index(drop=True)
        m_code, _ = pd.factorize(df["model"], sort=True)
        t_code, t_names = pd.factorize(df["task"], sort=True)
        s_code, s_names = pd.factorize(df["seed"], sort=True)
        pid_code, _ = pd.factorize(df["prompt_id"], sort=True)
        gkey = (m_code.astype(np.int64) * len(t_names) + t_code) * len(s_names) + s_code
        present = np.bincount(gkey) > 0
        g = (np.cumsum(present) - 1)[gkey]
        num_groups, num_pids = int(present.sum()), int(pid_code.max()) + 1
        per_gp = np.bincount(g * num_pids + pid_code, minlength=num_groups * num_pids)
        per_gp = per_gp.reshape(num_groups, num_pids)
        has = per_gp > 0
        n_max = int(per_gp.max())
        if (per_gp[has] != n_max).any():
            raise ValueError(
                "samples_df must hold the same number of samples N_max for every "
                f"(model, task, seed, prompt_id); found counts {sorted(set(per_gp[has].tolist()))}"
            )
        n_idx = df["sample"].to_numpy(np.int64)
        if n_idx.min() < 0 or n_idx.max() >= n_max:
            raise ValueError(f"sample must lie in [0, {n_max}), got [{n_idx.min()}, {n_idx.max()}]")
        p_idx = (np.cumsum(has, axis=1) - 1)[g, pid_code]
        prompts_per_g = has.sum(axis=1)
        p_max = int(prompts_per_g.max())
        lin = (g * p_max + p_idx) * n_max + n_idx
        if np.bincount(lin, minlength=num_groups * p_max * n_max).max() > 1:
            raise ValueError("sample indices must be unique within each prompt")

        self.n_max, self.num_prompts = n_max, prompts_per_g
        self.prompt_mask = np.arange(p_max)[None, :] < prompts_per_g[:, None]
        shape = (num_groups, p_max, n_max)

        def dense(values: np.ndarray, dtype, fill) -> np.ndarray:
            out = np.full(num_groups * p_max * n_max, fill, dtype)
            out[lin] = values
            return out.reshape(shape)

        self.fields = {f: dense(df[f].to_numpy(np.float64), np.float64, 0.0) for f in _FLOAT_FIELDS}
        self.parsed = dense(df["parsed"].to_numpy() != 0, bool, False)
        self.correct = dense(df["correct"].to_numpy() != 0, bool, False)
        codes = pd.factorize(_answers(df["answer"]))[0]
        self.answer_ids = dense(codes.astype(np.int64), np.int64, 0)
        _, first = np.unique(g, return_index=True)
        self.keys = df.loc[first, _GROUP].reset_index(drop=True)
        # one row per (group, prompt): the sample-0 rows (exactly one per prompt, checked above)
        zero = n_idx == 0
        self.prompts = df.loc[zero, [*_GROUP, "prompt_id"]].assign(g=g[zero])

    def rows(self, x: np.ndarray) -> np.ndarray:
        """``[G, P, N] -> [G * P, N]``."""
        return x.reshape(-1, self.n_max)


def _binomial_ratio_table(n_max: int, n: int) -> np.ndarray:
    """``[n_max + 1]``: ``C(t, n) / C(n_max, n)`` for ``t = 0..n_max``, from exact integers."""
    total = math.comb(n_max, n)
    return np.array([math.comb(t, n) / total for t in range(n_max + 1)])


def _bon_subset_means(reward_RxN: np.ndarray, values_KxRxN: np.ndarray, ns: Sequence[int]):
    """``[len(ns), K, R]``: exact mean over all ``n``-subsets of the BoN pick's values.

    Sort a row by reward, best first. A uniform ``n``-subset has its best response at sorted
    position ``>= j`` with probability ``h(N - j) = C(N - j, n) / C(N, n)``, so position ``j``
    (without ties) is the pick with probability ``h(N - j) - h(N - j - 1)``. A tie level
    spanning positions ``[a, e)`` gets the telescoped sum ``h(N - a) - h(N - e)``, split evenly
    by the uniform tie-break, which is the same as giving each position its own weight and every
    member the level's mean value. ``NaN`` rewards count as ``-inf``.
    """
    n_max = reward_RxN.shape[-1]
    r = np.where(np.isnan(reward_RxN), -np.inf, reward_RxN)
    order = np.argsort(-r, axis=-1, kind="stable")
    r_s = np.take_along_axis(r, order, axis=-1)
    values_s = np.take_along_axis(values_KxRxN, order[None], axis=-1)
    if (r_s[:, 1:] == r_s[:, :-1]).any():
        a, e = _tie_levels(r_s)
        cum = np.concatenate([np.zeros_like(values_s[..., :1]), np.cumsum(values_s, -1)], -1)
        a3, e3 = np.broadcast_to(a, values_s.shape), np.broadcast_to(e, values_s.shape)
        level_sum = np.take_along_axis(cum, e3, -1) - np.take_along_axis(cum, a3, -1)
        values_s = level_sum / (e - a)
    weights_NxJ = np.empty((n_max, len(ns)))
    for j, n in enumerate(ns):
        h = _binomial_ratio_table(n_max, n)
        weights_NxJ[:, j] = h[n_max - np.arange(n_max)] - h[n_max - 1 - np.arange(n_max)]
    return np.moveaxis(values_s @ weights_NxJ, -1, 0)


def _majority_subset_means(
    ids_RxN: np.ndarray,
    parsed_RxN: np.ndarray,
    values_KxRxN: np.ndarray,
    ns: Sequence[int],
    num_subsets: int,
    rng: np.random.Generator,
):
    """``[len(ns), K, R]``: majority-vote pick's values averaged over random nested subsets.

    Each subset is the first ``n`` entries of a uniform random permutation of the row. Walking
    the permutation, ``c_j`` = votes for response ``j``'s answer among parsed responses at
    positions ``<= j`` (0 if unparsed); the leader after ``n`` steps is the *first* response to
    reach the running maximum of ``c``. Because the order within the subset is uniformly random,
    the first tied answer to reach the top count is uniform among the tied answers, and the
    response that brings it there is uniform among that answer's responses: the same law as
    :func:`select_majority` on the subset, for every ``n`` at once.
    """
    num_rows, n_max = ids_RxN.shape
    pos = np.arange(n_max, dtype=np.int32)
    row_base = (np.arange(num_rows, dtype=np.int64) * n_max)[:, None]
    unparsed = int(ids_RxN.max(initial=0)) + 1  # a code no answer has; sorts after all of them
    key_dtype = np.int32 if (unparsed + 1) * n_max < 2**31 else np.int64
    code_flat = np.where(parsed_RxN, ids_RxN, unparsed).astype(key_dtype).ravel() * n_max
    rows = np.arange(num_rows)[:, None]
    out = np.zeros((len(ns), values_KxRxN.shape[0], num_rows))
    last = np.asarray(ns) - 1
    for _ in range(num_subsets):
        perm = rng.permuted(np.broadcast_to(pos, (num_rows, n_max)), axis=-1)
        flat = row_base + perm
        key_s = np.sort(code_flat[flat] + pos, axis=-1)  # by answer, then by position
        code_s, pos_s = np.divmod(key_s, n_max)
        new = np.ones_like(code_s, dtype=bool)
        new[:, 1:] = code_s[:, 1:] != code_s[:, :-1]
        start = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
        votes = np.empty(num_rows * n_max, key_dtype)
        votes[row_base + pos_s] = np.where(code_s == unparsed, 0, pos - start + 1)
        votes = votes.reshape(num_rows, n_max)
        best_before = np.maximum.accumulate(votes, axis=-1)
        record = np.ones_like(new)
        record[:, 1:] = votes[:, 1:] > best_before[:, :-1]
        leader = np.maximum.accumulate(np.where(record, pos, 0), axis=-1)
        picked = perm[rows, leader[:, last]]  # [R, len(ns)] original indices
        out += np.moveaxis(values_KxRxN[:, rows, picked], -1, 0)
    return out / num_subsets


def subsample_curves(
    samples_df: pd.DataFrame,
    greedy_df: pd.DataFrame,
    *,
    ns: Sequence[int],
    num_subsets: int,
    seed: int,
) -> pd.DataFrame:
    """Accuracy, selected log-likelihood, length, parse rate and pass@N of every rule vs N.

    For each (model, task, seed), each ``N`` in ``ns`` and each rule in :data:`RULES`, the
    quantity of the paper's protocol is the average over random ``N``-subsets (drawn without
    replacement from the prompt's ``N_max`` responses) of the rule's pick, then over prompts:

    .. math:: \\mathrm{acc}(N) = \\frac1P \\sum_{x}\\ \\mathbb E_{I \\subset [N_{\\max}],\\,|I|=N}
              \\mathbf 1[\\hat y_I(x)\\ \\text{correct}].

    * BoN rules (``bon_*``): the subset average is computed **exactly**, over all
      ``C(N_max, N)`` subsets (the ``num_subsets -> inf`` limit of the paper's subsampling, with
      no Monte-Carlo noise), from the sorted rewards and binomial ratios. Ties between rewards
      are split uniformly, as :func:`select_bon` does.
    * ``majority``: ``num_subsets`` random subsets per (seed, N), nested across ``N`` (the first
      ``N`` entries of one uniform permutation per subset), with :func:`select_majority`'s law.
    * ``pass_at_n``: exact, :func:`pass_at_k` on the ``N_max`` responses.

    At ``N = N_max`` every rule sees the full set. Greedy columns average ``greedy_df`` over the
    group's prompts; ``lift`` is :func:`relative_lift` (NaN when greedy accuracy is 0) and
    ``abs_lift`` :func:`absolute_lift`. Numpy only; about 30 s on 2 CPU cores for
    6 models x 6 tasks x 10 seeds x 256 prompts x 64 samples with ``num_subsets = 16``.

    Args:
      samples_df: the ``samples.csv`` frame (module docstring); ``N_max`` responses per prompt.
      greedy_df: the ``greedy.csv`` frame; must cover every sampled (model, task, prompt_id).
      ns: distinct subset sizes, each in ``[1, N_max]``.
      num_subsets: random subsets per (seed, N) for majority vote, ``>= 1``.
      seed: seed of the majority-vote subsets (``np.random.default_rng(seed)``).

    Returns:
      DataFrame with columns :data:`CURVE_COLUMNS`, one row per (model, task, seed, rule,
      num_samples); accuracies, parse rate and pass@N are fractions in [0, 1]; ``sum_logprob``
      and ``num_tokens`` are means over prompts of the picked response's values.

    References:
      Huang et al. (2025), App. A.1 (BoN for N < 50 by subsampling the 50); Chen et al. (2021).
    """
    grid = _Grid(samples_df)
    _check_columns(greedy_df, GREEDY_COLUMNS, "greedy_df")
    ns = tuple(int(n) for n in ns)
    if not ns or any(not 1 <= n <= grid.n_max for n in ns) or len(set(ns)) != len(ns):
        raise ValueError(f"ns must be distinct sizes in [1, N_max={grid.n_max}], got {ns}")
    if int(num_subsets) < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    greedy = _greedy_by_group(grid, greedy_df)

    values_KxRxN = np.stack(
        [
            grid.rows(grid.correct).astype(np.float64),
            grid.rows(grid.fields["sum_logprob"]),
            grid.rows(grid.fields["num_tokens"]),
            grid.rows(grid.parsed).astype(np.float64),
        ]
    )
    per_rule = {
        rule: _bon_subset_means(sign * grid.rows(grid.fields[column]), values_KxRxN, ns)
        for rule, (column, sign) in _BON_RULES.items()
    }
    per_rule["majority"] = _majority_subset_means(
        grid.rows(grid.answer_ids),
        grid.rows(grid.parsed),
        values_KxRxN,
        ns,
        int(num_subsets),
        np.random.default_rng(int(seed)),
    )
    mask = grid.prompt_mask
    num_groups, p_max = mask.shape

    def prompt_mean(x_R: np.ndarray) -> np.ndarray:
        return np.where(mask, x_R.reshape(num_groups, p_max), 0.0).sum(axis=-1) / grid.num_prompts

    num_correct = grid.correct.sum(axis=-1)
    frames = []
    for rule, means in per_rule.items():
        for j, n in enumerate(ns):
            acc, lp, tok, parse = (prompt_mean(x) for x in means[j])
            frames.append(
                grid.keys.assign(
                    rule=rule,
                    num_samples=n,
                    num_prompts=grid.num_prompts,
                    accuracy=acc,
                    sum_logprob=lp,
                    num_tokens=tok,
                    parse_rate=parse,
                    pass_at_n=prompt_mean(pass_at_k(num_correct, grid.n_max, n)),
                )
            )
    curves = pd.concat(frames, ignore_index=True).merge(greedy, on=_GROUP, how="left")
    curves["lift"] = relative_lift(curves["accuracy"], curves["greedy_accuracy"])
    curves["abs_lift"] = absolute_lift(curves["accuracy"], curves["greedy_accuracy"])
    order = {r: i for i, r in enumerate(RULES)}
    curves = curves.sort_values(
        ["model", "task", "seed", "rule", "num_samples"], key=_rule_key(order), kind="stable"
    )
    return curves[list(CURVE_COLUMNS)].reset_index(drop=True)


def _rule_key(order: dict[str, int]):
    def key(col: pd.Series) -> pd.Series:
        return col.map(order) if col.name == "rule" else col

    return key


def _greedy_by_group(grid: _Grid, greedy_df: pd.DataFrame) -> pd.DataFrame:
    greedy = greedy_df[["model", "task", "prompt_id", "sum_logprob", "num_tokens", "correct"]]
    if greedy.duplicated(["model", "task", "prompt_id"]).any():
        raise ValueError("greedy_df must hold one row per (model, task, prompt_id)")
    joined = grid.prompts.merge(greedy, on=["model", "task", "prompt_id"], how="left")
    missing = joined["correct"].isna()
    if missing.any():
        row = joined.loc[missing, ["model", "task", "prompt_id"]].iloc[0].tolist()
        raise ValueError(f"greedy_df has no row for sampled (model, task, prompt_id) = {row}")
    by = joined.groupby(_GROUP, sort=False)
    return pd.DataFrame(
        {
            "greedy_accuracy": by["correct"].mean().astype(np.float64),
            "greedy_sum_logprob": by["sum_logprob"].mean(),
            "greedy_num_tokens": by["num_tokens"].mean().astype(np.float64),
        }
    ).reset_index()


# ----------------------------------------------------------------------------- claims table


def _saturation_n(ns: np.ndarray, values: np.ndarray, base: float, fraction: float) -> float:
    """Smallest N whose gain over ``base`` reaches ``fraction`` of the gain at the largest N."""
    gain = values[-1] - base
    if not np.isfinite(gain) or gain <= 0:
        return float("nan")
    return float(ns[np.argmax(values - base >= fraction * gain)])


def _within_prompt_auroc(grid: _Grid) -> pd.DataFrame:
    """Per (model, task): mean over (seed, prompt) of the AUROC of sum_logprob for correctness.

    This is the signal BoN uses (it compares responses to the *same* prompt); the pooled AUROC
    also credits the model for being surer on easier prompts. Prompts whose responses are all
    correct or all wrong are skipped (``NaN`` if none remain).
    """
    row = _row_auroc(grid.rows(grid.fields["sum_logprob"]), grid.rows(grid.correct))
    row = row.reshape(grid.prompt_mask.shape)
    ok = grid.prompt_mask & np.isfinite(row)
    per_g = pd.DataFrame(
        {
            "model": grid.keys["model"],
            "task": grid.keys["task"],
            "total": np.where(ok, row, 0.0).sum(axis=-1),
            "count": ok.sum(axis=-1),
        }
    )
    sums = per_g.groupby(["model", "task"], sort=False)[["total", "count"]].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return (sums["total"] / sums["count"].where(sums["count"] > 0)).rename(
            "auroc_within_prompt"
        )


def summarize(
    curves_df: pd.DataFrame,
    samples_df: pd.DataFrame,
    greedy_df: pd.DataFrame,
    *,
    saturation: float = 0.9,
) -> pd.DataFrame:
    """The paper's empirical claims (EXPERIMENTS §5.2, §9) checked per (model, task).

    Columns (accuracies are fractions, lifts in %, seed-averaged at ``N_max`` = the largest
    ``num_samples`` in ``curves_df``):

    * ``n_max``, ``num_seeds``, ``greedy_accuracy``, ``greedy_parse_rate``,
      ``greedy_sum_logprob``;
    * ``sample_accuracy``, ``sample_parse_rate``, ``sample_num_tokens``: one temperature-1 sample
      (exact mean over all responses; = N = 1);
    * ``acc_<rule>``, ``lift_<rule>`` for every rule in :data:`RULES`; ``pass_at_nmax``;
    * ``bon_beats_sample``, ``bon_beats_greedy``: BoN-sum accuracy at ``N_max`` above a single
      sample (claim 2a, "every case") / above greedy (claim 2b, "often");
    * ``loglik_spearman``, ``loglik_monotone_frac``: Spearman correlation of the BoN-sum
      selected ``sum_logprob`` with N, and the fraction of consecutive N steps where it does not
      decrease (Fig. 4: rises with N);
    * ``saturation_n_acc``, ``saturation_n_loglik``: smallest N in the grid reaching
      ``saturation`` (default 90 %) of the N = 1 -> N_max gain of BoN-sum (NaN without a gain;
      paper: ~10–20);
    * ``auroc``, ``auroc_within_prompt``, ``median_gap``, ``dominance_gap``: sum_logprob of T=1
      responses vs correctness (claim 1: correct responses are likelier), pooled, averaged within
      prompts, median difference (nats) and :func:`stochastic_dominance_gap`;
    * ``bon_sum_num_tokens``, ``bon_mean_num_tokens``, ``tokens_spearman_sum``,
      ``sum_picks_shorter``: length of the BoN-sum / length-normalized picks at ``N_max``, the
      Spearman correlation of the BoN-sum pick's length with N, and whether BoN-sum picks
      shorter responses than length-normalized BoN (failure mode 3b).

    Args:
      curves_df: output of :func:`subsample_curves` (must contain rule ``bon_sum``).
      samples_df: the ``samples.csv`` frame.
      greedy_df: the ``greedy.csv`` frame.
      saturation: fraction of the gain defining the saturation N, in (0, 1].

    Returns:
      DataFrame, one row per (model, task) in ``curves_df`` order.
    """
    _check_columns(curves_df, CURVE_COLUMNS, "curves_df")
    _check_columns(samples_df, SAMPLE_COLUMNS, "samples_df")
    _check_columns(greedy_df, GREEDY_COLUMNS, "greedy_df")
    if not 0 < saturation <= 1:
        raise ValueError(f"saturation must lie in (0, 1], got {saturation}")
    by_seed = curves_df.groupby(["model", "task", "rule", "num_samples"], sort=False)
    mean = by_seed[["accuracy", "sum_logprob", "num_tokens", "pass_at_n"]].mean().reset_index()
    within = _within_prompt_auroc(_Grid(samples_df))
    samples_by = dict(iter(samples_df.groupby(["model", "task"], sort=False)))
    greedy_by = dict(iter(greedy_df.groupby(["model", "task"], sort=False)))
    rows = []
    for (model, task), cur in mean.groupby(["model", "task"], sort=False):
        smp = samples_by[(model, task)]
        grd = greedy_by[(model, task)]
        grd = grd[grd["prompt_id"].isin(smp["prompt_id"].unique())]
        n_max = int(cur["num_samples"].max())
        at_max = cur[cur["num_samples"] == n_max].set_index("rule")
        bon = cur[cur["rule"] == "bon_sum"].sort_values("num_samples")
        ns = bon["num_samples"].to_numpy(np.float64)
        acc_n, lp_n = bon["accuracy"].to_numpy(), bon["sum_logprob"].to_numpy()
        lp, y = smp["sum_logprob"].to_numpy(np.float64), smp["correct"].to_numpy()
        greedy_acc = float(grd["correct"].mean())
        sample_acc = float(smp["correct"].mean())
        row: dict[str, Any] = {
            "model": model,
            "task": task,
            "n_max": n_max,
            "num_seeds": int(smp["seed"].nunique()),
            "greedy_accuracy": greedy_acc,
            "greedy_parse_rate": float(grd["parsed"].mean()),
            "greedy_sum_logprob": float(grd["sum_logprob"].mean()),
            "sample_accuracy": sample_acc,
            "sample_parse_rate": float(smp["parsed"].mean()),
            "sample_num_tokens": float(smp["num_tokens"].mean()),
        }
        for rule in RULES:
            acc = float(at_max.loc[rule, "accuracy"]) if rule in at_max.index else float("nan")
            row[f"acc_{rule}"] = acc
            row[f"lift_{rule}"] = float(relative_lift(acc, greedy_acc))
        bon_acc = row["acc_bon_sum"]
        steps = np.diff(lp_n)
        row.update(
            pass_at_nmax=float(at_max["pass_at_n"].iloc[0]),
            bon_beats_sample=bool(bon_acc > sample_acc),
            bon_beats_greedy=bool(bon_acc > greedy_acc),
            loglik_spearman=spearman(ns, lp_n),
            loglik_monotone_frac=float(np.mean(steps >= 0)) if steps.size else float("nan"),
            saturation_n_acc=_saturation_n(ns, acc_n, sample_acc, saturation),
            saturation_n_loglik=_saturation_n(ns, lp_n, float(lp.mean()), saturation),
            auroc=auroc(lp, y),
            auroc_within_prompt=float(within.loc[(model, task)]),
            median_gap=float(quantile_gap(lp, y, quantiles=(0.5,))[0]),
            dominance_gap=stochastic_dominance_gap(lp, y),
            bon_sum_num_tokens=float(at_max.loc["bon_sum", "num_tokens"]),
            bon_mean_num_tokens=float(at_max.loc["bon_mean", "num_tokens"])
            if "bon_mean" in at_max.index
            else float("nan"),
            tokens_spearman_sum=spearman(ns, bon["num_tokens"].to_numpy()),
        )
        row["sum_picks_shorter"] = bool(row["bon_sum_num_tokens"] < row["bon_mean_num_tokens"])
        rows.append(row)
    return pd.DataFrame(rows)

"""The exact sequence mode ``y*`` of an LM per prompt, and a policy's mass ``pi(y*|x)`` on it.

Shared by the LM experiments: ``lm_inference`` (the ``mode`` rule), ``lm_sft`` and ``lm_rlhf``
(the mass a sharpened policy moves onto the base model's ``y*``, the target of Huang et al.,
ICLR 2025, §1.3). The search is :func:`sharpen.mode_finder.find_modes` (best-first, certified,
EOS completion) on :func:`sharpen.lm.ar_adapter.lm_ar_model`, over responses of at most
``max_new_tokens`` tokens (EOS included). It is exact only when it finishes within its budget;
on 49k-token vocabularies with long responses it cannot, so the experiments run it for char
models only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sharpen.lm.ar_adapter import lm_ar_model
from sharpen.lm.batching import bucket_length, left_pad
from sharpen.lm.config import LMConfig
from sharpen.lm.scorer import score
from sharpen.mode_finder import find_modes

#: Columns of :func:`search_modes`.
SEARCH_COLUMNS = (
    "prompt_id", "found", "exact", "expansions", "mode_logprob", "num_tokens", "response_ids",
    "text",
)  # fmt: skip
#: Columns of :func:`certified_modes` (``modes.csv`` of ``lm_sft`` / ``lm_rlhf``).
MODE_COLUMNS = ("task", "prompt_id", "exact", "response_ids", "mode_logprob", "correct")
#: Prefixes per device call of the search (fixes its compiled batch shape).
SEARCH_BATCH = 64
_BUCKET = 16  # prompt padding of the scoring calls


def search_modes(
    params: Any,
    prompt_ids: Sequence[Sequence[int]],
    *,
    cfg: LMConfig,
    tokenizer: Any,
    max_new_tokens: int,
    budget: int,
) -> pd.DataFrame:
    """Best-first search for ``argmax_y log pi(y|x)`` of every prompt, one row per prompt.

    Args:
      params: model parameters.
      prompt_ids: ``B`` unpadded prompts (token ids, BOS included).
      cfg: the model's config.
      tokenizer: gives ``eos_id``, ``pad_id`` and ``decode``.
      max_new_tokens: the horizon ``H`` (responses of at most ``H`` tokens, EOS included).
      budget: node expansions per prompt.

    Returns:
      :data:`SEARCH_COLUMNS`: ``found`` (a complete sequence was reached), ``exact`` (found and
      certified: the search finished), ``expansions``, ``mode_logprob`` (of the best sequence
      found; ``-inf`` when none), ``num_tokens`` (EOS counted), ``response_ids`` (JSON, EOS
      included) and ``text`` (decoded, EOS stripped) of the best sequence found (the
      lexicographically first of tied modes; empty when none).
    """
    tok = tokenizer
    rows = []
    for p, ids in enumerate(prompt_ids):
        ar = lm_ar_model(
            params,
            np.asarray(ids, np.int32),
            cfg=cfg,
            horizon=max_new_tokens,
            eos_id=tok.eos_id,
            pad_id=tok.pad_id,
        )
        res = find_modes(
            ar, node_budget=budget, batch_size=SEARCH_BATCH, eos_id=tok.eos_id, pad_id=tok.pad_id
        )
        found = res.sequences.shape[0] > 0
        seq = res.sequences[0] if found else np.zeros((0,), np.int32)
        ends = np.flatnonzero(seq == tok.eos_id)
        length = int(ends[0]) + 1 if ends.size else int(seq.size)
        rows.append(
            {
                "prompt_id": p,
                "found": int(found),
                "exact": int(res.exact and found),
                "expansions": int(res.expansions),
                "mode_logprob": float(res.logprob),
                "num_tokens": length,
                "response_ids": json.dumps(seq[:length].tolist()),
                "text": tok.decode(seq[: length - int(bool(ends.size))].tolist()),
            }
        )
    return pd.DataFrame(rows, columns=list(SEARCH_COLUMNS))


def certified_modes(
    params: Any,
    prompt_ids: Sequence[Sequence[int]],
    *,
    cfg: LMConfig,
    tokenizer: Any,
    max_new_tokens: int,
    budget: int,
    task: str,
    grade: Callable[[str, int], bool],
) -> pd.DataFrame:
    """:func:`search_modes`, keeping only certified modes: the ``modes.csv`` rows.

    Args:
      params, prompt_ids, cfg, tokenizer, max_new_tokens, budget: as in :func:`search_modes`.
      task: the ``task`` column.
      grade: ``grade(text, prompt_id)``, whether the response text is correct.

    Returns:
      :data:`MODE_COLUMNS`, one row per prompt; where the budget ran out (``exact = 0``: left
      out of the mode metrics) ``response_ids`` is ``[]``, ``mode_logprob`` NaN, ``correct`` 0.
    """
    found = search_modes(
        params, prompt_ids, cfg=cfg, tokenizer=tokenizer, max_new_tokens=max_new_tokens,
        budget=budget,
    )  # fmt: skip
    rows = []
    for r in found.itertuples():
        exact = bool(r.exact)
        rows.append(
            {
                "task": task,
                "prompt_id": r.prompt_id,
                "exact": int(exact),
                "response_ids": r.response_ids if exact else "[]",
                "mode_logprob": r.mode_logprob if exact else math.nan,
                "correct": int(exact and grade(r.text, r.prompt_id)),
            }
        )
    return pd.DataFrame(rows, columns=list(MODE_COLUMNS))


def mode_logprobs(
    params: Any,
    prompt_ids: Sequence[Sequence[int]],
    modes: pd.DataFrame,
    *,
    cfg: LMConfig,
    pad_id: int,
    max_new_tokens: int,
    rows: int | None = None,
) -> np.ndarray:
    """``[K]`` ``log pi(y*|x)`` under ``params`` of the ``K`` certified modes of ``modes``.

    Args:
      params: the policy's parameters.
      prompt_ids: the prompts that ``modes["prompt_id"]`` indexes (unpadded ids).
      modes: a :func:`certified_modes` frame (rows with ``exact == 1`` are scored).
      cfg: the model's config.
      pad_id: the tokenizer's pad id.
      max_new_tokens: the horizon of the search (the response width).
      rows: prompts per :func:`~sharpen.lm.scorer.score` call (``None``: all in one); the last
        call is padded by repeating its final prompt, so every call has one shape.

    Returns:
      ``[K]`` float64 log-probabilities (EOS included), in the order of ``modes``.
    """
    found = modes[modes["exact"] == 1]
    k = len(found)
    if not k:
        return np.zeros((0,), np.float64)
    tokens_KxM = np.full((k, max_new_tokens), pad_id, np.int32)
    lengths_K = np.zeros((k,), np.int32)
    for i, ids in enumerate(found["response_ids"]):
        ids = json.loads(ids)
        tokens_KxM[i, : len(ids)] = ids
        lengths_K[i] = len(ids)
    prompts = [prompt_ids[p] for p in found["prompt_id"]]
    plen = bucket_length(max(map(len, prompts)), _BUCKET)
    per_call = k if rows is None else min(max(1, rows), k)
    logp = []
    for start in range(0, k, per_call):
        idx = list(range(start, min(start + per_call, k)))
        idx += [idx[-1]] * (per_call - len(idx))
        batch = left_pad([prompts[i] for i in idx], pad_id=pad_id, bucket=_BUCKET, min_length=plen)
        got = score(
            params, batch.tokens, batch.mask, tokens_KxM[idx, None], lengths_K[idx, None], cfg=cfg
        )
        logp.append(np.asarray(got.sum_logprob, np.float64)[: min(per_call, k - start), 0])
    return np.concatenate(logp)


def mode_mass(logprob_K: np.ndarray) -> dict[str, float]:
    """``mode_mass`` (mean ``pi(y*|x)``) and ``mode_logprob`` (mean ``log pi(y*|x)``); NaN when
    no mode was certified.

    .. math:: \\mathrm{mass} = \\frac1K \\sum_{k} \\pi(y^\\star_k \\mid x_k)

    >>> mode_mass(np.log(np.array([0.5, 0.25])))
    {'mode_mass': 0.375, 'mode_logprob': -1.0397207708399179}
    """
    logprob_K = np.asarray(logprob_K, np.float64)
    if not logprob_K.size:
        return {"mode_mass": math.nan, "mode_logprob": math.nan}
    return {
        "mode_mass": float(np.exp(logprob_K).mean()),
        "mode_logprob": float(logprob_K.mean()),
    }


def bon_mode_logprob(logprob_K: np.ndarray, n: int) -> np.ndarray:
    """``[K]`` log-probability that best-of-``n`` by ``log pi_base`` outputs the mode ``y*``.

    BoN keeps the draw of highest ``log pi_base``, so it outputs ``y*`` (the argmax) iff one of
    its ``n`` i.i.d. draws is ``y*`` (log-prob ties aside):

    .. math:: \\log\\Pr[\\hat y = y^\\star \\mid x] = \\log\\big(1 - (1 - \\pi_{\\rm base}(y^\\star|x))^n\\big),

    computed in log space (``log n + log pi`` where ``pi < e^-20``, first order, relative error
    below ``n e^-20``).

    Args:
      logprob_K: ``[K]`` ``log pi_base(y*|x)``.
      n: draws per output (``>= 1``).

    Returns:
      ``[K]`` float64 log-probabilities.

    >>> np.exp(bon_mode_logprob(np.log(np.array([0.5])), 2))
    array([0.75])
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lp_K = np.asarray(logprob_K, np.float64)
    tiny = lp_K < -20.0
    safe_K = np.where(tiny, -20.0, lp_K)
    exact_K = np.log(-np.expm1(n * np.log1p(-np.exp(safe_K))))
    return np.where(tiny, np.log(n) + lp_K, exact_K)

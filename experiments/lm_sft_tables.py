"""LM SFT-Sharpening: the run's tables (lifts, Table-1 checkpoints, amortization) and its
``summary.csv`` checks.

Used by ``experiments/lm_sft.py``'s ``run``; see the ``lm_sft`` module docstring for the
columns and the checks.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from experiments import io
from experiments.lm_sft_units import PASS_KS
from sharpen import selection

if TYPE_CHECKING:
    from experiments.lm_sft import Config


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


_row = functools.partial(io.summary_row, "lm_sft")  # lm_sft.NAME (lm_sft imports this module)


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

"""LM inference-time grid: the ``summary.csv`` rows (the claims of EXPERIMENTS §9).

Used by ``experiments/lm_inference.py``'s ``run``; see its module docstring.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from experiments import io

if TYPE_CHECKING:
    from experiments.lm_inference import Config

_SCORER_TOL = 0.01  # nats; sampler (KV cache) vs scorer (full forward) float32 sums


_row = functools.partial(io.summary_row, "lm_inference")  # lm_inference.NAME (it imports this)


def _check(cfg: Config, ok: bool) -> str:
    return ("pass" if ok else "fail") if cfg.strict else "info"


def summary_rows(
    cfg: Config,
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    modes: pd.DataFrame,
    skipped: Sequence[str],
    off_grid: Sequence[str] = (),
) -> list[dict]:
    """The claims of EXPERIMENTS §9 (module docstring) as summary rows; the grid-wide rows
    leave out the models ``off_grid`` (the Fig. 5 countdown model has its own cell rows)."""
    rows = []
    rescored = samples.dropna(subset=["scorer_sum_logprob"])
    if len(rescored):
        gap = float(np.max(np.abs(rescored["sum_logprob"] - rescored["scorer_sum_logprob"])))
        rows.append(
            _row(
                "max |sampler base log-prob sum - scorer sum_logprob| over the "
                f"{len(rescored)} re-scored responses (nats)",
                f"<= {_SCORER_TOL:g}",
                gap,
                verdict="pass" if gap <= _SCORER_TOL else "fail",
            )
        )
    for c in cells.itertuples():
        cell = f"{c.model} / {c.task}"
        rows.append(
            _row(
                f"{cell}: BoN-sum@{c.n_max} accuracy {c.acc_bon_sum:.3f} - single T=1 sample "
                f"{c.sample_accuracy:.3f} (greedy {c.greedy_accuracy:.3f}, BoN-mean "
                f"{c.acc_bon_mean:.3f}, majority {c.acc_majority:.3f}, pass@{c.n_max} "
                f"{c.pass_at_nmax:.3f})",
                "> 0 (paper: every cell)",
                float(c.acc_bon_sum - c.sample_accuracy),
                verdict=_check(cfg, c.acc_bon_sum > c.sample_accuracy),
            )
        )
        rows.append(
            _row(
                f"{cell}: % lift of BoN-sum@{c.n_max} over greedy",
                "often > 0 (paper: 24/42 cells)",
                float(c.lift_bon_sum),
                verdict="info",
            )
        )
        rows.append(
            _row(
                f"{cell}: AUROC of log pi_base for correctness, T=1 samples (within-prompt "
                f"{c.auroc_within_prompt:.3f}; median gap correct - wrong {c.median_gap:.2f} nats)",
                "> 0.5",
                float(c.auroc),
                verdict=_check(cfg, c.auroc > 0.5) if np.isfinite(c.auroc) else "info",
            )
        )
        rows.append(
            _row(
                f"{cell}: fraction of N steps where the BoN-sum pick's log pi_base rises "
                f"(Spearman {c.loglik_spearman:.2f}; 90% of the gain by N = "
                f"{c.saturation_n_loglik:g}, accuracy by N = {c.saturation_n_acc:g})",
                "1 (Fig. 4)",
                float(c.loglik_monotone_frac),
                verdict=_check(cfg, c.loglik_monotone_frac == 1.0),
            )
        )
        rows.append(
            _row(
                f"{cell}: BoN-sum pick length (tokens) at N_max minus BoN-mean pick length "
                f"(T=1 mean {c.sample_num_tokens:.1f}; Spearman(N, BoN-sum length) "
                f"{c.tokens_spearman_sum:.2f})",
                "< 0 if summed log-prob favours short answers",
                float(c.bon_sum_num_tokens - c.bon_mean_num_tokens),
                verdict="info",
            )
        )
    rows += _grid_rows(cfg, cells[~cells["model"].isin(off_grid)])
    rows += _mode_rows(modes)
    if skipped:
        rows.append(
            _row(
                "exact mode skipped for real models (49k-token vocabulary, long responses: "
                f"certified search cannot finish): {', '.join(skipped)}",
                "n/a",
                float(len(skipped)),
                verdict="info",
            )
        )
    return rows


def _grid_rows(cfg: Config, cells: pd.DataFrame) -> list[dict]:
    if cells.empty:
        return []
    beats = cells["acc_bon_sum"] > cells["sample_accuracy"]
    rows = [
        _row(
            "fraction of cells where BoN-sum@N_max beats a single T=1 sample",
            "1 (paper: every cell)",
            float(beats.mean()),
            verdict=_check(cfg, bool(beats.all())),
        )
    ]
    win = cells.assign(win=cells["acc_bon_sum"] > cells["greedy_accuracy"])
    missing = []
    groups = 0
    for axis in ("model", "task"):
        for name, sub in win.groupby(axis, sort=False):
            groups += 1
            if not sub["win"].any():
                missing.append(f"{axis} {name}")
    rows.append(
        _row(
            "rows and columns with >= 1 cell where BoN-sum@N_max beats greedy (without one: "
            f"{', '.join(missing) or 'none'})",
            "1 (paper: every row and column)",
            1.0 - len(missing) / groups,
            verdict=_check(cfg, not missing),
        )
    )
    rows.append(
        _row(
            "cells where BoN-sum@N_max beats greedy",
            "often (paper: 24/42)",
            float(win["win"].mean()),
            verdict="info",
        )
    )
    return rows


def _mode_rows(modes: pd.DataFrame) -> list[dict]:
    rows = []
    if modes.empty:
        return rows
    for (model, task), sub in modes.groupby(["model", "task"], sort=False):
        exact = sub[sub["exact"] == 1]
        acc = float(exact["correct"].mean()) if len(exact) else math.nan
        rows.append(
            _row(
                f"{model} / {task}: accuracy of the exact mode y* (certified on {len(exact)}/"
                f"{len(sub)} prompts; greedy = y* on {int(exact['greedy_is_mode'].sum())})",
                "rule 'mode'",
                acc,
                verdict="info",
            )
        )
    return rows

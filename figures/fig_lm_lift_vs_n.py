"""Figs. 1(b) and 3: % lift over greedy of BoN by summed log-prob vs N, one panel per task.

Reads ``lm_inference/`` (``metrics.csv``, else ``samples.csv`` + ``greedy.csv``). One line per
model (seed mean, error bars = standard error over seeds); the dotted line at 0 is greedy. The
legend gives each model's greedy accuracy, since relative lift explodes at low baselines; a
model with greedy accuracy 0 on a task has no relative lift and is left out of that panel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot, lm_figs
from figures.registry import FigureSpec, register

NAME = "fig_lm_lift_vs_n"
RULE = "bon_sum"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_lift_vs_n.png`` from ``runs_dir/lm_inference``."""
    curves = lm_figs.load_curves(runs_dir)
    curves = curves[curves["rule"] == RULE]
    stats = lm_figs.seed_stats(curves, "lift")
    greedy = curves.groupby(["model", "task"])["greedy_accuracy"].first()
    models, tasks = lm_figs.orders(runs_dir)
    colors = lm_figs.model_colors(models)
    fig, axes = lm_figs.panel_grid(len(tasks), ncols=3)
    for ax, task in zip(axes, tasks, strict=True):
        for model in models:
            sub = stats[(stats["model"] == model) & (stats["task"] == task)]
            if sub.empty or not np.isfinite(sub["mean"]).any():
                continue
            sub = sub.sort_values("num_samples")
            label = f"{model} (greedy {100 * greedy[(model, task)]:.0f}%)"
            ax.errorbar(
                sub["num_samples"],
                sub["mean"],
                yerr=sub["sem"],
                fmt="o-",
                ms=3,
                lw=1.5,
                capsize=2,
                color=colors[model],
                label=label,
            )
        ax.axhline(0.0, color="k", ls=":", lw=1)
        ax.set(xlabel="N (responses per prompt)", ylabel="% lift over greedy")
        ax.set_title(f"{task}: {lm_figs.RULE_LABELS[RULE]}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=(lm_figs.EXPERIMENT,), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

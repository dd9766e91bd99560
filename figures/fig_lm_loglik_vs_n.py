"""Fig. 4: mean sequence log-prob of the BoN (summed log-prob) choice vs N, one panel per task.

Reads ``lm_inference/`` (``metrics.csv``, else ``samples.csv`` + ``greedy.csv``). Solid: the
mean over prompts of ``log pi_base(y_BoN | x)`` (nats), seed mean with standard-error bars, one
colour per model; dashed, same colour: the mean log-prob of that model's greedy response. The
theory predicts the solid line rises with N (toward the sequence-level argmax).
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot, lm_figs
from figures.registry import FigureSpec, register

NAME = "fig_lm_loglik_vs_n"
RULE = "bon_sum"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_loglik_vs_n.png`` from ``runs_dir/lm_inference``."""
    curves = lm_figs.load_curves(runs_dir)
    curves = curves[curves["rule"] == RULE]
    stats = lm_figs.seed_stats(curves, "sum_logprob")
    greedy = curves.groupby(["model", "task"])["greedy_sum_logprob"].first()
    models, tasks = lm_figs.orders(runs_dir)
    colors = lm_figs.model_colors(models)
    fig, axes = lm_figs.panel_grid(len(tasks), ncols=3)
    for ax, task in zip(axes, tasks, strict=True):
        for model in models:
            sub = stats[(stats["model"] == model) & (stats["task"] == task)]
            if sub.empty:
                continue
            sub = sub.sort_values("num_samples")
            ax.errorbar(
                sub["num_samples"],
                sub["mean"],
                yerr=sub["sem"],
                fmt="o-",
                ms=3,
                lw=1.5,
                capsize=2,
                color=colors[model],
                label=f"{model}: BoN",
            )
            ax.axhline(greedy[(model, task)], color=colors[model], ls="--", lw=1)
        ax.plot([], [], "k--", lw=1, label="greedy (same colour)")
        ax.set(xlabel="N (responses per prompt)", ylabel="mean log π(y|x) of the choice (nats)")
        ax.set_title(f"{task}: {lm_figs.RULE_LABELS[RULE]}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=(lm_figs.EXPERIMENT,), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""Fig. 5: BoN by self-likelihood on countdown (the paper: one model fine-tuned on Game of 24).

Reads ``lm_inference/`` (``metrics.csv``, else ``samples.csv`` + ``greedy.csv``) and draws, for
each cell on a task of :data:`figures.lm_figs.OFF_GRID_TASKS` (the quick run: ``tiny[countdown]``,
the tiny model trained on the countdown corpus alone), one row of three panels:

* accuracy vs N of BoN by summed and by length-normalized log-prob, majority vote, and
  pass@N (the skyline), seed means with standard-error bars; dotted: greedy accuracy;
* mean ``log pi_base(y|x)`` of the BoN (sum) choice vs N; dashed: greedy's;
* histogram of ``log pi_base`` of the ``T = 1`` samples split by correctness, with the AUROC.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot, lm_figs
from figures.registry import FigureSpec, register
from sharpen import selection

NAME = "fig_lm_countdown"
_RULES = (("bon_sum", "tab:blue"), ("bon_mean", "tab:orange"), ("majority", "tab:green"))
_BINS = 30


def _errorbar(ax, stats, *, ls: str = "-", **kwargs) -> None:
    stats = stats.sort_values("num_samples")
    ax.errorbar(stats["num_samples"], stats["mean"], yerr=stats["sem"], fmt="o", ls=ls, ms=3,
                capsize=2, **kwargs)  # fmt: skip


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_countdown.png`` from ``runs_dir/lm_inference``; nothing (``[]``,
    with a note on stderr) when the run has no countdown cell (``countdown_preset=""``)."""
    cells = lm_figs.off_grid_cells(runs_dir)
    if not cells:
        print(
            f"{NAME}: {lm_figs.run_dir(runs_dir)} has no cell on the tasks "
            f"{lm_figs.OFF_GRID_TASKS} (lm_inference ran with countdown_preset=''); not drawn",
            file=sys.stderr,
        )
        return []
    curves = lm_figs.load_curves(runs_dir)
    samples = lm_figs.read_samples(runs_dir)
    fig, axes = lm_figs.panel_grid(3 * len(cells), ncols=3)
    for i, (model, task) in enumerate(cells):
        ax_acc, ax_ll, ax_hist = axes[3 * i : 3 * i + 3]
        cell = curves[(curves["model"] == model) & (curves["task"] == task)]
        for rule, color in _RULES:
            stats = lm_figs.seed_stats(cell[cell["rule"] == rule], "accuracy")
            label = lm_figs.RULE_LABELS[rule]
            _errorbar(ax_acc, stats.assign(mean=100 * stats["mean"], sem=100 * stats["sem"]),
                      color=color, label=label)  # fmt: skip
        skyline = lm_figs.seed_stats(cell[cell["rule"] == "bon_sum"], "pass_at_n")
        _errorbar(ax_acc, skyline.assign(mean=100 * skyline["mean"], sem=100 * skyline["sem"]),
                  color="k", ls="--", label="pass@N (skyline)")  # fmt: skip
        ax_acc.axhline(100 * cell["greedy_accuracy"].iloc[0], color="k", ls=":", label="greedy")
        ax_acc.set(xlabel="N (responses per prompt)", ylabel="accuracy (%)", xscale="log")
        ax_acc.set_title(f"{model} / {task}: accuracy vs N", fontsize=9)
        ax_acc.legend(fontsize=6)

        stats = lm_figs.seed_stats(cell[cell["rule"] == "bon_sum"], "sum_logprob")
        _errorbar(ax_ll, stats, color="tab:blue", label="BoN, log π (sum)")
        ax_ll.axhline(cell["greedy_sum_logprob"].iloc[0], color="k", ls="--", label="greedy")
        ax_ll.set(xlabel="N (responses per prompt)", ylabel="mean log π(y|x) of the choice",
                  xscale="log")  # fmt: skip
        ax_ll.set_title(f"{model} / {task}: selected log-likelihood", fontsize=9)
        ax_ll.legend(fontsize=6)

        sub = samples[(samples["model"] == model) & (samples["task"] == task)]
        logp = sub["sum_logprob"].to_numpy(np.float64)
        good = sub["correct"].to_numpy() != 0
        bins = np.histogram_bin_edges(logp, bins=_BINS)
        for mask, color, label in ((good, "tab:green", "correct"), (~good, "tab:red", "incorrect")):
            if mask.any():
                ax_hist.hist(logp[mask], bins=bins, density=True, alpha=0.45, color=color,
                             label=f"{label} ({int(mask.sum())})")  # fmt: skip
        ax_hist.set(xlabel="log π(y|x) of T = 1 samples (nats)", ylabel="density")
        ax_hist.set_title(f"AUROC {selection.auroc(logp, good):.2f}", fontsize=9)
        ax_hist.legend(fontsize=6)
        for ax in (ax_acc, ax_ll, ax_hist):
            ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=(lm_figs.EXPERIMENT,), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""Figs. 1(c) and 6: sequence log-prob of temperature-1 samples, correct vs incorrect.

Reads ``lm_inference/samples.csv``. One panel per (model, task) (rows = models, columns =
tasks, or only the pairs in ``PAIRS``), pooling every response of every seed: density
histograms of ``log pi_base(y|x)`` for correct (green) and incorrect (red, unparseable counted
as incorrect) responses, medians as vertical lines. The title gives the AUROC of log-prob for
correctness (0.5 = no signal; the paper reports none) and the number of responses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot, lm_figs
from figures.registry import FigureSpec, register
from sharpen import selection

NAME = "fig_lm_hist"
#: ``None``: every (model, task) of the run; else e.g. the paper's Fig. 6 pairs
#: ``(("Phi3.5-Mini", "MATH"), ("Phi3.5-Mini", "GSM8K"), ...)``.
PAIRS: tuple[tuple[str, str], ...] | None = None
_BINS = 40


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_hist.png`` from ``runs_dir/lm_inference/samples.csv``."""
    samples = lm_figs.read_samples(runs_dir)
    models, tasks = lm_figs.orders(runs_dir)
    pairs = PAIRS if PAIRS is not None else [(m, t) for m in models for t in tasks]
    by_pair = dict(iter(samples.groupby(["model", "task"], sort=False)))
    fig, axes = lm_figs.panel_grid(len(pairs), ncols=len(tasks) if PAIRS is None else 4)
    for ax, (model, task) in zip(axes, pairs, strict=True):
        sub = by_pair.get((model, task))
        if sub is None:
            ax.set_axis_off()
            continue
        logp = sub["sum_logprob"].to_numpy(np.float64)
        good = sub["correct"].to_numpy() != 0
        bins = np.histogram_bin_edges(logp, bins=_BINS)
        for mask, color, label in ((good, "tab:green", "correct"), (~good, "tab:red", "incorrect")):
            if mask.any():
                ax.hist(logp[mask], bins=bins, density=True, alpha=0.45, color=color, label=label)
                ax.axvline(np.median(logp[mask]), color=color, lw=1.2)
        score = selection.auroc(logp, good)
        ax.set_title(f"{model} / {task}: AUROC {score:.2f} (n={logp.size})", fontsize=8)
        ax.set(xlabel="log π(y|x) (nats)", ylabel="density")
        ax.legend(fontsize=6)
    fig.suptitle("Log-likelihood of T = 1 samples by correctness (lines: medians)", fontsize=10)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=(lm_figs.EXPERIMENT,), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

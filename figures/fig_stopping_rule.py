"""Lemma I.1: the stopping rule's expected draws and failure against their bounds (S5).

Reads ``s5/lemma_i1.csv``; every point must lie below the diagonal.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_stopping_rule"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    lemma = _plot.read(runs_dir, "s5", "lemma_i1.csv")
    fig, axes = _plot.plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (value, bound, title) in zip(
        axes,
        (
            ("expected_draws", "expected_draws_bound", "E[N_mu] vs (mu + 1/|y*|)/P*"),
            ("failure", "failure_bound", "P[y_hat not in y*] vs exp(-|y*| mu)"),
        ),
        strict=True,
    ):
        for tie, marker in ((False, "o"), (True, "x")):
            sub = lemma[lemma.tie == tie]
            sc = ax.scatter(
                sub[bound],
                sub[value],
                c=sub["mu_stop"],
                marker=marker,
                cmap="viridis",
                label="ties" if tie else "unique argmax",
            )
        lo = min(lemma[bound].min(), lemma[value][lemma[value] > 0].min())
        hi = lemma[bound].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="bound")
        ax.set(
            xscale="log", yscale="log", xlabel="bound", ylabel="exact (closed form)", title=title
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.colorbar(sc, ax=axes, label="mu_stop")
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s5",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""Fig-T1: samples to sharpen, m*, against 1/epsilon on the lower-bound family (S3, S4, S5).

Reads ``s3/mstar.csv``, ``s4/mstar.csv`` and ``s5/mstar.csv``. Expected slopes (THEORY §5.4):
2 for the lower bound and SFT-Sharpening, 1 for the adaptive versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_mstar_vs_eps"
CURVES = (
    ("s3", "bayes", "lower bound (Bayes learner)", "k", "o-"),
    ("s4", "sft", "SFT-Sharpening (best split)", "tab:blue", "s-"),
    ("s3", "bayes_adaptive", "adaptive lower bound", "0.5", "o--"),
    ("s5", "sft_adaptive", "adaptive SFT-Sharpening", "tab:orange", "^-"),
)


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    fig, ax = _plot.plt.subplots(figsize=(6.0, 4.5))
    for experiment, learner, label, color, style in CURVES:
        table = _plot.read(runs_dir, experiment, "mstar.csv")
        sel = table[(table.learner == learner) & (table.sweep == "eps") & (table.p == 1)]
        sel = sel.sort_values("epsilon", ascending=False)
        x = 1.0 / sel["epsilon"]
        yerr = [sel["m_star"] - sel["ci_low"], sel["ci_high"] - sel["m_star"]]
        ax.errorbar(
            x,
            sel["m_star"],
            yerr=yerr,
            fmt=style,
            color=color,
            capsize=3,
            label=f"{label}: {_plot.loglog_fit_label(x, sel['m_star'])}",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="1/epsilon",
        ylabel="m* (queries to sharpening error <= epsilon)",
    )
    ax.set_title("Thm 3.1 / 4.1 / D.1 / D.2: Delta = 16 eps, M = ceil(1 + C/eps), C = 2")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s3", "s4", "s5"), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""Fig-T2: m* against the coverage coefficient C_cov at fixed epsilon (S3, S4).

Reads ``s3/mstar.csv`` and ``s4/mstar.csv``; expected slope 1 for both (Thm 3.1, Thm 4.1).
The x-axis is the exact ``C_cov = 1 - Delta + Delta M / 2`` of each instance; points are
annotated with the family parameter C (``M = ceil(1 + C/eps)``) that the summary's slope uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_mstar_vs_c"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    fig, ax = _plot.plt.subplots(figsize=(6.0, 4.5))
    for experiment, learner, label, color in (
        ("s3", "bayes", "lower bound (Bayes learner)", "k"),
        ("s4", "sft", "SFT-Sharpening (best split)", "tab:blue"),
    ):
        table = _plot.read(runs_dir, experiment, "mstar.csv")
        sel = table[(table.learner == learner) & (table.sweep == "C")].sort_values("c")
        yerr = [sel["m_star"] - sel["ci_low"], sel["ci_high"] - sel["m_star"]]
        ax.errorbar(
            sel["c_cov"],
            sel["m_star"],
            yerr=yerr,
            fmt="o-",
            color=color,
            capsize=3,
            label=f"{label}: {_plot.loglog_fit_label(sel['c_cov'], sel['m_star'])}",
        )
        for c, m, cc in zip(sel["c"], sel["m_star"], sel["c_cov"], strict=True):
            if learner == "bayes":
                ax.annotate(
                    f"C={c:g}",
                    (cc, m),
                    textcoords="offset points",
                    xytext=(4, -12),
                    fontsize=7,
                )
    eps = table[table.sweep == "C"]["epsilon"].iloc[0]
    ax.set(xscale="log", yscale="log", xlabel="C_cov of the instance", ylabel="m*")
    ax.set_title(f"m* vs coverage at eps = {eps:g} (predicted slope 1)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s3", "s4"), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

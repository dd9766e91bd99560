"""The coverage term of Thm 4.1′: population error of the BoN law vs N / C_cov (S4).

Reads ``s4/coverage.csv``: exact ``P_x[pi^BoN_N(y*|x) < 1 - delta/2]`` for two-point (Markov
tight) and light-tailed (Markov loose) instances, against ``C_cov log(2/delta) / N``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_coverage_term"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    cov = _plot.read(runs_dir, "s4", "coverage.csv")
    fig, axes = _plot.plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (family, sub) in zip(axes, cov.groupby("family", sort=False), strict=False):
        for i, (_, g) in enumerate(sub.groupby("c_cov_target")):
            color = f"C{i}"
            ax.plot(
                g["n_over_c_cov"],
                g["error"],
                "o-",
                ms=3,
                color=color,
                label=f"C_cov={g['c_cov'].iloc[0]:.1f}",
            )
            ax.plot(g["n_over_c_cov"], g["markov_bound"], "--", color=color, alpha=0.7)
        ax.set(
            xscale="log", yscale="log", xlabel="N / C_cov", title=f"{family} (dashed: Markov bound)"
        )
        ax.set_ylim(1e-3, 1.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("P_x[BoN law puts < 1 - delta/2 on y*]")
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s4",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

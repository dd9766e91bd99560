"""S9 — Lemma J.5: the elliptic potential of linear softmax along XPO trajectories vs T.

Reads ``s9/metrics.csv`` (one row per d, seed and round t). Solid: mean cumulative potential over
seeds, one colour per d; dashed, same colour: the reference ``(d+1) log(T+1)``; dotted: Lemma F.2's
bound (dimension d+1, trace bound 8, ridge 1). Log x-axis, so O(d log T) is a straight line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_sec"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_sec.png`` from ``runs_dir/s9``."""
    table = _plot.read(runs_dir, "s9", "metrics.csv")
    fig, ax = _plot.plt.subplots(figsize=(6.5, 4.5))
    colors = _plot.plt.get_cmap("viridis")
    dims = sorted(table["d"].unique())
    for i, d in enumerate(dims):
        color = colors(i / max(len(dims) - 1, 1) * 0.85)
        by_t = table[table["d"] == d].groupby("t")
        t = by_t["potential"].mean().index.to_numpy(float)
        ax.plot(t, by_t["potential"].mean(), "-", color=color, lw=2, label=f"d={d}: potential")
        ax.plot(
            t, by_t["reference"].first(), "--", color=color, lw=1, label=f"d={d}: (d+1) log(T+1)"
        )
        ax.plot(t, by_t["bound_f2"].first(), ":", color=color, lw=1)
    ax.plot([], [], "k:", lw=1, label="Lemma F.2 bound")
    ax.set(xscale="log", xlabel="round T", ylabel="cumulative elliptic potential")
    ax.set_title("SEC potential of linear softmax along XPO (Example J.1)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s9",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

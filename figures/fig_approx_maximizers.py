"""S13 — Thm 4.1′: best-of-N draws N* to reach y*_gamma against C_cov,gamma, for gamma = 0, 0.5.

Reads ``s13/metrics.csv`` (one row per k and gamma). Left: N* against ``C_cov,gamma``. With
gamma = 0 the target is the unique argmax and every k sits at ``C_cov = 1/p_top``; with
gamma > 0 the k near-maximizers count, so ``C_cov,gamma`` and ``N*`` fall together along the
dotted slope-1 reference ``N = C log(1/delta)`` (Prop C.1). Right: the same N* against k.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_approx_maximizers"
_STYLE = {0: ("s", "none", "k", 11), 1: ("o", None, "tab:blue", 6)}  # marker, face, colour, size


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_approx_maximizers.png`` from ``runs_dir/s13``."""
    table = _plot.read(runs_dir, "s13", "metrics.csv")
    delta = float(table["delta"].iloc[0])
    fig, (ax, ax_k) = _plot.plt.subplots(1, 2, figsize=(10.0, 4.5))
    fig.subplots_adjust(wspace=0.3)
    for i, gamma in enumerate(sorted(table["gamma"].unique())):
        marker, face, color, size = _STYLE[min(i, 1)]
        sel = table[table["gamma"] == gamma].sort_values("k")
        c, n_star, k = (sel[col].to_numpy(float) for col in ("c_cov_gamma", "n_star", "k"))
        fit = "" if gamma == 0 else f", {_plot.loglog_fit_label(c, n_star)}"
        line = "" if gamma == 0 else "-"
        kw = {"color": color, "ms": size, "mfc": face}
        ax.plot(c, n_star, marker + line, label=f"gamma={gamma:g}{fit}", **kw)
        ax_k.plot(k, n_star, marker + "-", label=f"gamma={gamma:g}", **{**kw, "ms": 6})
        if gamma == 0:
            ax.annotate(
                f"gamma=0: k={int(k.min())}..{int(k.max())} all here",
                (c[0], n_star[0]),
                textcoords="offset points",
                xytext=(-10, 16),
                fontsize=7,
                ha="right",
                arrowprops={"arrowstyle": "->", "lw": 0.6},
            )
        else:
            for ki, ci, ni in zip(k, c, n_star, strict=True):
                ax.annotate(
                    f"k={ki:g}", (ci, ni), textcoords="offset points", xytext=(5, -10), fontsize=7
                )
    grid = _plot.np.geomspace(table["c_cov_gamma"].min() / 1.5, table["c_cov_gamma"].max() * 1.5)
    ax.plot(
        grid,
        grid * math.log(1.0 / delta),
        ":",
        color="gray",
        label=f"C log(1/delta), slope 1 (delta={delta:g})",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="C_cov,gamma = 1 / pi_base(y*_gamma)",
        ylabel="N* = min{N : pi_BoN_N(y*_gamma) >= 1 - delta}",
    )
    ax.set_title("N* tracks C_cov,gamma (predicted slope 1)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax_k.set(xscale="log", yscale="log", xlabel="k (near-maximizers)", ylabel="N*")
    ax_k.set_title("saving ~ k: exact argmax vs approximate maximizer", fontsize=10)
    ax_k.legend(fontsize=7)
    for a in (ax, ax_k):
        a.grid(True, which="both", alpha=0.3)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s13",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

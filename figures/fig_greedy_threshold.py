"""S2 — Prop 3.1: decoder success against pi(y*), with the greedy threshold at 1/2.

Reads ``s2/metrics.csv`` (one row per random tabular model). Left: the fraction of models whose
greedy / beam-2 / beam-4 / low-temperature output lies in the sequence argmax set, per bucket of
``pi(y*)`` (10 bins on [0, 1]); Prop 3.1 predicts greedy success 1 to the right of the dashed
line at 1/2 (for a unique argmax) and allows failures to its left. Right: models per bucket.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_greedy_threshold"
_METHODS = (
    ("greedy_ok", "greedy", "o", "k"),
    ("beam2_ok", "beam search, width 2", "s", "tab:blue"),
    ("beam4_ok", "beam search, width 4", "^", "tab:green"),
    ("lowtemp_ok", "sample at low temperature", "v", "tab:red"),
)
_NUM_BINS = 10


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_greedy_threshold.png`` from ``runs_dir/s2``."""
    table = _plot.read(runs_dir, "s2", "metrics.csv")
    np = _plot.np
    edges = np.linspace(0.0, 1.0, _NUM_BINS + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    p_star = table["p_star"].to_numpy(float)
    bin_idx = np.clip(np.searchsorted(edges, p_star, side="left") - 1, 0, _NUM_BINS - 1)
    counts = np.bincount(bin_idx, minlength=_NUM_BINS)
    fig, (ax, ax_n) = _plot.plt.subplots(
        1, 2, figsize=(10.0, 4.2), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    fig.subplots_adjust(wspace=0.3)
    for col, label, marker, color in _METHODS:
        ok = table[col].to_numpy(float)
        sums = np.bincount(bin_idx, weights=ok, minlength=_NUM_BINS)
        rate = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        ax.plot(centers, rate, marker + "-", color=color, label=label, ms=5)
    for a in (ax, ax_n):
        a.axvline(0.5, color="gray", ls="--", lw=1.0)
        a.set_xlim(0.0, 1.0)
        a.set_xlabel("pi(y*) (bucket of width 0.1)")
        a.grid(True, alpha=0.3)
    ax.annotate(
        "Prop 3.1 threshold 1/2",
        (0.5, 0.02),
        xytext=(-4, 0),
        textcoords="offset points",
        fontsize=8,
        ha="right",
    )
    ax.set(ylim=(-0.02, 1.05), ylabel="fraction of models returning a sequence argmax")
    ax.set_title(f"{len(table)} random tabular AR models: decoder success vs pi(y*)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax_n.bar(centers, counts, width=0.09, color="lightgray", edgecolor="k")
    ax_n.set(yscale="log", ylabel="models per bucket")
    ax_n.set_title("bucket sizes", fontsize=10)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s2",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

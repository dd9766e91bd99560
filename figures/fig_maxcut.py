"""S10 — Prop E.1: best-of-N, the exact mode finder and beam search on MAX-CUT reductions.

Reads ``s10/metrics.csv`` (one row per random graph). Left: best-of-N success rate against N
(Monte Carlo, markers, mean over the graphs of each H) with the exact ``1 - (1 - pi(y*))^N``
(lines, same mean): N must reach ``~2^(H-2) / #maxcuts``. Middle: exact mode-finder expansions
against ``2^H`` (log y): exponential in H. Right: beam-search success against width per H
(greedy is width 1 and fails: its tie-break takes the all -1 prefix, cut 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_maxcut"


def _grid(table, prefix: str) -> list[int]:
    return sorted(int(c.split("=")[1]) for c in table.columns if c.startswith(prefix))


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_maxcut.png`` from ``runs_dir/s10``."""
    table = _plot.read(runs_dir, "s10", "metrics.csv")
    ns, widths = _grid(table, "bon_mc_N="), _grid(table, "beam_w=")
    horizons = sorted(int(h) for h in table["H"].unique())
    colors = _plot.plt.cm.viridis(_plot.np.linspace(0.0, 0.9, len(horizons)))
    fig, (ax, ax_e, ax_b) = _plot.plt.subplots(1, 3, figsize=(14.0, 4.3))
    fig.subplots_adjust(wspace=0.3)
    for h, color in zip(horizons, colors, strict=True):
        sel = table[table["H"] == h]
        mc = [sel[f"bon_mc_N={n}"].mean() for n in ns]
        exact = [sel[f"bon_exact_N={n}"].mean() for n in ns]
        ax.plot(ns, exact, "-", color=color, label=f"H={h} exact")
        ax.plot(ns, mc, "o", color=color, ms=5, mfc="none")
        ax_b.plot(
            widths,
            [sel[f"beam_w={w}"].mean() for w in widths],
            "s-",
            color=color,
            ms=4,
            label=f"H={h}",
        )
    ax.plot([], [], "o", color="gray", mfc="none", label="Monte Carlo")
    trials = int(table["bon_trials"].iloc[0])
    ax.set(
        xscale="log",
        xlabel="N (best-of-N by sequence log-prob)",
        ylabel="P(argmax = max cut)",
        ylim=(-0.03, 1.03),
    )
    ax.set_title(f"best-of-N success, mean over graphs ({trials} trials)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    by_h = table.groupby("H")[["expansions", "num_sequences"]].mean()
    ax_e.plot(by_h.index, by_h["expansions"], "o-", label="find_modes expansions (mean)")
    ax_e.plot(by_h.index, by_h["num_sequences"], "k:", label="2^H")
    ax_e.plot(table["H"], table["expansions"], ".", color="tab:blue", alpha=0.4)
    ax_e.set(yscale="log", xlabel="H", ylabel="prefixes expanded")
    ax_e.set_title("exact argmax cost grows as 2^H", fontsize=10)
    ax_e.legend(fontsize=7)
    ax_b.set(
        xscale="log", xlabel="beam width", ylabel="success (fraction of graphs)", ylim=(-0.03, 1.03)
    )
    ax_b.set_title("beam search (width 1 = greedy, lowest-index ties)", fontsize=10)
    ax_b.legend(fontsize=7)
    for a in (ax, ax_e, ax_b):
        a.grid(True, which="both", alpha=0.3)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s10",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

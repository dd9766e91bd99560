"""S1 — Prop C.1: best-of-N failure against N p*, one panel per |Y| = K, one colour per p*.

Reads ``s1/metrics.csv`` (one row per K, p*, N and seed). Points: the Monte-Carlo failure rate
of :func:`sharpen.best_of_n`, mean over seeds, with +-1 standard error over seeds. Solid lines,
same colour: the exact failure ``(1 - p*)^N`` from the BoN law. Dashed black: the Prop C.1 bound
``exp(-N p*)``, which every exact line stays under (slope ``log(1-p*)/p* <= -1``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_bon_failure"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_bon_failure.png`` from ``runs_dir/s1/metrics.csv``."""
    table = _plot.read(runs_dir, "s1", "metrics.csv")
    ks = sorted(table["K"].unique())
    p_stars = sorted(table["p_star"].unique(), reverse=True)
    cmap = _plot.plt.get_cmap("viridis")
    color = {p: cmap(i / max(len(p_stars) - 1, 1) * 0.85) for i, p in enumerate(p_stars)}
    fig, axes = _plot.plt.subplots(
        1, len(ks), figsize=(4.2 * len(ks), 4.2), sharey=True, squeeze=False
    )
    x_max = float(table["N_p_star"].max())
    x_dense = np.linspace(0.0, x_max * 1.03, 200)
    positive = table.loc[table["failure_mc"] > 0, "failure_mc"]
    y_min = 0.3 * min(positive.min(), table["failure_exact"].min())
    for ax, K in zip(axes[0], ks, strict=True):
        for p in p_stars:
            sel = table[(table["K"] == K) & (table["p_star"] == p)]
            if sel.empty:
                continue
            by_n = sel.groupby("N")
            x = by_n["N_p_star"].first().to_numpy()
            mean = by_n["failure_mc"].mean().to_numpy()
            se = (by_n["failure_mc"].std(ddof=1) / np.sqrt(by_n.size())).to_numpy()
            shown = mean > 0  # a cell with no failure at all has no place on a log axis
            low = np.minimum(se, 0.999 * mean)  # keep the lower whisker above zero
            ax.errorbar(x[shown], mean[shown], yerr=[low[shown], se[shown]], fmt="o",
                        ms=4, capsize=2, color=color[p], label=f"p* = {p:g}: MC")  # fmt: skip
            ax.plot(x, by_n["failure_exact"].first().to_numpy(), "-", lw=1.2, color=color[p],
                    label=f"p* = {p:g}: exact (1-p*)^N")  # fmt: skip
        ax.plot(x_dense, np.exp(-x_dense), "--", color="black", lw=1.2,
                label="Prop C.1 bound exp(-N p*)")  # fmt: skip
        ax.set(yscale="log", xlabel="N p*", title=f"|Y| = K = {K}", ylim=(y_min, 1.2))
        ax.set_xlim(0.0, x_dense[-1])
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("P[best-of-N misses y*]")
    found = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    order = [f"p* = {p:g}: {kind}" for p in p_stars for kind in ("MC", "exact (1-p*)^N")]
    labels = [label for label in [*order, "Prop C.1 bound exp(-N p*)"] if label in found]
    fig.legend(
        [found[label] for label in labels],
        labels,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
    )
    fig.suptitle(
        "Prop C.1 (inference-time best-of-N): failure (1-p*)^N <= exp(-N p*)  "
        "[points: mean over seeds +- 1 s.e.]"
    )
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s1",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""S12 — Lemma F.1: E_x D_H^2 of the finite-class MLE against n, one colour per log|Pi|.

Reads ``s12/metrics.csv`` (one row per class size, seed and n). Solid: the mean over seeds, with
the (1 - rho)-quantile as the top of a shaded band; dashed, same colour: the Lemma F.1 bound
``2 log(|Pi|/rho)/n`` that the quantile must stay under. Predicted slope -1 (the bound's rate).
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_mle_rate"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_mle_rate.png`` from ``runs_dir/s12``."""
    table = _plot.read(runs_dir, "s12", "metrics.csv")
    rho = float(table["rho"].iloc[0])
    fig, ax = _plot.plt.subplots(figsize=(6.0, 4.5))
    colors = _plot.plt.get_cmap("viridis")
    sizes = sorted(table["log2_class_size"].unique())
    for i, bits in enumerate(sizes):
        color = colors(i / max(len(sizes) - 1, 1) * 0.85)
        sel = table[table["log2_class_size"] == bits]
        by_n = sel.groupby("n")
        mean = by_n["hellinger_sq"].mean()
        quant = by_n["hellinger_sq"].quantile(1.0 - rho)
        bound = by_n["bound"].first()
        n = mean.index.to_numpy(float)
        ax.plot(
            n,
            mean,
            "o-",
            color=color,
            label=f"log2|Pi|={bits:g}: mean, {_plot.loglog_fit_label(n, mean)}",
        )
        ax.fill_between(n, mean, quant, color=color, alpha=0.15, linewidth=0)
        ax.plot(n, bound, "--", color=color, label=f"log2|Pi|={bits:g}: 2 log(|Pi|/rho)/n")
    ax.set(xscale="log", yscale="log", xlabel="n (samples)", ylabel="E_x D_H^2(pi_hat, pi*)")
    ax.set_title(
        f"MLE over a finite class: Hellinger error vs n (rho = {rho:g}; band to q_(1-rho))"
    )
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s12",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

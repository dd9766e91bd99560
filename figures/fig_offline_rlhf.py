"""S7 — Thm 4.2: offline RLHF-Sharpening (Eq. 8) in the tabular class, error vs n and the β floor.

Reads ``s7/metrics.csv``. Left: mean sharpening error :math:`\\hat\\epsilon` over seeds vs n
(log-log) at the Thm 4.3 β, one colour per :math:`\\gamma_{\\rm margin}`; solid Eq. 8, dashed
DPO-logistic on the same pairs; the grey line has the Thm 4.2′ ceiling slope -1/2. Middle: mean
:math:`\\mathbb E_x\\|\\hat\\pi-\\pi^\\star_\\beta\\|_1` vs n. Right: at the largest n, error vs
β / (Thm 4.3 β): the exact floor :math:`\\mathbb P_x[\\pi^\\star_\\beta(y^\\star)\\le1-\\delta]`
(thick, faint), Eq. 8 (markers; it sits on the floor) and DPO (dashed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_offline_rlhf"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_offline_rlhf.png`` from ``runs_dir/s7``."""
    table = _plot.read(runs_dir, "s7", "metrics.csv")
    fig, (ax_e, ax_l, ax_b) = _plot.plt.subplots(1, 3, figsize=(15, 4.6))
    cmap = _plot.plt.get_cmap("viridis")
    gammas = sorted(table["gamma_margin"].unique())
    n_sweep = table[table["sweep"] == "n"]
    b_sweep = table[table["sweep"] == "beta"]
    for i, gamma in enumerate(gammas):
        color = cmap(i / max(len(gammas) - 1, 1) * 0.85)
        for method, ls in (("eq8", "-"), ("dpo", "--")):
            sel = n_sweep[(n_sweep["gamma_margin"] == gamma) & (n_sweep["method"] == method)]
            mean = sel.groupby("n")[["error", "l1_star"]].mean()
            n = mean.index.to_numpy(float)
            label = f"gamma={gamma:g}, {'Eq. 8' if method == 'eq8' else 'DPO'}"
            ax_e.plot(n, mean["error"], ls, marker="o", ms=3, color=color, label=label)
            ax_l.plot(n, mean["l1_star"], ls, marker="o", ms=3, color=color)
        sel = b_sweep[b_sweep["gamma_margin"] == gamma]
        by = sel.groupby(["method", "beta_factor"])[["error", "floor"]].mean()
        eq8, dpo = by.loc["eq8"], by.loc["dpo"]
        x = eq8.index.to_numpy(float)
        ax_b.plot(x, eq8["floor"], "-", lw=5, alpha=0.25, color=color)
        ax_b.plot(x, eq8["error"], "o", ms=4, color=color, label=f"gamma={gamma:g}: Eq. 8")
        ax_b.plot(x, dpo["error"], "--", color=color, lw=1)
    n_all = np.sort(n_sweep["n"].unique()).astype(float)
    ax_e.plot(n_all, 0.9 * (n_all / n_all[0]) ** -0.5, color="0.5", lw=1, label="slope -1/2")
    ax_e.set(xscale="log", yscale="log", xlabel="n (prompts, 2 responses each)",
             ylabel="mean sharpening error", ylim=(1e-3, 1.2))  # fmt: skip
    ax_e.set_title("Thm 4.3 beta: P_x[pi_hat(y*) <= 1 - delta] vs n", fontsize=9)
    ax_e.legend(fontsize=6, ncol=2)
    ax_l.set(xscale="log", yscale="log", xlabel="n", ylabel="mean E_x ||pi_hat - pi*_beta||_1")
    ax_l.set_title("distance to the target pi*_beta (solid Eq. 8, dashed DPO)", fontsize=9)
    ax_b.plot([], [], "k-", lw=5, alpha=0.25, label="floor of pi*_beta")
    ax_b.plot([], [], "k--", lw=1, label="DPO-logistic")
    n_max = int(b_sweep["n"].max()) if len(b_sweep) else 0
    ax_b.set(xscale="log", xlabel="beta / (Thm 4.3 beta)", ylabel="sharpening error",
             ylim=(-0.03, 1.05))  # fmt: skip
    ax_b.set_title(f"beta bias floor at n = {n_max}", fontsize=9)
    ax_b.legend(fontsize=6)
    for ax in (ax_e, ax_l, ax_b):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s7",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

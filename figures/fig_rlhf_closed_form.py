"""S6 — closed form of Eq. 3, Lemma 4.1, and the β threshold for a sharp :math:`\\pi^\\star_\\beta`.

Reads ``s6/metrics.csv`` (column ``part`` splits the four units). Panels: (a) the Eq. 3 solver's
:math:`\\|\\pi_{\\rm learned}-\\pi^\\star_\\beta\\|_1` vs β per |Y|, with the 1e-4 check line;
(b) Lemma 4.1 ratios :math:`\\mathcal C_{\\pi^\\star_\\beta}/C_{\\rm cov}` and
:math:`\\mathcal C_{\\pi_{\\rm base}/\\pi^\\star_\\beta;\\beta}/|\\mathcal Y|` vs β (both ≤ 1);
(c) exact β threshold for :math:`\\pi^\\star_\\beta(y^\\star)\\ge1-\\delta/2` (solid: worst instance of
the margin, dashed: mid instance) against the sufficient
:math:`\\gamma_{\\rm margin}/(2\\log(2|\\mathcal Y|/\\delta))` (dotted), vs
:math:`\\gamma_{\\rm margin}`, one colour per |Y|; (d) :math:`\\pi^\\star_\\beta(\\mathbf y^\\star)` over
β in [1e-6, 1e3].
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_rlhf_closed_form"


def _colors(values):
    cmap = _plot.plt.get_cmap("viridis")
    values = sorted(values)
    return {v: cmap(i / max(len(values) - 1, 1) * 0.85) for i, v in enumerate(values)}


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_rlhf_closed_form.png`` from ``runs_dir/s6``."""
    table = _plot.read(runs_dir, "s6", "metrics.csv")
    part = {p: table[table["part"] == p] for p in ("solver", "lemma", "threshold", "finite")}
    fig, axes = _plot.plt.subplots(2, 2, figsize=(11, 8.5))
    ax_a, ax_b, ax_c, ax_d = axes.ravel()

    solver = part["solver"]
    colors = _colors(solver["num_responses"].unique())
    for k, g in solver.groupby("num_responses"):
        ax_a.scatter(g["beta"], g["l1"], s=12, color=colors[k], label=f"|Y| = {int(k)}")
    ax_a.axhline(1e-4, color="k", ls=":", lw=1, label="check 1e-4")
    ax_a.set(xscale="log", yscale="log", xlabel="beta", ylabel="||pi_learned - pi*_beta||_1")
    ax_a.set_title("(a) Eq. 3 by Adam vs closed form pi_base^(1+1/beta)/Z", fontsize=9)
    ax_a.legend(fontsize=7)

    lemma = part["lemma"]
    ax_b.scatter(lemma["beta"], lemma["conc_star"] / lemma["c_cov"], s=4, alpha=0.5,
                 label="C_{pi*_beta} / C_cov")  # fmt: skip
    ax_b.scatter(lemma["beta"], lemma["loss_conc"] / lemma["num_responses"], s=4, alpha=0.5,
                 label="C_{pi_base/pi*_beta; beta} / |Y|")  # fmt: skip
    ax_b.axhline(1.0, color="k", ls=":", lw=1)
    ax_b.set(xscale="log", xlabel="beta", ylabel="ratio (Lemma 4.1: <= 1)", ylim=(0, 1.1))
    ax_b.set_title(f"(b) Lemma 4.1 on {len(lemma)} random instances", fontsize=9)
    ax_b.legend(fontsize=7, markerscale=3)

    thr = part["threshold"]
    colors = _colors(thr["num_responses"].unique())
    for k, g in thr.groupby("num_responses"):
        for family, ls in (("worst", "-"), ("mid", "--")):
            f = g[g["family"] == family].sort_values("gamma_margin")
            ax_c.plot(f["gamma_margin"], f["beta_exact"], ls, marker="o", ms=3, color=colors[k],
                      label=f"|Y| = {int(k)}: exact" if family == "worst" else None)  # fmt: skip
        f = g[g["family"] == "worst"].sort_values("gamma_margin")
        ax_c.plot(f["gamma_margin"], f["beta_suff"], ":", color=colors[k], lw=1.5)
    ax_c.plot([], [], "k-", label="exact, worst instance")
    ax_c.plot([], [], "k--", label="exact, mid instance")
    ax_c.plot([], [], "k:", label="sufficient gamma/(2 log(2|Y|/delta))")
    ax_c.set(xscale="log", yscale="log", xlabel="gamma_margin", ylabel="beta threshold")
    ax_c.set_title("(c) largest beta with pi*_beta(y*) >= 1 - delta/2", fontsize=9)
    ax_c.legend(fontsize=6, ncol=2)

    fin = part["finite"]
    for _, g in fin.groupby("instance"):
        g = g.sort_values("beta")
        ax_d.plot(g["beta"], g["target_mass"], "-", lw=0.8, alpha=0.7)
    ax_d.set(xscale="log", xlabel="beta", ylabel="pi*_beta(y* set)", ylim=(0, 1.05))
    ax_d.set_title(
        f"(d) pi*_beta over [1e-6, 1e3]: {int(fin['num_nan'].sum() + fin['num_inf'].sum())} "
        "non-finite entries",
        fontsize=9,
    )
    for ax in axes.ravel():
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s6",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

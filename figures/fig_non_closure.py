"""S11 — Prop E.2: SFT inside the class plateaus at 1/2; inference-time BoN does not.

Reads ``s11/metrics.csv`` (one row per ``(n_prompts, N, B')`` SFT fit) and ``s11/bon.csv``.
Left: the fitted ``pi_hat(2, 1)`` against the best-of-N size ``N`` per norm bound ``B'`` (solid:
the largest ``n_prompts``, dotted: the smallest), with ``pi_base(2, 1)`` and the Prop E.2 ceiling
1/2. Right: inference-time BoN success rate against ``N`` with the exact
``1 - (1 - pi_base(2, 1))^N``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_non_closure"
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_non_closure.png`` from ``runs_dir/s11``."""
    sft = _plot.read(runs_dir, "s11", "metrics.csv")
    bon = _plot.read(runs_dir, "s11", "bon.csv")
    np = _plot.np
    p_base = float(bon["exact"][bon["N"] == 1].iloc[0]) if (bon["N"] == 1).any() else np.nan
    fig, (ax, ax_b) = _plot.plt.subplots(1, 2, figsize=(10.0, 4.2))
    fig.subplots_adjust(wspace=0.3)
    sizes = sorted(set(sft["n_prompts"]))
    for i, mult in enumerate(sorted(set(sft["B_mult"]))):
        color = _COLORS[i % len(_COLORS)]
        for n, style in ((sizes[-1], "o-"), (sizes[0], "s:")):
            sub = sft[(sft["B_mult"] == mult) & (sft["n_prompts"] == n)].sort_values("N")
            label = f"B' = {mult:g} B, n = {n}" if len(sizes) > 1 or style == "o-" else None
            ax.plot(sub["N"], sub["pi_hat_21"], style, color=color, ms=5, label=label)
            if len(sizes) == 1:
                break
    ax.axhline(0.5, color="k", ls="--", lw=1.0, label="Prop E.2 ceiling 1/2")
    ax.axhline(p_base, color="gray", ls="-.", lw=1.0, label=f"pi_base(2,1) = {p_base:.3f}")
    ax.set(xscale="log", xlabel="best-of-N size N of the SFT data", ylabel="fitted pi_hat(2,1)")
    ax.set_title("SFT-Sharpening inside the class", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ns = bon["N"].to_numpy(float)
    grid = np.geomspace(ns.min(), ns.max(), 100)
    ax_b.plot(grid, 1.0 - (1.0 - p_base) ** grid, "k-", lw=1.0, label="exact 1 - (1 - p)^N")
    ax_b.plot(ns, bon["success"], "o", color="tab:red", label="measured BoN success")
    ax_b.axhline(0.5, color="k", ls="--", lw=1.0)
    ax_b.set(xscale="log", ylim=(0.0, 1.05), xlabel="N", ylabel="P(BoN pick = (2,1))")
    ax_b.set_title("inference-time best-of-N", fontsize=10)
    ax_b.grid(True, alpha=0.3)
    ax_b.legend(fontsize=7, loc="lower right")
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s11",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

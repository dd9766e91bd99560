"""S8 — exploration beats coverage: samples to sharpen vs d on Example J.1 and the hidden-argmax
instance.

Reads ``s8/m_star.csv`` (one row per family, method and d) and ``s8/config.json``. Left
(Example J.1, semilog): SFT-Sharpening's m* tracks ``C_cov log(1/eps)`` (dashed) and grows
exponentially in d; XPO and offline Eq. 8 stay flat. Middle (Example J.1, log-log): XPO and offline
Eq. 8 with their fitted slopes (polynomial in d). Right (hidden-argmax instance, semilog): offline
Eq. 8 now pays ``C_cov`` while XPO does not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_exploration"
_STYLE = {
    "sft": ("tab:red", "o-", "SFT-Sharpening"),
    "xpo": ("tab:blue", "s-", "XPO (Alg. 1)"),
    "offline": ("tab:green", "^-", "offline Eq. 8"),
}


def _plot_family(ax, ms, family, methods, eps, loglog=False):
    np = _plot.np
    sub = ms[ms["family"] == family]
    for method in methods:
        cur = sub[sub["method"] == method].sort_values("d")
        color, style, label = _STYLE[method]
        if loglog:
            label = f"{label}, {_plot.loglog_fit_label(cur['d'], cur['m_star'])}"
        ax.plot(cur["d"], cur["m_star"], style, color=color, label=label)
    ref = sub.drop_duplicates("d").sort_values("d")
    if not loglog:
        ax.plot(
            ref["d"], ref["c_cov"] * np.log(1.0 / eps), "k--", lw=1.0,
            label="C_cov log(1/eps)",
        )  # fmt: skip
    ax.set(yscale="log", xlabel="dimension d", ylabel="m* (queries to sharpen)")
    if loglog:
        ax.set(xscale="log")
        ax.set_xticks(sorted(sub["d"].unique()), [str(d) for d in sorted(sub["d"].unique())])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_exploration.png`` from ``runs_dir/s8``."""
    ms = _plot.read(runs_dir, "s8", "m_star.csv")
    cfg = json.loads((Path(runs_dir) / "s8" / "config.json").read_text())
    eps, delta = float(cfg["epsilon"]), float(cfg["delta"])
    fig, axes = _plot.plt.subplots(1, 3, figsize=(15.0, 4.3))
    fig.subplots_adjust(wspace=0.28)
    _plot_family(axes[0], ms, "j1", ("sft", "xpo", "offline"), eps)
    axes[0].set_title("Example J.1 (semilog): SFT pays C_cov = exp(Omega(d))", fontsize=10)
    _plot_family(axes[1], ms, "j1", ("xpo", "offline"), eps, loglog=True)
    axes[1].set_title("Example J.1 (log-log): XPO polynomial in d", fontsize=10)
    _plot_family(axes[2], ms, "hidden", ("xpo", "offline"), eps)
    axes[2].set_title("hidden-argmax instance: offline Eq. 8 pays C_cov", fontsize=10)
    fig.suptitle(
        f"samples to (eps, delta)-sharpen, eps = {eps:g} (fraction of seeds), delta = {delta:g}",
        fontsize=10,
    )
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("s8",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

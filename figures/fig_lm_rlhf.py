"""LM RLHF-Sharpening at equal budget: base log-likelihood vs accuracy, decode cost and mass on y*.

Reads ``lm_rlhf/metrics.csv`` (one row per seed and method: ``method``, ``kind``, ``accuracy_t1``,
``base_loglik``, ``decode_tokens``, ``mode_mass``) and draws, per method (seed means): left, the
mean ``log pi_base`` of its outputs against their accuracy (training methods filled,
inference-time references hollow); middle, decode tokens spent per output at inference; right,
the mean probability of outputting the base model's certified exact mode ``y*`` (``mode_mass``;
the base model's as a dashed line; NaN methods, e.g. power sampling or real models, are left
out).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_lm_rlhf"


def _mode_panel(cx, mean, colors) -> None:
    """Bars of ``mode_mass`` per method (log scale when all shown are positive), base as a line."""
    mass = mean["mode_mass"].to_numpy(float) if "mode_mass" in mean else np.full(len(mean), np.nan)
    shown = np.isfinite(mass)
    if not shown.any():
        cx.text(0.5, 0.5, "no certified modes\n(real model or mode search off)",
                ha="center", va="center", transform=cx.transAxes)  # fmt: skip
        cx.set_axis_off()
        return
    cx.bar(mean["method"][shown], mass[shown], color=np.array(colors)[shown])
    base = mass[(mean["method"] == "base").to_numpy()]
    if base.size and np.isfinite(base[0]):
        cx.axhline(base[0], color="k", ls="--", lw=1, label="base pi(y*|x)")
        cx.legend(fontsize=7)
    if (mass[shown] > 0).all():
        cx.set_yscale("log")
    cx.set(ylabel="mean P(output = y*) over certified prompts")
    cx.set_title("mass on the base model's exact mode y*", fontsize=10)
    cx.tick_params(axis="x", rotation=45, labelsize=7)
    cx.grid(True, axis="y", alpha=0.3)


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_rlhf.png`` from ``runs_dir/lm_rlhf``."""
    metrics = _plot.read(runs_dir, "lm_rlhf", "metrics.csv")
    mean = metrics.groupby(["method", "kind"], sort=False).mean(numeric_only=True).reset_index()
    fig, (ax, bx, cx) = _plot.plt.subplots(1, 3, figsize=(15, 4.2))
    for i, r in mean.iterrows():
        filled = r["kind"] == "train"
        ax.plot(r["base_loglik"], r["accuracy_t1"], "o", ms=7, color=f"C{i % 10}",
                mfc=f"C{i % 10}" if filled else "none", label=r["method"])  # fmt: skip
    ax.set(xlabel="mean log pi_base of outputs (nats)", ylabel="accuracy of T=1 outputs")
    ax.set_title("equal training budget m; hollow = inference-time", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.35)
    colors = [f"C{i % 10}" for i in range(len(mean))]
    bx.bar(mean["method"], mean["decode_tokens"], color=colors)
    bx.set(ylabel="decode tokens per output", yscale="log")
    bx.tick_params(axis="x", rotation=45, labelsize=7)
    bx.grid(True, axis="y", alpha=0.3)
    _mode_panel(cx, mean, colors)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("lm_rlhf",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

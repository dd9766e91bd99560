"""LM RLHF-Sharpening at equal budget: base log-likelihood vs accuracy, and decode cost per method.

Reads ``lm_rlhf/metrics.csv`` (one row per seed and method: ``method``, ``kind``, ``accuracy_t1``,
``base_loglik``, ``decode_tokens``) and draws, per method (seed means): left, the mean
``log pi_base`` of its outputs against their accuracy (training methods filled, inference-time
references hollow); right, decode tokens spent per output at inference.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_lm_rlhf"


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_rlhf.png`` from ``runs_dir/lm_rlhf``."""
    metrics = _plot.read(runs_dir, "lm_rlhf", "metrics.csv")
    mean = metrics.groupby(["method", "kind"], sort=False).mean(numeric_only=True).reset_index()
    fig, (ax, bx) = _plot.plt.subplots(1, 2, figsize=(10, 4.2))
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
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("lm_rlhf",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

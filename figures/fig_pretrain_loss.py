"""LM pretraining loss curves: train (solid) and held-out eval (markers) loss per model size.

Reads ``lm_pretrain/metrics.csv`` (one row per logged step and size: ``size``, ``param_count``,
``step``, ``tokens``, ``train_loss``, ``eval_loss``) and draws nats per character against the
number of training tokens, one colour per size.
"""

from __future__ import annotations

import sys
from pathlib import Path

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_pretrain_loss"
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_pretrain_loss.png`` from ``runs_dir/lm_pretrain``."""
    curves = _plot.read(runs_dir, "lm_pretrain", "metrics.csv")
    fig, ax = _plot.plt.subplots(figsize=(6.4, 4.2))
    for i, (size, sub) in enumerate(curves.groupby("size", sort=False)):
        color = _COLORS[i % len(_COLORS)]
        sub = sub.sort_values("step")
        label = f"{size} ({int(sub['param_count'].iloc[0]) / 1e6:.2f}M params)"
        ax.plot(sub["tokens"], sub["train_loss"], "-", color=color, label=f"{label}, train")
        ev = sub.dropna(subset=["eval_loss"])
        ax.plot(ev["tokens"], ev["eval_loss"], "o", color=color, ms=4, mfc="none", label="eval")
    ax.set(xlabel="training tokens", ylabel="loss (nats / character)", yscale="log")
    ax.set_title("char-level pretraining on the task corpus", fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("lm_pretrain",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

"""Figs. 1(a) and 2(a–d): models x tasks heatmaps at N = N_max.

Reads ``lm_inference/`` (``metrics.csv``, else ``samples.csv`` + ``greedy.csv``). Six panels,
rows = models, columns = tasks, seed means at each (model, task)'s largest N:
(a) % lift over greedy of BoN by summed log-prob (Fig. 1a), (b) BoN by length-normalized
log-prob (Fig. 2a), (c) majority vote (Fig. 2b), (d) BoN by self-certainty (not in the paper),
(e) pass@N_max in % (Fig. 2c), (f) greedy accuracy in % (Fig. 2d). Lift cells also show the
method's absolute accuracy in parentheses, because relative lift explodes at low greedy
accuracy; cells with greedy accuracy 0 have no relative lift and are grey ("n/a").
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.colors
import numpy as np

from figures import _plot, lm_figs
from figures.registry import FigureSpec, register

NAME = "fig_lm_lift_heatmap"
_LIFT_PANELS = (
    ("bon_sum", "(a) BoN log π: % lift over greedy"),
    ("bon_mean", "(b) BoN log π/|y|: % lift over greedy"),
    ("majority", "(c) majority vote: % lift over greedy"),
    ("bon_self_certainty", "(d) BoN self-certainty: % lift over greedy"),
)


def _lift_norm(lifts: np.ndarray):
    """Diverging colours centred at 0, clipped at the 95th percentile of |lift| (>= 5 %)."""
    finite = np.abs(lifts[np.isfinite(lifts)])
    limit = max(5.0, float(np.percentile(finite, 95))) if finite.size else 5.0
    return matplotlib.colors.TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_lift_heatmap.png`` from ``runs_dir/lm_inference``."""
    top = lm_figs.at_n_max(lm_figs.load_curves(runs_dir))
    models, tasks = lm_figs.orders(runs_dir)

    def grid(rule: str, column: str) -> np.ndarray:
        table = top[top["rule"] == rule].pivot(index="model", columns="task", values=column)
        return table.reindex(index=models, columns=tasks).to_numpy(np.float64)

    n_max = int(top["num_samples"].max())
    fig, axes = lm_figs.panel_grid(
        6, ncols=2, size=(1.1 * len(tasks) + 2.0, 0.5 * len(models) + 1.5)
    )
    for ax, (rule, title) in zip(axes, _LIFT_PANELS, strict=False):
        lift, acc = grid(rule, "lift"), 100.0 * grid(rule, "accuracy")
        text = [
            [
                ("n/a" if np.isnan(lv) else f"{lv:+.1f}%") + f"\n({av:.0f}%)"
                for lv, av in zip(lrow, arow, strict=True)
            ]
            for lrow, arow in zip(lift, acc, strict=True)
        ]
        lm_figs.heatmap(
            ax,
            lift,
            text,
            rows=models,
            cols=tasks,
            title=title,
            cmap="RdYlGn",
            norm=_lift_norm(lift),
        )
    unit = matplotlib.colors.Normalize(vmin=0.0, vmax=100.0)
    for ax, column, title in (
        (axes[4], "pass_at_n", f"(e) pass@{n_max}: accuracy (%)"),
        (axes[5], "greedy_accuracy", "(f) greedy accuracy (%)"),
    ):
        values = 100.0 * grid("bon_sum", column)
        text = [[f"{v:.1f}" for v in row] for row in values]
        lm_figs.heatmap(
            ax, values, text, rows=models, cols=tasks, title=title, cmap="viridis", norm=unit
        )
    fig.suptitle(
        f"Inference-time sharpening at N = {n_max} (seed means; lift cells: relative lift "
        "and, in parentheses, the method's accuracy)",
        fontsize=10,
    )
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=(lm_figs.EXPERIMENT,), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))

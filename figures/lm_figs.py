"""Shared helpers of the LM inference-time sharpening figures (Figs. 1–4, 6 of the paper).

The LM runner writes one run folder ``<runs_dir>/lm_inference/`` holding ``samples.csv`` and
``greedy.csv`` (the contract is in :mod:`sharpen.selection`) and ``metrics.csv``, the output of
:func:`sharpen.selection.subsample_curves`. :func:`load_curves` reads ``metrics.csv`` and falls
back to computing it from the samples when it is missing (the analysis is cheap and exact for
BoN), so the figures never re-run a model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from figures import _plot
from sharpen import selection

#: Folder name of the LM inference run under ``runs_dir`` (the runner's experiment name).
EXPERIMENT = "lm_inference"
#: N grid of EXPERIMENTS §10.3, cut at the run's N_max (which is always added).
PAPER_NS = (1, 2, 5, 10, 20, 25, 50)
#: Tasks of the paper's Fig. 5 (one model fine-tuned on Game of 24), kept out of the grid
#: figures (Figs. 1-4, 6) and drawn by ``fig_lm_countdown``.
OFF_GRID_TASKS = ("countdown", "game24")
#: Majority-vote subsets per (seed, N) when the curves are computed here.
NUM_SUBSETS = 16

RULE_LABELS = {
    "bon_sum": "BoN, log π (sum)",
    "bon_mean": "BoN, log π / |y| (length-normalized)",
    "bon_self_certainty": "BoN, self-certainty",
    "bon_neg_entropy": "BoN, −entropy",
    "majority": "majority vote",
}


def run_dir(runs_dir: Path) -> Path:
    """``runs_dir/lm_inference``, checked to hold ``samples.csv`` and ``greedy.csv``."""
    path = Path(runs_dir) / EXPERIMENT
    for name in ("samples.csv", "greedy.csv"):
        if not (path / name).exists():
            raise FileNotFoundError(
                f"figure input {path / name} is missing; run `sharpen run {EXPERIMENT}`"
            )
    return path


def read_samples(runs_dir: Path) -> pd.DataFrame:
    return selection.read_samples(run_dir(runs_dir))


def read_greedy(runs_dir: Path) -> pd.DataFrame:
    return selection.read_greedy(run_dir(runs_dir))


def default_ns(n_max: int) -> tuple[int, ...]:
    """The paper's N grid up to ``n_max``, plus ``n_max`` itself."""
    return tuple(sorted({n for n in PAPER_NS if n <= n_max} | {int(n_max)}))


def load_curves(runs_dir: Path) -> pd.DataFrame:
    """``metrics.csv`` of the run, or :func:`~sharpen.selection.subsample_curves` of its samples."""
    path = run_dir(runs_dir)
    if (path / "metrics.csv").exists():
        curves = pd.read_csv(path / "metrics.csv", dtype={"model": str, "task": str})
        missing = [c for c in selection.CURVE_COLUMNS if c not in curves.columns]
        if missing:
            raise ValueError(f"{path / 'metrics.csv'} lacks columns {missing}")
        return curves
    samples, greedy = read_samples(runs_dir), read_greedy(runs_dir)
    n_max = int(samples["sample"].max()) + 1
    return selection.subsample_curves(
        samples, greedy, ns=default_ns(n_max), num_subsets=NUM_SUBSETS, seed=0
    )


def orders(runs_dir: Path) -> tuple[list, list]:
    """(models, tasks) of the models x tasks grid, in order of first appearance in
    ``greedy.csv`` (the runner's order); the Fig. 5 tasks :data:`OFF_GRID_TASKS` are left out."""
    greedy = read_greedy(runs_dir)
    greedy = greedy[~greedy["task"].isin(OFF_GRID_TASKS)]
    return list(pd.unique(greedy["model"])), list(pd.unique(greedy["task"]))


def off_grid_cells(runs_dir: Path) -> list[tuple[str, str]]:
    """``(model, task)`` cells on the Fig. 5 tasks (:data:`OFF_GRID_TASKS`), in run order."""
    greedy = read_greedy(runs_dir)
    greedy = greedy[greedy["task"].isin(OFF_GRID_TASKS)]
    return list(dict.fromkeys(zip(greedy["model"], greedy["task"], strict=True)))


def at_n_max(curves: pd.DataFrame) -> pd.DataFrame:
    """Seed means at each (model, task)'s largest N: one row per (model, task, rule)."""
    n_max = curves.groupby(["model", "task"])["num_samples"].transform("max")
    top = curves[curves["num_samples"] == n_max]
    cols = ["accuracy", "pass_at_n", "greedy_accuracy", "lift", "num_samples", "parse_rate"]
    return top.groupby(["model", "task", "rule"], sort=False)[cols].mean().reset_index()


def seed_stats(curves: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean and standard error over seeds of ``value`` per (model, task, rule, num_samples)."""
    by = curves.groupby(["model", "task", "rule", "num_samples"], sort=False)[value]
    out = by.agg(["mean", "std", "count"]).reset_index()
    out["sem"] = (out["std"] / np.sqrt(out["count"])).where(out["count"] > 1, 0.0)
    return out


def model_colors(models: list) -> dict:
    cmap = _plot.plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def panel_grid(num_panels: int, *, ncols: int, size: tuple[float, float] = (4.0, 3.2)):
    """A ``rows x ncols`` figure with the unused axes switched off; returns (fig, flat axes)."""
    ncols = max(1, min(ncols, num_panels))
    nrows = -(-num_panels // ncols)
    fig, axes = _plot.plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    flat = axes.ravel()
    for ax in flat[num_panels:]:
        ax.set_axis_off()
    return fig, flat[:num_panels]


def heatmap(ax, values, text, *, rows: list, cols: list, title: str, cmap: str, norm) -> None:
    """Annotated ``rows x cols`` heatmap; NaN cells are grey (e.g. lift with greedy accuracy 0)."""
    data = np.ma.masked_invalid(np.asarray(values, np.float64))
    colormap = _plot.plt.get_cmap(cmap).with_extremes(bad="0.85")
    im = ax.imshow(data, cmap=colormap, norm=norm, aspect="auto")
    rgb = colormap(norm(data))[..., :3]
    dark = rgb @ np.array([0.299, 0.587, 0.114]) < 0.45
    for i in range(len(rows)):
        for j in range(len(cols)):
            color = "white" if dark[i, j] else "black"
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)

"""Shared figure helpers: read run outputs, save PNGs. Figures never recompute experiments."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from experiments import stats


def read(runs_dir: Path, experiment: str, name: str) -> pd.DataFrame:
    """Read ``runs_dir/experiment/name`` (a CSV written by the experiment)."""
    path = Path(runs_dir) / experiment / name
    if not path.exists():
        raise FileNotFoundError(f"figure input {path} is missing; run `sharpen run {experiment}`")
    return pd.read_csv(path)


def save(fig, out_dir: Path, name: str) -> list[Path]:
    for ax in fig.axes:  # log axes: label the decades only, minor labels collide
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return [path]


def loglog_fit_label(x, y) -> str:
    """``slope s`` of a least-squares line on log-log axes (finite points only)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return "slope n/a"
    return f"slope {stats.fit_loglog_slope(x[ok], y[ok])[0]:.2f}"

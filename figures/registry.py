"""Registry of figures that ``sharpen repro`` / ``sharpen figures`` can draw.

A figure reads only finished run folders (``<runs_dir>/<experiment>/metrics.csv``,
``summary.csv``, ``config.json``) and never re-runs an experiment. The CLI draws a
figure only when every experiment in ``requires`` has outputs under ``runs_dir``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

__all__ = ["FIGURES", "FigureSpec", "missing_inputs", "register"]


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """One figure.

    Attributes:
      name: registry key, e.g. ``"fig_best_of_n"``.
      requires: experiment names whose run folders the figure reads.
      make: ``make(runs_dir, out_dir) -> list[Path]``; writes into ``out_dir`` and
        returns the written paths.
    """

    name: str
    requires: tuple[str, ...]
    make: Callable[[Path, Path], list[Path]]

    def __post_init__(self) -> None:
        if not isinstance(self.requires, tuple) or not self.requires:
            raise ValueError(f"requires must be a non-empty tuple, got {self.requires!r}")


FIGURES: dict[str, FigureSpec] = {}


def register(spec: FigureSpec) -> FigureSpec:
    """Add ``spec`` to ``FIGURES``; a second spec under the same name is an error."""
    if spec.name in FIGURES and FIGURES[spec.name] is not spec:
        raise ValueError(f"figure {spec.name!r} is already registered")
    FIGURES[spec.name] = spec
    return spec


def missing_inputs(spec: FigureSpec, runs_dir: Path) -> tuple[str, ...]:
    """Experiments in ``spec.requires`` without ``runs_dir/<name>/metrics.csv`` (empty: ready)."""
    return tuple(r for r in spec.requires if not (Path(runs_dir) / r / "metrics.csv").exists())


# Figure modules register themselves on import; the imports go below.


#: Modules whose import registers the built-in figures.
BUILTIN = (
    "figures.fig_bon_failure",
    "figures.fig_greedy_threshold",
    "figures.fig_mstar_vs_eps",
    "figures.fig_mstar_vs_c",
    "figures.fig_coverage_term",
    "figures.fig_stopping_rule",
    "figures.fig_maxcut",
    "figures.fig_non_closure",
    "figures.fig_mle_rate",
    "figures.fig_approx_maximizers",
    "figures.fig_rlhf_closed_form",
    "figures.fig_offline_rlhf",
    "figures.fig_exploration",
    "figures.fig_sec",
    "figures.fig_pretrain_loss",
    "figures.fig_lm_lift_heatmap",
    "figures.fig_lm_lift_vs_n",
    "figures.fig_lm_loglik_vs_n",
    "figures.fig_lm_hist",
    "figures.fig_lm_countdown",
    "figures.fig_lm_sft",
    "figures.fig_lm_rlhf",
)


def load_builtin() -> dict[str, FigureSpec]:
    """Import the built-in figure modules (they register themselves); return the registry."""
    import importlib

    for module in BUILTIN:
        importlib.import_module(module)
    return FIGURES

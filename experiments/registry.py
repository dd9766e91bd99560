"""Registry of experiments that ``sharpen repro`` / ``sharpen run`` can execute.

Each experiment package registers one ``ExperimentSpec``. ``EXPERIMENTS`` keeps
registration order, which is the order ``sharpen repro`` runs them in. An explicit
dict registry (rather than importing modules by name) makes a typo fail at import.

Contract of ``spec.run(cfg, out_dir)``: write ``out_dir/config.json`` (via
``experiments.io.prepare_run_dir(out_dir, cfg, experiment=spec.name)``),
``out_dir/metrics.csv`` and ``out_dir/summary.csv``; resume from finished units
when ``out_dir`` already holds a run of the same config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENTS", "REQUIRED_PRESETS", "ExperimentSpec", "register"]

REQUIRED_PRESETS = ("smoke", "quick", "full")


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    """One runnable experiment.

    Attributes:
      name: registry key and output sub-folder, e.g. ``"s1"``.
      title: one line for ``sharpen list``, e.g. ``"S1 — Prop C.1: inference-time best-of-N"``.
      presets: preset name -> zero-argument factory of a frozen dataclass config;
        must include ``"smoke"``, ``"quick"`` and ``"full"``.
      run: ``run(config, out_dir)``; writes config.json, metrics.csv, summary.csv.
      in_default_repro: whether a plain ``sharpen repro`` (no ``--only``) runs it. Experiments
        whose quick preset does not yet fit the repro time budget are opt-in
        (``sharpen repro --only NAME``) until it does.
    """

    name: str
    title: str
    presets: Mapping[str, Callable[[], Any]]
    run: Callable[[Any, Path], None]
    in_default_repro: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"name must be a non-empty identifier, got {self.name!r}")
        missing = [p for p in REQUIRED_PRESETS if p not in self.presets]
        if missing:
            raise ValueError(f"experiment {self.name!r} lacks presets {missing}")


EXPERIMENTS: dict[str, ExperimentSpec] = {}


def register(spec: ExperimentSpec) -> ExperimentSpec:
    """Add ``spec`` to ``EXPERIMENTS``; a second spec under the same name is an error."""
    if spec.name in EXPERIMENTS and EXPERIMENTS[spec.name] is not spec:
        raise ValueError(f"experiment {spec.name!r} is already registered")
    EXPERIMENTS[spec.name] = spec
    return spec


# Experiment packages register themselves on import; the imports go below.


#: Modules whose import registers the built-in experiments, in `sharpen repro` order.
BUILTIN = (
    "experiments.s1_inference_bon",
    "experiments.s2_greedy",
    "experiments.s3_lower_bound",
    "experiments.s4_sft",
    "experiments.s5_adaptive",
    "experiments.s6_rlhf_closed_form",
    "experiments.s7_offline_rlhf",
    "experiments.s8_exploration",
    "experiments.s9_sec",
    "experiments.s10_maxcut",
    "experiments.s11_non_closure",
    "experiments.s12_mle_rate",
    "experiments.s13_approx_maximizers",
    "experiments.lm_pretrain",
    "experiments.lm_inference",
    "experiments.lm_sft",
    "experiments.lm_rlhf",
)


def load_builtin() -> dict[str, ExperimentSpec]:
    """Import the built-in experiment modules (they register themselves) and return the registry.

    Imported on demand, not at module import, so that an experiment module can import this
    registry (and other experiment modules) without an import cycle.
    """
    import importlib

    for module in BUILTIN:
        importlib.import_module(module)
    return EXPERIMENTS

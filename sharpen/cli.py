"""The ``sharpen`` command line: reproduce the paper's experiments and figures.

Subcommands::

    sharpen repro [--preset quick|full|smoke] [--only NAME ...] [--out DIR]
                  [--set [NAME.]key=value ...]
    sharpen run NAME [--preset P] [--set key=value ...] [--out DIR]
    sharpen figures [--runs DIR] [--out DIR]
    sharpen list

``repro`` runs the selected experiments (registry order; without ``--only``, those whose
spec has ``in_default_repro``) into ``<out>/<name>/``, draws
every figure whose required experiments have outputs into ``<out>/figures/``, gathers
``<out>/<name>/summary.csv`` into ``<out>/summary.csv`` and prints it as a table.
Rerunning the same command resumes from finished units (see ``experiments.io``).

Exit codes: 0 when everything ran (a ``"fail"`` verdict is a reported result, not an
error); 1 when an experiment or figure raised (the others still run); 2 for bad
arguments (unknown experiment, preset or key, unparsable value, or an output folder
holding a run with another config).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "format_summary_table", "main", "setup_runtime"]


class UsageError(Exception):
    """Bad command-line arguments; reported with exit code 2."""


def setup_runtime() -> None:
    """Headless matplotlib; JAX persistent compile cache if ``SHARPEN_JAX_CACHE`` is set."""
    import matplotlib

    matplotlib.use("Agg")
    cache_dir = os.environ.get("SHARPEN_JAX_CACHE")
    if cache_dir:
        import jax

        jax.config.update("jax_compilation_cache_dir", str(Path(cache_dir).resolve()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _registries() -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The experiment and figure registries (imported late: importing them imports JAX code)."""
    from experiments import registry as experiment_registry
    from figures import registry as figure_registry

    return experiment_registry.load_builtin(), figure_registry.load_builtin()


def _route_overrides(
    experiments: Mapping[str, Any], keys: Mapping[str, Sequence[str]], overrides: Sequence[str]
) -> dict[str, list[str]]:
    """Map each ``[NAME.]key=value`` to the selected experiments it applies to."""
    from experiments.config import parse_override

    routed: dict[str, list[str]] = {name: [] for name in keys}
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ValueError as e:
            raise UsageError(f"--set: {e}") from None
        prefix, dot, bare = key.partition(".")
        if dot:
            if prefix not in experiments:
                raise UsageError(
                    f"--set {text!r}: unknown experiment {prefix!r}; "
                    f"valid: {', '.join(experiments) or '(none registered)'}"
                )
            if prefix not in keys:
                raise UsageError(f"--set {text!r}: experiment {prefix!r} is not selected")
            routed[prefix].append(f"{bare}={value}")
            continue
        targets = [name for name, valid in keys.items() if key in valid]
        if not targets:
            raise UsageError(f"--set {text!r}: no selected experiment has a config key {key!r}")
        for name in targets:
            routed[name].append(text)
    return routed


def _resolve_jobs(
    experiments: Mapping[str, Any],
    names: Sequence[str],
    preset: str,
    overrides: Sequence[str],
    out_dirs: Mapping[str, Path],
) -> list[tuple[str, Any, Path]]:
    """Resolve every config and check every output folder before anything runs."""
    from experiments.config import config_keys, resolve_config
    from experiments.io import check_run_dir

    keys = {}
    for name in names:
        try:
            keys[name] = config_keys(resolve_config(experiments[name].presets, preset))
        except ValueError as e:
            raise UsageError(f"experiment {name!r}: {e}") from None
    routed = _route_overrides(experiments, keys, overrides)
    jobs = []
    for name in names:
        try:
            cfg = resolve_config(experiments[name].presets, preset, routed[name])
            check_run_dir(out_dirs[name], cfg)
        except ValueError as e:
            raise UsageError(f"experiment {name!r}: {e}") from None
        jobs.append((name, cfg, out_dirs[name]))
    return jobs


def _run_jobs(experiments: Mapping[str, Any], jobs: Sequence[tuple[str, Any, Path]]) -> list[str]:
    """Run each job under a progress bar on stderr; return the names of those that raised."""
    from tqdm import tqdm

    failed = []
    with tqdm(jobs, desc="experiments", unit="exp", file=sys.stderr) as bar:
        for name, cfg, out_dir in bar:
            bar.set_postfix_str(name)
            start = time.perf_counter()
            try:
                experiments[name].run(cfg, out_dir)
            except Exception:
                tqdm.write(
                    f"experiment {name!r} raised:\n{traceback.format_exc()}", file=sys.stderr
                )
                failed.append(name)
                continue
            tqdm.write(f"{name}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return failed


def _make_figures(figures: Mapping[str, Any], runs_dir: Path, out_dir: Path) -> list[str]:
    """Draw every figure whose required experiments have ``metrics.csv``; return failures."""
    from figures.registry import missing_inputs

    failed = []
    for name, fig in figures.items():
        missing = missing_inputs(fig, runs_dir)
        if missing:
            print(f"figure {name}: skipped, no outputs for {list(missing)}", file=sys.stderr)
            continue
        try:
            paths = fig.make(runs_dir, out_dir)
        except Exception:
            print(f"figure {name!r} raised:\n{traceback.format_exc()}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"figure {name}: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return failed


def _fmt(value: Any, spec: str = ".4g") -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return format(value, spec) if isinstance(value, int | float) else str(value)


def format_summary_table(summary: Any) -> str:
    """Align ``experiment | quantity | predicted | measured [ci_low, ci_high] | verdict``."""
    header = ("experiment", "quantity", "predicted", "measured [ci_low, ci_high]", "verdict")
    rows = [header]
    for r in summary.itertuples(index=False):
        measured = _fmt(r.measured)
        if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
            measured += f" [{_fmt(r.ci_low, '.3g')}, {_fmt(r.ci_high, '.3g')}]"
        rows.append(
            (str(r.experiment), str(r.quantity), _fmt(r.predicted), measured, str(r.verdict))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_summary_table(summary_paths: Sequence[Path], out_file: Path | None) -> None:
    """Concatenate per-experiment summaries, optionally write them, and print the table."""
    import pandas as pd

    from experiments.io import SUMMARY_COLUMNS, read_csv, write_csv

    frames = [read_csv(p) for p in summary_paths if p.exists()]
    if not frames:
        print("no summary.csv found")
        return
    summary = pd.concat(frames, ignore_index=True).reindex(columns=list(SUMMARY_COLUMNS))
    if out_file is not None:
        write_csv(out_file, summary)
    print(format_summary_table(summary))


def _select(experiments: Mapping[str, Any], only: Sequence[str] | None) -> list[str]:
    if not only:
        return [n for n, spec in experiments.items() if spec.in_default_repro]
    unknown = [n for n in only if n not in experiments]
    if unknown:
        valid = ", ".join(experiments) or "(none registered)"
        raise UsageError(f"--only: unknown experiment(s) {unknown}; valid: {valid}")
    return [n for n in experiments if n in only]


def _cmd_repro(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    experiments, figures = _registries()
    out = Path(args.out)
    names = _select(experiments, args.only)
    jobs = _resolve_jobs(experiments, names, args.preset, args.set, {n: out / n for n in names})
    failed = _run_jobs(experiments, jobs)
    failed += _make_figures(figures, out, out / "figures")
    _write_summary_table([out / n / "summary.csv" for n in experiments], out / "summary.csv")
    print(f"total wall time: {time.perf_counter() - start:.1f} s")
    if failed:
        print(f"sharpen: these raised (see stderr): {failed}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    experiments, _ = _registries()
    if args.name not in experiments:
        valid = ", ".join(experiments) or "(none registered)"
        raise UsageError(f"unknown experiment {args.name!r}; valid: {valid}")
    names = [args.name]
    out = Path(args.out) if args.out else Path("outputs") / args.name
    failed = _run_jobs(
        experiments, _resolve_jobs(experiments, names, args.preset, args.set, {args.name: out})
    )
    _write_summary_table([out / "summary.csv"], None)
    print(f"total wall time: {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


def _cmd_figures(args: argparse.Namespace) -> int:
    _, figures = _registries()
    runs = Path(args.runs)
    if not runs.is_dir():
        raise UsageError(f"--runs: {str(runs)!r} is not a folder")
    failed = _make_figures(figures, runs, Path(args.out) if args.out else runs / "figures")
    return 1 if failed else 0


def _cmd_list(args: argparse.Namespace) -> int:
    experiments, figures = _registries()
    print("experiments:")
    for name, spec in experiments.items():
        opt_in = "" if spec.in_default_repro else "  (opt-in: repro --only)"
        print(f"  {name:<8} {spec.title}  [presets: {', '.join(spec.presets)}]{opt_in}")
    print("figures:")
    for name, fig in figures.items():
        print(f"  {name:<24} requires: {', '.join(fig.requires)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="sharpen", description="Reproduce the sharpening paper's experiments and figures."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    set_help = "override a config field; repeatable; repro accepts NAME.key=value"

    p = sub.add_parser("repro", help="run experiments, draw figures, print the summary table")
    p.add_argument("--preset", default="quick", help="smoke | quick | full (default quick)")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="experiments to run")
    p.add_argument("--out", default="outputs/repro", help="output folder (default outputs/repro)")
    p.add_argument("--set", action="append", default=[], metavar="[NAME.]KEY=VALUE", help=set_help)
    p.set_defaults(func=_cmd_repro)

    p = sub.add_parser("run", help="run one experiment")
    p.add_argument("name", help="experiment name (see `sharpen list`)")
    p.add_argument("--preset", default="quick", help="smoke | quick | full (default quick)")
    p.add_argument("--out", default=None, help="output folder (default outputs/NAME)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("figures", help="redraw figures from existing outputs")
    p.add_argument("--runs", default="outputs/repro", help="runs folder (default outputs/repro)")
    p.add_argument("--out", default=None, help="figure folder (default RUNS/figures)")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("list", help="list experiments, presets and figures")
    p.set_defaults(func=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sharpen`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse reports usage errors with exit code 2
        return e.code if isinstance(e.code, int) else 2
    setup_runtime()
    try:
        return args.func(args)
    except UsageError as e:
        print(f"sharpen: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Shared timing harness for the scripts in ``benchmarks/`` (not a test; pytest does not collect it).

Rules every script follows, so that numbers are comparable and honest:

* Contenders run on identical inputs and are *alternated* within each repeat (the order rotates
  from repeat to repeat), so slow drift of the machine (thermal, other tenants) hits all of them
  alike. At least 5 timed repeats follow the warm-up calls; we report the median and the
  inter-quartile range (IQR) and the min/max.
* Every timed call ends in :func:`jax.block_until_ready` on its outputs (a no-op for numpy).
* Compile time is measured separately, with ``jit(f).lower(...).compile()`` before the first call,
  and never enters a steady-state number: the timed JAX callables are the compiled executables.
* Results land in two places: ``benchmarks/results/<name>.json`` (everything, including the raw
  per-repeat times) and one section of ``BENCHMARKS.md`` at the repository root. A script
  re-run replaces its own section and leaves the others alone.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_DIR = ROOT / "benchmarks" / "results"
OUT_DIR = ROOT / "benchmarks" / "out"

_HEADER = """# Benchmarks

Timings of `sharpen`'s numeric cores against a peer implementation on identical work. Produced
by the scripts in `benchmarks/` (they are not tests; pytest does not collect them); each
script owns one or more sections below and rewrites only those when re-run. Raw per-repeat
times are in `benchmarks/results/<name>.json`.

Method (all sections): the contenders get the same inputs, are alternated within every repeat
(the order rotates between repeats), and are timed for >= 5 repeats after warm-up calls that
are not counted; each timed call ends in `jax.block_until_ready`. We report the median, the
inter-quartile range (IQR) and the ratio of medians. JAX compile time (`lower` + `compile`,
measured before the first call) is reported in its own column and is never part of the
steady-state time.

How to re-run:

| script | command | what it measures |
|---|---|---|
| `benchmarks/bench_bon.py` | `python benchmarks/bench_bon.py` | best-of-N draw + select on tabular policies vs numpy; closed-form BoN law vs Monte Carlo; scaling in N (`benchmarks/out/bon_scaling.png`) |
| `benchmarks/bench_gpu.py` | `python benchmarks/bench_gpu.py` | on an NVIDIA GPU or a TPU: decode memory-bandwidth utilisation and training MFU of a ~124M GPT-2 in bf16; says so and exits when none is present (`--tiny --force-cpu` runs the code path on CPU) |
"""


# --------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:  # not installed, or broken install: report it as absent
        return None


def machine_info() -> dict:
    """Cores, CPU model, JAX devices, library versions and the UTC date of this run."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {
        name: _version(name)
        for name in ("jax", "jaxlib", "numpy", "optax", "torch", "transformers")
    }
    return {
        "cores": usable,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "versions": {k: v for k, v in versions.items() if v is not None},
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_line(info: dict) -> str:
    """One markdown line describing the machine and library versions."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    devices = ", ".join(sorted(set(info["jax_devices"])))
    return (
        f"{info['cores']} cores, {info['cpu_model']}; JAX backend `{info['jax_backend']}` "
        f"({devices}); {versions}; Python {info['python']}; {info['date_utc']}; load average "
        f"at start {info['load_avg_1_5_15'][0]} (1 min; the machine is shared)"
    )


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=4, method="inclusive")[int(q * 4) - 1]


def summarize(times: list[float]) -> dict:
    """Median, IQR (25th/75th percentiles), min, max and the raw list of ``times`` (seconds)."""
    return {
        "median_s": statistics.median(times),
        "q25_s": _quantile(times, 0.25),
        "q75_s": _quantile(times, 0.75),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": list(times),
    }


def time_alternating(
    fns: dict[str, Callable[[], object]], *, warmup: int = 1, repeats: int = 5
) -> dict[str, dict]:
    """Time zero-argument callables, alternating them within each repeat.

    Every callable is called ``warmup`` times (untimed), then ``repeats`` times; in repeat ``r``
    the contenders run in the order rotated by ``r``, so none always runs first. Each call is
    followed by ``jax.block_until_ready`` on its result.

    Returns:
      ``{name: summarize(times)}``.
    """
    if repeats < 5:
        raise ValueError(f"repeats must be >= 5, got {repeats}")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            jax.block_until_ready(fns[name]())
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            jax.block_until_ready(fns[name]())
            times[name].append(time.perf_counter() - start)
    return {name: summarize(ts) for name, ts in times.items()}


def compile_timed(jitted, *args, **kwargs):
    """Lower and compile ``jitted`` for these arguments; return ``(compiled, seconds)``.

    ``seconds`` covers tracing, lowering and XLA compilation (what the first call of a jitted
    function pays on top of running it). Call the returned executable with the non-static
    arguments only.
    """
    start = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return compiled, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def fmt_s(seconds: float | None) -> str:
    """Seconds in the most readable unit (``1.23 ms``)."""
    if seconds is None:
        return "—"
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_iqr(summary: dict) -> str:
    return f"{fmt_s(summary['q25_s'])} – {fmt_s(summary['q75_s'])}"


def markdown_table(rows: list[dict]) -> str:
    """A markdown table whose columns are the keys of the first row."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _markers(section: str) -> tuple[str, str]:
    return f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"


def append_result(
    section: str,
    rows: list[dict],
    command: str,
    *,
    title: str,
    notes: str = "",
    info: dict | None = None,
    raw: dict | None = None,
) -> None:
    """Write ``section`` of ``BENCHMARKS.md`` (replacing a previous version) and its JSON.

    Args:
      section: identifier of the section, also the JSON file name
        (``benchmarks/results/<section>.json``).
      rows: table rows (dicts with the same keys; formatted strings).
      command: the exact command that produced the numbers.
      title: the section heading.
      notes: markdown placed under the table (workload, method, analysis).
      info: :func:`machine_info` of the run (measured now when ``None``).
      raw: extra data for the JSON file (raw times, compile times, sanity checks).
    """
    info = machine_info() if info is None else info
    begin, end = _markers(section)
    body = "\n\n".join(
        part
        for part in (
            f"## {title}",
            f"Command: `{command}`  \nMachine: {machine_line(info)}",
            markdown_table(rows),
            notes.strip(),
        )
        if part
    )
    block = f"{begin}\n{body}\n{end}"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else _HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"section": section, "command": command, "machine": info, "rows": rows}
    payload.update(raw or {})
    (RESULTS_DIR / f"{section}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")

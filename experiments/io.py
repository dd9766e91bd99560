"""Run-folder output contract: atomic, resumable, deterministic.

Every experiment writes one run folder::

    <out_dir>/
      config.json        {"experiment": name, **resolved config}; guards resumes
      units/<unit>.csv   one finished unit of work (a seed, a grid point, ...)
      metrics.csv        all units concatenated in a fixed order
      summary.csv        one row per checked quantity, columns ``SUMMARY_COLUMNS``

Three rules make runs resumable and reproducible:

* **Atomic writes.** Every file is written to a temporary file in the same folder
  and moved into place with ``os.replace``, so a killed run never leaves a
  half-written file that a resume would trust.
* **Config guard.** ``prepare_run_dir`` refuses a folder holding a run with a
  different config, so a resume never mixes two configs.
* **Read-back.** ``cached_unit`` always returns the frame *read back* from its CSV,
  so a fresh run and a resumed run feed byte-identical frames downstream. CSV
  floats are written with ``FLOAT_FORMAT`` (10 significant digits), which makes
  write -> read -> write a fixed point.

Figures (``figures/``) read only these files; they never re-run experiments.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "FLOAT_FORMAT",
    "SUMMARY_COLUMNS",
    "VERDICTS",
    "atomic_write_text",
    "cached_unit",
    "check_run_dir",
    "config_to_dict",
    "finalize_metrics",
    "prepare_run_dir",
    "read_csv",
    "read_json",
    "write_csv",
    "write_json",
    "write_summary",
]

FLOAT_FORMAT = "%.10g"
SUMMARY_COLUMNS = (
    "experiment",
    "quantity",
    "predicted",
    "measured",
    "ci_low",
    "ci_high",
    "verdict",
)
VERDICTS = ("pass", "fail", "info")
_UNIT_NAME = re.compile(r"[A-Za-z0-9_.=-]+")
_REQUIRED_SUMMARY = ("experiment", "quantity", "measured", "verdict")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    Args:
      path: destination file; its parent folder is created if missing.
      text: full file contents, written as UTF-8 with ``\\n`` line endings.

    Returns:
      ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Never leave the temp file behind, whatever interrupted the write.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON (indent 2, sorted keys, trailing newline), atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by ``write_json`` (or any JSON file)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | os.PathLike[str], df: pd.DataFrame) -> Path:
    """Write ``df`` as CSV atomically, without the index, floats as ``FLOAT_FORMAT``.

    A frame read back with ``read_csv`` and written again gives a byte-identical file.

    Args:
      path: destination ``.csv`` file.
      df: the frame; its index is dropped.

    Returns:
      ``path`` as a ``Path``.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV written by ``write_csv``."""
    return pd.read_csv(path)


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, nested dataclasses/mappings converted, leaves unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def config_to_dict(cfg: Any, *, experiment: str | None = None) -> dict[str, Any]:
    """Convert a (frozen) dataclass config into a JSON-ready dict.

    Args:
      cfg: a dataclass instance; tuples become lists, nested dataclasses become dicts.
      experiment: if given, stored under the key ``"experiment"`` (first).

    Returns:
      ``{"experiment": experiment, field: value, ...}`` (no ``"experiment"`` key when
      ``experiment`` is None).
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise ValueError(f"cfg must be a dataclass instance, got {type(cfg).__name__}")
    out: dict[str, Any] = {} if experiment is None else {"experiment": experiment}
    fields = _jsonable(cfg)
    if "experiment" in fields and experiment is not None:
        raise ValueError(f"cfg has a field named 'experiment', which clashes with {experiment=}")
    out.update(fields)
    return out


def check_run_dir(
    out_dir: str | os.PathLike[str], config: Any, *, experiment: str | None = None
) -> None:
    """Raise ``ValueError`` if ``out_dir/config.json`` holds a run with another config.

    Args:
      out_dir: run folder (need not exist).
      config: the dataclass config about to be run.
      experiment: experiment name; when None the stored ``"experiment"`` key is ignored.
    """
    path = Path(out_dir) / "config.json"
    if not path.exists():
        return
    stored = read_json(path)
    wanted = json.loads(json.dumps(config_to_dict(config, experiment=experiment)))
    if experiment is None and isinstance(stored, dict):
        stored = {k: v for k, v in stored.items() if k != "experiment"}
    # Compare as objects (1 == 1.0) and as text (NaN == NaN).
    same_text = json.dumps(stored, sort_keys=True) == json.dumps(wanted, sort_keys=True)
    if stored != wanted and not same_text:
        diff = sorted(
            k
            for k in set(stored) | set(wanted)
            if not isinstance(stored, dict) or stored.get(k) != wanted.get(k)
        )
        raise ValueError(
            f"out_dir {str(out_dir)!r} holds a run with another config (differs in {diff}); "
            "use another --out folder or delete it"
        )


def prepare_run_dir(out_dir: str | os.PathLike[str], config: Any, *, experiment: str) -> Path:
    """Create the run folder and write ``config.json``; refuse to mix configs on resume.

    Args:
      out_dir: run folder, created with parents if missing.
      config: frozen dataclass config of the run.
      experiment: experiment name (the registry key, e.g. ``"s1"``).

    Returns:
      ``out_dir`` as a ``Path``.

    Raises:
      ValueError: ``out_dir/config.json`` exists with different content.
    """
    out = Path(out_dir)
    check_run_dir(out, config, experiment=experiment)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "config.json").exists():
        write_json(out / "config.json", config_to_dict(config, experiment=experiment))
    return out


def cached_unit(
    out_dir: str | os.PathLike[str], unit_name: str, compute: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    """Return unit ``unit_name``'s frame, computing and saving it only if not yet done.

    The frame returned is always the one read back from ``out_dir/units/<unit_name>.csv``,
    so fresh and resumed runs produce identical downstream files.

    Args:
      out_dir: run folder.
      unit_name: file stem matching ``[A-Za-z0-9_.=-]+``, e.g. ``"seed=3_n=100"``.
      compute: zero-argument function returning the unit's ``DataFrame``.

    Returns:
      The unit's frame as read from disk.
    """
    if not isinstance(unit_name, str) or not _UNIT_NAME.fullmatch(unit_name):
        raise ValueError(f"unit_name must match [A-Za-z0-9_.=-]+, got {unit_name!r}")
    path = Path(out_dir) / "units" / f"{unit_name}.csv"
    if not path.exists():
        df = compute()
        if not isinstance(df, pd.DataFrame):
            raise ValueError(
                f"compute for unit {unit_name!r} must return a DataFrame, got {type(df).__name__}"
            )
        write_csv(path, df)
    return read_csv(path)


def finalize_metrics(
    out_dir: str | os.PathLike[str], frames: Sequence[pd.DataFrame], name: str = "metrics.csv"
) -> Path:
    """Concatenate ``frames`` in the given order and write ``out_dir/name`` atomically.

    Args:
      out_dir: run folder.
      frames: non-empty list of unit frames (usually from ``cached_unit``).
      name: output file name.

    Returns:
      The written path.
    """
    if len(frames) == 0:
        raise ValueError(f"frames must be non-empty to write {name!r} in {str(out_dir)!r}")
    return write_csv(Path(out_dir) / name, pd.concat(list(frames), ignore_index=True))


def _format_predicted(value: Any) -> str:
    """Predictions are stored as text: an interval "[1.6, 2.4]", a bound "<= 3", or a number."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return FLOAT_FORMAT % float(value)


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def summary_row(
    experiment: str,
    quantity: str,
    predicted: Any,
    measured: float,
    ci_low: float = math.nan,
    ci_high: float = math.nan,
    *,
    verdict: str | None = None,
) -> dict[str, Any]:
    """One ``summary.csv`` row. With ``verdict=None``, ``predicted`` must be an interval
    ``"[a, b]"`` and the verdict is ``"pass"`` iff ``a <= measured <= b`` (NaN fails)."""
    if verdict is None:
        a, b = (float(v) for v in str(predicted).strip("[]").split(","))
        verdict = "pass" if a <= measured <= b else "fail"
    return {
        "experiment": experiment,
        "quantity": quantity,
        "predicted": predicted,
        "measured": measured,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "verdict": verdict,
    }


def write_summary(out_dir: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``out_dir/summary.csv`` with exactly the columns ``SUMMARY_COLUMNS``.

    Args:
      out_dir: run folder.
      rows: dicts with keys from ``SUMMARY_COLUMNS``. ``experiment``, ``quantity``,
        ``measured`` and ``verdict`` are required; ``predicted`` (a number or a string
        such as ``"[1.6, 2.4]"``), ``ci_low`` and ``ci_high`` default to empty / NaN.
        ``verdict`` is one of ``"pass"``, ``"fail"``, ``"info"``.

    Returns:
      The written path.
    """
    if len(rows) == 0:
        raise ValueError(f"rows must be non-empty to write a summary in {str(out_dir)!r}")
    records = []
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(SUMMARY_COLUMNS))
        missing = [k for k in _REQUIRED_SUMMARY if k not in row]
        if unknown or missing:
            raise ValueError(
                f"rows[{i}] has unknown keys {unknown} / missing keys {missing}; "
                f"columns are {list(SUMMARY_COLUMNS)}"
            )
        if row["verdict"] not in VERDICTS:
            raise ValueError(
                f"rows[{i}]['verdict'] must be one of {VERDICTS}, got {row['verdict']!r}"
            )
        records.append(
            {
                "experiment": str(row["experiment"]),
                "quantity": str(row["quantity"]),
                "predicted": _format_predicted(row.get("predicted")),
                "measured": _as_float(row["measured"]),
                "ci_low": _as_float(row.get("ci_low")),
                "ci_high": _as_float(row.get("ci_high")),
                "verdict": row["verdict"],
            }
        )
    return write_csv(Path(out_dir) / "summary.csv", pd.DataFrame(records, columns=SUMMARY_COLUMNS))

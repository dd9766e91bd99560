"""Tests for experiments/io.py: atomic writes, resume, config guard, CSV round-trip."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from experiments import io


@dataclasses.dataclass(frozen=True)
class _Cfg:
    num_seeds: int = 3
    grid: tuple[float, ...] = (0.1, 0.2)
    name: str = "toy"


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "seed": np.arange(4),
            "err": rng.random(4) / 3.0,
            "whole": [1.0, 2.0, 3.0, 4.0],
            "label": ["a", "b", "c", "d"],
            "ok": [True, False, True, True],
            "maybe": [0.5, math.nan, 1e-12, 123456.789012345],
        }
    )


def test_atomic_write_text_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    io.atomic_write_text(path, "one\n")
    io.atomic_write_text(path, "two\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_json_round_trip_is_sorted_with_trailing_newline(tmp_path):
    path = io.write_json(tmp_path / "c.json", {"b": [1, 2], "a": 0.5})
    text = path.read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert io.read_json(path) == {"a": 0.5, "b": [1, 2]}


def test_write_csv_round_trip_is_byte_identical(tmp_path):
    first = io.write_csv(tmp_path / "a.csv", _frame())
    second = io.write_csv(tmp_path / "b.csv", io.read_csv(first))
    assert first.read_bytes() == second.read_bytes()
    assert "Unnamed" not in first.read_text()


def test_config_to_dict_lists_tuples_and_names_experiment():
    d = io.config_to_dict(_Cfg(), experiment="s0")
    assert d == {"experiment": "s0", "num_seeds": 3, "grid": [0.1, 0.2], "name": "toy"}
    assert next(iter(d)) == "experiment"
    assert "experiment" not in io.config_to_dict(_Cfg())
    with pytest.raises(ValueError, match="dataclass"):
        io.config_to_dict({"a": 1})


def test_prepare_run_dir_writes_config_and_resumes(tmp_path):
    out = io.prepare_run_dir(tmp_path / "run", _Cfg(), experiment="s0")
    before = (out / "config.json").read_bytes()
    assert io.read_json(out / "config.json")["experiment"] == "s0"
    io.prepare_run_dir(out, _Cfg(), experiment="s0")
    assert (out / "config.json").read_bytes() == before


def test_prepare_run_dir_rejects_another_config(tmp_path):
    io.prepare_run_dir(tmp_path, _Cfg(), experiment="s0")
    with pytest.raises(ValueError, match="another config") as err:
        io.prepare_run_dir(tmp_path, _Cfg(num_seeds=4), experiment="s0")
    assert str(tmp_path) in str(err.value) and "num_seeds" in str(err.value)
    with pytest.raises(ValueError, match="another config"):
        io.prepare_run_dir(tmp_path, _Cfg(), experiment="s1")
    io.check_run_dir(tmp_path, _Cfg())  # experiment=None ignores the stored name


def test_cached_unit_failing_compute_leaves_no_file(tmp_path):
    def boom() -> pd.DataFrame:
        raise RuntimeError("killed mid-unit")

    with pytest.raises(RuntimeError):
        io.cached_unit(tmp_path, "seed=0", boom)
    assert not (tmp_path / "units" / "seed=0.csv").exists()


def test_cached_unit_resume_returns_identical_frame_without_recompute(tmp_path):
    calls = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return _frame()

    fresh = io.cached_unit(tmp_path, "seed=0_n-1.5", compute)
    resumed = io.cached_unit(tmp_path, "seed=0_n-1.5", compute)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(fresh, resumed)
    # The fresh result is the read-back frame, not the computed one (ints stay ints, etc.).
    pd.testing.assert_frame_equal(fresh, io.read_csv(tmp_path / "units" / "seed=0_n-1.5.csv"))


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "a b", "é"])
def test_cached_unit_rejects_bad_names(tmp_path, bad):
    with pytest.raises(ValueError, match="unit_name"):
        io.cached_unit(tmp_path, bad, _frame)


def test_cached_unit_rejects_non_frame(tmp_path):
    with pytest.raises(ValueError, match="DataFrame"):
        io.cached_unit(tmp_path, "u", lambda: [1, 2])
    assert not (tmp_path / "units" / "u.csv").exists()


def test_finalize_metrics_concatenates_in_order(tmp_path):
    frames = [io.cached_unit(tmp_path, f"seed={s}", lambda s=s: _frame(s)) for s in (2, 0, 1)]
    path = io.finalize_metrics(tmp_path, frames)
    metrics = io.read_csv(path)
    assert len(metrics) == 12
    pd.testing.assert_frame_equal(metrics.iloc[4:8].reset_index(drop=True), frames[1])
    with pytest.raises(ValueError, match="non-empty"):
        io.finalize_metrics(tmp_path, [])


def test_write_summary_has_exact_columns(tmp_path):
    rows = [
        {"experiment": "s0", "quantity": "slope", "predicted": "[1.6, 2.4]", "measured": 2.01,
         "ci_low": 1.9, "ci_high": 2.1, "verdict": "pass"},
        {"experiment": "s0", "quantity": "m_star", "predicted": 3.5, "measured": 4.0,
         "verdict": "info"},
    ]  # fmt: skip
    summary = io.read_csv(io.write_summary(tmp_path, rows))
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert list(summary["predicted"]) == ["[1.6, 2.4]", "3.5"]
    assert math.isnan(summary["ci_low"][1])


def test_write_summary_validates_rows(tmp_path):
    good = {"experiment": "s0", "quantity": "q", "measured": 1.0, "verdict": "pass"}
    with pytest.raises(ValueError, match="verdict"):
        io.write_summary(tmp_path, [{**good, "verdict": "ok"}])
    with pytest.raises(ValueError, match="unknown keys"):
        io.write_summary(tmp_path, [{**good, "extra": 1}])
    with pytest.raises(ValueError, match="missing keys"):
        io.write_summary(tmp_path, [{"experiment": "s0"}])


def test_check_run_dir_treats_nan_and_int_float_as_equal(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class WithNan:
        beta: float = math.nan
        scale: float = 1

    io.prepare_run_dir(tmp_path, WithNan(), experiment="s0")
    io.prepare_run_dir(tmp_path, WithNan(), experiment="s0")
    io.check_run_dir(tmp_path, WithNan(scale=1.0), experiment="s0")

"""Tests for sharpen/cli.py with toy experiments and figures registered via monkeypatch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from experiments import io
from experiments import registry as experiment_registry
from figures import registry as figure_registry
from sharpen.cli import main


@dataclasses.dataclass(frozen=True)
class _ToyConfig:
    num_seeds: int = 2
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class _OtherConfig:
    scale: float = 1.0
    width: int = 3


_PRESETS = {"smoke": lambda: _ToyConfig(1), "quick": _ToyConfig, "full": lambda: _ToyConfig(5)}
_OTHER_PRESETS = {"smoke": _OtherConfig, "quick": _OtherConfig, "full": _OtherConfig}


def _run_toy(cfg: _ToyConfig, out_dir: Path) -> None:
    io.prepare_run_dir(out_dir, cfg, experiment="toy")
    frames = [
        io.cached_unit(
            out_dir, f"seed={s}", lambda s=s: pd.DataFrame({"seed": [s], "v": [cfg.scale * s]})
        )
        for s in range(cfg.num_seeds)
    ]
    io.finalize_metrics(out_dir, frames)
    rows = [{"experiment": "toy", "quantity": "scale", "predicted": "[0.5, 1.5]",
             "measured": cfg.scale, "ci_low": 0.9, "ci_high": 1.1,
             "verdict": "pass" if 0.5 <= cfg.scale <= 1.5 else "fail"}]  # fmt: skip
    io.write_summary(out_dir, rows)


def _run_other(cfg: _OtherConfig, out_dir: Path) -> None:
    io.prepare_run_dir(out_dir, cfg, experiment="other")
    io.finalize_metrics(out_dir, [pd.DataFrame({"w": [cfg.width]})])
    io.write_summary(
        out_dir,
        [{"experiment": "other", "quantity": "width", "measured": cfg.width, "verdict": "info"}],
    )


def _make_fig(runs_dir: Path, out_dir: Path) -> list[Path]:
    metrics = io.read_csv(runs_dir / "toy" / "metrics.csv")
    return [io.atomic_write_text(out_dir / "toy_fig.txt", f"{len(metrics)}\n")]


@pytest.fixture
def toy_registry(monkeypatch):
    experiments = {
        "toy": experiment_registry.ExperimentSpec(
            "toy", "Toy — a test experiment", _PRESETS, _run_toy
        ),
        "other": experiment_registry.ExperimentSpec(
            "other", "Other — second toy", _OTHER_PRESETS, _run_other
        ),
    }
    figures = {
        "toy_fig": figure_registry.FigureSpec("toy_fig", ("toy",), _make_fig),
        "needs_missing": figure_registry.FigureSpec("needs_missing", ("absent",), _make_fig),
    }
    monkeypatch.setattr(experiment_registry, "EXPERIMENTS", experiments)
    monkeypatch.setattr(figure_registry, "FIGURES", figures)
    # Only the toys: the built-in modules must not register into the patched dicts.
    monkeypatch.setattr(experiment_registry, "BUILTIN", ())
    monkeypatch.setattr(figure_registry, "BUILTIN", ())
    return experiments


def test_repro_smoke_writes_outputs_and_table(toy_registry, tmp_path, capsys):
    assert main(["repro", "--out", str(tmp_path), "--preset", "smoke"]) == 0
    summary = io.read_csv(tmp_path / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert list(summary["experiment"]) == ["toy", "other"]
    assert io.read_json(tmp_path / "toy" / "config.json") == {
        "experiment": "toy", "num_seeds": 1, "scale": 1.0,
    }  # fmt: skip
    assert (tmp_path / "figures" / "toy_fig.txt").read_text() == "1\n"
    out = capsys.readouterr().out
    assert "measured [ci_low, ci_high]" in out and "1 [0.9, 1.1]" in out and "[0.5, 1.5]" in out
    assert "total wall time" in out


def test_repro_resume_is_byte_identical(toy_registry, tmp_path):
    assert main(["repro", "--out", str(tmp_path), "--only", "toy"]) == 0
    first = (tmp_path / "toy" / "metrics.csv").read_bytes()
    (tmp_path / "toy" / "metrics.csv").unlink()
    assert main(["repro", "--out", str(tmp_path), "--only", "toy"]) == 0
    assert (tmp_path / "toy" / "metrics.csv").read_bytes() == first
    assert not (tmp_path / "other").exists()


def test_repro_set_routing(toy_registry, tmp_path, capsys):
    argv = ["repro", "--out", str(tmp_path), "--set", "scale=3", "--set", "other.width=7"]
    assert main(argv) == 0  # a "fail" verdict is a reported result, not an error
    assert io.read_json(tmp_path / "toy" / "config.json")["scale"] == 3.0
    assert io.read_json(tmp_path / "other" / "config.json") == {
        "experiment": "other", "scale": 3.0, "width": 7,
    }  # fmt: skip
    assert "fail" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--only", "nope"], "'nope'"),
        (["--set", "x.bad=1"], "'x'"),
        (["--set", "toy.bad=1"], "'bad'"),
        (["--set", "bad=1"], "'bad'"),
        (["--set", "toy.scale=abc"], "'abc'"),
        (["--set", "noequals"], "'noequals'"),
        (["--preset", "medium"], "'medium'"),
        (["--only", "toy", "--set", "other.width=1"], "'other'"),
    ],
)
def test_repro_bad_arguments_exit_2(toy_registry, tmp_path, capsys, argv, named):
    assert main(["repro", "--out", str(tmp_path), *argv]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()  # nothing ran


def test_repro_refuses_folder_of_another_config(toy_registry, tmp_path, capsys):
    assert main(["repro", "--out", str(tmp_path), "--only", "toy", "--preset", "smoke"]) == 0
    assert main(["repro", "--out", str(tmp_path), "--only", "toy", "--preset", "full"]) == 2
    assert "another config" in capsys.readouterr().err


def test_failing_experiment_exits_1_others_still_run(toy_registry, tmp_path, capsys, monkeypatch):
    def explode(cfg, out_dir):
        raise RuntimeError("toy failure")

    monkeypatch.setitem(toy_registry, "toy", dataclasses.replace(toy_registry["toy"], run=explode))
    assert main(["repro", "--out", str(tmp_path)]) == 1
    assert "toy failure" in capsys.readouterr().err
    assert list(io.read_csv(tmp_path / "summary.csv")["experiment"]) == ["other"]


def test_run_single_experiment(toy_registry, tmp_path, capsys):
    out = tmp_path / "toy_run"
    assert main(["run", "toy", "--preset", "smoke", "--set", "num_seeds=3", "--out", str(out)]) == 0
    assert len(io.read_csv(out / "metrics.csv")) == 3
    assert "scale" in capsys.readouterr().out
    assert main(["run", "nope", "--out", str(out)]) == 2


def test_figures_command(toy_registry, tmp_path):
    assert main(["repro", "--out", str(tmp_path), "--only", "toy"]) == 0
    assert main(["figures", "--runs", str(tmp_path), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "toy_fig.txt").exists()
    assert main(["figures", "--runs", str(tmp_path / "missing")]) == 2


def test_list_and_usage(toy_registry, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Toy — a test experiment" in out and "smoke, quick, full" in out and "toy_fig" in out
    assert main([]) == 2
    assert main(["bogus"]) == 2


def test_opt_in_experiments_run_only_when_named(toy_registry, tmp_path, capsys):
    toy_registry["other"] = dataclasses.replace(toy_registry["other"], in_default_repro=False)
    assert main(["repro", "--out", str(tmp_path / "a"), "--preset", "smoke"]) == 0
    assert (tmp_path / "a" / "toy").is_dir() and not (tmp_path / "a" / "other").exists()
    assert (
        main(["repro", "--out", str(tmp_path / "b"), "--only", "other", "--preset", "smoke"]) == 0
    )
    assert (tmp_path / "b" / "other" / "summary.csv").is_file()
    assert main(["list"]) == 0
    assert "(opt-in: repro --only)" in capsys.readouterr().out

"""S2 (Prop 3.1, greedy decoding): run contract, determinism, resume, config checks, figure,
and the per-model decoders against exact enumeration.
"""

from __future__ import annotations

import dataclasses

import pytest

from experiments import io
from experiments import s2_greedy as s2
from figures import fig_greedy_threshold
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s2"
    s2.run(s2.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    assert list(summary["verdict"][:3]) == ["pass", "info", "pass"]
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = s2.smoke()
    assert len(metrics) == cfg.models_per_cell * len(cfg.grid)
    assert ((metrics["p_star"] > 0) & (metrics["p_star"] <= 1)).all()
    conc = metrics["concentration"]
    assert ((conc >= cfg.concentration_min * 0.999) & (conc <= cfg.concentration_max)).all()
    # Prop 3.1 per model: a unique argmax above 1/2 is always found by greedy.
    confident = metrics[(metrics["unique"] == 1) & (metrics["p_star"] > 0.5)]
    assert len(confident) > 0 and (confident["greedy_ok"] == 1).all()


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s2, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s2, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grid", ()),
        ("grid", ((1, 3),)),
        ("models_per_cell", 0),
        ("concentration_min", 0.0),
        ("concentration_min", 2.0),
        ("low_temperature", 0.0),
        ("tightness_eta", 0.2),
        ("min_confident_models", 0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s2.smoke(), **{field: value})


def test_tightness_instance_defeats_greedy():
    ok, p_star = s2.tightness_greedy_ok(0.1)
    assert not ok
    assert p_star == pytest.approx(0.4, rel=1e-5)


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_greedy_threshold.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_greedy_threshold.png"]
    assert paths[0].stat().st_size > 0

"""S9 (Lemma J.5, SEC potential along XPO): run contract, determinism, resume, config checks,
the bounds, and the figure.
"""

from __future__ import annotations

import dataclasses

import pytest

from experiments import io
from experiments import s9_sec as s9
from figures import fig_sec
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s9"
    s9.run(s9.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert "fail" not in set(summary["verdict"])
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = s9.smoke()
    assert len(metrics) == len(cfg.dims) * cfg.num_seeds * cfg.num_rounds
    assert (metrics["potential"] <= metrics["bound_f2"]).all()
    # The potential is a cumulative sum of traces of PSD products: non-decreasing in t.
    for _, g in metrics.groupby(["d", "seed"]):
        assert (g.sort_values("t")["potential"].diff().dropna() >= -1e-6).all()


@pytest.mark.slow
def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s9, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.slow
def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s9, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dims", ()),
        ("dims", (1,)),
        ("min_dist", 0.1),
        ("num_rounds", 2),
        ("num_seeds", 0),
        ("inner_steps", 0),
        ("learning_rate", -1.0),
        ("delta", 1.0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s9.smoke(), **{field: value})


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_sec.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_sec.png"]
    assert paths[0].stat().st_size > 0

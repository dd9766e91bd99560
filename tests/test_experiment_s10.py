"""S10 (Prop E.1, MAX-CUT reduction): run contract, determinism, resume, config checks, figure,
and the reduction's structure on the smoke run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import io
from experiments import s10_maxcut as s10
from figures import fig_maxcut
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s10"
    s10.run(s10.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = s10.smoke()
    assert len(metrics) == len(cfg.horizons) * cfg.graphs_per_horizon
    assert (metrics["argmax_is_maxcut"] == 1.0).all()
    assert (metrics["modes_match_enumeration"] == 1.0).all()
    assert (metrics["num_modes"] == metrics["num_maxcuts"]).all()
    assert (metrics["num_edges"] % 2 == 1).all()
    assert (metrics["greedy_success"] == 0.0).all()  # all -1 prefix: cut 0
    assert (metrics["expansions"] <= metrics["num_sequences"]).all()


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s10, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s10, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizons", (8, 6)),
        ("graphs_per_horizon", 0),
        ("edge_prob", 1.0),
        ("kappa", 0.0),
        ("greedy_keys", 0),
        ("beam_widths", ()),
        ("bon_ns", (4, 1)),
        ("bon_trials", 0),
        ("enum_max_horizon", 30),
        ("node_budget", 0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s10.smoke(), **{field: value})


def test_random_graphs_have_an_odd_number_of_edges():
    for seed in range(20):
        adj = s10.random_odd_graph(np.random.default_rng(seed), 5, 0.5)
        assert (adj == adj.T).all() and (np.diag(adj) == 0).all()
        assert (adj.sum() // 2) % 2 == 1


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_maxcut.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_maxcut.png"]
    assert paths[0].stat().st_size > 0

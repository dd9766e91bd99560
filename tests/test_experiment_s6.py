"""S6 (closed form of Eq. 3, Lemma 4.1, β threshold, finiteness): run contract, determinism,
resume, config checks, the per-part outputs, and the figure.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import io
from experiments import s6_rlhf_closed_form as s6
from figures import fig_rlhf_closed_form
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s6"
    s6.run(s6.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    assert sorted(p.stem for p in (smoke_run / "units").glob("*.csv")) == [
        f"{i}_{p}" for i, p in enumerate(s6.PARTS)
    ]
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert "fail" not in set(summary["verdict"])


def test_parts_hold_the_expected_rows(smoke_run):
    cfg = s6.smoke()
    m = io.read_csv(smoke_run / "metrics.csv")
    part = {p: m[m["part"] == p] for p in s6.PARTS}
    n_solver = len(cfg.solver_num_responses) * len(cfg.solver_betas) * cfg.solver_instances
    assert len(part["solver"]) == n_solver
    assert (part["solver"]["l1"] <= cfg.solver_tol).all()
    lemma = part["lemma"]
    assert len(lemma) == cfg.lemma_instances
    assert set(lemma["ties"]) == {0, 2}
    assert (lemma["conc_star"] <= lemma["c_cov"] * (1 + s6.FLOAT_TOL)).all()
    assert (lemma["loss_conc"] <= lemma["num_responses"] * (1 + s6.FLOAT_TOL)).all()
    thr = part["threshold"]
    assert len(thr) == 2 * len(cfg.threshold_gammas) * len(cfg.threshold_num_responses)
    assert (thr["beta_suff"] <= thr["beta_exact"]).all()
    fin = part["finite"]
    assert np.isclose(fin["beta"].min(), s6.BETA_MIN) and np.isclose(fin["beta"].max(), s6.BETA_MAX)
    assert (fin["num_nan"] == 0).all() and (fin["num_inf"] == 0).all()


def test_dirichlet_sub_vector_keeps_ties_and_normalization():
    bank = s6._bank(s6.smoke(), "lemma", 1.0)
    logp = np.asarray(s6._instances(bank, slice(0, 5), 4, num_ties=2), np.float64)
    p = np.exp(logp)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    top = np.sort(p, axis=1)[:, -3:]
    np.testing.assert_allclose(top, top[:, :1].repeat(3, axis=1), rtol=1e-5)


@pytest.mark.slow
def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s6, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.slow
def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s6, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("solver_num_responses", ()),
        ("solver_num_responses", (2,)),
        ("solver_betas", (0.0,)),
        ("solver_steps", 0),
        ("solver_tol", 2.0),
        ("lemma_instances", 95),
        ("threshold_gammas", (2.0,)),
        ("finite_instances", 2),
        ("finite_num_betas", 1),
        ("delta", 1.0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s6.smoke(), **{field: value})


def test_quick_preset_meets_the_brief():
    cfg = s6.quick()
    assert cfg.lemma_instances >= 1000
    assert cfg.solver_tol == 1e-4


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_rlhf_closed_form.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_rlhf_closed_form.png"]
    assert paths[0].stat().st_size > 0


@pytest.mark.parametrize("preset", sorted(s6.PRESETS))
def test_every_preset_is_a_valid_config(preset):
    assert isinstance(s6.PRESETS[preset](), s6.Config)

"""S1 (Prop C.1, inference-time best-of-N): run contract, determinism, resume, config, figure.

The smoke preset runs once per module into a temp folder; the other tests reuse it. The
Monte-Carlo check is the experiment's own: every cell's pooled failure rate lies within
``Z_MAX = 4`` binomial standard errors of the exact law ``(1 - p*)^N``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from experiments import config, io
from experiments import s1_inference_bon as s1
from figures import fig_bon_failure
from tests import run_contract, tolerances

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s1"
    s1.run(s1.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    assert io.read_json(smoke_run / "config.json")["experiment"] == s1.NAME
    metrics = io.read_csv(smoke_run / "metrics.csv")
    assert tuple(metrics.columns) == s1.METRIC_COLUMNS
    cfg = s1.smoke()
    num_cells = sum(
        len(s1.num_samples_grid(cfg.p_stars[i], cfg.np_grid, cfg.rho)[0]) for _, i in s1.cells(cfg)
    )
    assert len(metrics) == num_cells * cfg.num_seeds
    assert (metrics["K"] * metrics["p_star"] > 1).all()  # p* > 1/K filter
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)


def test_smoke_mc_matches_law_and_bound(smoke_run):
    summary = io.read_csv(smoke_run / "summary.csv")
    # Rows (b) |z| <= 4, (c) failure at N_rho, (d) exact <= exp(-N p*), (e) law vs closed form.
    assert list(summary["verdict"][1:]) == ["pass"] * 4
    metrics = io.read_csv(smoke_run / "metrics.csv")
    tolerances.assert_close(
        metrics["failure_exact"].to_numpy(),
        (1.0 - metrics["p_star"].to_numpy()) ** metrics["N"].to_numpy(),
        "composite",
        dtype=np.float32,
    )


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s1, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s1, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ks", (2, 10)),
        ("p_stars", (1.5,)),
        ("p_stars", (0.5, 0.001)),  # below 1/K for every K of the smoke preset
        ("np_grid", (0.0, 1.0)),
        ("gamma", 1.0),
        ("rho", 0.0),
        ("num_seeds", 1),
        ("trials_per_seed", 0),
        ("num_boot", 0),
        ("dtype", "float16"),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s1.smoke(), **{field: value})


def test_unknown_config_key_is_an_error():
    with pytest.raises(ValueError, match="trials"):
        config.resolve_config(s1.PRESETS, "smoke", ["trials=5"])


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_bon_failure.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_bon_failure.png"]
    assert paths[0].stat().st_size > 0


@pytest.mark.parametrize(
    ("K", "p_star", "gamma"), [(10, 0.5, 0.0), (1000, 0.003, 0.0), (100, 0.1, 0.3)]
)
def test_instance_puts_p_star_on_the_target_and_less_on_each_other(K, p_star, gamma):
    logp_K, target_K = s1.instance(K, p_star, gamma, "float32")
    probs = np.exp(np.asarray(logp_K, np.float64))
    tolerances.assert_close(probs[target_K].sum(), p_star, dtype=np.float32)
    assert int(target_K.sum()) == (1 if gamma == 0 else 2)
    assert probs[~target_K].max() < (1 - gamma) * probs.max()
    assert s1.admissible(K, p_star, gamma)


def test_admissible_is_p_star_above_one_over_k_at_gamma_zero():
    assert s1.admissible(100, 0.011, 0.0) and not s1.admissible(100, 0.0099, 0.0)


def test_grid_holds_the_prop_c1_sample_size():
    grid, n_rho = s1.num_samples_grid(0.01, (0.5, 1.0, 3.0), 0.05)
    assert n_rho == math.ceil(math.log(20) / 0.01) == 300
    assert grid == (50, 100, 300)


def test_summary_flags_a_sampler_that_always_fails(smoke_run):
    metrics = io.read_csv(smoke_run / "metrics.csv")
    metrics["failures"] = metrics["num_trials"]
    metrics["failure_mc"] = 1.0
    rows = s1.summary_rows(metrics, s1.smoke())
    assert [r["verdict"] for r in rows[1:3]] == ["fail", "fail"]

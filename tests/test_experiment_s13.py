"""S13 (Def F.1 / Thm 4.1′, approximate maximizers): run contract, determinism, resume, config
checks, figure, and the exact N* search against the closed form.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import pytest

import sharpen
from experiments import io
from experiments import s13_approx_maximizers as s13
from figures import fig_approx_maximizers
from tests import run_contract
from theory import instances

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s13"
    s13.run(s13.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    metrics = io.read_csv(smoke_run / "metrics.csv")
    assert len(metrics) == 2 * len(s13.smoke().ks)
    # N* is minimal: the exact BoN mass crosses 1 - delta between N* - 1 and N*.
    assert (metrics["bon_mass_at_n_star"] >= 1 - s13.smoke().delta).all()
    assert (metrics["bon_mass_before_n_star"] < 1 - s13.smoke().delta).all()
    assert (metrics["n_star"] <= metrics["n_prop_c1"]).all()  # Prop C.1 is sufficient


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s13, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s13, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("delta", 0.0), ("gamma", 1.0), ("ks", (4, 2)), ("mc_trials", 0), ("p_top", 1.5)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s13.smoke(), **{field: value})


def test_too_many_near_maximizers_is_rejected():
    with pytest.raises(ValueError, match="num_responses"):
        dataclasses.replace(s13.smoke(), ks=(1, 300))


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_approx_maximizers.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_approx_maximizers.png"]
    assert paths[0].stat().st_size > 0


@pytest.mark.parametrize(("k", "gamma"), [(1, 0.0), (8, 0.0), (8, 0.5), (32, 0.5)])
def test_smallest_num_samples_matches_the_closed_form(k, gamma):
    logp_Y = instances.near_tie_policy(k=k, gamma=0.5, p_top=0.005, num_responses=1024)[0]
    mask_Y = sharpen.argmax_mask(logp_Y, gamma=gamma)
    target = float(sharpen.set_mass(logp_Y, mask_Y))
    n_star = s13.smallest_num_samples(logp_Y, mask_Y, delta=0.1, max_num_samples=1 << 20)
    assert n_star == math.ceil(math.log(0.1) / math.log1p(-target))


def test_smallest_num_samples_rejects_a_short_search():
    logp_Y = jnp.log(jnp.asarray([0.01, 0.99]))
    with pytest.raises(ValueError, match="max_num_samples"):
        s13.smallest_num_samples(logp_Y, logp_Y < -1.0, delta=0.1, max_num_samples=10)

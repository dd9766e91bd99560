"""Smoke runs of S3, S4, S5 with their real run(): outputs, determinism, resume, figures."""

import pandas as pd
import pytest

from experiments import io, s3_lower_bound, s4_sft, s5_adaptive
from figures import fig_coverage_term, fig_mstar_vs_c, fig_mstar_vs_eps, fig_stopping_rule
from tests import run_contract

MODULES = {"s3": s3_lower_bound, "s4": s4_sft, "s5": s5_adaptive}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, module in MODULES.items():
        module.run(module.smoke(), root / name)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODULES))
def test_outputs_and_summary(runs, name):
    out = runs / name
    assert io.read_json(out / "config.json")["experiment"] == name
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"learner", "epsilon", "seed", "m", "error"} <= set(metrics.columns)
    assert metrics["error"].between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= {"pass", "fail", "info"}


@pytest.mark.slow
def test_resume_after_kill_gives_identical_files(runs, tmp_path):
    files = ("metrics.csv", "mstar.csv", "summary.csv")
    run_contract.assert_resume_identical(s3_lower_bound, runs / "s3", tmp_path, files)


@pytest.mark.slow
def test_same_seed_gives_identical_files(runs, tmp_path):
    files = ("metrics.csv", "lemma_i1.csv", "summary.csv")
    run_contract.assert_rerun_identical(s5_adaptive, runs / "s5", tmp_path, files)


@pytest.mark.slow
def test_figures_from_outputs(runs, tmp_path):
    for module in (fig_mstar_vs_eps, fig_mstar_vs_c, fig_coverage_term, fig_stopping_rule):
        (path,) = module.make(runs, tmp_path)
        assert path.exists() and path.stat().st_size > 10_000


def test_run_dir_with_other_config_is_refused(tmp_path):
    s3_lower_bound.run(s3_lower_bound.smoke(), tmp_path)
    other = s3_lower_bound.Config(epsilons=(0.04,), cs=(2.0, 4.0), num_seeds=4, per_decade=4)
    with pytest.raises(ValueError, match="another config"):
        s3_lower_bound.run(other, tmp_path)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"epsilons": (0.1,)}, "epsilons"),
        ({"span": (2.0, 1.0)}, "span"),
        ({"delta": 0.25}, "delta"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        s3_lower_bound.Config(**kwargs)


def test_bad_tabular_config_names_the_field():
    with pytest.raises(ValueError, match="tabular_delta"):
        s4_sft.Config(tabular_delta=1.5)
    with pytest.raises(ValueError, match="lemma_mus"):
        s5_adaptive.Config(lemma_mus=(0.0,))

"""LM sharpening figures render from a synthetic ``lm_inference`` run folder (data contract of
:mod:`sharpen.selection`), with and without the runner's ``metrics.csv``.
"""

from __future__ import annotations

import pytest

from figures import fig_lm_hist, fig_lm_lift_heatmap, fig_lm_lift_vs_n, fig_lm_loglik_vs_n, lm_figs
from sharpen import selection
from tests.test_selection import synthetic_run

_MODULES = (fig_lm_lift_heatmap, fig_lm_lift_vs_n, fig_lm_loglik_vs_n, fig_lm_hist)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    out = runs / lm_figs.EXPERIMENT
    out.mkdir()
    samples, greedy = synthetic_run(models=("A", "B"), tasks=("t0", "t1", "t2"), n_max=10)
    greedy.loc[(greedy["model"] == "B") & (greedy["task"] == "t2"), "correct"] = 0  # lift n/a
    samples.to_csv(out / "samples.csv", index=False)
    greedy.to_csv(out / "greedy.csv", index=False)
    return runs


@pytest.mark.parametrize("module", _MODULES, ids=lambda m: m.NAME)
def test_figure_is_written(module, runs_dir, tmp_path):
    paths = module.make(runs_dir, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / f"{module.NAME}.png"]
    assert paths[0].stat().st_size > 0
    assert module.SPEC.requires == (lm_figs.EXPERIMENT,)


def test_curves_prefer_metrics_csv(runs_dir, tmp_path):
    computed = lm_figs.load_curves(runs_dir)
    assert sorted(computed["num_samples"].unique()) == [1, 2, 5, 10]
    assert computed.loc[computed["model"] == "B", "lift"].isna().any()
    run = tmp_path / lm_figs.EXPERIMENT
    run.mkdir()
    for name in ("samples.csv", "greedy.csv"):
        (run / name).write_bytes((runs_dir / lm_figs.EXPERIMENT / name).read_bytes())
    computed.iloc[:4].to_csv(run / "metrics.csv", index=False)
    assert len(lm_figs.load_curves(tmp_path)) == 4
    assert list(lm_figs.load_curves(tmp_path).columns) == list(selection.CURVE_COLUMNS)


def test_missing_run_names_the_experiment(tmp_path):
    with pytest.raises(FileNotFoundError, match=lm_figs.EXPERIMENT):
        fig_lm_hist.make(tmp_path, tmp_path / "figs")

"""S11 (Prop E.2, non-closure under sharpening): run contract, determinism, resume, config
checks, the plateau at 1/2, and the figure.
"""

from __future__ import annotations

import dataclasses

import pytest

from experiments import io
from experiments import s11_non_closure as s11
from figures import fig_non_closure
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "bon.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s11"
    s11.run(s11.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    assert "fail" not in set(summary["verdict"])
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = s11.smoke()
    assert len(metrics) == len(cfg.b_multipliers) * len(cfg.n_prompts) * len(cfg.sft_ns)
    # Prop E.2: no member of the class puts more than 1/2 on (2, 1).
    assert (metrics["pi_hat_21"] <= 0.5 + 1e-6).all()
    assert (metrics["theta1_norm"] <= metrics["B_prime"] * (1 + 1e-5)).all()


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s11, smoke_run, tmp_path, _FILES[1:])


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s11, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vocab_size", 2),
        ("b_multipliers", ()),
        ("b_multipliers", (0.5,)),
        ("n_prompts", (0,)),
        ("sft_ns", ()),
        ("bon_ns", (1, 2)),
        ("sft_steps", 0),
        ("learning_rate", 0.0),
        ("bon_trials", 0),
        ("greedy_keys", 0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s11.smoke(), **{field: value})


def test_base_argmax_is_unique():
    p21, runner_up = s11.base_probabilities(s11.smoke())
    assert p21 == pytest.approx(0.413, abs=2e-3)
    assert runner_up < 1e-3


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_non_closure.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_non_closure.png"]
    assert paths[0].stat().st_size > 0

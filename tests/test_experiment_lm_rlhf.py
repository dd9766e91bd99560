"""LM RLHF-Sharpening experiment: run contract, identical reruns, byte-identical resume."""

from __future__ import annotations

import dataclasses

import pytest

from experiments import io
from experiments import lm_rlhf as lr
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "summary.csv")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lm_rlhf"
    lr.run(lr.smoke(), out)
    return out


def _share_pretrain(smoke_run, tmp_path):
    # Reruns find the base model as the sibling <out>/../lm_pretrain instead of retraining it.
    (tmp_path / "lm_pretrain").symlink_to(smoke_run / "pretrain", target_is_directory=True)


def test_smoke_writes_the_run_contract(smoke_run):
    cfg = lr.smoke()
    metrics = io.read_csv(smoke_run / "metrics.csv")
    assert tuple(metrics.columns) == lr.COLUMNS
    assert list(metrics["method"]) == list(cfg.methods()) * cfg.num_seeds
    train = metrics[metrics["kind"] == "train"]
    assert (train["train_responses"] == cfg.budget).all()
    assert metrics["accuracy_t1"].between(0, 1).all() and (metrics["base_loglik"] < 0).all()
    # BoN spends bon_n draws per output; power sampling at least its initial draw.
    row = metrics.set_index("method")
    assert row.loc["bon", "decode_tokens"] >= cfg.bon_n * 1
    assert row.loc["power_a=2", "decode_tokens"] >= row.loc["power_a=2", "num_tokens"]
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) == {"info"}  # smoke: checks are info rows


def test_same_config_gives_identical_outputs(smoke_run, tmp_path):
    _share_pretrain(smoke_run, tmp_path)
    run_contract.assert_rerun_identical(lr, smoke_run, tmp_path, _FILES)


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(lr, smoke_run, tmp_path, _FILES)


@pytest.mark.parametrize(
    ("field", "value"), [("budget", 6), ("task", "chess"), ("power_alphas", (1.0,))]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(lr.smoke(), **{field: value})

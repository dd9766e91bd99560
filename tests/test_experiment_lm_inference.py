"""LM inference-time sharpening grid: run contract, determinism, resume, bad input, and the whole
pipeline on a tiny random Hugging Face checkpoint + a local GSM8K-format JSONL file."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from experiments import io, lm_real
from experiments import lm_inference as lmi
from experiments import lm_inference_units as lmu
from sharpen import selection
from sharpen.lm.batching import left_pad
from sharpen.lm.scorer import score
from tests import run_contract, tiny_hf

_FILES = ("config.json", "samples.csv", "greedy.csv", "metrics.csv", "summary.csv")
pytestmark = pytest.mark.slow


def _assert_contract(run_dir):
    for name in (*_FILES, "cells.csv"):
        assert (run_dir / name).is_file(), name
    samples = selection.read_samples(run_dir)
    greedy = selection.read_greedy(run_dir)
    assert tuple(samples.columns[: len(selection.SAMPLE_COLUMNS)]) == selection.SAMPLE_COLUMNS
    assert tuple(greedy.columns[: len(selection.GREEDY_COLUMNS)]) == selection.GREEDY_COLUMNS
    metrics = io.read_csv(run_dir / "metrics.csv")
    assert tuple(metrics.columns) == selection.CURVE_COLUMNS
    summary = io.read_csv(run_dir / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    assert "fail" not in set(summary["verdict"])
    assert (samples["sum_logprob"] <= 0).all()
    assert np.allclose(samples["mean_logprob"], samples["sum_logprob"] / samples["num_tokens"])
    return samples, greedy, metrics


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lm_inference"
    lmi.run(lmi.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    samples, greedy, metrics = _assert_contract(smoke_run)
    cfg = lmi.smoke()
    cells = len(cfg.char_models) * len(cfg.char_tasks) + 1  # + the Fig. 5 countdown cell
    assert len(samples) == cells * cfg.num_seeds * cfg.num_prompts * cfg.num_samples
    assert len(greedy) == cells * cfg.num_prompts
    assert set(metrics["rule"]) == set(selection.RULES)
    assert sorted(set(metrics["num_samples"])) == [1, 2, cfg.num_samples]
    # The self-reward is the base log-prob: the independent scorer pass agrees.
    np.testing.assert_allclose(samples["sum_logprob"], samples["scorer_sum_logprob"], atol=1e-3)
    assert (smoke_run / "modes.csv").is_file()


def test_countdown_model_is_a_cell_of_its_own_outside_the_grid(smoke_run, tmp_path):
    """The Fig. 5 model (trained on countdown alone) has its cell rows, but the grid-wide claims
    and the grid figures count only the models x tasks grid; fig_lm_countdown draws it."""
    from figures import fig_lm_countdown, lm_figs

    greedy = selection.read_greedy(smoke_run)
    assert set(greedy.loc[greedy["task"] == "countdown", "model"]) == {"micro[countdown]"}
    assert (smoke_run / "pretrain_smoke_countdown" / "models" / "micro").is_dir()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert summary["quantity"].str.startswith("micro[countdown] / countdown: BoN-sum@").sum() == 1
    models, tasks = lm_figs.orders(smoke_run.parent)
    assert "micro[countdown]" not in models and "countdown" not in tasks
    assert lm_figs.off_grid_cells(smoke_run.parent) == [("micro[countdown]", "countdown")]
    paths = fig_lm_countdown.make(smoke_run.parent, tmp_path)
    assert [p.name for p in paths] == ["fig_lm_countdown.png"] and paths[0].stat().st_size > 0


def test_same_config_gives_identical_outputs(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(lmi, smoke_run, tmp_path, _FILES[1:])


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(lmi, smoke_run, tmp_path, _FILES[1:])


def test_missing_model_dir_is_named(tmp_path):
    missing = tmp_path / "no_such_model"
    cfg = dataclasses.replace(lmi.smoke(), char_models=(), model_dir=str(missing))
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        lmi.run(cfg, tmp_path / "out")


@pytest.mark.parametrize(
    ("field", "value"),
    [("char_tasks", ("chess",)), ("data_format", "mmlu"), ("num_samples", 0)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "char_tasks" else "chess"):
        dataclasses.replace(lmi.smoke(), **{field: value})


def test_unknown_gym_task_is_a_value_error(tmp_path):
    cfg = dataclasses.replace(lmi.smoke(), char_models=(), smollm2=True, gym_tasks=("chess_xyz",))
    with pytest.raises(ValueError, match="chess_xyz"):
        lmi.run(cfg, tmp_path / "out")


# ----------------------------------------------------------------------------- HF checkpoint


def test_hf_checkpoint_and_jsonl_pipeline(tmp_path):
    model_dir = tiny_hf.tiny_llama(tmp_path / "tiny-llama")
    data = tiny_hf.write_gsm8k(tmp_path / "gsm8k.jsonl")
    cfg = dataclasses.replace(
        lmi.smoke(),
        char_models=(),
        countdown_preset="",
        model_dir=str(model_dir),
        data_file=str(data),
        gym_tasks=(),
        hf_num_samples=4,
        hf_max_new_tokens=12,
        mode_prompts=0,
    )
    out = tmp_path / "lm_inference"
    lmi.run(cfg, out)
    samples, greedy, _ = _assert_contract(out)
    assert set(samples["model"]) == {"tiny-llama"} and set(samples["task"]) == {"gsm8k"}
    assert len(greedy) == len(tiny_hf.GSM8K) - 1  # record 0 is the 1-shot demonstration
    # Redraw seed 0 (same key: identical responses, checked by their lengths) and score the
    # responses independently with sharpen.lm.score (a full forward, no KV cache).
    model = lm_real.load_hf_model(str(model_dir))
    cell = lmu.real_cells(cfg, model)[0]
    seed0 = samples[samples["seed"] == 0]
    key = jax.random.fold_in(jax.random.key(cfg.seed), 0)
    draws = lmu.draw(model, cell, key=key, num_samples=cfg.hf_num_samples)
    batch = left_pad(
        lm_real.encode_prompts(model.tokenizer, cell.prompts), pad_id=model.tokenizer.pad_id
    )
    got = score(
        model.params, batch.tokens, batch.mask, draws.tokens, draws.lengths, cfg=model.lm_cfg
    )
    np.testing.assert_allclose(
        seed0["sum_logprob"].to_numpy(), np.asarray(got.sum_logprob).ravel(), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_array_equal(seed0["num_tokens"].to_numpy(), draws.lengths.ravel())


def test_two_devices_draw_the_same_samples(smoke_run, tmp_path):
    """The grid on 2 (virtual CPU) devices: prompt chunks split over the ``"data"`` axis give the
    same responses as on 1 device (chunks of 8 prompts divide evenly; per-row maths unchanged)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "lm_inference"
    code = (
        "import dataclasses, jax; from experiments import lm_inference as lmi; "
        "assert jax.device_count() == 2, jax.devices(); "
        f"lmi.run(dataclasses.replace(lmi.smoke(), pretrain_dir={str(smoke_run / 'pretrain')!r}), "
        f"__import__('pathlib').Path({str(out)!r}))"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=600)
    one, two = selection.read_samples(smoke_run), selection.read_samples(out)
    for column in ("prompt_id", "sample", "num_tokens", "answer", "correct"):
        assert (one[column] == two[column]).all(), column
    # Split batches may block the matmuls differently: float32 rounding only.
    np.testing.assert_allclose(one["sum_logprob"], two["sum_logprob"], atol=1e-4, rtol=0)

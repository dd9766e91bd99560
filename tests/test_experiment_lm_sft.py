"""LM SFT-Sharpening experiment: run contract, determinism, resume, the BoN corpus, bad input,
and the figure."""

from __future__ import annotations

import dataclasses
import json
import types

import jax
import numpy as np
import pytest

from experiments import io, lm_real, lm_sft, lm_sft_base, lm_sft_units
from experiments import lm_pretrain as lmp
from figures import fig_lm_sft
from sharpen.lm.batching import left_pad
from sharpen.lm.scorer import score
from tests import run_contract, tiny_hf

_FILES = (
    "config.json",
    "metrics.csv",
    "reference.csv",
    "corpus.csv",
    "table1.csv",
    "amortization.csv",
    "summary.csv",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The smoke run, its base model trained once into the sibling ``lm_pretrain`` folder."""
    root = tmp_path_factory.mktemp("runs")
    lmp.run(lmp.smoke(), root / "lm_pretrain")
    lm_sft.run(lm_sft.smoke(), root / "lm_sft")
    return root


def _share_base(runs, tmp_path):
    """Make the fixture's base model the sibling ``lm_pretrain`` of runs under ``tmp_path``."""
    (tmp_path / lmp.NAME).symlink_to(runs / lmp.NAME, target_is_directory=True)


@pytest.mark.slow
def test_smoke_writes_the_run_contract(runs):
    out = runs / "lm_sft"
    for name in _FILES:
        assert (out / name).is_file(), name
    assert not (out / "pretrain").exists()  # the sibling lm_pretrain run was reused
    summary = io.read_csv(out / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert "fail" not in set(summary["verdict"])
    cfg = lm_sft.smoke()
    metrics = io.read_csv(out / "metrics.csv")
    units = len(cfg.tasks) * cfg.num_seeds * len(cfg.ns) * len(cfg.methods)
    assert len(metrics) == units * len(cfg.eval_steps())
    assert set(metrics["method"]) == set(cfg.methods) and set(metrics["N"]) == set(cfg.ns)
    for column in ("accuracy", "greedy_accuracy", "loglik_lift", "entropy", "pass@4"):
        assert metrics[column].notna().all(), column
    tab = io.read_csv(out / "table1.csv")
    assert set(tab["checkpoint"]) == {"best", "final"}
    amort = io.read_csv(out / "amortization.csv")
    assert (amort["sft_total_decode_tokens"] > amort["corpus_decode_tokens"]).all()


@pytest.mark.slow
def test_corpus_holds_the_max_base_logprob_response(runs):
    """Every corpus pair is the best of its N draws, and re-scoring it under the base model
    gives that maximum (sampler base log-probs vs one scorer pass: float32 sums, 1e-3 nats)."""
    cfg = lm_sft.smoke()
    corpus = io.read_csv(runs / "lm_sft" / "corpus.csv")
    np.testing.assert_array_equal(corpus["sum_logprob"], corpus["max_sum_logprob"])
    assert (corpus["sum_logprob"] >= corpus["mean_draw_logprob"]).all()
    lm_cfg, params, tok = lmp.load_pretrained(runs / "lm_pretrain", cfg.base_model)
    cell = lm_sft_base.build_cells(cfg, lmp.smoke(), tok)[0]
    rows = corpus[corpus["N"] == max(cfg.ns)].sort_values("prompt_id")
    responses = [json.loads(s) for s in rows["response_ids"]]
    m = cfg.max_new_tokens
    resp = np.full((len(responses), m), tok.pad_id, np.int32)
    for i, r in enumerate(responses):
        resp[i, : len(r)] = r
    batch = left_pad(cell.train_ids, pad_id=tok.pad_id)
    lengths = np.array([len(r) for r in responses], np.int32)
    got = score(params, batch.tokens, batch.mask, resp, lengths, cfg=lm_cfg)
    np.testing.assert_allclose(np.asarray(got.sum_logprob), rows["max_sum_logprob"], atol=1e-3)


def test_bon_pick_takes_the_max_and_breaks_ties_at_random():
    logp = np.array([[-3.0, -1.0, -2.0], [-1.0, -5.0, -1.0]])
    picks = {tuple(lm_sft_base.bon_pick(logp, key=jax.random.key(s)).tolist()) for s in range(20)}
    assert {p[0] for p in picks} == {1}
    assert {p[1] for p in picks} == {0, 2}
    with pytest.raises(ValueError, match="base_logprob_BxN"):
        lm_sft_base.bon_pick(np.zeros(3), key=jax.random.key(0))


def test_pack_corpus_masks_the_prompt():
    batch = lm_sft_units.pack_corpus([[1, 5, 6], [1, 7]], [[8, 2], [9, 9, 2]], pad_id=0, seq_len=8)
    assert batch.tokens.tolist()[0] == [1, 5, 6, 8, 2, 0, 0, 0]
    assert batch.loss_mask.tolist()[1] == [False, False, True, True, True, False, False, False]
    with pytest.raises(ValueError, match="seq_len"):
        lm_sft_units.pack_corpus([[1, 5, 6]], [[8, 2]], pad_id=0, seq_len=4)


@pytest.mark.slow
def test_same_config_gives_identical_outputs(runs, tmp_path):
    _share_base(runs, tmp_path)
    run_contract.assert_rerun_identical(lm_sft, runs / "lm_sft", tmp_path, _FILES[1:])
    assert not (tmp_path / "again" / "pretrain").exists()


@pytest.mark.slow
def test_resume_after_deleting_a_unit_gives_identical_bytes(runs, tmp_path):
    _share_base(runs, tmp_path)
    run_contract.assert_resume_identical(lm_sft, runs / "lm_sft", tmp_path, _FILES[1:])


@pytest.mark.slow
def test_figure_draws(runs, tmp_path):
    paths = fig_lm_sft.make(runs, tmp_path)
    assert [p.name for p in paths] == ["fig_lm_sft.png"] and paths[0].stat().st_size > 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tasks", ()),
        ("tasks", ("algebra",)),
        ("methods", ("dpo",)),
        ("methods", ()),
        ("ns", ()),
        ("ns", (0, 4)),
        ("ns", (4, 4)),
        ("num_seeds", 0),
        ("batch_size", 17),
        ("lora_lr", 0.0),
        ("clip_norm", float("inf")),
        ("weight_decay", -0.1),
        ("pretrain_preset", "huge"),
    ],
)
def test_bad_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(lm_sft.smoke(), **{field: value})


def test_missing_pretrain_dir_and_too_many_eval_prompts(tmp_path):
    cfg = dataclasses.replace(lm_sft.smoke(), pretrain_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="pretrain_dir"):
        lm_sft_base.resolve_pretrain(cfg, tmp_path / "lm_sft")
    too_many = dataclasses.replace(lm_sft.smoke(), num_eval_prompts=10_000)
    tok = types.SimpleNamespace(bos_id=1, encode=lambda s: [3] * len(s))
    with pytest.raises(ValueError, match="num_eval_prompts"):
        lm_sft_base.build_cells(too_many, lmp.smoke(), tok)


# ----------------------------------------------------------------------------- real models


@pytest.mark.slow
def test_hf_checkpoint_and_jsonl_pipeline(tmp_path):
    """The tiny random Llama on the 5-record GSM8K file: 2 held-out eval, 2 training prompts."""

    def splits(cfg):
        cell = lm_sft_base.build_real_cells(cfg, lm_real.load_hf_model(cfg.model_dir))[0]
        return cell.eval_examples, cell.train_examples

    cfg, out = run_contract.assert_real_model_pipeline(
        lm_sft,
        tmp_path,
        files=_FILES,
        columns=("accuracy", "greedy_accuracy", "base_logprob", "loglik_lift", "entropy"),
        splits=splits,
        num_train_prompts=2,
        num_eval_prompts=2,
        ns=(2,),
        methods=("lora",),
        batch_size=2,
        epochs=2,
        eval_every=1,
        eval_samples=2,
        max_new_tokens=12,
    )
    assert (out / "units" / "ref_task=gsm8k.csv").is_file()
    assert [len(x) for x in splits(cfg)] == [2, 2]
    metrics = io.read_csv(out / "metrics.csv")
    assert set(metrics["task"]) == {"gsm8k"} and len(metrics) == len(cfg.eval_steps())
    assert metrics["mode_mass"].isna().all() and not (out / "modes.csv").exists()
    summary = io.read_csv(out / "summary.csv")
    # NaN by definition: the recovered fraction when BoN gains nothing, the % lift over a zero
    # greedy accuracy (Table 1 rows); every other check has a number.
    numeric = summary[~summary["quantity"].str.contains("fraction of the BoN|Table 1")]
    assert len(numeric) == 4 and numeric["measured"].notna().all()
    corpus = io.read_csv(out / "corpus.csv")
    assert len(corpus) == cfg.num_train_prompts and (corpus["sum_logprob"] < 0).all()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"data_format": "mmlu"}, "data_format"),
        ({"smollm2": True, "model_dir": "m"}, "model_dir"),
        ({"smollm2": True}, "gym_tasks or data_file"),
        ({"data_file": "x.jsonl"}, "data_file"),
        ({"smollm2": True, "gym_tasks": ("chain_sum", "chain_sum")}, "gym_tasks"),
    ],
)
def test_bad_real_model_config_names_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(lm_sft.smoke(), **changes)


def test_missing_model_dir_or_data_file_is_named(tmp_path):
    data = tiny_hf.write_gsm8k(tmp_path / "gsm8k.jsonl")
    for changes, name in (
        ({"model_dir": str(tmp_path / "no_model"), "data_file": str(data)}, "no_model"),
        ({"smollm2": True, "data_file": str(tmp_path / "no_data.jsonl")}, "no_data"),
    ):
        with pytest.raises(FileNotFoundError, match=name):
            lm_sft.run(dataclasses.replace(lm_sft.smoke(), **changes), tmp_path / "out")


def test_smollm2_preset_is_opt_in_and_held_out():
    cfg = lm_sft.smollm2()
    assert cfg.real and cfg.cell_names() == ("gym:letter_counting",) and "smollm2" in lm_sft.PRESETS
    assert not lm_sft.quick().real


@pytest.mark.slow
def test_two_devices_draw_the_same_samples(runs, tmp_path):
    """Smoke on 2 (virtual CPU) devices: sampling chunks (16 / 8 prompts, even) split over the
    ``"data"`` axis give the same corpus responses and eval accuracies as on 1 device; log-probs
    may differ by float32 rounding of differently blocked matmuls (1e-4 nats)."""
    _share_base(runs, tmp_path)
    run_contract.run_on_two_devices(lm_sft, tmp_path / "lm_sft")
    run_contract.assert_csv_close(
        runs / "lm_sft", tmp_path / "lm_sft", ("corpus.csv", "metrics.csv"), atol=1e-4
    )


def test_mode_mass_at_step_0_is_the_base_models_probability_of_its_mode(runs):
    """Before any update the tuned model is the base: its scored ``pi(y*|x)`` of every certified
    mode equals ``exp`` of the mode finder's own log-prob (float32 scorer vs the search's
    float64 sums of float32 steps: 1e-4 relative)."""
    out = runs / "lm_sft"
    modes = io.read_csv(out / "modes.csv")
    metrics = io.read_csv(out / "metrics.csv")
    start = metrics[metrics["step"] == 0]
    exact = modes[modes["exact"] == 1]
    if exact.empty:
        assert start["mode_mass"].isna().all()
    else:
        expected = float(np.exp(exact["mode_logprob"]).mean())
        np.testing.assert_allclose(start["mode_mass"], expected, rtol=1e-4, atol=1e-7)
    assert len(modes) == lm_sft.smoke().mode_prompts * len(lm_sft.smoke().tasks)

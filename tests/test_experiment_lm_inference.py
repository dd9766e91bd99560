"""LM inference-time sharpening grid: run contract, determinism, resume, bad input, and the whole
pipeline on a tiny random Hugging Face checkpoint + a local GSM8K-format JSONL file."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments import io
from experiments import lm_inference as lmi
from sharpen import selection
from sharpen.lm.scorer import score
from tests import run_contract

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
    cells = len(cfg.char_models) * len(cfg.char_tasks)
    assert len(samples) == cells * cfg.num_seeds * cfg.num_prompts * cfg.num_samples
    assert len(greedy) == cells * cfg.num_prompts
    assert set(metrics["rule"]) == set(selection.RULES)
    assert sorted(set(metrics["num_samples"])) == [1, 2, cfg.num_samples]
    # The self-reward is the base log-prob: the independent scorer pass agrees.
    np.testing.assert_allclose(samples["sum_logprob"], samples["scorer_sum_logprob"], atol=1e-3)
    assert (smoke_run / "modes.csv").is_file()


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

_GSM8K = [
    ("Tom has 3 apples and buys 2 more. How many apples?", "3+2=5\n#### 5"),
    ("A box holds 4 pens. How many pens in 2 boxes?", "4*2=8\n#### 8"),
    ("Sam had 9 cards and lost 4. How many are left?", "9-4=5\n#### 5"),
    ("Ann reads 6 pages a day. How many pages in 3 days?", "6*3=18\n#### 18"),
    ("There are 7 birds and 5 fly away. How many stay?", "7-5=2\n#### 2"),
]


def _tiny_llama(directory):
    """A random 2-layer Llama saved with save_pretrained + a word-level tokenizer.json."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    chars = sorted(set("".join(q + a for q, a in _GSM8K) + "QA:Answer #\n"))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(r"[\s\S]"), behavior="isolated"
    )
    tok.decoder = tokenizers.decoders.Fuse()
    directory.mkdir()
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": "</s>", "bos_token": "<s>", "add_bos_token": True})
    )
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(directory)


def test_hf_checkpoint_and_jsonl_pipeline(tmp_path):
    model_dir = tmp_path / "tiny-llama"
    _tiny_llama(model_dir)
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in _GSM8K))
    cfg = dataclasses.replace(
        lmi.smoke(),
        char_models=(),
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
    assert len(greedy) == len(_GSM8K) - 1  # record 0 is the 1-shot demonstration
    # Redraw seed 0 (same key: identical responses, checked by their lengths) and score the
    # responses independently with sharpen.lm.score (a full forward, no KV cache).
    model = lmi.load_hf_model(str(model_dir))
    cell = lmi._real_cells(cfg, model)[0]
    seed0 = samples[samples["seed"] == 0]
    key = lmi.jax.random.fold_in(lmi.jax.random.key(cfg.seed), 0)
    draws = lmi.draw(model, cell, key=key, num_samples=cfg.hf_num_samples)
    batch = lmi.left_pad(lmi._encode(model, cell.prompts), pad_id=model.tokenizer.pad_id)
    got = score(
        model.params, batch.tokens, batch.mask, draws.tokens, draws.lengths, cfg=model.lm_cfg
    )
    np.testing.assert_allclose(
        seed0["sum_logprob"].to_numpy(), np.asarray(got.sum_logprob).ravel(), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_array_equal(seed0["num_tokens"].to_numpy(), draws.lengths.ravel())

"""LM pretraining experiment: run contract, determinism, resume after a (simulated) kill,
config checks, ``load_pretrained``, and the figure."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from experiments import io
from experiments import lm_pretrain as lmp
from figures import fig_pretrain_loss
from sharpen.lm import forward
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "accuracy.csv", "summary.csv")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lm_pretrain"
    lmp.run(lmp.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in (*_FILES, "tokenizer.json", "timing.json", "models/micro/model.json"):
        assert (smoke_run / name).is_file(), name
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert "fail" not in set(summary["verdict"])
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = lmp.smoke()
    assert list(metrics["step"]) == list(range(cfg.log_every, cfg.steps + 1, cfg.log_every))
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    assert np.isfinite(metrics["eval_loss"].iloc[-1])
    acc = io.read_csv(smoke_run / "accuracy.csv")
    assert set(acc["decoding"]) == {"greedy", "T=1"}
    # Orbax keeps the last two checkpoints only.
    assert sorted(int(p.name) for p in (smoke_run / "ckpt" / "micro").iterdir()) == [30, 40]


def test_load_pretrained_round_trip(smoke_run):
    with pytest.raises(ValueError, match="size must be given"):  # micro and micro@20
        lmp.load_pretrained(smoke_run)
    cfg, params, tok = lmp.load_pretrained(smoke_run, "micro")
    assert cfg.vocab_size == tok.vocab_size and cfg.arch == "llama"
    tokens = np.asarray([[tok.bos_id, *tok.encode("Q: 2+3\n")]], np.int32)
    assert forward(params, tokens, cfg=cfg).shape == (1, tokens.shape[1], cfg.vocab_size)
    with pytest.raises(FileNotFoundError, match="base"):
        lmp.load_pretrained(smoke_run, "base")


def test_same_config_gives_identical_outputs(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(lmp, smoke_run, tmp_path, _FILES[1:])


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(lmp, smoke_run, tmp_path, _FILES[1:])


def test_killed_run_resumes_to_identical_outputs_and_params(smoke_run, tmp_path):
    out = tmp_path / "killed"
    with pytest.raises(lmp.Interrupted):
        lmp.run(lmp.smoke(), out, stop_after_steps=23)  # last checkpoint at 20; 21-23 lost
    assert not (out / "metrics.csv").exists()
    lmp.run(lmp.smoke(), out)
    for name in _FILES[1:]:
        assert (out / name).read_bytes() == (smoke_run / name).read_bytes(), name
    for name in ("micro", "micro@20"):
        _, resumed, _ = lmp.load_pretrained(out, name)
        _, reference, _ = lmp.load_pretrained(smoke_run, name)
        jax.tree.map(np.testing.assert_array_equal, resumed, reference)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sizes", ()),
        ("sizes", ("huge",)),
        ("arch", "mamba"),
        ("tasks", ("chess",)),
        ("save_steps", (40,)),
        ("corpus", "nope"),
        ("ckpt_every", 7),
        ("eval_every", 0),
        ("warmup", 40),
        ("batch_size", 0),
        ("eval_prompts", 0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "corpus" else "corpus preset"):
        dataclasses.replace(lmp.smoke(), **{field: value})


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_pretrain_loss.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_pretrain_loss.png"]
    assert paths[0].stat().st_size > 0


def test_pack_documents_keeps_every_document_whole_and_in_order():
    docs = lmp.T.Batch(
        np.array([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0], [1, 8, 9, 9, 9, 2], [1, 3, 2, 0, 0, 0]]),
        np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1] * 6, [1, 1, 1, 0, 0, 0]], bool),
        np.array([[0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0], [0] + [1] * 5, [0, 1, 1, 0, 0, 0]], bool),
    )
    packed = lmp.pack_documents(docs, 8)
    # Greedy fill: docs 0+1 (4 + 3 = 7 <= 8), doc 2 alone (6; 6 + 3 > 8), doc 3.
    np.testing.assert_array_equal(
        packed.tokens,
        [[1, 5, 6, 2, 1, 7, 2, 0], [1, 8, 9, 9, 9, 2, 0, 0], [1, 3, 2, 0, 0, 0, 0, 0]],
    )
    assert packed.key_mask.sum() == docs.key_mask.sum()
    assert packed.loss_mask.sum() == docs.loss_mask.sum()
    assert not packed.loss_mask[packed.tokens == 1].any()  # <bos> is never a target
    with pytest.raises(ValueError, match="width"):
        lmp.pack_documents(docs, 5)


@pytest.mark.parametrize("preset", ["smoke", "quick", "full"])
def test_lm_experiment_presets_find_their_base_models_in_the_same_pretrain_preset(preset):
    """``sharpen repro --preset P`` runs ``lm_pretrain`` first; the LM experiments' presets must
    ask only for models and tasks that ``lm_pretrain``'s preset P trains (else each one would
    train its own base model inside its run folder)."""
    from experiments import lm_inference, lm_rlhf, lm_sft

    pre = lmp.PRESETS[preset]()
    trained = {f"{s}@{k}" for s in pre.sizes for k in pre.save_steps} | set(pre.sizes)
    inference = lm_inference.PRESETS[preset]()
    sft = lm_sft.PRESETS[preset]()
    rlhf = lm_rlhf.PRESETS[preset]()
    wanted = [
        (inference.char_models, inference.char_tasks, inference.pretrain_preset),
        ((sft.base_model,), sft.tasks, sft.pretrain_preset),
        ((rlhf.model,), (rlhf.task,), rlhf.pretrain_preset),
    ]
    for models, tasks, pretrain_preset in wanted:
        assert pretrain_preset == preset
        assert set(models) <= trained, (models, trained)
        assert set(tasks) <= set(pre.tasks), (tasks, pre.tasks)
    # The Fig. 5 model is trained inside lm_inference's run folder, from its own preset.
    if inference.countdown_preset:
        countdown = lmp.PRESETS[inference.countdown_preset]()
        assert countdown.tasks == ("countdown",) and len(countdown.sizes) == 1

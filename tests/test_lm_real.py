"""Real-model prompts and held-out splits (experiments/lm_real.py), without loading a model."""

from __future__ import annotations

import pytest

from experiments import lm_real
from tests import tiny_hf

_PLAIN = lm_real.Model("plain", None, None, None, "plain")


def test_plain_prompt_is_one_shot_q_answer_text():
    text = lm_real.plain_prompt(("1 + 1?", "Answer: 2"), "2 + 2?")
    assert text == "Q: 1 + 1?\nAnswer: 2\n\nQ: 2 + 2?\n"


def test_data_file_splits_skip_the_demonstration_and_are_disjoint(tmp_path):
    data = str(tiny_hf.write_gsm8k(tmp_path / "gsm8k.jsonl"))
    ((ev, tr),) = lm_real.real_splits(_PLAIN, data_file=data, num_eval=2, num_train=2)
    questions = [q for q, _ in tiny_hf.GSM8K]
    assert [e.prompt for e in ev.examples] == questions[1:3]
    assert [e.prompt for e in tr.examples] == questions[3:5]
    assert ev.prompts[0].startswith(f"Q: {questions[0]}\n") and ev.prompts[0].endswith(
        f"Q: {questions[1]}\n"
    )
    # The default draw (offset 0, nothing excluded) is the eval split: lm_inference's prompts.
    (same,) = lm_real.real_tasks(_PLAIN, data_file=data, num_prompts=2)
    assert same.examples == ev.examples
    with pytest.raises(ValueError, match="num_train=3"):
        lm_real.real_splits(_PLAIN, data_file=data, num_eval=2, num_train=3)


def test_gym_splits_are_disjoint_even_when_questions_repeat(monkeypatch):
    pytest.importorskip("reasoning_gym")
    tiny = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
    monkeypatch.setitem(lm_real.GYM_CONFIGS, "chain_sum", tiny)
    draw = [e.prompt for e in lm_real.gym_task("chain_sum").examples(64, seed=0)]
    assert len(set(draw)) < len(draw)  # two one-digit terms: the draws repeat questions
    ((ev, tr),) = lm_real.real_splits(_PLAIN, gym_tasks=("chain_sum",), num_eval=16, num_train=32)
    eval_q = {e.prompt for e in ev.examples}
    train_q = [e.prompt for e in tr.examples]
    assert len(ev.examples) == 16 and len(train_q) == 32 == len(set(train_q))
    assert not eval_q & set(train_q)
    (first,) = lm_real.real_tasks(_PLAIN, gym_tasks=("chain_sum",), num_prompts=16)
    assert first.examples == ev.examples


def test_check_real_inputs_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_dir"):
        lm_real.check_real_inputs(model_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="data_file"):
        lm_real.check_real_inputs(data_file=str(tmp_path / "none.jsonl"))
    with pytest.raises(ValueError, match="data_format"):
        lm_real.check_real_inputs(data_format="mmlu")
    with pytest.raises(ValueError, match="chess_xyz"):
        lm_real.check_real_inputs(gym_tasks=("chess_xyz",))

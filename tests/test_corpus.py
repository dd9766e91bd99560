"""Corpus generator: seeded determinism, the exact mixture, and each knob's effect measured on
generated corpora (EXPERIMENTS.md §10.2)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest

from sharpen.tasks import (
    ArithmeticTask,
    CorpusConfig,
    CountdownTask,
    ProntoQATask,
    Response,
    corpus_preset,
    generate_corpus,
    greedy_response,
    ideal_summary,
    response_distribution,
    sample_responses,
    task_alphabet,
    uncovered,
)

TASKS = [ArithmeticTask(), ProntoQATask()]
#: The Fig. 5 corpus task (``lm_pretrain``'s ``countdown`` variant).
COUNTDOWN = CountdownTask(num_numbers=3, target=None, max_number=9)
PRESETS = ["default", "no_branch", "length_bias", "weak", "clean"]


def _sigma_band(p: float, n: int, c: float = 4.0) -> float:
    """``c`` binomial standard deviations of a frequency estimated from ``n`` draws."""
    return c * math.sqrt(p * (1 - p) / n)


def test_config_validation():
    with pytest.raises(ValueError, match="p_correct"):
        CorpusConfig(p_correct=1.5)
    with pytest.raises(ValueError, match="<= 1"):
        CorpusConfig(p_correct=0.6, p_branch=0.6)
    with pytest.raises(ValueError, match="answer_only_wrong"):
        CorpusConfig(answer_only_wrong=0)
    with pytest.raises(ValueError, match="openings"):
        CorpusConfig(openings=())
    with pytest.raises(ValueError, match="openings"):
        CorpusConfig(openings=("a\n", "a\n"))
    with pytest.raises(ValueError, match="'nope'"):
        corpus_preset("nope")
    assert CorpusConfig(openings=(), p_branch=0.0).p_corrupt == pytest.approx(0.6)


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_generate_corpus_is_seeded_and_prefix_stable(task):
    cfg = CorpusConfig()
    a = generate_corpus(task, cfg, 30, seed=7)
    assert a == generate_corpus(task, cfg, 30, seed=7)
    assert generate_corpus(task, cfg, 10, seed=7) == a[:10]
    assert [d.text for d in generate_corpus(task, cfg, 30, seed=8)] != [d.text for d in a]
    assert all(d.text == d.prompt + d.response for d in a)
    assert all(d.prompt.startswith("Q: ") and d.prompt.endswith("\n") for d in a)
    assert generate_corpus(task, cfg, 0, seed=0) == []


def test_exclude_keeps_eval_prompts_out():
    task = ArithmeticTask(num_ops=2, max_value=30, max_operand=5)  # a small space: collisions
    held_out = {e.prompt for e in task.examples(200, seed=99)}
    docs = generate_corpus(task, CorpusConfig(), 300, seed=0, exclude=held_out)
    assert len(docs) == 300
    assert not {d.prompt[3:-1] for d in docs} & held_out
    tiny = ArithmeticTask(num_ops=1, max_value=20, max_operand=2)  # about a dozen prompts
    with pytest.raises(ValueError, match="exclude"):
        generate_corpus(
            tiny, CorpusConfig(), 10, seed=0, exclude=[e.prompt for e in tiny.examples(500, seed=5)]
        )


@pytest.mark.parametrize("task", [*TASKS, COUNTDOWN], ids=repr)
@pytest.mark.parametrize("preset", PRESETS)
def test_exact_distribution_is_normalized_sorted_and_graded(task, preset):
    cfg = corpus_preset(preset)
    for ex in task.examples(10, seed=1):
        dist = response_distribution(task, ex, cfg)
        assert sum(r.prob for r in dist) == pytest.approx(1.0, abs=1e-12)
        assert [r.prob for r in dist] == sorted((r.prob for r in dist), reverse=True)
        assert len({r.text for r in dist}) == len(dist)
        for r in dist:
            assert r.correct == (r.kind in ("correct", "answer_only") and task.grade(r.text, ex))
            assert r.correct == task.grade(r.text, ex)
            assert not uncovered(r.text)
        correct = [r for r in dist if r.kind == "correct"]
        if cfg.p_correct:
            assert correct[0].text == task.solution(ex) and correct[0].correct


def test_default_mode_is_correct_and_every_wrong_response_is_rarer():
    cfg = CorpusConfig()
    for task in TASKS:
        for ex in task.examples(50, seed=0):
            dist = response_distribution(task, ex, cfg)
            assert dist[0].kind == "correct" and dist[0].prob == pytest.approx(cfg.p_correct)
            # ProntoQA has one wrong answer, so its wrong answer-only response holds 0.05.
            assert max(r.prob for r in dist if not r.correct) <= 0.05 + 1e-12


def test_empirical_correct_frequency_beats_each_wrong_variant():
    task, cfg, n = ArithmeticTask(), CorpusConfig(), 4000
    ex = task.examples(1, seed=0)[0]
    draws = sample_responses(task, ex, cfg, n, seed=0)
    counts = Counter(r.text for r in draws)
    correct = counts[task.solution(ex)] / n
    worst_wrong = max(c for t, c in counts.items() if not task.grade(t, ex)) / n
    assert correct - worst_wrong > _sigma_band(0.3, n) + _sigma_band(0.05, n)
    # T=1 sampling is mostly wrong although the mode is right (sample accuracy 0.35).
    acc = sum(r.correct for r in draws) / n
    assert abs(acc - 0.35) < _sigma_band(0.35, n)
    # Kind frequencies match the configured masses.
    kinds = Counter(r.kind for r in draws)
    for kind, p in [("correct", 0.3), ("branch", 0.5), ("answer_only", 0.1), ("corrupt", 0.1)]:
        assert abs(kinds[kind] / n - p) < _sigma_band(p, n), kind


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_branching_moves_the_most_frequent_first_character_away_from_the_correct_chain(task):
    n, c = 2000, 4.0
    exs = task.examples(n, seed=0)  # generate_corpus(seed=0) uses these prompts, in order
    correct_first = [task.solution(e)[0] for e in exs]
    # Expected first-character masses: the openings' "L" gets p_branch; the correct chain's
    # first character (digit / name initial) gets every plain chain, 1 - p_branch - p_answer_only.
    for preset, p_open, p_plain in [("default", 0.5, 0.4), ("no_branch", 0.0, 0.9)]:
        docs = generate_corpus(task, corpus_preset(preset), n, seed=0)
        assert [d.example_id for d in docs] == [e.id for e in exs]
        opening = sum(d.response[0] == "L" for d in docs) / n
        plain = sum(d.response[0] == f for d, f in zip(docs, correct_first, strict=True)) / n
        assert abs(opening - p_open) <= _sigma_band(p_open, n, c)
        assert abs(plain - p_plain) <= _sigma_band(p_plain, n, c)
        if p_open:
            # Multinomial: Var(opening - plain) = (p1(1-p1) + p2(1-p2) + 2 p1 p2) / n.
            sd = math.sqrt(
                (p_open * (1 - p_open) + p_plain * (1 - p_plain) + 2 * p_open * p_plain) / n
            )
            assert opening - plain > (p_open - p_plain) - c * sd > 0


def test_answer_only_responses_are_shorter():
    for task in TASKS:
        docs = generate_corpus(task, corpus_preset("length_bias"), 2000, seed=1)
        ao = [len(d.response) for d in docs if d.kind == "answer_only"]
        cot = [len(d.response) for d in docs if d.kind != "answer_only"]
        assert ao and cot and max(ao) < min(cot)
        assert sum(cot) / len(cot) > 3 * sum(ao) / len(ao)


def test_arithmetic_responses_stay_short():
    docs = generate_corpus(ArithmeticTask(), CorpusConfig(), 2000, seed=0)
    assert max(len(d.response) for d in docs) <= 120
    assert max(len(d.prompt) for d in docs) <= 40
    assert set(task_alphabet()) >= set("".join(d.text for d in docs))


# Ideal-model regimes: (preset, mode correct, greedy correct, greedy is mode, LN-argmax correct)
REGIMES = {
    "default": (True, False, False, True),
    "no_branch": (True, True, True, True),
    "length_bias": (False, False, True, True),
    "weak": (False, False, True, False),
    "clean": (True, True, True, True),
}


@pytest.mark.parametrize("task", [*TASKS, COUNTDOWN], ids=repr)
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_create_their_regime_under_the_ideal_model(task, preset):
    mode_ok, greedy_ok, greedy_is_mode, ln_ok = REGIMES[preset]
    for ex in task.examples(25, seed=2):
        s = ideal_summary(task, ex, corpus_preset(preset))
        assert (s["mode_correct"], s["greedy_correct"], s["greedy_is_mode"], s["ln_correct"]) == (
            mode_ok,
            greedy_ok,
            greedy_is_mode,
            ln_ok,
        ), (preset, ex.prompt, s)
        if preset == "default":
            mass = s["first_char_mass"]
            assert mass["L"] > mass[task.solution(ex)[0]]
        if preset == "length_bias":
            assert s["mode_kind"] == "answer_only"
            # Binary answers (ProntoQA) share one wrong answer; the others spread it.
            assert s["majority_correct"] == (task.name != "prontoqa")


def test_greedy_response_on_the_prop_e2_cartoon():
    # First token "a" has mass 0.6 split over three continuations; "b..." alone has 0.4.
    dist = [
        Response("bx", 0.4, "correct", True),
        Response("a1", 0.2, "corrupt", False),
        Response("a2", 0.2, "corrupt", False),
        Response("a3", 0.2, "corrupt", False),
    ]
    assert greedy_response(dist) == "a1"  # ties go to the smallest character
    assert greedy_response([Response("ab", 0.4, "c", True), Response("a", 0.6, "c", True)]) == "a"
    assert greedy_response([Response("ab", 0.6, "c", True), Response("a", 0.4, "c", True)]) == "ab"


def test_answer_only_knobs():
    task = ArithmeticTask()
    ex = task.examples(1, seed=0)[0]
    cfg = dataclasses.replace(CorpusConfig(), p_answer_only=0.2, answer_only_accuracy=0.25)
    ao = [r for r in response_distribution(task, ex, cfg) if r.kind == "answer_only"]
    assert sum(r.prob for r in ao) == pytest.approx(0.2)
    assert sum(r.prob for r in ao if r.correct) == pytest.approx(0.05)
    assert len(ao) == 1 + cfg.answer_only_wrong

"""Tasks: determinism, reference solutions grade correct, corruptions grade wrong, safe parsing,
JSONL loaders, the reasoning-gym adapter and the character alphabet."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from sharpen.lm.tokenizer import CharTokenizer
from sharpen.tasks import (
    TASKS,
    ArithmeticTask,
    CountdownTask,
    Example,
    GSM8KTask,
    GymTask,
    MATHTask,
    ProntoQATask,
    check_expression,
    extract_answer_line,
    get_task,
    parse_expression,
    parse_number,
    task_alphabet,
    uncovered,
)
from sharpen.tasks.arithmetic import carry_error
from sharpen.tasks.countdown import ExpressionError
from sharpen.tasks.jsonl import last_boxed, math_number, normalize_math_answer

PROCEDURAL = [
    ArithmeticTask(),
    ArithmeticTask(num_ops=5, max_value=999, max_operand=50),
    ProntoQATask(),
    ProntoQATask(num_hops=5, num_distractors=4),
    CountdownTask(),
    CountdownTask(target=None, num_numbers=3),
]


# ---------------------------------------------------------------- registry and shared parsing


def test_registry_builds_every_task_and_names_unknown():
    assert set(TASKS) == {"arithmetic", "prontoqa", "countdown", "gsm8k", "math"}
    assert get_task("prontoqa", num_hops=2).num_hops == 2
    assert isinstance(get_task("gym:chain_sum"), GymTask)
    with pytest.raises(ValueError, match="'nope'"):
        get_task("nope")
    with pytest.raises(ValueError, match="'nope'"):
        get_task("gym:nope")


def test_extract_answer_line():
    assert extract_answer_line("1+1=2\nAnswer: 2") == "2"
    assert extract_answer_line("Answer: 1\nAnswer:  3 ") == "3"
    assert extract_answer_line("Answer: 5\nQ: next\nAnswer: 9") == "5"  # cut at invented question
    assert extract_answer_line("no answer here") is None
    assert extract_answer_line("Answer:") is None


@pytest.mark.parametrize(
    ("text", "want"),
    [("42", 42), ("1,234", 1234), ("$18.00", 18), ("12.0", 12), ("3/4", Fraction(3, 4)),
     ("-7", -7), ("The total is 18.", 18), (".5", Fraction(1, 2)), ("none", None), ("1/0", None)],
)  # fmt: skip
def test_parse_number(text, want):
    assert parse_number(text) == want


# ---------------------------------------------------------------- procedural tasks


@pytest.mark.parametrize("task", PROCEDURAL, ids=repr)
def test_examples_are_deterministic_and_prefix_stable(task):
    a, b = task.examples(12, seed=3), task.examples(12, seed=3)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert [e.id for e in task.examples(5, seed=3)] == [e.id for e in a[:5]]
    assert [e.prompt for e in task.examples(12, seed=4)] != [e.prompt for e in a]
    assert len({e.id for e in a}) == 12
    assert task.examples(0, seed=0) == []
    with pytest.raises(ValueError, match="n must be"):
        task.examples(-1, seed=0)


@pytest.mark.parametrize("task", PROCEDURAL, ids=repr)
def test_reference_solution_is_correct_and_corruptions_are_wrong(task):
    for ex in task.examples(40, seed=0):
        sol = task.solution(ex)
        assert sol.splitlines()[-1].startswith("Answer: ")
        assert task.grade(sol, ex)
        assert not task.grade(sol.rsplit("Answer:", 1)[0], ex)  # unparseable counts wrong
        if hasattr(task, "corrupted_solutions"):
            bad = task.corrupted_solutions(ex)
            assert bad and len(set(bad)) == len(bad) and sol not in bad
            assert not any(task.grade(c, ex) for c in bad)
            assert not task.grade(task.misconception(ex), ex)
            assert not any(task.grade(f"Answer: {a}", ex) for a in task.wrong_answers(ex))


@pytest.mark.parametrize("task", PROCEDURAL, ids=repr)
def test_one_shot_prompt_format(task):
    shot, ex = task.examples(2, seed=1)
    prompt = task.format_prompt(ex, shots=[shot])
    assert prompt == f"Q: {shot.prompt}\n{task.solution(shot)}\n\nQ: {ex.prompt}\n"
    assert task.format_prompt(ex) == f"Q: {ex.prompt}\n"
    assert "\n" not in ex.prompt


def test_arithmetic_steps_match_the_nested_expression_and_stay_small():
    task = ArithmeticTask()
    lengths = []
    for ex in task.examples(300, seed=0):
        value, _ = parse_expression(ex.prompt)
        assert value == int(ex.answer)
        assert all(1 <= v <= task.max_value for v in [ex.meta["start"], *ex.meta["values"]])
        lengths.append(len(task.solution(ex)))
    assert max(lengths) <= 60
    ops = {op for ex in task.examples(100, seed=0) for op, _ in ex.meta["ops"]}
    assert ops == {"+", "-", "*"}


def test_carry_error():
    assert carry_error(27, "+", 5) == 22
    assert carry_error(32, "-", 5) == 37
    assert carry_error(17, "*", 3) == 31
    assert carry_error(21, "+", 5) is None
    assert carry_error(7, "*", 3) is None


def test_prontoqa_answers_balanced_and_bool_parsing():
    task = ProntoQATask()
    exs = task.examples(400, seed=0)
    n_true = sum(e.answer == "True" for e in exs)
    assert 160 <= n_true <= 240  # Binomial(400, 1/2): mean 200, sd 10; a 4-sigma band
    ex = next(e for e in exs if e.answer == "True")
    for good in ("True", "true", "TRUE.", "yes"):
        assert task.check_answer(good, ex)
    for bad in ("False", "maybe", ""):
        assert not task.check_answer(bad, ex)
    assert ex.meta["distractors"] and ex.meta["distractors"][0] in ex.prompt
    assert max(len(task.solution(e)) for e in exs) <= 80


def test_countdown_grader_is_exact_and_safe():
    nums, target = [3, 3, 8, 8], 24
    assert check_expression("8/(3-8/3)", nums, target)  # needs exact fractions
    assert check_expression("8 / (3 - 8 / 3) = 24", nums, target)
    assert not check_expression("8/(3-8/3) = 25", nums, target)
    assert not check_expression("8*3", nums, target)  # numbers missing
    assert not check_expression("8*3+8-8+3-3", nums, target)  # numbers reused
    assert not check_expression("8/(3-3)+8+8", nums, target)  # division by zero
    assert not check_expression("__import__('os')", nums, target)
    assert not check_expression("-8+8+3*8", nums, target)  # no unary minus
    assert not check_expression("", nums, target)
    for bad in ("(1+2", "1+2)", "1 2", "2**3", "1+"):
        with pytest.raises(ExpressionError):
            parse_expression(bad)
    assert parse_expression("(13-9)*5+4") == (24, [13, 9, 5, 4])


def test_countdown_game_of_24():
    task = CountdownTask()
    for ex in task.examples(30, seed=0):
        assert ex.meta["target"] == 24 and len(ex.meta["numbers"]) == 4
        assert task.grade(f"Answer: {ex.answer}", ex)
        assert not task.grade("Answer: 24", ex)
    with pytest.raises(ValueError, match="num_numbers"):
        CountdownTask(num_numbers=7)


@pytest.mark.parametrize("task", [CountdownTask(), CountdownTask(target=None, num_numbers=3)])
def test_countdown_failed_attempts_are_valid_chains_that_miss_the_target(task):
    """Each corrupted solution combines the given numbers with correct integer arithmetic,
    every line's result is right, and the ``Answer:`` expression misses the target."""
    for ex in task.examples(20, seed=3):
        wrong = task.corrupted_solutions(ex)
        assert 1 <= len(wrong) <= task.max_corrupted and len(set(wrong)) == len(wrong)
        assert task.solution(ex) not in wrong
        for text in [*wrong, task.misconception(ex)]:
            *lines, answer = text.split("\n")
            assert len(lines) == len(ex.meta["numbers"]) - 1
            for line in lines:
                lhs, rhs = line.split("=")
                assert parse_expression(lhs)[0] == parse_expression(rhs)[0], line
            value, used = parse_expression(answer.removeprefix("Answer: "))
            assert sorted(used) == ex.meta["numbers"] and value != ex.meta["target"]
            assert value == parse_expression(lines[-1].split("=")[1])[0]
            assert not task.grade(text, ex)
        assert task.wrong_answers(ex) and not any(
            task.check_answer(a, ex) for a in task.wrong_answers(ex)
        )
    with pytest.raises(ValueError, match="max_corrupted"):
        CountdownTask(max_corrupted=0)


def test_invalid_task_configs_raise():
    with pytest.raises(ValueError, match="num_ops"):
        ArithmeticTask(num_ops=0)
    with pytest.raises(ValueError, match="num_hops"):
        ProntoQATask(num_hops=0)
    with pytest.raises(ValueError, match="target"):
        CountdownTask(target=-1)


# ---------------------------------------------------------------- JSONL loaders


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_gsm8k_loader_and_grader(tmp_path):
    path = _write(
        tmp_path / "gsm8k.jsonl",
        [
            {
                "question": "Ann has 3 apples and buys 4. How many?",
                "answer": "3+4=<<3+4=7>>7\n#### 7",
            },
            {"question": "A big sum?", "answer": "It is large.\n#### 1,234"},
            "",
            {"question": "Half of 5?", "answer": "5/2=2.5\n#### 2.5"},
        ],
    )
    task = GSM8KTask(path)
    exs = task.examples(3)
    assert [e.answer for e in exs] == ["7", "1234", "2.5"]
    assert task.solution(exs[0]) == "3+4=7\nAnswer: 7"
    assert task.grade("so 7 apples\nAnswer: 7.0", exs[0])
    assert task.grade("Answer: $1,234", exs[1])
    assert task.grade("Answer: 5/2", exs[2])
    assert task.grade("blah\n#### 7", exs[0])
    assert not task.grade("Answer: 8", exs[0])
    assert not task.grade("no answer", exs[0])
    assert [e.id for e in GSM8KTask(path, shuffle=True).examples(3, seed=1)] != []
    with pytest.raises(ValueError, match="n=4"):
        task.examples(4)


def test_jsonl_errors_name_path_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        GSM8KTask(tmp_path / "missing.jsonl").examples(1)
    bad = _write(tmp_path / "bad.jsonl", [{"question": "q", "answer": "#### 1"}, "{not json"])
    with pytest.raises(ValueError, match="line 2"):
        GSM8KTask(bad).examples(1)
    nofield = _write(tmp_path / "nofield.jsonl", [{"question": "q"}])
    with pytest.raises(ValueError, match=r"line 1.*'answer'"):
        GSM8KTask(nofield).examples(1)
    nobox = _write(tmp_path / "nobox.jsonl", [{"problem": "p", "solution": "no box"}])
    with pytest.raises(ValueError, match="record 1"):
        MATHTask(nobox).examples(1)


def test_last_boxed_and_math_normalization():
    assert last_boxed(r"a \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{\{1,2\} \cup {3}}") == r"\{1,2\} \cup {3}"
    assert last_boxed(r"\boxed 5$") == "5"
    assert last_boxed(r"\boxed{unclosed") is None
    assert normalize_math_answer(r"\dfrac{1}{2}") == normalize_math_answer(r"\frac12")
    assert normalize_math_answer(r"x = 3") == "3"
    assert normalize_math_answer(r"90^\circ") == "90"
    assert normalize_math_answer(r"\text{(A)}") == "(A)"
    assert math_number(r"-\frac{3}{4}") == Fraction(-3, 4)
    assert math_number("1,000") == 1000
    assert math_number(r"\sqrt{2}") is None


def test_math_loader_and_grader(tmp_path):
    path = _write(
        tmp_path / "math.jsonl",
        [
            {"problem": "Half?", "solution": r"It is $\boxed{\frac{1}{2}}$.", "level": "Level 1",
             "type": "Algebra"},
            {"problem": "Root?", "solution": r"$\boxed{\sqrt{2}}$"},
            {"problem": "Count?", "solution": r"$\boxed{1{,}000}$ hmm, no: $\boxed{1000}$"},
        ],
    )  # fmt: skip
    task = MATHTask(path)
    half, root, count = task.examples(3)
    assert half.meta["level"] == "Level 1" and half.meta["type"] == "Algebra"
    assert root.meta["level"] is None
    for good in ("Answer: 0.5", r"Answer: \dfrac12", r"Answer: $\boxed{1/2}$", r"so \boxed{0.50}"):
        assert task.grade(good, half), good
    assert not task.grade("Answer: 0.3", half)
    assert task.grade(r"Answer: \sqrt{2}", root) and task.grade(r"Answer: \sqrt2", root)
    assert task.grade("Answer: 1,000", count)
    numeric = MATHTask(path, numeric_only=True).examples(2)
    assert [e.answer for e in numeric] == [r"\frac{1}{2}", "1000"]


# ---------------------------------------------------------------- reasoning-gym adapter

GYM = ["basic_arithmetic", "chain_sum", "countdown", "gsm_symbolic", "syllogism"]


@pytest.mark.parametrize("name", GYM)
def test_gym_task_grades_with_the_dataset_scorer(name):
    task = get_task(f"gym:{name}")
    exs = task.examples(8, seed=0)
    assert [e.prompt for e in exs] == [e.prompt for e in task.examples(8, seed=0)]
    for ex in exs:
        assert task.grade(task.solution(ex), ex)
        assert task.grade(f"work\nAnswer: {ex.answer}", ex)
        assert not task.grade("Answer: 98765 nonsense", ex)
        assert not task.grade("no final line", ex)
        assert task.format_prompt(ex).startswith("Q: ")


def test_gym_threshold_and_config():
    task = GymTask("chain_sum", threshold=0.5, min_terms=3, max_terms=3)
    (ex,) = task.examples(1, seed=0)
    assert ex.meta["entry"]["metadata"]["num_terms"] == 3
    partial = f"{ex.answer} and more text"  # default scorer: partial credit len(oracle)/len(answer)
    assert 0 < task.score(partial, ex) < 1.0
    assert not GymTask("chain_sum").check_answer(partial, ex)
    with pytest.raises(ValueError, match="threshold"):
        GymTask("chain_sum", threshold=0.0)


# ---------------------------------------------------------------- alphabet


def test_task_alphabet_covers_every_procedural_text():
    alphabet = task_alphabet()
    assert len(set(alphabet)) == len(alphabet) and "\n" in alphabet and " " in alphabet
    tok = CharTokenizer(alphabet)
    for task in PROCEDURAL:
        for ex in task.examples(50, seed=2):
            texts = [task.format_prompt(ex, shots=[ex]), task.solution(ex), ex.answer]
            if hasattr(task, "corrupted_solutions"):
                texts += [*task.corrupted_solutions(ex), task.misconception(ex)]
            for text in texts:
                assert not uncovered(text), (task, text)
                assert tok.decode(tok.encode(text)) == text
    assert uncovered("4 × 5 £") == {"×", "£"}


def test_example_is_hashable_by_prompt_answer_id():
    a = Example("q", "1", {"x": [1]}, "t/0/0")
    assert hash(a) == hash(Example("q", "1", {"y": 2}, "t/0/0"))


def test_gym_flexible_extraction_reads_the_last_number():
    strict, flexible = GymTask("chain_sum"), GymTask("chain_sum", flexible=True)
    assert strict.extract_answer("4 + 1 = 5") is None
    assert flexible.extract_answer("4 + 1 = 5") == "5"
    assert flexible.extract_answer("4 + 1 = 5\nAnswer: 6") == "6"  # an Answer: line wins
    assert flexible.extract_answer("no digits here") is None
    assert flexible.extract_answer("2 + 2 = 4\nQ: 7 + 8") == "4"  # an invented next question is cut
    assert hash(strict) != hash(flexible)

"""The task interface: examples with checkable answers, 1-shot prompts, answer extraction, grading.

Every task (procedural, file-backed or reasoning-gym) is a :class:`Task`. A response is graded by
extracting its final answer from the line ``Answer: X`` (see :func:`extract_answer_line`) and
comparing it with the example's answer by a task-specific rule; a response with no parseable
answer counts as wrong (EXPERIMENTS.md §4: "count unparseable answers as wrong").

Prompt format, shared by every task (EXPERIMENTS.md §4, 1-shot; the paper gives no template)::

    Q: <demonstration question>
    <demonstration chain-of-thought>
    Answer: <demonstration answer>

    Q: <question>
    <- the model continues here

The demonstration fixes the output format (one step per line, final line ``Answer: X``) and
elicits chain-of-thought. Models trained from scratch on :mod:`sharpen.tasks.corpus` documents see
the same ``Q: ...\\n`` prompt with no shots.
"""

from __future__ import annotations

import abc
import dataclasses
import random
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

#: Prefix of the final-answer line of every response.
ANSWER_PREFIX = "Answer:"

_ANSWER_LINE = re.compile(r"^[ \t]*Answer:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Example:
    """One task instance.

    Attributes:
      prompt: the question text (without the ``Q: `` template; see :meth:`Task.format_prompt`).
      answer: the reference final answer, as text.
      meta: task-specific structured data (operands, ontology, source entry, ...).
      id: a stable identifier, unique within a task (e.g. ``"arithmetic/0/17"``).
    """

    prompt: str
    answer: str
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)
    id: str = ""


def example_rng(task: str, seed: int, index: int) -> random.Random:
    """A private ``random.Random`` for example ``index`` of ``task`` under ``seed``.

    Seeding by the string ``"task/seed/index"`` (hashed with SHA-512 by :mod:`random`, so it does
    not depend on ``PYTHONHASHSEED``) plays the role of ``jax.random.fold_in``: example ``i`` is the
    same whatever ``n`` is, so ``examples(n)`` is a prefix of ``examples(n + 1)``.
    """
    return random.Random(f"{task}/{seed}/{index}")


def check_count(n: Any, name: str = "n") -> int:
    """Validate a non-negative integer count; raise ``ValueError`` naming ``name`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be a non-negative int, got {n!r}")
    return n


def extract_answer_line(text: str) -> str | None:
    """The final answer of a response: the text after the last ``Answer:`` line.

    The response is first cut at the first ``"\\nQ:"`` (a base model that goes on to invent the next
    question), then the last line that starts with ``Answer:`` is taken. Returns ``None`` when there
    is no such line or its content is empty (counted wrong).

    >>> extract_answer_line("3+4=7\\nAnswer: 7\\nQ: 1+1")
    '7'
    """
    text = text.split("\nQ:", 1)[0]
    found = _ANSWER_LINE.findall(text)
    if not found or not found[-1]:
        return None
    return found[-1]


_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?")


def parse_number(text: str) -> Fraction | None:
    """The last number in ``text`` as an exact ``Fraction``, or ``None``.

    Normalization: thousands commas and ``$``/``%`` signs are dropped, ``12.0`` equals ``12``, and
    ``a/b`` is a fraction. Taking the *last* number makes ``"The total is 18."`` read as 18.

    >>> parse_number("$1,234.50"), parse_number("x = 3/4"), parse_number("none")
    (Fraction(2469, 2), Fraction(3, 4), None)
    """
    cleaned = re.sub(r"(?<=\d),(?=\d{3})", "", text).replace("$", "").replace("%", "")
    found = _NUMBER.findall(cleaned)
    if not found:
        return None
    num, _, den = found[-1].partition("/")
    value = Fraction(num)
    if den:
        if int(den) == 0:
            return None
        value /= int(den)
    return value


class Task(abc.ABC):
    """A task with checkable answers.

    Subclasses set :attr:`name` and implement :meth:`examples`, :meth:`solution` and
    :meth:`check_answer`; :meth:`extract_answer` and :meth:`grade` follow.
    """

    name: str = "task"

    @abc.abstractmethod
    def examples(self, n: int, *, seed: int) -> list[Example]:
        """``n`` examples, deterministic in ``seed``."""

    @abc.abstractmethod
    def solution(self, example: Example) -> str:
        """A reference response: chain-of-thought lines, then ``Answer: <answer>``."""

    @abc.abstractmethod
    def check_answer(self, answer: str, example: Example) -> bool:
        """Whether an extracted final answer is correct for ``example``."""

    def format_prompt(self, example: Example, *, shots: Sequence[Example] = ()) -> str:
        """The model input: each shot as question + reference solution, then ``Q: <question>\\n``."""
        parts = [f"Q: {s.prompt}\n{self.solution(s)}\n\n" for s in shots]
        parts.append(f"Q: {example.prompt}\n")
        return "".join(parts)

    def extract_answer(self, text: str) -> str | None:
        """The final answer of a response, or ``None`` if unparseable (counted wrong)."""
        return extract_answer_line(text)

    def grade(self, text: str, example: Example) -> bool:
        """Whether the response ``text`` ends in a correct final answer."""
        answer = self.extract_answer(text)
        return answer is not None and self.check_answer(answer, example)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

"""Tasks with checkable answers, and training corpora for tiny base models (issue 5).

Registry: ``get_task(name, **kwargs)`` builds a task by name; ``"gym:<dataset>"`` wraps any
reasoning-gym dataset (``get_task("gym:chain_sum", min_terms=2)``).

=================  ==========================================  ==================================
name               class                                       source
=================  ==========================================  ==================================
``arithmetic``     :class:`ArithmeticTask`                     procedural (GSM8K stand-in)
``prontoqa``       :class:`ProntoQATask`                       procedural (deduction, True/False)
``countdown``      :class:`CountdownTask`                      procedural (Game of 24)
``gsm8k``          :class:`GSM8KTask` (``path=``)              local JSONL
``math``           :class:`MATHTask` (``path=``)               local JSONL
``gym:<dataset>``  :class:`GymTask`                            reasoning-gym (lazy import)
=================  ==========================================  ==================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sharpen.tasks.arithmetic import ArithmeticTask
from sharpen.tasks.base import Example, Task, extract_answer_line, parse_number
from sharpen.tasks.charset import task_alphabet, uncovered
from sharpen.tasks.corpus import (
    CorpusConfig,
    Document,
    Response,
    corpus_preset,
    generate_corpus,
    greedy_response,
    ideal_summary,
    response_distribution,
    sample_responses,
)
from sharpen.tasks.countdown import CountdownTask, check_expression, parse_expression
from sharpen.tasks.gym import GymTask
from sharpen.tasks.jsonl import GSM8KTask, MATHTask
from sharpen.tasks.prontoqa import ProntoQATask

#: Task factories by name (``gym:<dataset>`` is handled by :func:`get_task`).
TASKS: dict[str, Callable[..., Task]] = {
    "arithmetic": ArithmeticTask,
    "prontoqa": ProntoQATask,
    "countdown": CountdownTask,
    "gsm8k": GSM8KTask,
    "math": MATHTask,
}

GYM_PREFIX = "gym:"


def get_task(name: str, **kwargs: Any) -> Task:
    """Build the task registered as ``name`` with ``kwargs``.

    Raises:
      ValueError: naming ``name`` and the known names when it is not registered.

    >>> get_task("arithmetic", num_ops=2).num_ops
    2
    """
    if isinstance(name, str) and name.startswith(GYM_PREFIX):
        return GymTask(name[len(GYM_PREFIX) :], **kwargs)
    if name not in TASKS:
        raise ValueError(
            f"unknown task {name!r}; known: {sorted(TASKS)} or '{GYM_PREFIX}<reasoning-gym name>'"
        )
    return TASKS[name](**kwargs)


__all__ = [
    "GYM_PREFIX",
    "TASKS",
    "ArithmeticTask",
    "CorpusConfig",
    "CountdownTask",
    "Document",
    "Example",
    "GSM8KTask",
    "GymTask",
    "MATHTask",
    "ProntoQATask",
    "Response",
    "Task",
    "check_expression",
    "corpus_preset",
    "extract_answer_line",
    "generate_corpus",
    "get_task",
    "greedy_response",
    "ideal_summary",
    "parse_expression",
    "parse_number",
    "response_distribution",
    "sample_responses",
    "task_alphabet",
    "uncovered",
]

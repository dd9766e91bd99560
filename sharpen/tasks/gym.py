"""Any `reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ dataset as a :class:`Task`.

reasoning-gym ships 100+ offline procedural generators with verifiers (``basic_arithmetic``,
``chain_sum``, ``countdown``, ``gsm_symbolic``, ``syllogism``, ...; /work/shared/ENVIRONMENT.md).
:class:`GymTask` draws ``reasoning_gym.create_dataset(name, size=n, seed=seed, **config)``, asks
for the answer on a final ``Answer: X`` line like every other task, and grades the extracted
``X`` with the dataset's own ``score_answer(X, entry)``: correct iff the score is at least
``threshold`` (default 1.0, i.e. full credit; several datasets give partial credit, e.g.
``countdown`` scores a malformed answer 0.01 and the default scorer gives
``len(oracle) / len(answer)`` when the oracle is a substring of a longer answer). With
``flexible=True`` a response without an ``Answer:`` line is read as its last number, like the
"flexible-extract" filter of lm-evaluation-harness's GSM8K task (small instruct models often
stop after ``14 + 18 = 32`` without restating the result).

``reasoning_gym`` is imported lazily, so :mod:`sharpen.tasks` works without it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from sharpen.tasks.base import _NUMBER, Example, Task, check_count, extract_answer_line


def _gym():
    import reasoning_gym

    return reasoning_gym


@dataclasses.dataclass(frozen=True, init=False)
class GymTask(Task):
    """A reasoning-gym dataset as a task.

    Args:
      name: the reasoning-gym dataset name (``reasoning_gym.factory.DATASETS``).
      threshold: minimum ``score_answer`` counted correct, in ``(0, 1]``.
      flexible: when the response has no ``Answer:`` line, take its last number as the answer
        (``None`` if it has none). Off by default: strict ``Answer:`` parsing.
      **config: dataset config fields passed to ``create_dataset`` (e.g. ``min_terms=2``).

    Raises:
      ValueError: for an unknown dataset name (listing a few known ones) or a bad threshold.

    ``meta``: ``entry`` (the reasoning-gym item: ``question``, ``answer``, ``metadata``).
    """

    name: str
    threshold: float
    flexible: bool
    config: Mapping[str, Any]

    def __init__(self, name: str, *, threshold: float = 1.0, flexible: bool = False, **config: Any):
        known = _gym().factory.DATASETS
        if name not in known:
            some = ", ".join(sorted(known)[:12])
            raise ValueError(f"unknown reasoning-gym dataset {name!r}; known include: {some}, ...")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "threshold", float(threshold))
        object.__setattr__(self, "flexible", bool(flexible))
        object.__setattr__(self, "config", dict(config))

    def __hash__(self) -> int:
        return hash((self.name, self.threshold, self.flexible, tuple(sorted(self.config.items()))))

    def _dataset(self, n: int, seed: int):
        return _gym().create_dataset(self.name, size=n, seed=seed, **self.config)

    @functools.cached_property
    def _score(self) -> Callable[[str | None, dict], float]:
        return self._dataset(1, 0).score_answer

    def examples(self, n: int, *, seed: int) -> list[Example]:
        """``n`` items of ``create_dataset(name, size=n, seed=seed, **config)``."""
        check_count(n)
        if n == 0:
            return []
        ds = self._dataset(n, seed)
        out = []
        for i in range(n):
            entry = ds[i]
            out.append(
                Example(
                    prompt=str(entry["question"]).strip(),
                    answer=str(entry["answer"]),
                    meta={"entry": entry},
                    id=f"gym:{self.name}/{seed}/{i}",
                )
            )
        return out

    def solution(self, example: Example) -> str:
        """``Answer: <oracle>``, preceded by the dataset's chain-of-thought if it has one.

        (``gsm_symbolic`` stores one in ``metadata['answer_cot']``, ending in ``#### X``.)
        """
        cot = example.meta["entry"].get("metadata", {}).get("answer_cot")
        lines = []
        if isinstance(cot, str) and cot.strip():
            lines.append(cot.rpartition("####")[0].strip() if "####" in cot else cot.strip())
        lines.append(f"Answer: {example.answer}")
        return "\n".join(lines)

    def extract_answer(self, text: str) -> str | None:
        """The ``Answer:`` line's content; with ``flexible``, else the response's last number."""
        answer = extract_answer_line(text)
        if answer is None and self.flexible:
            numbers = _NUMBER.findall(text.split("\nQ:", 1)[0])
            answer = numbers[-1] if numbers else None
        return answer

    def score(self, answer: str | None, example: Example) -> float:
        """The dataset's own ``score_answer(answer, entry)`` in ``[0, 1]``."""
        return float(self._score(answer, example.meta["entry"]))

    def check_answer(self, answer: str, example: Example) -> bool:
        return self.score(answer, example) >= self.threshold

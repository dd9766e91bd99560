"""ProntoQA-style deductive reasoning: chains of modus ponens over a made-up ontology, True/False.

A problem states rules ``Every A is a B.`` along a chain ``c0 -> c1 -> ... -> c_{h-1}``, a property
rule for the last concept (``Every c is P.`` or ``Every c is not P.``), distractor rules, and a
fact ``Name is a c0.``; it asks whether ``Name is P.`` (Saparov & He 2023, the paper's ProntoQA
task, §3). The chain-of-thought applies one rule per line::

    Q: Every yumpus is a zumpus. Every rompus is not red. Rex is a wumpus. Every wumpus is a
    yumpus. Every zumpus is red. Every numpus is a yumpus. True or false: Rex is red.
    Rex is a yumpus.
    Rex is a zumpus.
    Rex is red.
    Answer: True

(the question is one line). Distractors: the first gives an off-chain concept the opposite
property, the others point off-chain concepts into the chain, so the answer depends on following
the right rules. Answers are balanced True/False.
"""

from __future__ import annotations

import dataclasses
import itertools

from sharpen.tasks.base import Example, Task, check_count, example_rng

CONCEPTS = (
    "wumpus",
    "yumpus",
    "zumpus",
    "dumpus",
    "rompus",
    "numpus",
    "tumpus",
    "vumpus",
    "impus",
    "jompus",
    "gorpus",
    "lempus",
)
PROPERTIES = ("red", "cold", "big", "shy", "fast", "sour", "wet", "loud", "dull", "kind")
#: Entity names; none starts with ``A`` (answer-only responses) or ``L`` (the corpus openings).
NAMES = ("Rex", "Sam", "Max", "Bea", "Fae", "Wren", "Polly", "Tom", "Sally", "Stella")


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _prop(prop: str, positive: bool) -> str:
    return prop if positive else f"not {prop}"


def _parse_bool(answer: str) -> bool | None:
    word = answer.strip().rstrip(".").strip().lower()
    return {"true": True, "false": False, "yes": True, "no": False}.get(word)


@dataclasses.dataclass(frozen=True)
class ProntoQATask(Task):
    """Deductive True/False questions over a chain of ``num_hops`` rule applications.

    Attributes:
      num_hops: rule applications from the fact to the property (≥ 1); the chain-of-thought
        has this many lines before the answer line.
      num_distractors: distractor rules (0 to 4).
      name: registry name.

    ``meta``: ``name``, ``chain`` (concepts ``c0..c_{h-1}``), ``prop``, ``positive`` (polarity of
    the property rule), ``distractors`` (off-chain concepts; the first has the opposite property).
    """

    num_hops: int = 3
    num_distractors: int = 2
    name: str = "prontoqa"

    def __post_init__(self):
        if not isinstance(self.num_hops, int) or not 1 <= self.num_hops <= 7:
            raise ValueError(f"num_hops must be an int in [1, 7], got {self.num_hops!r}")
        if not isinstance(self.num_distractors, int) or not 0 <= self.num_distractors <= 4:
            raise ValueError(
                f"num_distractors must be an int in [0, 4], got {self.num_distractors!r}"
            )

    def _make(self, seed: int, index: int) -> Example:
        rng = example_rng(self.name, seed, index)
        concepts = rng.sample(CONCEPTS, self.num_hops + self.num_distractors)
        chain, distractors = concepts[: self.num_hops], concepts[self.num_hops :]
        who, prop = rng.choice(NAMES), rng.choice(PROPERTIES)
        positive = rng.random() < 0.5
        rules = [f"Every {a} is {_a(b)}." for a, b in itertools.pairwise(chain)]
        rules.append(f"Every {chain[-1]} is {_prop(prop, positive)}.")
        for j, d in enumerate(distractors):
            if j == 0:
                rules.append(f"Every {d} is {_prop(prop, not positive)}.")
            else:
                rules.append(f"Every {d} is {_a(rng.choice(chain[1:] or chain))}.")
        rules.append(f"{who} is {_a(chain[0])}.")
        rng.shuffle(rules)
        prompt = " ".join(rules) + f" True or false: {who} is {prop}."
        return Example(
            prompt=prompt,
            answer="True" if positive else "False",
            meta={
                "name": who,
                "chain": chain,
                "prop": prop,
                "positive": positive,
                "distractors": distractors,
            },
            id=f"{self.name}/{seed}/{index}",
        )

    def examples(self, n: int, *, seed: int) -> list[Example]:
        """``n`` problems; example ``i`` depends only on ``(seed, i)``."""
        check_count(n)
        return [self._make(seed, i) for i in range(n)]

    @staticmethod
    def _lines(example: Example, upto: int) -> list[str]:
        m = example.meta
        return [f"{m['name']} is {_a(c)}." for c in m["chain"][1:upto]]

    @staticmethod
    def _end(example: Example, lines: list[str], positive: bool, answer: bool) -> str:
        m = example.meta
        lines = [*lines, f"{m['name']} is {_prop(m['prop'], positive)}."]
        return "\n".join([*lines, f"Answer: {answer}"])

    def solution(self, example: Example) -> str:
        """One line per rule application, then the property line and ``Answer: True|False``."""
        pos = example.meta["positive"]
        return self._end(example, self._lines(example, self.num_hops), pos, pos)

    def check_answer(self, answer: str, example: Example) -> bool:
        value = _parse_bool(answer)
        return value is not None and value == (example.answer == "True")

    def corrupted_solutions(self, example: Example) -> list[str]:
        """Distinct wrong chains, all ending in the wrong answer, in a fixed order.

        Early conclusion after ``i`` correct lines (the opposite property is asserted); a wrong
        hop into the first distractor concept (inheriting its opposite property); the full
        chain with the property's polarity flipped; the full chain with only the answer flipped.
        """
        m, hops = example.meta, self.num_hops
        pos = m["positive"]
        out: dict[str, None] = {}
        for i in range(1, hops):
            out[self._end(example, self._lines(example, i), not pos, not pos)] = None
        if m["distractors"]:
            wrong_hop = f"{m['name']} is {_a(m['distractors'][0])}."
            for i in range(1, hops):
                out[self._end(example, [*self._lines(example, i), wrong_hop], not pos, not pos)] = (
                    None
                )
        full = self._lines(example, hops)
        out[self._end(example, full, not pos, not pos)] = None
        out[self._end(example, full, pos, not pos)] = None
        return list(out)

    def misconception(self, example: Example) -> str:
        """The systematic error of ignoring ``not``: the full chain with the polarity flipped."""
        pos = example.meta["positive"]
        return self._end(example, self._lines(example, self.num_hops), not pos, not pos)

    def wrong_answers(self, example: Example) -> list[str]:
        """The one wrong answer."""
        return ["False" if example.answer == "True" else "True"]

"""Multi-step arithmetic with a one-line-per-step chain-of-thought (a GSM8K stand-in, EXPERIMENTS.md §10.1).

A problem applies ``num_ops`` operations left to right to a start value; the question is the
fully left-nested expression, so ordinary precedence gives the same value::

    Q: ((7+5)*3)-4
    7+5=12
    12*3=36
    36-4=32
    Answer: 32

Every intermediate value stays in ``[1, max_value]`` (small numbers; two-digit sums and
differences exercise carries and borrows). The module also enumerates the *corrupted* solutions
that :mod:`sharpen.tasks.corpus` mixes into training data: an error at one step (dropped carry or
borrow, off by one or two) propagated honestly through the later steps, or a correct chain with a
wrong final answer. Every corrupted solution ends in a wrong answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sharpen.tasks.base import Example, Task, check_count, example_rng, parse_number

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _apply_chain(start: int, ops: Sequence[tuple[str, int]], errors: dict[int, int]) -> list[int]:
    """Values after each step; ``errors[i]`` replaces the true result of step ``i`` by that value."""
    values, v = [], start
    for i, (op, b) in enumerate(ops):
        v = errors.get(i, _OPS[op](v, b))
        values.append(v)
    return values


def carry_error(a: int, op: str, b: int) -> int | None:
    """The result of ``a op b`` with the carry (``+``, ``*``) or borrow (``-``) dropped, if any.

    ``+``: ``27+5 -> 22``; ``-``: ``32-5 -> 37``; ``*`` (two-digit times one-digit): ``17*3 -> 31``.
    Returns ``None`` when the operation has no carry or borrow to drop.
    """
    if op == "+" and a % 10 + b % 10 >= 10:
        return a + b - 10
    if op == "-" and a % 10 < b % 10 and a >= 10:
        return a - b + 10
    if op == "*" and a >= 10 and (a % 10) * b >= 10:
        return (a // 10) * b * 10 + (a % 10) * b % 10
    return None


@dataclasses.dataclass(frozen=True)
class ArithmeticTask(Task):
    """Left-to-right multi-step arithmetic over ``+``, ``-``, ``*``.

    Attributes:
      num_ops: operations per problem (= chain-of-thought lines before the answer line).
      max_value: bound on the start value and on every intermediate result.
      max_operand: bound on ``+``/``-`` operands (``*`` operands are 2..9).
      name: registry name.

    ``meta`` holds ``start`` (int), ``ops`` (list of ``[op, operand]``) and ``values`` (the
    intermediate results).
    """

    num_ops: int = 3
    max_value: int = 99
    max_operand: int = 20
    name: str = "arithmetic"

    def __post_init__(self):
        if isinstance(self.num_ops, bool) or not isinstance(self.num_ops, int) or self.num_ops < 1:
            raise ValueError(f"num_ops must be an int >= 1, got {self.num_ops!r}")
        if not isinstance(self.max_value, int) or self.max_value < 20:
            raise ValueError(f"max_value must be an int >= 20, got {self.max_value!r}")
        if not isinstance(self.max_operand, int) or not 2 <= self.max_operand <= self.max_value:
            raise ValueError(
                f"max_operand must be an int in [2, max_value={self.max_value}], "
                f"got {self.max_operand!r}"
            )

    def _make(self, seed: int, index: int) -> Example:
        rng = example_rng(self.name, seed, index)
        start = rng.randint(2, min(self.max_operand, self.max_value))
        v, ops = start, []
        for _ in range(self.num_ops):
            choices = [("+", b) for b in range(1, self.max_operand + 1) if v + b <= self.max_value]
            choices += [("-", b) for b in range(1, min(self.max_operand, v - 1) + 1)]
            choices += [("*", b) for b in range(2, 10) if v * b <= self.max_value]
            by_op = sorted({op for op, _ in choices})
            op = rng.choice(by_op)
            op, b = rng.choice([c for c in choices if c[0] == op])
            ops.append((op, b))
            v = _OPS[op](v, b)
        expr = str(start)
        for i, (op, b) in enumerate(ops):
            expr = f"({expr}){op}{b}" if i > 0 else f"{expr}{op}{b}"
        values = _apply_chain(start, ops, {})
        return Example(
            prompt=expr,
            answer=str(values[-1]),
            meta={"start": start, "ops": [[op, b] for op, b in ops], "values": values},
            id=f"{self.name}/{seed}/{index}",
        )

    def examples(self, n: int, *, seed: int) -> list[Example]:
        """``n`` problems; example ``i`` depends only on ``(seed, i)``."""
        check_count(n)
        return [self._make(seed, i) for i in range(n)]

    @staticmethod
    def _render(example: Example, values: Sequence[int], final: int) -> str:
        lines, a = [], example.meta["start"]
        for (op, b), v in zip(example.meta["ops"], values, strict=True):
            lines.append(f"{a}{op}{b}={v}")
            a = v
        lines.append(f"Answer: {final}")
        return "\n".join(lines)

    def solution(self, example: Example) -> str:
        """The correct chain-of-thought: one ``a op b=c`` line per step, then ``Answer: c``."""
        values = example.meta["values"]
        return self._render(example, values, values[-1])

    def check_answer(self, answer: str, example: Example) -> bool:
        value = parse_number(answer)
        return value is not None and value == int(example.answer)

    def corrupted_solutions(self, example: Example) -> list[str]:
        """Distinct wrong chain-of-thoughts, in a fixed order.

        For each step ``i`` and each error (dropped carry/borrow, result ±1, ±2), the wrong value
        is carried through the later steps correctly; then, for the correct chain, a wrong final
        line (answer ±1, or the previous intermediate value). Chains with a negative value and
        chains whose final answer is right are dropped.
        """
        start, ops = example.meta["start"], [tuple(o) for o in example.meta["ops"]]
        true_values = example.meta["values"]
        target = true_values[-1]
        out: dict[str, None] = {}
        a = start
        for i, (op, b) in enumerate(ops):
            r = true_values[i]
            wrong = [carry_error(a, op, b), r - 1, r + 1, r - 2, r + 2]
            for w in wrong:
                if w is None or w < 0 or w == r:
                    continue
                values = _apply_chain(start, ops, {i: w})
                if min(values) >= 0 and values[-1] != target:
                    out[self._render(example, values, values[-1])] = None
            a = r
        finals = [target + 1, target - 1] + ([true_values[-2]] if len(ops) > 1 else [])
        for f in finals:
            if f >= 0 and f != target:
                out[self._render(example, true_values, f)] = None
        return list(out)

    def misconception(self, example: Example) -> str:
        """One systematic wrong chain: every carry/borrow dropped (else the last step off by one).

        Used for the "weak" corpus regime, where this single wrong chain outweighs the correct one.
        """
        start, ops = example.meta["start"], [tuple(o) for o in example.meta["ops"]]
        values, v = [], start
        for op, b in ops:
            w = carry_error(v, op, b)
            v = _OPS[op](v, b) if w is None else w
            values.append(v)
        if values[-1] == int(example.answer) or min(values) < 0:
            values = _apply_chain(start, ops, {len(ops) - 1: int(example.answer) + 1})
        return self._render(example, values, values[-1])

    def wrong_answers(self, example: Example) -> list[str]:
        """Near-miss wrong final answers (±1, ±10, ±2), in this order, non-negative only."""
        t = int(example.answer)
        return [str(t + d) for d in (1, -1, 10, -10, 2, -2) if t + d >= 0]

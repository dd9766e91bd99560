"""Countdown / Game of 24: combine the given numbers with ``+ - * /`` to reach a target.

The paper's Game of 24 task (§3) uses four numbers and target 24; ``target=None`` gives the
countdown variant with a reachable target drawn per problem. Solutions write one combination
per line and end with the whole expression::

    Q: Make 24 from 4 5 9 13.
    13-9=4
    4*5=20
    20+4=24
    Answer: ((13-9)*5)+4

Grading parses the answer with a small recursive-descent parser (no ``eval``), evaluates it with
exact ``Fraction`` arithmetic, and checks that it uses exactly the given numbers (as a multiset)
and reaches the target. Division by zero, unary minus, other characters or leftover text make the
answer wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Sequence
from fractions import Fraction

from sharpen.tasks.base import Example, Task, check_count, example_rng

_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")


class ExpressionError(ValueError):
    """An answer that is not a well-formed ``+ - * /`` expression over non-negative integers."""


def parse_expression(text: str) -> tuple[Fraction, list[int]]:
    """Evaluate an arithmetic expression exactly; return ``(value, numbers used in order)``.

    Grammar: ``expr := term (('+'|'-') term)*``, ``term := atom (('*'|'/') atom)*``,
    ``atom := integer | '(' expr ')'``. ``×``/``x`` are not accepted; neither is unary minus.

    Raises:
      ExpressionError: on any other character, unbalanced parentheses, trailing text, or a
        division by zero.

    >>> parse_expression("(13-9)*5+4")
    (Fraction(24, 1), [13, 9, 5, 4])
    """
    tokens: list[str | int] = []
    for num, other in _TOKEN.findall(text.strip()):
        if num:
            tokens.append(int(num))
        elif other.strip():
            if other not in "+-*/()":
                raise ExpressionError(f"unexpected character {other!r} in {text!r}")
            tokens.append(other)
    pos, used = 0, []

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def atom() -> Fraction:
        nonlocal pos
        tok = peek()
        pos += 1
        if isinstance(tok, int):
            used.append(tok)
            return Fraction(tok)
        if tok == "(":
            value = expr()
            if peek() != ")":
                raise ExpressionError(f"unbalanced parentheses in {text!r}")
            pos += 1
            return value
        raise ExpressionError(f"expected a number or '(' at token {pos} of {text!r}")

    def term() -> Fraction:
        nonlocal pos
        value = atom()
        while peek() in ("*", "/"):
            op = peek()
            pos += 1
            rhs = atom()
            if op == "/" and rhs == 0:
                raise ExpressionError(f"division by zero in {text!r}")
            value = value * rhs if op == "*" else value / rhs
        return value

    def expr() -> Fraction:
        nonlocal pos
        value = term()
        while peek() in ("+", "-"):
            op = peek()
            pos += 1
            rhs = term()
            value = value + rhs if op == "+" else value - rhs
        return value

    if not tokens:
        raise ExpressionError("empty expression")
    value = expr()
    if pos != len(tokens):
        raise ExpressionError(f"trailing text after token {pos} of {text!r}")
    return value, used


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


def _random_steps(numbers: Sequence[int], rng) -> tuple[tuple, ...] | None:
    """Combine random pairs with random ops (integer results only); None if the end is off-range."""
    pool, steps = [Fraction(x) for x in numbers], []
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        a, b = max(pool[i], pool[j]), min(pool[i], pool[j])
        cands = [(a, "+", b, a + b), (a, "-", b, a - b), (a, "*", b, a * b)]
        if b != 0 and a % b == 0:
            cands.append((a, "/", b, a / b))
        step = rng.choice(cands)
        pool = [v for k, v in enumerate(pool) if k not in (i, j)] + [step[3]]
        steps.append(step)
    return tuple(steps) if 10 <= pool[0] <= 100 else None


@functools.lru_cache(maxsize=20_000)
def _chains(values: tuple[int, ...]) -> tuple[tuple[tuple, ...], ...]:
    """Every chain of combinations of ``values`` down to one number, in a fixed order.

    A combination takes two pool entries ``a >= b`` and one of ``a+b``, ``a-b``, ``a*b``, and
    ``a/b`` when ``b`` divides ``a`` (the forms :func:`_random_steps` uses: integer,
    non-negative results). Steps are ``(a, op, b, result)`` with :class:`Fraction` values.
    """

    def rec(pool: tuple[Fraction, ...]):
        if len(pool) == 1:
            yield ()
            return
        for i, j in itertools.combinations(range(len(pool)), 2):
            a, b = max(pool[i], pool[j]), min(pool[i], pool[j])
            rest = tuple(v for k, v in enumerate(pool) if k not in (i, j))
            cands = [(a, "+", b, a + b), (a, "-", b, a - b), (a, "*", b, a * b)]
            if b != 0 and a % b == 0:
                cands.append((a, "/", b, a / b))
            for step in cands:
                for tail in rec((*rest, step[3])):
                    yield (step, *tail)

    return tuple(dict.fromkeys(rec(tuple(Fraction(v) for v in values))))


def _expression(numbers: Sequence[int], steps: Sequence[tuple]) -> str:
    """The single expression that performs ``steps`` on ``numbers`` (the ``Answer:`` line)."""
    pool: list[tuple[Fraction, str]] = [(Fraction(x), str(x)) for x in numbers]
    for a, op, b, r in steps:
        ea = pool.pop(next(k for k, (v, _) in enumerate(pool) if v == a))[1]
        eb = pool.pop(next(k for k, (v, _) in enumerate(pool) if v == b))[1]
        pool.append((r, f"{_wrap(ea)}{op}{_wrap(eb)}"))
    return pool[0][1]


def _render(numbers: Sequence[int], steps: Sequence[tuple]) -> str:
    """One ``a op b=c`` line per step, then ``Answer: <expression>`` (as :meth:`solution`)."""
    par = lambda x: f"({x})" if "/" in x else x  # noqa: E731
    lines = [f"{par(_fmt(a))}{op}{par(_fmt(b))}={_fmt(r)}" for a, op, b, r in steps]
    return "\n".join([*lines, f"Answer: {_expression(numbers, steps)}"])


@functools.lru_cache(maxsize=200_000)
def _solve(values: tuple[Fraction, ...], target: Fraction) -> tuple[tuple, ...] | None:
    """Steps ``((a, op, b, result), ...)`` combining sorted ``values`` into ``target``, or None."""
    if len(values) == 1:
        return () if values[0] == target else None
    for i, j in itertools.combinations(range(len(values)), 2):
        rest = [v for k, v in enumerate(values) if k not in (i, j)]
        a, b = max(values[i], values[j]), min(values[i], values[j])
        cands = [(a, "+", b, a + b), (a, "-", b, a - b), (a, "*", b, a * b)]
        if b != 0:
            cands.append((a, "/", b, a / b))
        if a != 0 and a != b:
            cands.append((b, "/", a, b / a))
        for step in cands:
            sub = _solve(tuple(sorted([*rest, step[3]])), target)
            if sub is not None:
                return (step, *sub)
    return None


@dataclasses.dataclass(frozen=True)
class CountdownTask(Task):
    """Reach ``target`` from ``num_numbers`` numbers in ``[1, max_number]`` (each used once).

    Attributes:
      num_numbers: how many numbers (2 to 5).
      target: the fixed target (24 = Game of 24), or ``None`` to draw a reachable integer target
        in ``[10, 100]`` per problem (countdown).
      max_number: largest given number.
      max_corrupted: most failed attempts :meth:`corrupted_solutions` returns (training
        corpora, :mod:`sharpen.tasks.corpus`).
      name: registry name.

    Only solvable problems are generated (rejection sampling with an exact solver). ``meta``:
    ``numbers`` (sorted), ``target``, ``steps`` (the reference solution's ``[a, op, b, result]``
    as strings). ``answer`` is the reference expression; any valid expression is graded correct.
    """

    num_numbers: int = 4
    target: int | None = 24
    max_number: int = 13
    max_corrupted: int = 24
    name: str = "countdown"

    def __post_init__(self):
        if not isinstance(self.num_numbers, int) or not 2 <= self.num_numbers <= 5:
            raise ValueError(f"num_numbers must be an int in [2, 5], got {self.num_numbers!r}")
        if self.target is not None and (not isinstance(self.target, int) or self.target < 1):
            raise ValueError(f"target must be a positive int or None, got {self.target!r}")
        if not isinstance(self.max_number, int) or self.max_number < 2:
            raise ValueError(f"max_number must be an int >= 2, got {self.max_number!r}")
        if not isinstance(self.max_corrupted, int) or self.max_corrupted < 1:
            raise ValueError(f"max_corrupted must be an int >= 1, got {self.max_corrupted!r}")

    def _make(self, seed: int, index: int) -> Example:
        rng = example_rng(self.name, seed, index)
        while True:
            numbers = sorted(rng.randint(1, self.max_number) for _ in range(self.num_numbers))
            if self.target is None:
                steps = _random_steps(numbers, rng)
                if steps is not None:
                    target = int(steps[-1][3])
                    break
            else:
                target = self.target
                steps = _solve(tuple(Fraction(x) for x in numbers), Fraction(target))
                if steps is not None:
                    break
        return Example(
            prompt=f"Make {target} from {' '.join(map(str, numbers))}.",
            answer=_expression(numbers, steps),
            meta={
                "numbers": numbers,
                "target": target,
                "steps": [[_fmt(a), op, _fmt(b), _fmt(r)] for a, op, b, r in steps],
            },
            id=f"{self.name}/{seed}/{index}",
        )

    def examples(self, n: int, *, seed: int) -> list[Example]:
        """``n`` solvable problems; example ``i`` depends only on ``(seed, i)``."""
        check_count(n)
        return [self._make(seed, i) for i in range(n)]

    def solution(self, example: Example) -> str:
        """One ``a op b=c`` line per combination, then ``Answer: <expression>``."""
        par = lambda x: f"({x})" if "/" in x else x  # noqa: E731
        lines = [f"{par(a)}{op}{par(b)}={r}" for a, op, b, r in example.meta["steps"]]
        return "\n".join([*lines, f"Answer: {example.answer}"])

    def corrupted_solutions(self, example: Example) -> list[str]:
        """Distinct honest *failed* attempts, in a fixed order: every chain of valid combinations
        (integer results, ``a >= b``, ``/`` only when exact, as :func:`_chains` enumerates) that
        ends at a value other than the target, rendered like :meth:`solution` (its ``Answer:``
        expression evaluates to that value, so it is graded wrong). At most ``max_corrupted``,
        taken evenly spaced over the enumeration so every first combination is represented.
        """
        target = Fraction(example.meta["target"])
        wrong = [c for c in _chains(tuple(example.meta["numbers"])) if c[-1][3] != target]
        if len(wrong) > self.max_corrupted:
            stride = len(wrong) / self.max_corrupted
            wrong = [wrong[int(i * stride)] for i in range(self.max_corrupted)]
        return [_render(example.meta["numbers"], steps) for steps in wrong]

    def misconception(self, example: Example) -> str:
        """One systematic wrong attempt: add the numbers from largest to smallest (when that sum
        is the target, the first other entry of :meth:`corrupted_solutions`)."""
        numbers = sorted(example.meta["numbers"], reverse=True)
        steps, acc = [], Fraction(numbers[0])
        for x in numbers[1:]:
            steps.append((acc, "+", Fraction(x), acc + x))
            acc += x
        if acc == example.meta["target"]:
            return self.corrupted_solutions(example)[0]
        return _render(example.meta["numbers"], tuple(steps))

    def wrong_answers(self, example: Example) -> list[str]:
        """Wrong final expressions: those of the first failed attempts of
        :meth:`corrupted_solutions` (each uses the right numbers, misses the target)."""
        out = [c.rsplit("Answer: ", 1)[1] for c in self.corrupted_solutions(example)]
        return list(dict.fromkeys(out))[:6]

    def check_answer(self, answer: str, example: Example) -> bool:
        """Exact check: uses exactly ``meta['numbers']`` and evaluates to ``meta['target']``.

        A trailing ``= <target>`` is tolerated.
        """
        return check_expression(answer, example.meta["numbers"], example.meta["target"])


def check_expression(answer: str, numbers: Sequence[int], target: int) -> bool:
    """Whether ``answer`` uses exactly ``numbers`` (multiset) and evaluates exactly to ``target``."""
    expr, eq, rhs = answer.partition("=")
    if eq and rhs.strip() != str(target):
        return False
    try:
        value, used = parse_expression(expr)
    except ExpressionError:
        return False
    return sorted(used) == sorted(numbers) and value == target

"""GSM8K and MATH from user-supplied local JSON-lines files (no dataset hub; EXPERIMENTS.md §3).

* GSM8K (``openai/gsm8k`` "main" layout): one object per line with ``question`` and ``answer``;
  the final answer follows ``#### `` at the end of ``answer``; ``<<48/2=24>>`` calculator
  annotations are dropped from the reference chain-of-thought.
* MATH (``lighteval/MATH`` layout): ``problem`` and ``solution``, the final answer being the last
  ``\\boxed{...}`` of the solution (nested braces handled); optional ``level`` and ``type``.

The paper takes the *first* 256 test problems (§3), so :meth:`examples` returns the first ``n``
records in file order unless the task was built with ``shuffle=True``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from sharpen.tasks.base import Example, Task, check_count, extract_answer_line, parse_number


def read_jsonl(path: str | Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; blank lines are skipped.

    Raises:
      FileNotFoundError: naming ``path`` when it is not a file.
      ValueError: naming the 1-based line number for invalid JSON, a non-object, or a record
        missing one of ``required`` (or holding a non-string there).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSONL file not found: {path}")
    records = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {lineno}: invalid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {lineno}: expected a JSON object")
            for key in required:
                if not isinstance(record.get(key), str):
                    raise ValueError(f"{path}: line {lineno}: missing string field {key!r}")
            records.append(record)
    return records


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    ``\\boxed 5`` (no braces) gives ``"5"``. Returns ``None`` if there is none or it is unclosed.

    >>> last_boxed(r"so $\\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    if text.startswith(" ", i):
        m = re.match(r" +([^\s$]+)", text[i:])
        return m.group(1) if m else None
    if not text.startswith("{", i):
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def normalize_math_answer(answer: str) -> str:
    """A normalized string form of a MATH answer (after Hendrycks et al.'s ``strip_string``).

    Drops spaces, ``$``, ``\\left``/``\\right``, ``\\!``, ``^\\circ``, ``\\%``, ``\\text{...}``
    wrappers (keeping the content) and a leading ``x=``; maps ``\\dfrac``/``\\tfrac`` to
    ``\\frac`` and ``\\frac12`` to ``\\frac{1}{2}``; strips a trailing ``.``.

    >>> normalize_math_answer(r"\\dfrac12")
    '\\\\frac{1}{2}'
    """
    s = answer.strip()
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\%", ""),
        ("%", ""),
        ("$", ""),
    ):
        s = s.replace(old, new)
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", s)
    s = re.sub(r"^[a-zA-Z]=", "", s)
    return s.rstrip(".")


def math_number(answer: str) -> Fraction | None:
    """An exact number for a MATH answer, or ``None`` if it is not a plain number.

    Accepts integers/decimals with thousands commas, ``a/b``, ``\\frac{a}{b}`` and a leading
    ``-``; anything else (intervals, radicals, expressions) is ``None``.
    """
    s = normalize_math_answer(answer)
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        den = int(m.group(3))
        if den == 0:
            return None
        value = Fraction(int(m.group(2)), den)
        return -value if m.group(1) else value
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)
    if re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?", s):
        return parse_number(s)
    return None


def _pick(records: list, n: int, seed: int, shuffle: bool, path: Path) -> list:
    check_count(n)
    if n > len(records):
        raise ValueError(f"n={n} exceeds the {len(records)} usable records in {path}")
    if shuffle:
        return random.Random(f"{path.name}/{seed}").sample(records, n)
    return records[:n]


@dataclasses.dataclass(frozen=True)
class GSM8KTask(Task):
    """GSM8K from a local JSONL file; numeric grading.

    Attributes:
      path: the ``.jsonl`` file (fields ``question``, ``answer`` with ``#### <final>``).
      shuffle: if true, :meth:`examples` draws a seeded random subset; else the first ``n``.
      name: registry name.

    ``meta``: ``index`` (record number), ``cot`` (the reference reasoning, annotations dropped).
    """

    path: str | Path
    shuffle: bool = False
    name: str = "gsm8k"

    def examples(self, n: int, *, seed: int = 0) -> list[Example]:
        """The first ``n`` records (or a ``seed``-ed random ``n`` if ``shuffle``)."""
        path = Path(self.path)
        records = []
        for i, r in enumerate(read_jsonl(path, ("question", "answer"))):
            cot, sep, final = r["answer"].rpartition("####")
            if not sep:
                raise ValueError(f"{path}: record {i + 1}: answer has no '#### ' final answer")
            cot = re.sub(r"<<[^>]*>>", "", cot).strip()
            ex = Example(
                prompt=r["question"].strip(),
                answer=final.strip().replace(",", ""),
                meta={"index": i, "cot": cot},
                id=f"{self.name}/{i}",
            )
            records.append(ex)
        return _pick(records, n, seed, self.shuffle, path)

    def solution(self, example: Example) -> str:
        return f"{example.meta['cot']}\nAnswer: {example.answer}"

    def extract_answer(self, text: str) -> str | None:
        """The ``Answer:`` line, else the text after the last ``####``."""
        found = extract_answer_line(text)
        if found is None and "####" in text:
            found = text.rpartition("####")[2].strip().split("\n")[0] or None
        return found

    def check_answer(self, answer: str, example: Example) -> bool:
        """Numeric equality after normalization (commas, ``$``, ``12.0 == 12``, fractions)."""
        got, want = parse_number(answer), parse_number(example.answer)
        return got is not None and got == want


@dataclasses.dataclass(frozen=True)
class MATHTask(Task):
    """MATH from a local JSONL file; normalized-string or exact-numeric grading.

    Attributes:
      path: the ``.jsonl`` file (fields ``problem``, ``solution`` with ``\\boxed{...}``; optional
        ``level``, ``type``).
      numeric_only: keep only problems whose boxed answer is a plain number (the paper's
        ``(\\d*)`` filter presumably meant this; its exact semantics are uncertain, §3).
      shuffle: if true, :meth:`examples` draws a seeded random subset; else the first ``n``.
      name: registry name.

    ``meta``: ``index``, ``level``, ``type``, ``cot`` (the reference solution text).
    """

    path: str | Path
    numeric_only: bool = False
    shuffle: bool = False
    name: str = "math"

    def examples(self, n: int, *, seed: int = 0) -> list[Example]:
        """The first ``n`` usable records (or a ``seed``-ed random ``n`` if ``shuffle``)."""
        path = Path(self.path)
        records = []
        for i, r in enumerate(read_jsonl(path, ("problem", "solution"))):
            boxed = last_boxed(r["solution"])
            if boxed is None:
                raise ValueError(f"{path}: record {i + 1}: solution has no \\boxed{{...}} answer")
            if self.numeric_only and math_number(boxed) is None:
                continue
            records.append(
                Example(
                    prompt=r["problem"].strip(),
                    answer=boxed.strip(),
                    meta={
                        "index": i,
                        "level": r.get("level"),
                        "type": r.get("type"),
                        "cot": r["solution"].strip(),
                    },
                    id=f"{self.name}/{i}",
                )
            )
        return _pick(records, n, seed, self.shuffle, path)

    def solution(self, example: Example) -> str:
        return f"{example.meta['cot']}\nAnswer: {example.answer}"

    def extract_answer(self, text: str) -> str | None:
        """The ``Answer:`` line (a ``\\boxed{}`` in it is unwrapped), else the last ``\\boxed{}``."""
        found = extract_answer_line(text)
        if found is not None:
            return last_boxed(found) or found
        return last_boxed(text.split("\nQ:", 1)[0])

    def check_answer(self, answer: str, example: Example) -> bool:
        """Normalized string match, or equal exact numbers (``0.5`` vs ``\\frac{1}{2}``)."""
        if normalize_math_answer(answer) == normalize_math_answer(example.answer):
            return True
        got, want = math_number(answer), math_number(example.answer)
        return got is not None and got == want

"""Training corpora for tiny from-scratch models, with knobs for the paper's regimes (EXPERIMENTS.md §10.2).

Each document is a prompt ``Q: <question>\\n`` (:meth:`Task.format_prompt`, no shots) and a
response drawn from an explicit finite mixture over response *templates*:

===============  ===========================================================  =================
kind             response                                                     mass
===============  ===========================================================  =================
``correct``      the reference chain-of-thought (:meth:`solution`)            ``p_correct``
``corrupt``      a corrupted chain, uniform over :meth:`corrupted_solutions`  the remainder
``branch``       ``opening + corrupted chain``, openings equally likely       ``p_branch``
``answer_only``  ``Answer: X``, X right w.p. ``answer_only_accuracy``         ``p_answer_only``
``weak``         one systematic wrong chain (:meth:`misconception`)           ``p_weak``
===============  ===========================================================  =================

The ``corrupt`` mass is ``1 - p_correct - p_branch - p_answer_only - p_weak``. Identical texts from
different templates are merged. Because the mixture is explicit, :func:`response_distribution`
gives the exact document-level probability of every distinct response for a prompt: the
*ideal model* (the one that fits the corpus perfectly), whose sequence mode ``y*``, char-level
greedy decode, length-normalized argmax and majority answer :func:`ideal_summary` reports.

Any task with ``solution``, ``corrupted_solutions``, ``misconception`` and ``wrong_answers``
works: :class:`~sharpen.tasks.arithmetic.ArithmeticTask` and
:class:`~sharpen.tasks.prontoqa.ProntoQATask`.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import random
from collections.abc import Collection, Sequence
from typing import Protocol

from sharpen.tasks.base import Example, check_count

KINDS = ("correct", "corrupt", "branch", "answer_only", "weak")


class CorruptibleTask(Protocol):
    """What :func:`generate_corpus` needs from a task."""

    name: str

    def examples(self, n: int, *, seed: int) -> list[Example]: ...

    def format_prompt(self, example: Example, *, shots: Sequence[Example] = ()) -> str: ...

    def solution(self, example: Example) -> str: ...

    def corrupted_solutions(self, example: Example) -> list[str]: ...

    def misconception(self, example: Example) -> str: ...

    def wrong_answers(self, example: Example) -> list[str]: ...

    def extract_answer(self, text: str) -> str | None: ...

    def grade(self, text: str, example: Example) -> bool: ...


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Mixture weights of the response templates (document level, per prompt).

    Attributes:
      p_correct: mass of the single correct chain-of-thought. It is the sequence mode ``y*``
        whenever it exceeds every other single response, and T=1 sampling accuracy is about
        ``p_correct + p_answer_only * answer_only_accuracy``: with ``p_correct < 1/2`` sampling
        is often wrong while ``y*`` is right (the generation–verification gap BoN exploits).
        Prop 3.1: greedy is guaranteed to return ``y*`` only when ``p_correct > 1/2``.
      p_branch: mass of the early-branching path: an alternative opening phrase followed by a
        *corrupted* chain. The default ``openings`` share their first character (``L``), so when
        ``p_branch`` exceeds the plain chains' mass ``p_correct + p_corrupt + p_weak`` the most
        likely first token leads away from ``y*`` and char-level greedy ends in a wrong answer
        although ``y*`` is correct (greedy ≠ mode; the tightness case of Prop 3.1 / Prop E.2).
        Each branch response has mass ``p_branch / (len(openings) * #variants)``, far below
        ``p_correct``. 0 turns branching off (then greedy usually equals ``y*``).
      openings: the alternative opening phrases (each ends in a newline).
      p_answer_only: mass of short ``Answer: X`` responses without chain-of-thought. Length
        bias: they are 3–5× shorter than chains, so summed log-prob BoN can pick one (in a
        trained model every chain character costs log-prob; in the ideal model, when one wrong
        answer-only response outweighs ``p_correct``) while length-normalized log-prob and
        majority vote do not.
      answer_only_accuracy: fraction of the answer-only mass on the correct answer.
      answer_only_wrong: how many distinct wrong answers share the rest (1 concentrates it:
        the "length_bias" preset).
      p_weak: mass of one systematic wrong chain (dropped carries; ignored "not"). With
        ``p_weak > p_correct`` the mode is wrong: the "weak model" regime where sharpening
        hurts (the paper's tasks where log-prob is a poor proxy for accuracy).

    Raises:
      ValueError: for a mass outside ``[0, 1]``, masses summing above 1 (``p_corrupt < 0``),
        ``answer_only_accuracy`` outside ``[0, 1]``, ``answer_only_wrong < 1``, or openings
        that are empty, repeated, or missing while ``p_branch > 0``.
    """

    p_correct: float = 0.30
    p_branch: float = 0.50
    openings: tuple[str, ...] = ("Let me see:\n", "Let us try:\n", "Let's go:\n")
    p_answer_only: float = 0.10
    answer_only_accuracy: float = 0.5
    answer_only_wrong: int = 3
    p_weak: float = 0.0

    def __post_init__(self):
        for f in ("p_correct", "p_branch", "p_answer_only", "p_weak", "answer_only_accuracy"):
            v = getattr(self, f)
            if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{f} must be in [0, 1], got {v!r}")
        if self.p_corrupt < -1e-12:
            raise ValueError(
                "p_correct + p_branch + p_answer_only + p_weak must be <= 1, got "
                f"{1.0 - self.p_corrupt!r}"
            )
        if not isinstance(self.answer_only_wrong, int) or self.answer_only_wrong < 1:
            raise ValueError(
                f"answer_only_wrong must be an int >= 1, got {self.answer_only_wrong!r}"
            )
        if self.p_branch > 0 and not self.openings:
            raise ValueError("openings must be non-empty when p_branch > 0")
        if any(not o for o in self.openings) or len(set(self.openings)) != len(self.openings):
            raise ValueError(f"openings must be distinct non-empty strings, got {self.openings!r}")

    @property
    def p_corrupt(self) -> float:
        """Mass of plain corrupted chains: what the other templates leave."""
        return 1.0 - self.p_correct - self.p_branch - self.p_answer_only - self.p_weak


def corpus_preset(name: str) -> CorpusConfig:
    """Named regimes (ideal-model facts hold for arithmetic and ProntoQA at default settings).

    * ``default``: ``y*`` correct (0.30), T=1 accuracy ≈ 0.35, greedy ≠ ``y*`` and wrong.
    * ``no_branch``: no alternative openings; greedy = ``y*`` (BoN gains over greedy vanish).
    * ``length_bias``: the mode is a short *wrong* answer-only response (0.36 > 0.33); length
      normalization and majority still pick the correct answer.
    * ``weak``: the mode is the systematic wrong chain (0.35 > 0.25).
    * ``clean``: only correct chains (a sanity check; greedy = ``y*`` = the only response).

    With binary answers (ProntoQA) every wrong response shares one answer, so majority vote is
    right only when ``sample_accuracy > 1/2``: under ``default`` it is wrong while ``y*`` is right.

    Raises:
      ValueError: naming an unknown preset.
    """
    base = CorpusConfig()
    presets = {
        "default": base,
        "no_branch": dataclasses.replace(base, p_branch=0.0),
        "length_bias": dataclasses.replace(
            base,
            p_correct=0.33,
            p_branch=0.12,
            p_answer_only=0.48,
            answer_only_accuracy=0.25,
            answer_only_wrong=1,
        ),
        "weak": dataclasses.replace(base, p_correct=0.25, p_branch=0.2, p_weak=0.35),
        "clean": CorpusConfig(p_correct=1.0, p_branch=0.0, p_answer_only=0.0),
    }
    if name not in presets:
        raise ValueError(f"unknown corpus preset {name!r}; known: {sorted(presets)}")
    return presets[name]


@dataclasses.dataclass(frozen=True)
class Response:
    """One distinct response of the mixture: its text, exact probability, template and grade."""

    text: str
    prob: float
    kind: str
    correct: bool


@dataclasses.dataclass(frozen=True)
class Document:
    """One training document: ``prompt + response`` (the tokenizer adds BOS/EOS)."""

    prompt: str
    response: str
    kind: str
    correct: bool
    example_id: str = ""

    @property
    def text(self) -> str:
        return self.prompt + self.response


def _components(task: CorruptibleTask, example: Example, cfg: CorpusConfig):
    """``(text, mass, kind)`` pieces of the mixture, before merging identical texts."""
    corrupted = task.corrupted_solutions(example)
    if not corrupted and (cfg.p_corrupt > 0 or cfg.p_branch > 0):
        raise ValueError(f"{task.name} example {example.id!r} has no corrupted solutions")
    pieces = [(task.solution(example), cfg.p_correct, "correct")]
    pieces += [(c, cfg.p_corrupt / len(corrupted), "corrupt") for c in corrupted]
    if cfg.p_branch > 0:
        w = cfg.p_branch / (len(cfg.openings) * len(corrupted))
        pieces += [(o + c, w, "branch") for o in cfg.openings for c in corrupted]
    wrong = task.wrong_answers(example)[: cfg.answer_only_wrong]
    acc = cfg.answer_only_accuracy if wrong else 1.0
    pieces.append((f"Answer: {example.answer}", cfg.p_answer_only * acc, "answer_only"))
    pieces += [
        (f"Answer: {a}", cfg.p_answer_only * (1 - acc) / len(wrong), "answer_only") for a in wrong
    ]
    pieces.append((task.misconception(example), cfg.p_weak, "weak"))
    return [p for p in pieces if p[1] > 0]


def response_distribution(
    task: CorruptibleTask, example: Example, cfg: CorpusConfig
) -> list[Response]:
    """The exact response distribution of the corpus for one prompt (the ideal model).

    Identical texts from different templates are merged (their masses add; the kind is that
    of the largest piece). Sorted by decreasing probability, ties by text, so ``[0]`` is the
    sequence mode ``y*``. Probabilities sum to 1.
    """
    merged: dict[str, list] = {}
    for text, mass, kind in _components(task, example, cfg):
        if text in merged:
            entry = merged[text]
            entry[0] += mass
            if mass > entry[2]:
                entry[1], entry[2] = kind, mass
        else:
            merged[text] = [mass, kind, mass]
    # Correct by construction: the reference chain and the right answer-only response; every
    # other template is wrong (tests check this against task.grade).
    right = {task.solution(example), f"Answer: {example.answer}"}
    out = [Response(t, m, k, t in right) for t, (m, k, _) in merged.items()]
    return sorted(out, key=lambda r: (-r.prob, r.text))


def greedy_response(dist: Sequence[Response]) -> str:
    """Char-level greedy decoding of the ideal model ``dist`` (end-of-sequence as a symbol).

    At each prefix, the next symbol's mass is the total probability of the responses that
    continue with it (end-of-sequence: the response equal to the prefix). Ties go to
    end-of-sequence, then to the smallest character.
    """
    prefix, live = "", list(dist)
    while True:
        masses: dict[str, float] = {}
        stop = 0.0
        for r in live:
            if len(r.text) == len(prefix):
                stop += r.prob
            else:
                c = r.text[len(prefix)]
                masses[c] = masses.get(c, 0.0) + r.prob
        best = min(masses, key=lambda c: (-masses[c], c)) if masses else None
        if best is None or stop >= masses[best]:
            return prefix
        prefix += best
        live = [r for r in live if r.text.startswith(prefix)]


def ideal_summary(task: CorruptibleTask, example: Example, cfg: CorpusConfig) -> dict:
    """What each selection rule returns under the ideal model, for one prompt.

    Keys: ``mode_prob``, ``mode_kind``, ``mode_correct`` (sequence argmax ``y*``),
    ``greedy_correct``, ``greedy_is_mode`` (char-level greedy), ``ln_correct`` (argmax of
    ``log p / (len + 1)``, the +1 being EOS), ``majority_correct`` (answer with the largest
    total mass), ``sample_accuracy`` (T=1 accuracy), ``first_char_mass`` (``{char: mass}``).
    """
    dist = response_distribution(task, example, cfg)
    greedy = greedy_response(dist)
    ln_best = max(dist, key=lambda r: (math.log(r.prob) / (len(r.text) + 1), r.text))
    by_answer: dict[str | None, float] = {}
    for r in dist:
        a = task.extract_answer(r.text)
        by_answer[a] = by_answer.get(a, 0.0) + r.prob
    top = max(by_answer, key=lambda a: (by_answer[a], str(a)))
    first: dict[str, float] = {}
    for r in dist:
        first[r.text[:1]] = first.get(r.text[:1], 0.0) + r.prob
    return {
        "mode_prob": dist[0].prob,
        "mode_kind": dist[0].kind,
        "mode_correct": dist[0].correct,
        "greedy_correct": task.grade(greedy, example),
        "greedy_is_mode": greedy == dist[0].text,
        "ln_correct": ln_best.correct,
        "majority_correct": top is not None and task.grade(f"Answer: {top}", example),
        "sample_accuracy": sum(r.prob for r in dist if r.correct),
        "first_char_mass": first,
    }


def sample_responses(
    task: CorruptibleTask,
    example: Example,
    cfg: CorpusConfig,
    num_samples: int,
    *,
    seed: int,
) -> list[Response]:
    """``num_samples`` i.i.d. draws from :func:`response_distribution` (inverse CDF)."""
    check_count(num_samples, "num_samples")
    dist = response_distribution(task, example, cfg)
    cdf = list(itertools.accumulate(r.prob for r in dist))
    rng = random.Random(f"corpus/{task.name}/{seed}/{example.id}")
    return [
        dist[min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), len(dist) - 1)]
        for _ in range(num_samples)
    ]


def generate_corpus(
    task: CorruptibleTask,
    cfg: CorpusConfig,
    n: int,
    *,
    seed: int,
    exclude: Collection[str] = (),
) -> list[Document]:
    """``n`` documents: the first ``n`` prompts of ``task.examples(·, seed=seed)`` not in ``exclude``.

    Each prompt gets one response drawn from :func:`response_distribution`. Deterministic in
    ``(task, cfg, n, seed, exclude)``; document ``i`` does not depend on ``n``.

    Args:
      task: a :class:`CorruptibleTask` (arithmetic, prontoqa).
      cfg: the mixture weights.
      n: number of documents.
      seed: seeds both the prompts (as the task's example seed) and the responses.
      exclude: question texts (``Example.prompt``) to skip, e.g. the evaluation prompts, so
        train and test do not overlap.

    Raises:
      ValueError: if ``n`` is invalid or ``exclude`` leaves too few distinct prompts.
    """
    check_count(n)
    excluded = set(exclude)
    m = n + len(excluded)
    while True:
        kept = [e for e in task.examples(m, seed=seed) if e.prompt not in excluded]
        if len(kept) >= n or m > 8 * (n + len(excluded)) + 64:
            break
        m *= 2
    if len(kept) < n:
        raise ValueError(f"exclude leaves only {len(kept)} of {m} prompts; need n={n}")
    docs = []
    for ex in kept[:n]:
        (r,) = sample_responses(task, ex, cfg, 1, seed=seed)
        docs.append(Document(task.format_prompt(ex), r.text, r.kind, r.correct, ex.id))
    return docs

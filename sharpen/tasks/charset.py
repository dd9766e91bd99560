"""The fixed character alphabet of the procedural tasks, for character-level tokenizers.

Models trained from scratch use :class:`sharpen.lm.tokenizer.CharTokenizer`; build it with
``CharTokenizer(task_alphabet())`` so every prompt and response of :mod:`sharpen.tasks.arithmetic`,
:mod:`sharpen.tasks.prontoqa`, :mod:`sharpen.tasks.countdown` and :mod:`sharpen.tasks.corpus`
(at any settings) encodes. File-backed (GSM8K, MATH) and reasoning-gym text may contain other
characters (``×``, ``•``, ``£``); check them with :func:`uncovered`.
"""

from __future__ import annotations

import string

#: Newline, space, digits, lower- and upper-case ASCII letters, then ASCII punctuation (96 chars).
ALPHABET = (
    "\n " + string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation
)


def task_alphabet() -> str:
    """The alphabet, in a fixed order (the order fixes a character tokenizer's ids)."""
    return ALPHABET


def uncovered(text: str) -> set[str]:
    """Characters of ``text`` outside :func:`task_alphabet` (empty when it all encodes)."""
    return set(text) - set(ALPHABET)

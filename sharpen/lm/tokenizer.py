"""Tokenizers behind one small protocol: a character-level one for models trained from scratch.

Every tokenizer the LM stack uses (this character tokenizer, and the Hugging Face
``tokenizer.json`` / GGUF tokenizers of :mod:`sharpen.lm.hf_tokenizer`) exposes the attributes
of :class:`Tokenizer`, so samplers, tasks and experiments never care which one they hold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """What the LM stack needs from a tokenizer.

    Attributes:
      vocab_size: number of ids (the model's embedding may be larger, never smaller).
      eos_id: id that ends a response.
      pad_id: id used for padding (never attended to).
      bos_id: id prepended to every prompt, or ``None``.
    """

    vocab_size: int
    eos_id: int
    pad_id: int
    bos_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class CharTokenizer:
    """One id per character of a fixed alphabet, after three specials ``<pad>``, ``<bos>``, ``<eos>``.

    Args:
      alphabet: the characters, each once (order fixes the ids).

    Raises:
      ValueError: on an empty alphabet, repeated characters, or (in :meth:`encode`) a character
        outside the alphabet.

    >>> tok = CharTokenizer("ab")
    >>> tok.encode("ba"), tok.decode([4, 3, 2])
    ([4, 3], 'ba')
    """

    specials = ("<pad>", "<bos>", "<eos>")

    def __init__(self, alphabet: str):
        if not alphabet:
            raise ValueError("alphabet must be non-empty")
        if len(set(alphabet)) != len(alphabet):
            dupes = sorted({c for c in alphabet if alphabet.count(c) > 1})
            raise ValueError(f"alphabet has repeated characters: {dupes!r}")
        self.alphabet = alphabet
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self._ids = {c: i + len(self.specials) for i, c in enumerate(alphabet)}
        self.vocab_size = len(alphabet) + len(self.specials)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[c] for c in text]
        except KeyError as err:
            raise ValueError(
                f"text has a character outside the alphabet: {err.args[0]!r}"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; decoding stops at the first ``<eos>``, specials are dropped."""
        out = []
        offset = len(self.specials)
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= offset:
                out.append(self.alphabet[i - offset])
        return "".join(out)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "char", "alphabet": self.alphabet}))

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        data = json.loads(path.read_text())
        if data.get("type") != "char":
            raise ValueError(f"{path} is not a character tokenizer (type={data.get('type')!r})")
        return cls(data["alphabet"])

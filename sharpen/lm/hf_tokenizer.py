"""Hugging Face ``tokenizers`` behind the :class:`~sharpen.lm.tokenizer.Tokenizer` protocol.

:class:`HFTokenizer` wraps a :class:`tokenizers.Tokenizer` (the object a ``tokenizer.json``
describes) and adds what the LM stack needs on top: the ``eos`` / ``bos`` / ``pad`` ids, and
a ChatML prompt builder for instruction-tuned models such as SmolLM2-Instruct.

Two ways in:

* :func:`sharpen.lm.checkpoint.load_tokenizer` reads a Hugging Face directory
  (``tokenizer.json`` plus the optional JSON files that name the special tokens);
* :func:`tokenizer_from_gguf` rebuilds a byte-level BPE tokenizer from the
  ``tokenizer.ggml.*`` metadata of a GGUF file (``tokenizer.ggml.model == "gpt2"``), the way
  llama.cpp and ``transformers`` read it.

Conventions: :meth:`HFTokenizer.encode` adds no special tokens unless asked (prompts are
built explicitly, e.g. by :meth:`HFTokenizer.chat_prompt`); :meth:`HFTokenizer.decode` drops
special tokens. ``bos_id`` follows the protocol: the id a caller should prepend to every prompt,
``None`` for models that do not want one (SmolLM2's GGUF says ``add_bos_token = false``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, processors

# llama.cpp token types (gguf.TokenType): 3 = CONTROL (special), 4 = USER_DEFINED (added, not special).
_CONTROL, _USER_DEFINED = 3, 4

# Pre-tokenizer per ``tokenizer.ggml.pre`` (llama.cpp's ``llama_vocab_pre_type`` names). GPT-2's
# own regex is ByteLevel(use_regex=True); SmolLM splits digits one by one before it.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _gpt2_pre():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _smollm_pre():
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _gpt2_pre()])


def _split_pre(pattern: str):
    def build():
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )

    return build


GGUF_PRE_TOKENIZERS = {
    "default": _gpt2_pre,
    "gpt2": _gpt2_pre,
    "smollm": _smollm_pre,
    "llama-bpe": _split_pre(_LLAMA3_SPLIT),
    "llama3": _split_pre(_LLAMA3_SPLIT),
    "qwen2": _split_pre(_QWEN2_SPLIT),
}

_CHATML_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.DOTALL)


class HFTokenizer:
    """A :class:`tokenizers.Tokenizer` with the ids and helpers of the LM stack's protocol.

    Args:
      tokenizer: the wrapped fast tokenizer.
      eos_id: id that ends a response.
      bos_id: id to prepend to every prompt, or ``None`` when the model wants none.
      pad_id: padding id (``eos_id`` when ``None``).
      chat_template: the model's Jinja chat template, if any (only ChatML is implemented).

    Attributes:
      vocab_size: one more than the largest id the tokenizer can produce (added tokens included).

    Raises:
      ValueError: if an id is outside ``[0, vocab_size)``.
    """

    def __init__(
        self,
        tokenizer: tokenizers.Tokenizer,
        *,
        eos_id: int,
        bos_id: int | None = None,
        pad_id: int | None = None,
        chat_template: str | None = None,
    ):
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1 if vocab else 0
        self.eos_id = int(eos_id)
        self.bos_id = None if bos_id is None else int(bos_id)
        self.pad_id = self.eos_id if pad_id is None else int(pad_id)
        self.chat_template = chat_template
        for name in ("eos_id", "bos_id", "pad_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}={value} is outside the vocabulary [0, {self.vocab_size})")

    def __repr__(self) -> str:
        return (
            f"HFTokenizer(vocab_size={self.vocab_size}, eos_id={self.eos_id}, "
            f"bos_id={self.bos_id}, pad_id={self.pad_id})"
        )

    def token_to_id(self, token: str) -> int | None:
        """Id of the token spelled ``token`` (e.g. ``"<|im_end|>"``), or ``None``."""
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.tokenizer.id_to_token(int(token_id))

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Ids of ``text``; special tokens written in the text (``<|im_start|>``) stay whole.

        ``add_special_tokens=True`` runs the tokenizer's post-processor (e.g. a Llama BOS).
        """
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``ids``, special tokens dropped by default (text after an ``eos`` is kept)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def chat_prompt(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True
    ) -> str:
        """The prompt text for ``messages`` under the model's ChatML chat template.

        ChatML writes each message as ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` and ends
        with ``<|im_start|>assistant\\n`` when ``add_generation_prompt``. When the template
        inserts a default system message (SmolLM2: "You are a helpful AI assistant named
        SmolLM, ...") before a conversation that has none, so does this.

        Args:
          messages: ``[{"role": "user", "content": "..."}, ...]``.
          add_generation_prompt: end with the assistant header, ready for generation.

        Raises:
          ValueError: without a chat template, with a template that is not ChatML, or with a
            message lacking ``role`` / ``content``.
        """
        template = self.chat_template
        if template is None:
            raise ValueError("this tokenizer has no chat template (tokenizer.chat_template)")
        if "<|im_start|>" not in template or "<|im_end|>" not in template:
            raise ValueError(
                "only ChatML chat templates (<|im_start|> ... <|im_end|>) are supported; "
                f"got a template starting {template[:80]!r}"
            )
        for i, message in enumerate(messages):
            if "role" not in message or "content" not in message:
                raise ValueError(f"messages[{i}] needs 'role' and 'content', got {dict(message)!r}")
        parts = []
        default = _CHATML_DEFAULT_SYSTEM.search(template)
        if (
            default
            and "!= 'system'" in template
            and (not messages or messages[0]["role"] != "system")
        ):
            parts.append(f"<|im_start|>system\n{default.group(1)}<|im_end|>\n")
        parts += [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)

    def tokenizer_config(self) -> dict[str, Any]:
        """The ``tokenizer_config.json`` fields that reproduce this tokenizer's special ids."""
        config: dict[str, Any] = {
            "eos_token": self.id_to_token(self.eos_id),
            "pad_token": self.id_to_token(self.pad_id),
            "add_bos_token": self.bos_id is not None,
        }
        if self.bos_id is not None:
            config["bos_token"] = self.id_to_token(self.bos_id)
        if self.chat_template is not None:
            config["chat_template"] = self.chat_template
        return config

    def save(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``.

        :func:`sharpen.lm.checkpoint.load_tokenizer` reads them back.
        """
        directory = Path(directory)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "tokenizer_config.json").write_text(
            json.dumps(self.tokenizer_config(), indent=1)
        )


def tokenizer_from_gguf(fields: Mapping[str, Any]) -> HFTokenizer:
    """A byte-level BPE :class:`HFTokenizer` from GGUF ``tokenizer.*`` metadata.

    Builds ``models.BPE(vocab, merges)`` from ``tokenizer.ggml.tokens`` / ``merges``, the
    pre-tokenizer named by ``tokenizer.ggml.pre`` (see ``GGUF_PRE_TOKENIZERS``), a ByteLevel
    decoder, control tokens (``token_type == 3``) as special added tokens and user-defined
    ones (``4``) as plain added tokens, and a BOS post-processor iff
    ``tokenizer.ggml.add_bos_token``.

    Args:
      fields: metadata values by key, already decoded to Python (strings, ints, lists); see
        :func:`sharpen.lm.gguf_import.gguf_metadata`.

    Returns:
      The tokenizer, with ``eos`` / ``pad`` from ``tokenizer.ggml.{eos,padding}_token_id``,
      ``bos_id`` set only when ``add_bos_token`` is true, and ``tokenizer.chat_template``.

    Raises:
      ValueError: when ``tokenizer.ggml.model`` is not ``"gpt2"``, the pre-tokenizer type is
        unknown, or a required field is missing.
    """
    kind = fields.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ValueError(
            f"tokenizer.ggml.model={kind!r} is not supported; only 'gpt2' (byte-level BPE) is"
        )
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.eos_token_id"):
        if key not in fields:
            raise ValueError(f"GGUF metadata lacks {key}")
    pre = fields.get("tokenizer.ggml.pre", "default")
    if pre not in GGUF_PRE_TOKENIZERS:
        raise ValueError(
            f"tokenizer.ggml.pre={pre!r} is not supported; supported: {sorted(GGUF_PRE_TOKENIZERS)}"
        )
    tokens: list[str] = list(fields["tokenizer.ggml.tokens"])
    vocab = {token: i for i, token in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = GGUF_PRE_TOKENIZERS[pre]()
    tok.decoder = decoders.ByteLevel()
    types = list(fields.get("tokenizer.ggml.token_type", ()))
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t, ty in zip(tokens, types, strict=False)
            if ty == _CONTROL
        ]
    )
    tok.add_tokens(
        [
            AddedToken(t, special=False, normalized=False)
            for t, ty in zip(tokens, types, strict=False)
            if ty == _USER_DEFINED
        ]
    )
    eos_id = int(fields["tokenizer.ggml.eos_token_id"])
    bos = fields.get("tokenizer.ggml.bos_token_id")
    add_bos = bool(fields.get("tokenizer.ggml.add_bos_token", False)) and bos is not None
    if add_bos:
        bos_token = tokens[int(bos)]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos_token} $A",
            pair=f"{bos_token} $A $B",
            special_tokens=[(bos_token, int(bos))],
        )
    pad = fields.get("tokenizer.ggml.padding_token_id")
    return HFTokenizer(
        tok,
        eos_id=eos_id,
        bos_id=int(bos) if add_bos else None,
        pad_id=None if pad is None else int(pad),
        chat_template=fields.get("tokenizer.chat_template"),
    )

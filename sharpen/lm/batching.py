"""Prompt batching: strings to a LEFT-padded, bucketed ``int32`` token array.

Decoding appends new tokens on the right, so prompts are left-padded: the last column of every
row is that row's final real token and the first decode step reads the same cache slot for
every row. The model ignores padding through the key mask and counts positions over real
tokens only (:func:`sharpen.lm.model.default_positions`), so a prompt gives the same logits
however much padding it carries.

The padded length is rounded up to a multiple (``bucket``, 16 by default): batches of slightly
different prompt lengths then share one shape, hence one compiled sampler/scorer program.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sharpen.lm.config import LMConfig
from sharpen.lm.tokenizer import Tokenizer

__all__ = [
    "PromptBatch",
    "bucket_length",
    "check_prompts",
    "check_token_id",
    "check_tokenizer",
    "encode_prompts",
    "left_pad",
    "real_scalar",
]


class PromptBatch(NamedTuple):
    """A left-padded batch of prompts (host numpy arrays, ready for ``jax.jit``).

    Attributes:
      tokens: ``[B, P]`` int32 ids, ``pad_id`` in the padding on the left.
      mask: ``[B, P]`` bool, true at real tokens (a suffix of every row).
      lengths: ``[B]`` int32 real tokens per row.
    """

    tokens: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray


def bucket_length(length: int, multiple: int) -> int:
    """``length`` rounded up to a multiple of ``multiple`` (at least ``multiple``).

    >>> bucket_length(17, 16), bucket_length(16, 16), bucket_length(0, 8)
    (32, 16, 8)
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple!r}")
    return max(multiple, -(-length // multiple) * multiple)


def left_pad(
    sequences: Sequence[Sequence[int]], *, pad_id: int, bucket: int = 16, min_length: int = 0
) -> PromptBatch:
    """Left-pad token-id lists into one ``[B, P]`` array, ``P`` a multiple of ``bucket``.

    Args:
      sequences: ``B >= 1`` non-empty lists of token ids.
      pad_id: id written into the padding (never attended to).
      bucket: ``P`` is the longest sequence rounded up to a multiple of this.
      min_length: ``P`` is at least this (rounded up too).

    Returns:
      A :class:`PromptBatch`.

    Raises:
      ValueError: for an empty batch or an empty sequence (naming its index).

    >>> b = left_pad([[5, 6], [7]], pad_id=0, bucket=4)
    >>> b.tokens.tolist(), b.lengths.tolist()
    ([[0, 0, 5, 6], [0, 0, 0, 7]], [2, 1])
    """
    if len(sequences) == 0:
        raise ValueError("need at least one prompt, got an empty list")
    lengths = np.array([len(s) for s in sequences], np.int32)
    for i, n in enumerate(lengths):
        if n == 0:
            raise ValueError(
                f"prompt {i} has no tokens (add a BOS token or a non-empty text): a model "
                "needs at least one token to predict the next"
            )
    width = bucket_length(max(int(lengths.max()), min_length), bucket)
    tokens = np.full((len(sequences), width), pad_id, np.int32)
    mask = np.zeros((len(sequences), width), bool)
    for i, seq in enumerate(sequences):
        tokens[i, width - len(seq) :] = np.asarray(seq, np.int32)
        mask[i, width - len(seq) :] = True
    return PromptBatch(tokens, mask, lengths)


def check_tokenizer(tokenizer: Tokenizer, cfg: LMConfig) -> None:
    """Raise ``ValueError`` when the tokenizer has more ids than the model's vocabulary."""
    if tokenizer.vocab_size > cfg.vocab_size:
        raise ValueError(
            f"tokenizer.vocab_size={tokenizer.vocab_size} exceeds the model's "
            f"cfg.vocab_size={cfg.vocab_size}: its ids would index past the embedding"
        )


def encode_prompts(
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    *,
    cfg: LMConfig,
    add_bos: bool = True,
    bucket: int = 16,
) -> PromptBatch:
    """Encode prompt strings with ``tokenizer`` into a left-padded :class:`PromptBatch`.

    Each prompt becomes ``[bos] + tokenizer.encode(text)`` (the BOS only when ``add_bos`` and
    the tokenizer has one), left-padded with ``tokenizer.pad_id`` to the longest prompt rounded
    up to a multiple of ``bucket``.

    Args:
      tokenizer: any :class:`~sharpen.lm.tokenizer.Tokenizer`.
      prompts: ``B >= 1`` strings.
      cfg: the model's :class:`~sharpen.lm.config.LMConfig` (vocabulary and context checks).
      add_bos: prepend ``tokenizer.bos_id`` when it is not ``None``.
      bucket: padded-length multiple (shapes repeat across batches, programs are reused).

    Returns:
      A :class:`PromptBatch` of host arrays.

    Raises:
      ValueError: ``tokenizer.vocab_size > cfg.vocab_size``; a prompt longer than
        ``cfg.max_len`` (naming its index and length); an empty prompt without BOS.

    >>> from sharpen.lm.tokenizer import CharTokenizer
    >>> tok = CharTokenizer("ab")
    >>> cfg = LMConfig("gpt2", vocab_size=5, d_model=8, n_layers=1, n_heads=2, d_ff=8, max_len=32)
    >>> encode_prompts(tok, ["ab", "b"], cfg=cfg, bucket=4).tokens.tolist()
    [[0, 1, 3, 4], [0, 0, 1, 4]]
    """
    check_tokenizer(tokenizer, cfg)
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of strings, got a single string")
    bos = [tokenizer.bos_id] if add_bos and tokenizer.bos_id is not None else []
    sequences = [bos + list(tokenizer.encode(text)) for text in prompts]
    for i, seq in enumerate(sequences):
        if len(seq) > cfg.max_len:
            raise ValueError(
                f"prompt {i} is longer than the context: {len(seq)} tokens > "
                f"cfg.max_len={cfg.max_len}"
            )
    return left_pad(sequences, pad_id=tokenizer.pad_id, bucket=bucket)


def real_scalar(value, name: str) -> float:
    """``float(value)`` for a real scalar, else ``ValueError`` naming ``name``."""
    arr = np.asarray(value)
    if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a real scalar, got {value!r}")
    return float(arr)


def check_prompts(prompt_tokens_BxP, prompt_mask_BxP, cfg: LMConfig, reserve: int):
    """Validate a left-padded prompt batch; return ``(tokens int32, mask bool, lengths)`` host arrays.

    Raises ``ValueError`` for mismatched shapes, ids outside ``[0, cfg.vocab_size)``, a row
    with no real token, a mask that is not left-padding (last column false), and, for GPT-2
    (learned positions), a prompt whose length plus ``reserve`` exceeds ``cfg.max_len``.
    """
    tokens = np.asarray(prompt_tokens_BxP)
    mask = np.asarray(prompt_mask_BxP)
    if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1:
        raise ValueError(
            f"prompt_tokens_BxP must have shape [B, P] with B, P >= 1, got {tokens.shape}"
        )
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"prompt_tokens_BxP must hold integer ids, got dtype {tokens.dtype}")
    if mask.shape != tokens.shape:
        raise ValueError(
            f"prompt_mask_BxP must have the shape of prompt_tokens_BxP {tokens.shape}, got {mask.shape}"
        )
    mask = mask.astype(bool)
    if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
        raise ValueError(
            f"prompt_tokens_BxP must hold ids in [0, cfg.vocab_size={cfg.vocab_size}), got range "
            f"[{tokens.min()}, {tokens.max()}]"
        )
    lengths = mask.sum(axis=1).astype(np.int32)
    if not mask[:, -1].all():
        row = int(np.argmin(mask[:, -1]))
        raise ValueError(
            f"prompts must be left-padded (last column real): row {row} of prompt_mask_BxP ends in padding"
        )
    if cfg.arch == "gpt2" and int(lengths.max()) + reserve > cfg.max_len:
        row = int(np.argmax(lengths))
        raise ValueError(
            f"prompt {row} has {lengths[row]} tokens; with {reserve} more tokens that exceeds the "
            f"learned-position context cfg.max_len={cfg.max_len}"
        )
    return tokens.astype(np.int32), mask, lengths


def check_token_id(value, name: str, cfg: LMConfig) -> int:
    """``int(value)`` for a token id in ``[0, cfg.vocab_size)``, else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int token id, got {value!r}")
    if not 0 <= value < cfg.vocab_size:
        raise ValueError(f"{name} must be in [0, cfg.vocab_size={cfg.vocab_size}), got {value}")
    return int(value)

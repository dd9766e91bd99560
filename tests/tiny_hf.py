"""A tiny random Hugging Face Llama checkpoint and a 5-record GSM8K file, written by tests.

Shared by the LM experiment tests that exercise the real-model path (``model_dir`` /
``data_file``) without downloading anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GSM8K = [
    ("Tom has 3 apples and buys 2 more. How many apples?", "3+2=5\n#### 5"),
    ("A box holds 4 pens. How many pens in 2 boxes?", "4*2=8\n#### 8"),
    ("Sam had 9 cards and lost 4. How many are left?", "9-4=5\n#### 5"),
    ("Ann reads 6 pages a day. How many pages in 3 days?", "6*3=18\n#### 18"),
    ("There are 7 birds and 5 fly away. How many stay?", "7-5=2\n#### 2"),
]


def write_gsm8k(path: Path) -> Path:
    """Write :data:`GSM8K` as a GSM8K-format JSONL file (record 0 is the 1-shot demonstration)."""
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in GSM8K))
    return path


def tiny_llama(directory: Path) -> Path:
    """A random 2-layer Llama saved with save_pretrained + a character-level tokenizer.json."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    chars = sorted(set("".join(q + a for q, a in GSM8K) + "QA:Answer #\n"))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(r"[\s\S]"), behavior="isolated"
    )
    tok.decoder = tokenizers.decoders.Fuse()
    directory.mkdir()
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": "</s>", "bos_token": "<s>", "add_bos_token": True})
    )
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(directory)
    return directory

"""The small-LM stack: transformer, checkpoints, tokenizers, sampler, scorer, training, sharding.

Everything takes a params pytree and a static :class:`LMConfig`, never a module object:

* :mod:`sharpen.lm.model` — GPT-2 / Llama / Qwen2 decoder (:func:`forward`, :func:`forward_cached`).
* :mod:`sharpen.lm.checkpoint`, :mod:`sharpen.lm.gguf_import` — local HF safetensors and GGUF files.
* :mod:`sharpen.lm.sampler` — one jitted prefill + KV-cached decode program; returns base log-probs.
* :mod:`sharpen.lm.chunked` — sampling many prompts in fixed-shape chunks split over all devices.
* :mod:`sharpen.lm.scorer` — sequence log-prob, entropy, self-certainty in one forward pass.
* :mod:`sharpen.lm.beam`, :mod:`sharpen.lm.ar_adapter` — beam search; an LM as an ``ARModel``.
* :mod:`sharpen.lm.train`, :mod:`sharpen.lm.sharding` — optax training (full or LoRA), meshes.
"""

from sharpen.lm.batching import PromptBatch, encode_prompts
from sharpen.lm.beam import BeamOutput, beam_search
from sharpen.lm.checkpoint import check_vocab, config_from_hf, load_hf_checkpoint, load_tokenizer
from sharpen.lm.config import LMConfig
from sharpen.lm.gguf_import import load_gguf, load_smollm2, smollm2_gguf_path
from sharpen.lm.hf_tokenizer import HFTokenizer, tokenizer_from_gguf
from sharpen.lm.model import (
    KVCache,
    cast_params,
    default_positions,
    forward,
    forward_cached,
    init_cache,
    init_params,
    param_count,
)
from sharpen.lm.sampler import SampleOutput, generate, sample_texts
from sharpen.lm.scorer import ScoreOutput, score
from sharpen.lm.tokenizer import CharTokenizer, Tokenizer

__all__ = [
    "BeamOutput",
    "CharTokenizer",
    "HFTokenizer",
    "KVCache",
    "LMConfig",
    "PromptBatch",
    "SampleOutput",
    "ScoreOutput",
    "Tokenizer",
    "beam_search",
    "cast_params",
    "check_vocab",
    "config_from_hf",
    "default_positions",
    "encode_prompts",
    "forward",
    "forward_cached",
    "generate",
    "init_cache",
    "init_params",
    "load_gguf",
    "load_hf_checkpoint",
    "load_smollm2",
    "load_tokenizer",
    "param_count",
    "sample_texts",
    "score",
    "smollm2_gguf_path",
    "tokenizer_from_gguf",
]

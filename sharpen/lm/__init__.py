"""The small-LM stack: transformer, checkpoints, tokenizers, sampler, scorer, training."""

from sharpen.lm.config import LMConfig
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

__all__ = [
    "KVCache",
    "LMConfig",
    "cast_params",
    "default_positions",
    "forward",
    "forward_cached",
    "init_cache",
    "init_params",
    "param_count",
]

"""Hyper-parameters of the decoder-only transformer (GPT-2 and Llama/Qwen2 families).

One frozen, hashable dataclass describes every model the LM stack runs, so it can be a static
argument of ``jax.jit``. The architecture family decides the block's parts:

=========================  ===========================  ==============================
part                       ``arch="gpt2"``              ``arch="llama"`` (also Qwen2)
=========================  ===========================  ==============================
positions                  learned table ``[T, D]``     RoPE (``rope_theta``)
normalization              LayerNorm (scale + bias)     RMSNorm (scale)
MLP                        GELU (tanh approx.), bias    SwiGLU, no bias
attention projections      biases on q, k, v, o         bias on q, k, v iff ``qkv_bias``
key/value heads            ``n_heads``                  ``n_kv_heads`` (grouped-query)
output head                tied to the embedding        tied or untied (``tie_embeddings``)
=========================  ===========================  ==============================

Qwen2 is the Llama family with ``qkv_bias=True`` (and usually ``rope_theta=1e6``).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

ARCHS = ("gpt2", "llama")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Shape and family of a decoder-only transformer.

    Attributes:
      arch: ``"gpt2"`` or ``"llama"`` (Llama, Mistral-style and Qwen2 checkpoints).
      vocab_size: number of token ids ``V``.
      d_model: residual width ``D``.
      n_layers: number of transformer blocks.
      n_heads: query heads ``H``; ``head_dim`` defaults to ``D // H``.
      d_ff: hidden width of the MLP.
      max_len: longest sequence (prompt + response) the model accepts; the size of GPT-2's
        position table and the default KV-cache length.
      n_kv_heads: key/value heads for grouped-query attention (``H`` when ``None``).
      head_dim: per-head width (``D // H`` when ``None``).
      norm_eps: epsilon of LayerNorm / RMSNorm.
      rope_theta: RoPE base (Llama family only).
      qkv_bias: biases on the q, k, v projections (Llama family; GPT-2 always has them).
      tie_embeddings: output head is the transposed embedding (always true for GPT-2).
      dtype: compute dtype, ``"float32"`` or ``"bfloat16"``; logits and softmaxes stay float32.
      param_dtype: storage dtype of the parameters.
      remat: rematerialize each block in the backward pass (saves activation memory).
    """

    arch: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_len: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    qkv_bias: bool = False
    tie_embeddings: bool = True
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        for field in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_len"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        kv = self.kv_heads
        if kv < 1 or self.n_heads % kv:
            raise ValueError(
                f"n_kv_heads must divide n_heads={self.n_heads}, got n_kv_heads={self.n_kv_heads}"
            )
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                "when head_dim is not given"
            )
        if self.arch == "llama" and self.dim_per_head % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {self.dim_per_head}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps}")
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta must be positive, got {self.rope_theta}")
        for field in ("dtype", "param_dtype"):
            if getattr(self, field) not in DTYPES:
                raise ValueError(
                    f"{field} must be one of {tuple(DTYPES)}, got {getattr(self, field)!r}"
                )
        if self.arch == "gpt2" and not self.tie_embeddings:
            raise ValueError(
                "GPT-2 ties its output head to the embedding: tie_embeddings must be True"
            )

    @property
    def kv_heads(self) -> int:
        """Key/value heads (``n_heads`` without grouped-query attention)."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def dim_per_head(self) -> int:
        """Per-head width."""
        return self.d_model // self.n_heads if self.head_dim is None else self.head_dim

    @property
    def compute_dtype(self):
        return DTYPES[self.dtype]

    @property
    def storage_dtype(self):
        return DTYPES[self.param_dtype]

    def replace(self, **changes) -> LMConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> LMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown LMConfig fields: {unknown}")
        return cls(**fields)

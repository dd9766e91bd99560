"""Sampling many prompts in fixed-shape chunks, each split over every device.

One :func:`~sharpen.lm.sampler.generate` call over hundreds of prompts would hold the KV cache of
all ``B * N`` rows at once; :func:`generate_chunked` bounds that by ``rows`` and keeps one compiled
program: every chunk has the same number of prompts (the last one padded by repeating its final
prompt, whose outputs are dropped) and the same padded width, and its rows are split along the
``"data"`` axis of a :func:`~sharpen.lm.sharding.make_mesh` mesh with the parameters replicated.
The LM experiments (``lm_inference``, ``lm_sft``, ``lm_rlhf``) sample through it.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh

from sharpen._checks import check_static_int
from sharpen.lm import sampler, sharding
from sharpen.lm.config import LMConfig

__all__ = ["chunk_ranges", "chunk_size", "generate_chunked"]


def chunk_ranges(n: int, size: int) -> list[range]:
    """Consecutive index ranges of at most ``size`` covering ``range(n)``.

    >>> chunk_ranges(5, 2)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def chunk_size(num_prompts: int, num_samples: int, rows: int, devices: int) -> int:
    """Prompts per chunk: ``min(max(1, rows // num_samples), num_prompts)`` rounded up to a
    multiple of ``devices`` (so ``chunk x num_samples <= rows`` unless one prompt exceeds it).

    >>> chunk_size(100, 16, 512, 1), chunk_size(100, 16, 512, 3), chunk_size(5, 64, 32, 2)
    (32, 33, 2)
    """
    chunk = min(max(1, rows // num_samples), num_prompts)
    return -(-chunk // devices) * devices


def generate_chunked(
    params,
    prompt_tokens_BxP: jax.typing.ArrayLike,
    prompt_mask_BxP: jax.typing.ArrayLike,
    *,
    cfg: LMConfig,
    key: jax.Array | None,
    num_samples: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    rows: int,
    greedy: bool = False,
    stats: bool = False,
    mesh: Mesh | None = None,
) -> sampler.SampleOutput:
    """:func:`~sharpen.lm.sampler.generate` at ``T = 1`` over ``B`` prompts in chunks of
    :func:`chunk_size` prompts, chunk ``c`` with key ``fold_in(key, c)``.

    Because the chunk shape is fixed, the draws of a prompt depend only on ``key``, its chunk
    index and its row within the chunk: identical on 1 or many devices whenever the chunk size
    (a multiple of the device count) is the same.

    Args:
      params: model parameters (replicated over ``mesh`` here).
      prompt_tokens_BxP: ``[B, P]`` left-padded prompt ids (pad once, to the longest prompt).
      prompt_mask_BxP: ``[B, P]`` bool, true at real tokens.
      cfg: the model's config.
      key: PRNG key (may be ``None`` when ``greedy``).
      num_samples: ``N >= 1`` samples per prompt.
      max_new_tokens: ``M >= 1``.
      eos_id, pad_id: as in :func:`~sharpen.lm.sampler.generate`.
      rows: bound on ``prompts x N`` rows per call (``>= 1``).
      greedy: argmax decoding.
      stats: also return per-response mean entropy and self-certainty.
      mesh: the device mesh (default :func:`~sharpen.lm.sharding.make_mesh`: every device).

    Returns:
      A :class:`~sharpen.lm.sampler.SampleOutput` of host numpy arrays: ``[B, N, M]`` tokens
      and log-probs, ``[B, N]`` lengths, finished flags (and entropy / self-certainty).

    Raises:
      ValueError: for ``rows < 1``, a missing ``key`` when not ``greedy``, and whatever
        :func:`~sharpen.lm.sampler.generate` rejects.
    """
    rows = check_static_int(rows, "rows")
    num_samples = check_static_int(num_samples, "num_samples")
    if key is None and not greedy:
        raise ValueError("key is required unless greedy=True")
    tokens, mask = np.asarray(prompt_tokens_BxP), np.asarray(prompt_mask_BxP)
    mesh = sharding.make_mesh() if mesh is None else mesh
    b = tokens.shape[0]
    chunk = chunk_size(b, num_samples, rows, mesh.shape["data"])
    params = sharding.shard_params(params, mesh)
    outs = []
    for c, start in enumerate(range(0, b, chunk)):
        idx = np.minimum(np.arange(start, start + chunk), b - 1)  # repeat the last prompt
        out = sampler.generate(
            params,
            tokens[idx],
            mask[idx],
            cfg=cfg,
            key=None if greedy else jax.random.fold_in(key, c),
            num_samples=num_samples,
            max_new_tokens=max_new_tokens,
            eos_id=eos_id,
            pad_id=pad_id,
            greedy=greedy,
            stats=stats,
            mesh=mesh,
        )
        keep = min(chunk, b - start)
        outs.append([None if x is None else np.asarray(x)[:keep] for x in out])
    return sampler.SampleOutput(
        *(None if parts[0] is None else np.concatenate(parts) for parts in zip(*outs, strict=True))
    )

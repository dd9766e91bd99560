"""Score given responses under the base model: the self-rewards of sharpening, in one pass.

For a prompt ``x`` and a response ``y = (y_1, ..., y_n)`` (``n`` = its length, ``<= M``),
one forward pass over the concatenation ``(x, y)`` gives every next-token distribution
``p_t = pi(. | x, y_{<t})`` and from it

.. math::

    \\log\\pi(y \\mid x) = \\sum_{t=1}^{n} \\log p_t(y_t) \\quad \\text{(Eq. 2, sum\\_logprob)},
    \\qquad \\frac1n \\sum_t \\log p_t(y_t) \\quad \\text{(mean\\_logprob, App. A.2)},

    \\mathrm{entropy} = \\frac1n \\sum_t H(p_t), \\qquad
    \\mathrm{self\\_certainty} = \\frac1n \\sum_t \\mathrm{KL}(U_V \\,\\|\\, p_t)
      = \\frac1n \\sum_t \\Big(-\\log V - \\frac1V \\sum_v \\log p_t(v)\\Big),

with ``V = cfg.vocab_size`` (the model's whole output distribution). Prompt tokens are never
scored. Self-certainty follows Kang et al. (2025), "Scalable best-of-N selection for LLMs via
self-certainty".
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen.lm.batching import check_prompts
from sharpen.lm.config import LMConfig
from sharpen.lm.model import (
    default_positions,
    hidden_states,
    output_logits,
)
from sharpen.lm.sampler import repeat_rows

__all__ = ["ScoreOutput", "score"]


class ScoreOutput(NamedTuple):
    """Per-response scores from :func:`score` (``S`` = response batch shape, ``[B]`` or ``[B, N]``).

    Attributes:
      sum_logprob: ``S`` float32 ``log pi(y | x)``.
      mean_logprob: ``S`` ``sum_logprob / n`` (0 for an empty response).
      token_logprobs: ``S + [M]`` per-token ``log pi(y_t | x, y_<t)``, 0 beyond the length.
      entropy: ``S`` mean per-token entropy (nats) of the next-token distribution (NaN when
        scored with ``stats=False``).
      self_certainty: ``S`` mean per-token ``KL(Uniform_V || p_t)`` (0 for an empty response;
        NaN when scored with ``stats=False``).
    """

    sum_logprob: jax.Array
    mean_logprob: jax.Array
    token_logprobs: jax.Array
    entropy: jax.Array
    self_certainty: jax.Array


@functools.partial(jax.jit, static_argnames=("cfg", "num_samples", "stats"))
def _score_jit(
    params, prompt_BxP, mask_BxP, response_RxM, lengths_R, *, cfg, num_samples, stats=True
):
    plen, m = prompt_BxP.shape[1], response_RxM.shape[1]
    resp_mask_RxM = jnp.arange(m, dtype=jnp.int32)[None, :] < lengths_R[:, None]
    tokens_RxL = jnp.concatenate([repeat_rows(prompt_BxP, num_samples), response_RxM], axis=1)
    mask_RxL = jnp.concatenate([repeat_rows(mask_BxP, num_samples), resp_mask_RxM], axis=1)
    h_RxLxD = hidden_states(
        params,
        tokens_RxL,
        cfg=cfg,
        key_mask_BxL=mask_RxL,
        positions_BxL=default_positions(mask_RxL),
        unroll=True,
    )
    # Position P - 1 + t predicts response token t; the head runs on those positions only.
    logits_RxMxV = output_logits(params, h_RxLxD[:, plen - 1 : plen - 1 + m], cfg=cfg)
    lse_RxM = jax.nn.logsumexp(logits_RxMxV, axis=-1)
    target_RxM = jnp.take_along_axis(logits_RxMxV, response_RxM[:, :, None], axis=-1)[:, :, 0]
    tok_RxM = jnp.where(resp_mask_RxM, target_RxM - lse_RxM, 0.0)
    denom_R = jnp.maximum(lengths_R, 1).astype(jnp.float32)
    total_R = jnp.sum(tok_RxM, axis=-1)
    if not stats:
        nan_R = jnp.full(total_R.shape, jnp.nan, jnp.float32)
        return ScoreOutput(total_R, total_R / denom_R, tok_RxM, nan_R, nan_R)
    logp_RxMxV = logits_RxMxV - lse_RxM[:, :, None]
    entropy_RxM = -jnp.sum(jnp.exp(logp_RxMxV) * logp_RxMxV, axis=-1)
    vocab = logp_RxMxV.shape[-1]
    certainty_RxM = -jnp.log(jnp.float32(vocab)) - jnp.mean(logp_RxMxV, axis=-1)

    def mean(x_RxM):
        return jnp.sum(jnp.where(resp_mask_RxM, x_RxM, 0.0), axis=-1) / denom_R

    return ScoreOutput(total_R, total_R / denom_R, tok_RxM, mean(entropy_RxM), mean(certainty_RxM))


def score(
    params: dict,
    prompt_tokens: jax.typing.ArrayLike,
    prompt_mask: jax.typing.ArrayLike,
    response_tokens: jax.typing.ArrayLike,
    response_lengths: jax.typing.ArrayLike,
    *,
    cfg: LMConfig,
    stats: bool = True,
) -> ScoreOutput:
    """Base-model log-likelihood, entropy and self-certainty of responses, in one forward pass.

    The batch ``[prompt (left-padded) | response (right-padded)]`` runs through one jitted
    forward pass (:func:`~sharpen.lm.model.hidden_states`, layers unrolled) with a key mask
    that hides both paddings; positions count real tokens, so the scores equal those of the
    unpadded sequence (and the sampler's ``base_logprobs``). The output head runs on the ``M``
    response positions only. With ``N`` responses per prompt the prompt rows are repeated
    ``N`` times (row ``b * N + n``), as in :func:`~sharpen.lm.sampler.generate`.

    Args:
      params: model parameters.
      prompt_tokens: ``[B, P]`` int ids, left-padded.
      prompt_mask: ``[B, P]`` bool, true at real prompt tokens.
      response_tokens: ``[B, M]`` or ``[B, N, M]`` int ids; entries at ``t >= length`` ignored.
      response_lengths: ``[B]`` or ``[B, N]`` ints in ``[0, M]`` (count the EOS if scored).
      cfg: the model's :class:`~sharpen.lm.config.LMConfig` (static).
      stats: also compute ``entropy`` and ``self_certainty`` (two more passes over the
        ``[B, M, V]`` log-probs). With ``False`` only the log-probs are computed and those two
        fields are NaN.

    Returns:
      A :class:`ScoreOutput`; leading shape that of ``response_lengths``.

    Raises:
      ValueError: on mismatched shapes, ids outside the vocabulary, lengths outside
        ``[0, M]``, or (GPT-2) prompt + response longer than ``cfg.max_len``.

    References:
      Huang et al., ICLR 2025, Eq. 2 and App. A.2; Kang et al. 2025 (self-certainty).
    """
    response = np.asarray(response_tokens)
    lengths = np.asarray(response_lengths)
    if response.ndim not in (2, 3):
        raise ValueError(f"response_tokens must be [B, M] or [B, N, M], got shape {response.shape}")
    if response.shape[-1] < 1:
        raise ValueError(f"response_tokens must have M >= 1 columns, got shape {response.shape}")
    if not np.issubdtype(response.dtype, np.integer):
        raise ValueError(f"response_tokens must hold integer ids, got dtype {response.dtype}")
    if lengths.shape != response.shape[:-1] or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(
            f"response_lengths must be integers of shape {response.shape[:-1]}, got "
            f"{lengths.dtype} {lengths.shape}"
        )
    m = response.shape[-1]
    if lengths.min() < 0 or lengths.max() > m:
        raise ValueError(
            f"response_lengths must lie in [0, {m}], got range [{lengths.min()}, {lengths.max()}]"
        )
    if response.min() < 0 or response.max() >= cfg.vocab_size:
        raise ValueError(
            f"response_tokens must hold ids in [0, cfg.vocab_size={cfg.vocab_size}), got range "
            f"[{response.min()}, {response.max()}]"
        )
    tokens, mask, _ = check_prompts(prompt_tokens, prompt_mask, cfg, int(lengths.max()))
    if response.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"response_tokens has {response.shape[0]} prompts, prompt_tokens has {tokens.shape[0]}"
        )
    lead = lengths.shape
    num_samples = response.shape[1] if response.ndim == 3 else 1
    out = _score_jit(
        params,
        tokens,
        mask,
        response.reshape(-1, m).astype(np.int32),
        lengths.reshape(-1).astype(np.int32),
        cfg=cfg,
        num_samples=num_samples,
        stats=stats,
    )
    return ScoreOutput(
        out.sum_logprob.reshape(lead),
        out.mean_logprob.reshape(lead),
        out.token_logprobs.reshape((*lead, m)),
        out.entropy.reshape(lead),
        out.self_certainty.reshape(lead),
    )

"""An LM with a fixed prompt as an :class:`~sharpen.autoregressive.ARModel` over responses.

The exact tools of the theory side (:func:`sharpen.mode_finder.find_modes`,
:func:`sharpen.autoregressive.enumerate_sequences`, :mod:`sharpen.decoding`) work on any model
exposed as ``next_logprobs(params, prefix_BxH, t_B) -> [B, V]`` over a horizon ``H``. This
module gives that view of a transformer conditioned on one prompt ``x``:

.. math::

    \\pi_t(v \\mid y_{<t}) = \\begin{cases}
      \\mathrm{softmax}(\\mathrm{LM}(x, y_{<t}))_v & \\text{no EOS in } y_{<t},\\\\
      \\mathbb 1[v = \\mathrm{pad}] & \\text{otherwise (EOS is absorbing),}
    \\end{cases}

so a response shorter than ``H`` is the length-``H`` sequence ``y, EOS, pad, ..., pad`` with the
same probability, and ``pi`` stays a distribution over ``V^H``. Each query is one full forward
pass over ``[x, prefix]`` (no cache: the mode finder asks for arbitrary prefixes in any order),
which is fine for the small models and horizons exact search is meant for.

``next_logprobs`` is a frozen dataclass holding only static data (``cfg``, ``eos_id``,
``pad_id``); the prompt and weights live in ``params``, so two adapters of the same model share
one compiled program whatever their prompts (for the same prompt length).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sharpen._checks import check_static_int
from sharpen.autoregressive import ARModel
from sharpen.lm.batching import check_token_id
from sharpen.lm.config import LMConfig
from sharpen.lm.model import forward

__all__ = ["LMNextLogprobs", "lm_ar_model"]


@dataclasses.dataclass(frozen=True)
class LMNextLogprobs:
    """``next_logprobs`` of an LM behind a prompt held in ``params["prompt"]``.

    Attributes:
      cfg: the model's :class:`~sharpen.lm.config.LMConfig`.
      eos_id: id that ends a response (absorbing), or ``None`` for no EOS handling.
      pad_id: the only continuation after EOS (log-prob 0).
    """

    cfg: LMConfig
    eos_id: int | None = None
    pad_id: int = 0

    def __call__(self, params, prefix_BxH, t_B):
        """``[B, V]`` float32 ``log pi(y_t = v | x, prefix[b, :t[b]])`` (see module docstring)."""
        prompt_P = params["prompt"]
        batch, horizon = prefix_BxH.shape
        plen = prompt_P.shape[0]
        tokens_BxL = jnp.concatenate(
            [jnp.broadcast_to(prompt_P[None, :], (batch, plen)), prefix_BxH.astype(jnp.int32)],
            axis=1,
        )
        # Causal attention: positions >= plen + t never reach the logits read below.
        logits_BxLxV = forward(params["lm"], tokens_BxL, cfg=self.cfg)
        row_B = plen - 1 + t_B.astype(jnp.int32)
        logits_BxV = jnp.take_along_axis(logits_BxLxV, row_B[:, None, None], axis=1)[:, 0]
        logp_BxV = jax.nn.log_softmax(logits_BxV, axis=-1)
        if self.eos_id is None:
            return logp_BxV
        before_BxH = jnp.arange(horizon, dtype=jnp.int32)[None, :] < t_B[:, None]
        ended_B = jnp.any((prefix_BxH == self.eos_id) & before_BxH, axis=1)
        absorbed_V = jnp.where(jnp.arange(self.cfg.vocab_size) == self.pad_id, 0.0, -jnp.inf)
        return jnp.where(ended_B[:, None], absorbed_V[None, :].astype(logp_BxV.dtype), logp_BxV)


def lm_ar_model(
    params: dict,
    prompt_tokens,
    *,
    cfg: LMConfig,
    horizon: int,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> ARModel:
    """Wrap an LM and one prompt as an :class:`~sharpen.autoregressive.ARModel` of horizon ``H``.

    Args:
      params: model parameters.
      prompt_tokens: ``[P]`` int ids of the prompt (unpadded, ``P >= 1``; include the BOS).
      cfg: the model's :class:`~sharpen.lm.config.LMConfig`.
      horizon: ``H >= 1``, the response length searched over.
      eos_id: absorbing end-of-sequence id, or ``None`` (every position free).
      pad_id: continuation after EOS.

    Returns:
      ``ARModel(LMNextLogprobs(cfg, eos_id, pad_id), {"lm": params, "prompt": prompt},
      cfg.vocab_size, horizon)``.

    Raises:
      ValueError: empty or out-of-vocabulary prompt, bad ids or horizon, or (GPT-2)
        ``P + H > cfg.max_len``.

    Example:
      >>> import jax
      >>> from sharpen.mode_finder import find_modes
      >>> cfg = LMConfig("gpt2", vocab_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=8, max_len=8)
      >>> from sharpen.lm.model import init_params
      >>> m = lm_ar_model(init_params(cfg, key=jax.random.key(0)), [1], cfg=cfg, horizon=2)
      >>> find_modes(m).sequences.shape
      (1, 2)
    """
    horizon = check_static_int(horizon, "horizon")
    prompt = np.asarray(prompt_tokens)
    if prompt.ndim != 1 or prompt.size == 0 or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt_tokens must be a non-empty 1-D int sequence, got {prompt!r}")
    if prompt.min() < 0 or prompt.max() >= cfg.vocab_size:
        raise ValueError(
            f"prompt_tokens must hold ids in [0, cfg.vocab_size={cfg.vocab_size}), got range "
            f"[{prompt.min()}, {prompt.max()}]"
        )
    if cfg.arch == "gpt2" and prompt.size + horizon > cfg.max_len:
        raise ValueError(
            f"prompt length {prompt.size} + horizon {horizon} exceeds the learned-position "
            f"context cfg.max_len={cfg.max_len}"
        )
    eos = None if eos_id is None else check_token_id(eos_id, "eos_id", cfg)
    pad = check_token_id(pad_id, "pad_id", cfg)
    next_logprobs = LMNextLogprobs(cfg, eos, pad)
    model_params = {"lm": params, "prompt": jnp.asarray(prompt, jnp.int32)}
    return ARModel(next_logprobs, model_params, cfg.vocab_size, horizon)

"""Inference-time power sampling: Metropolis–Hastings over suffixes for :math:`\\pi_{\\rm base}^\\alpha`.

Target (sequence level, over the sampler's response space: responses ending in EOS within
``M`` tokens, or truncated at ``M`` tokens)

.. math::  p_\\alpha(y\\mid x) = \\frac{\\pi_{\\rm base}(y\\mid x)^\\alpha}{Z_\\alpha(x)},

which for :math:`\\alpha = 1+1/\\beta` is the maximizer :math:`\\pi^\\star_\\beta` of the
RLHF-Sharpening objective (Eq. 3; THEORY §3.5 and §6, "Reasoning with Sampling", Karan & Du).

**Proposal.** From the current response :math:`y` of length :math:`n=|y|\\ge1` (EOS counted),
draw a cut :math:`t\\sim\\mathrm{Unif}\\{0,\\dots,n-1\\}`, keep the prefix :math:`y_{<t}` and draw a
fresh suffix :math:`s\\sim\\pi_{\\rm base}(\\cdot\\mid x, y_{<t})` of at most :math:`M-t` tokens
(ending at EOS or truncated), giving :math:`y'=y_{<t}s`. For this cut the proposal density is
:math:`q_t(y'\\mid y)=\\pi_{\\rm base}(y'_{\\ge t}\\mid x,y_{<t})` and the cut is chosen with
probability :math:`1/n(y)`.

**Acceptance.** Treat the cut as part of the move: the reverse of :math:`(y,t)\\to y'` is
:math:`(y',t)\\to y` (same cut; valid because :math:`y'` keeps :math:`y_{<t}` and has at least
one more token, so :math:`t<n(y')`). Detailed balance of each cut-component,
:math:`p_\\alpha(y)\\frac1{n(y)}q_t(y'|y)A_t(y,y')=p_\\alpha(y')\\frac1{n(y')}q_t(y|y')A_t(y',y)`,
holds with

.. math::  A_t(y,y') = \\min\\Big\\{1,\\ \\frac{\\pi_{\\rm base}(y')^\\alpha\\,
           \\tfrac1{n(y')}\\,\\pi_{\\rm base}(y_{\\ge t}\\mid x,y_{<t})}
           {\\pi_{\\rm base}(y)^\\alpha\\,\\tfrac1{n(y)}\\,\\pi_{\\rm base}(y'_{\\ge t}\\mid x,y_{<t})}\\Big\\}
           = \\min\\Big\\{1,\\ \\Big(\\frac{\\pi_{\\rm base}(y'_{\\ge t}\\mid x,y_{<t})}
           {\\pi_{\\rm base}(y_{\\ge t}\\mid x,y_{<t})}\\Big)^{\\alpha-1}\\frac{n(y)}{n(y')}\\Big\\},

because :math:`\\pi_{\\rm base}(y)=\\pi_{\\rm base}(y_{<t})\\,\\pi_{\\rm base}(y_{\\ge t}|x,y_{<t})` and
the shared prefix factor cancels. Summing the components over :math:`t` gives a reversible
kernel, so :math:`p_\\alpha` is stationary; with :math:`t=0` (a full base redraw, an independence
sampler) possible from every state and :math:`\\pi_{\\rm base}>0` on the support, the chain is
irreducible and aperiodic and converges to :math:`p_\\alpha`. At :math:`\\alpha=1` the ratio is
only the length term :math:`n(y)/n(y')`: the chain leaves :math:`\\pi_{\\rm base}` invariant.

Everything runs batched: ``R`` independent chains (``B`` prompts x ``C`` chains), one jitted
program per MH step (the sampler's prefill + KV-cache decode inside), suffix draws from
:func:`sharpen.lm.sampler.generate`'s kernel at temperature 1. Per-token base log-probs of the
current responses are carried in the state, so the ratio needs no extra forward pass.

| function | returns |
|---|---|
| ``init_chains(params, prompt, mask, *, cfg, key, num_chains, max_new_tokens, eos_id, pad_id)`` | :class:`ChainState` (base draws) |
| ``mh_step(params, prompt, mask, state, *, cfg, key, alpha, eos_id, pad_id)`` | ``(ChainState, MHInfo)`` |
| ``power_sample(params, prompt, mask, *, cfg, key, alpha, num_chains, num_steps, ...)`` | :class:`PowerSamples` |
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen._checks import check_static_int
from sharpen.lm import sampler
from sharpen.lm.batching import bucket_length, check_prompts, check_token_id
from sharpen.lm.config import LMConfig

__all__ = ["ChainState", "MHInfo", "PowerSamples", "init_chains", "mh_step", "power_sample"]


class ChainState(NamedTuple):
    """``R`` chains (row ``b * C + c`` = chain ``c`` of prompt ``b``).

    Attributes:
      tokens: int32 ``[R, M]`` current responses, ``pad_id`` after the length.
      lengths: int32 ``[R]`` response lengths in ``[1, M]`` (EOS counted).
      token_logprobs: float32 ``[R, M]`` base ``log pi(y_t | x, y_<t)``, 0 past the length.
      finished: bool ``[R]``, the response ends in EOS (else truncated at ``M``).
    """

    tokens: jax.Array
    lengths: jax.Array
    token_logprobs: jax.Array
    finished: jax.Array


class MHInfo(NamedTuple):
    """Per-step diagnostics: ``accepted`` bool ``[R]``, ``cut`` int32 ``[R]``, and
    ``suffix_tokens`` int32 ``[R]`` (tokens of the proposed suffix: the decode cost)."""

    accepted: jax.Array
    cut: jax.Array
    suffix_tokens: jax.Array


class PowerSamples(NamedTuple):
    """What :func:`power_sample` returns.

    Attributes:
      state: final :class:`ChainState` reshaped to ``[B, C, ...]`` (fields as there).
      acceptance: float ``[num_steps]`` mean acceptance rate per step.
      decode_tokens: int ``[B, C]`` tokens generated per chain (initial draw + all suffixes).
      history: ``[K, B, C, M]`` tokens and ``[K, B, C]`` lengths after each of the last
        ``K = keep_last`` steps (``None`` when ``keep_last = 0``).
    """

    state: ChainState
    acceptance: np.ndarray
    decode_tokens: np.ndarray
    history: tuple | None


def _shifted_prefixes(prompt_RxP, mask_RxP, tokens_RxM, cut_R):
    """``[R, P + M]`` left-padded prompts ``x + y_<t``: real tokens right-aligned."""
    width = prompt_RxP.shape[1] + tokens_RxM.shape[1]
    m = tokens_RxM.shape[1]
    both_RxW = jnp.concatenate([prompt_RxP, tokens_RxM], axis=1)
    keep_RxW = jnp.concatenate(
        [mask_RxP, jnp.arange(m, dtype=jnp.int32)[None, :] < cut_R[:, None]], axis=1
    )
    # Column j of the result is column j - (M - t) of [x | y]: y_<t ends at the last column.
    src_RxW = jnp.arange(width, dtype=jnp.int32)[None, :] - (m - cut_R)[:, None]
    inside_RxW = src_RxW >= 0
    src_RxW = jnp.clip(src_RxW, 0, width - 1)
    tokens = jnp.take_along_axis(both_RxW, src_RxW, axis=1)
    mask = jnp.take_along_axis(keep_RxW, src_RxW, axis=1) & inside_RxW
    return jnp.where(mask, tokens, 0), mask


def _splice(prefix_RxM, suffix_RxM, cut_R):
    """``y_<t`` followed by ``s``: column ``j >= t`` reads ``s[j - t]``."""
    m = prefix_RxM.shape[1]
    col_M = jnp.arange(m, dtype=jnp.int32)
    src_RxM = jnp.clip(col_M[None, :] - cut_R[:, None], 0, m - 1)
    from_suffix = jnp.take_along_axis(suffix_RxM, src_RxM, axis=1)
    return jnp.where(col_M[None, :] < cut_R[:, None], prefix_RxM, from_suffix)


@functools.partial(jax.jit, static_argnames=("cfg", "cache_len"))
def _mh_step_jit(params, prompt_RxP, mask_RxP, state: ChainState, key, alpha, eos_id, pad_id, *,
                 cfg, cache_len):  # fmt: skip
    rows, m = state.tokens.shape
    key_cut, key_gen, key_acc = jax.random.split(key, 3)
    u_R = jax.random.uniform(key_cut, (rows,), jnp.float32)
    cut_R = jnp.minimum(
        jnp.floor(u_R * state.lengths.astype(jnp.float32)).astype(jnp.int32), state.lengths - 1
    )
    pre_RxW, pre_mask_RxW = _shifted_prefixes(prompt_RxP, mask_RxP, state.tokens, cut_R)
    out = sampler._generate_jit(
        params, pre_RxW, pre_mask_RxW, key_gen, jnp.float32(1.0), jnp.float32(1.0), eos_id,
        pad_id, cfg=cfg, num_samples=1, max_new_tokens=m, greedy=False, top_k=None,
        use_top_p=False, cache_len=cache_len,
    )  # fmt: skip
    # Only the first M - t suffix tokens fit; a suffix cut there is a truncated response.
    budget_R = m - cut_R
    col_M = jnp.arange(m, dtype=jnp.int32)
    suf_len_R = jnp.minimum(out.lengths[:, 0], budget_R)
    suf_keep_RxM = col_M[None, :] < suf_len_R[:, None]
    suf_tok_RxM = jnp.where(suf_keep_RxM, out.tokens[:, 0], pad_id)
    suf_lp_RxM = jnp.where(suf_keep_RxM, out.base_logprobs[:, 0], 0.0)
    finished_R = out.finished[:, 0] & (out.lengths[:, 0] <= budget_R)
    new_tokens = _splice(state.tokens, suf_tok_RxM, cut_R)
    new_lp = _splice(state.token_logprobs, suf_lp_RxM, cut_R)
    new_len_R = cut_R + suf_len_R
    new_tokens = jnp.where(col_M[None, :] < new_len_R[:, None], new_tokens, pad_id)
    new_lp = jnp.where(col_M[None, :] < new_len_R[:, None], new_lp, 0.0)
    # log A = (alpha - 1) [log pi(y'_>=t | .) - log pi(y_>=t | .)] + log n(y) - log n(y').
    tail_RxM = col_M[None, :] >= cut_R[:, None]
    old_tail_R = jnp.sum(jnp.where(tail_RxM, state.token_logprobs, 0.0), axis=1)
    new_tail_R = jnp.sum(suf_lp_RxM, axis=1)
    log_ratio_R = (alpha - 1.0) * (new_tail_R - old_tail_R) + (
        jnp.log(state.lengths.astype(jnp.float32)) - jnp.log(new_len_R.astype(jnp.float32))
    )
    log_u_R = jnp.log(jax.random.uniform(key_acc, (rows,), jnp.float32))
    accept_R = log_u_R < log_ratio_R
    pick = lambda a, b: jnp.where(  # noqa: E731
        accept_R.reshape((rows,) + (1,) * (a.ndim - 1)), a, b
    )
    new_state = ChainState(
        pick(new_tokens, state.tokens),
        pick(new_len_R, state.lengths),
        pick(new_lp, state.token_logprobs),
        pick(finished_R, state.finished),
    )
    return new_state, MHInfo(accept_R, cut_R, suf_len_R)


def _prepare(params, prompt_BxP, mask_BxP, cfg, num_chains, max_new_tokens):
    tokens, mask, _ = check_prompts(prompt_BxP, mask_BxP, cfg, 2 * max_new_tokens)
    rows_p = sampler.repeat_rows(jnp.asarray(tokens), num_chains)
    rows_m = sampler.repeat_rows(jnp.asarray(mask), num_chains)
    cache_len = bucket_length(tokens.shape[1] + 2 * max_new_tokens, sampler.CACHE_MULTIPLE)
    return rows_p, rows_m, cache_len


def init_chains(
    params: dict,
    prompt_BxP,
    prompt_mask_BxP,
    *,
    cfg: LMConfig,
    key: jax.Array,
    num_chains: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
) -> ChainState:
    """``C`` independent base draws per prompt as the chains' starting points (``[B*C]`` rows)."""
    out = sampler.generate(
        params, prompt_BxP, prompt_mask_BxP, cfg=cfg, key=key, num_samples=num_chains,
        max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip
    rows = out.tokens.shape[0] * num_chains
    return ChainState(
        out.tokens.reshape(rows, -1),
        out.lengths.reshape(rows),
        out.base_logprobs.reshape(rows, -1),
        out.finished.reshape(rows),
    )


def mh_step(
    params: dict,
    prompt_BxP,
    prompt_mask_BxP,
    state: ChainState,
    *,
    cfg: LMConfig,
    key: jax.Array,
    alpha: float,
    eos_id: int,
    pad_id: int,
) -> tuple[ChainState, MHInfo]:
    """One Metropolis–Hastings suffix move of every chain (module docstring for the math).

    Args:
      params: the base model :math:`\\pi_{\\rm base}` (target and proposal).
      prompt_BxP, prompt_mask_BxP: left-padded prompts; chain row ``b * C + c`` uses prompt ``b``.
      state: ``R = B * C`` chains (from :func:`init_chains`).
      cfg: model config (static).
      key: PRNG key of this step.
      alpha: power :math:`\\alpha > 0` (traced: changing it does not recompile).
      eos_id, pad_id: as in the sampler.

    Returns:
      ``(new_state, MHInfo)``.
    """
    rows, m = state.tokens.shape
    num_chains = rows // np.asarray(prompt_BxP).shape[0]
    rows_p, rows_m, cache_len = _prepare(params, prompt_BxP, prompt_mask_BxP, cfg, num_chains, m)
    return _mh_step_jit(
        params, rows_p, rows_m, state, key, jnp.float32(alpha),
        np.int32(check_token_id(eos_id, "eos_id", cfg)),
        np.int32(check_token_id(pad_id, "pad_id", cfg)), cfg=cfg, cache_len=cache_len,
    )  # fmt: skip


def power_sample(
    params: dict,
    prompt_BxP,
    prompt_mask_BxP,
    *,
    cfg: LMConfig,
    key: jax.Array,
    alpha: float,
    num_chains: int,
    num_steps: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    keep_last: int = 0,
) -> PowerSamples:
    """Run ``C`` MH chains per prompt for ``num_steps`` suffix moves targeting :math:`\\pi_{\\rm base}^\\alpha`.

    Chains start from base draws (:func:`init_chains`, key ``fold_in(key, 0)``); step ``k``
    uses ``fold_in(key, k + 1)``. Every step is one jitted program (compiled once per shape).

    Args:
      params: base model parameters.
      prompt_BxP, prompt_mask_BxP: ``B`` left-padded prompts.
      cfg: model config.
      key: PRNG key.
      alpha: power (``alpha = 1 + 1/beta`` gives :math:`\\pi^\\star_\\beta` of Eq. 3).
      num_chains: ``C >= 1`` chains per prompt.
      num_steps: MH steps ``>= 0``.
      max_new_tokens: ``M``, the response horizon.
      eos_id, pad_id: as in the sampler.
      keep_last: also return the states after each of the last ``keep_last`` steps.

    Returns:
      :class:`PowerSamples`.

    References:
      Huang et al. (2025) Eq. 3 closed form (THEORY §3.5, §6); Karan & Du (2025), "Reasoning with
      Sampling"; Metropolis et al. (1953), Hastings (1970).
    """
    num_chains = check_static_int(num_chains, "num_chains")
    max_new_tokens = check_static_int(max_new_tokens, "max_new_tokens")
    if num_steps < 0 or not 0 <= keep_last <= num_steps:
        raise ValueError(f"need num_steps >= 0 and 0 <= keep_last <= num_steps, got {num_steps}, "
                         f"{keep_last}")  # fmt: skip
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    batch = np.asarray(prompt_BxP).shape[0]
    rows_p, rows_m, cache_len = _prepare(
        params, prompt_BxP, prompt_mask_BxP, cfg, num_chains, max_new_tokens
    )
    state = init_chains(
        params, prompt_BxP, prompt_mask_BxP, cfg=cfg, key=jax.random.fold_in(key, 0),
        num_chains=num_chains, max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip
    eos = np.int32(check_token_id(eos_id, "eos_id", cfg))
    pad = np.int32(check_token_id(pad_id, "pad_id", cfg))
    decode = state.lengths
    acc, hist = [], []
    for k in range(num_steps):
        state, info = _mh_step_jit(
            params, rows_p, rows_m, state, jax.random.fold_in(key, k + 1), jnp.float32(alpha),
            eos, pad, cfg=cfg, cache_len=cache_len,
        )  # fmt: skip
        decode = decode + info.suffix_tokens
        acc.append(jnp.mean(info.accepted.astype(jnp.float32)))
        if k >= num_steps - keep_last:
            hist.append((state.tokens, state.lengths))

    def lead(x):
        return x.reshape((batch, num_chains, *x.shape[1:]))

    history = None
    if keep_last:
        history = (
            np.stack([np.asarray(lead(t)) for t, _ in hist]),
            np.stack([np.asarray(lead(n)) for _, n in hist]),
        )
    acceptance = np.asarray(jnp.stack(acc)) if acc else np.zeros((0,), np.float32)
    return PowerSamples(
        ChainState(*(lead(x) for x in state)), acceptance, np.asarray(lead(decode)), history
    )

"""RLHF-Sharpening for language models: Eq. 8, self-labelled DPO and online XPO (Algorithm 1).

The tabular / linear-softmax versions live in :mod:`sharpen.rlhf` and :mod:`sharpen.xpo`; this
module runs the same objectives on a transformer given as a params pytree and a static
:class:`~sharpen.lm.config.LMConfig`. Everything is a function of **sequence log-probabilities**

.. math::  \\log\\pi_\\theta(y\\mid x) = \\sum_{t=1}^{|y|}\\log\\pi_\\theta(y_t\\mid x, y_{<t})
           \\qquad (\\text{Eq. 2; EOS counted when emitted}),

computed in one forward pass over ``[prompt (left-padded) | response (right-padded)]`` with
:func:`sharpen.lm.train.target_logprobs` (positions count real tokens, so padding is exact).
The self-reward is :math:`r_{\\rm self}=\\log\\pi_{\\rm base}` (Eq. 2) of the **frozen** base.

| function | returns |
|---|---|
| ``sequence_logprobs(params, batch, *, cfg)`` | [B] :math:`\\log\\pi(y|x)` of a :class:`Responses` batch |
| ``pairs_from_samples(prompt, mask, tokens, lengths, base_logprobs)`` | :class:`Pairs` from ``[B, 2, M]`` draws |
| ``eq8_lm_loss(params, pairs, hyper, *, cfg)`` | (mean Eq. 8 loss, aux) |
| ``dpo_lm_loss(params, pairs, hyper, *, cfg)`` | (mean self-labelled DPO loss, aux) |
| ``xpo_lm_loss(params, pairs, hyper, *, cfg)`` | (Alg. 1 objective with the plus sign, aux) |
| ``sft_lm_loss(params, batch, hyper, *, cfg)`` | (token NLL of BoN winners, aux) |
| ``policy_step`` / ``lora_policy_step`` | one jitted optimizer step of any loss above |
| ``xpo_init`` / ``xpo_round`` | online XPO (Algorithm 1 adapted to LMs), ``(init, update)`` |

The pair losses take a ``hyper`` dict of traced scalars (``beta``, and for XPO ``alpha`` and
``loss_weight``), so sweeping them never recompiles.

References:
  Huang et al., "Self-Improvement in Language Models: The Sharpening Mechanism", ICLR 2025:
  Eq. 3 (objective), Eq. 8 (estimator), Algorithm 1 (XPO, App. J.2; plus sign per THEORY §8
  item 1); Rafailov et al. 2023 (DPO); Xie et al. 2024 (XPO).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sharpen.lm import sampler
from sharpen.lm.config import LMConfig
from sharpen.lm.train import LoraState, TrainState, lora_merge, target_logprobs
from sharpen.rlhf import dpo_margin_loss, eq8_residual

__all__ = [
    "Pairs",
    "Responses",
    "XPOState",
    "dpo_lm_loss",
    "eq8_lm_loss",
    "lora_policy_step",
    "pairs_from_samples",
    "policy_step",
    "sequence_logprobs",
    "sft_lm_loss",
    "xpo_init",
    "xpo_lm_loss",
    "xpo_round",
]


class Responses(NamedTuple):
    """One response per row: ``B`` left-padded prompts and right-padded responses.

    Attributes:
      prompt: int32 ``[B, P]`` prompt ids, left-padded.
      prompt_mask: bool ``[B, P]``, true at real prompt tokens.
      tokens: int32 ``[B, M]`` response ids (anything after ``lengths``).
      lengths: int32 ``[B]`` response lengths in ``[0, M]`` (EOS counted when emitted).
    """

    prompt: jax.Array
    prompt_mask: jax.Array
    tokens: jax.Array
    lengths: jax.Array


class Pairs(NamedTuple):
    """Self-labelled pairs ``(x, y, y')`` with the frozen base's sequence log-probs.

    Attributes:
      y: :class:`Responses` of the first responses (``[B, ...]``).
      y_prime: :class:`Responses` of the second responses (same prompts).
      base_y: float32 ``[B]`` :math:`\\log\\pi_{\\rm base}(y|x)` (also the self-reward).
      base_y_prime: float32 ``[B]`` :math:`\\log\\pi_{\\rm base}(y'|x)`.
    """

    y: Responses
    y_prime: Responses
    base_y: jax.Array
    base_y_prime: jax.Array


def _concat(a: Responses, b: Responses) -> Responses:
    return Responses(*(jnp.concatenate([u, v], axis=0) for u, v in zip(a, b, strict=True)))


def sequence_logprobs(params: dict, batch: Responses, *, cfg: LMConfig) -> jax.Array:
    """Sequence log-probabilities of the responses (Eq. 2), differentiable in ``params``.

    .. math::  \\log\\pi_\\theta(y_b\\mid x_b) = \\sum_{t<n_b}
               \\log\\pi_\\theta(y_{b,t}\\mid x_b, y_{b,<t}).

    One forward pass of ``[prompt | response]`` (``[B, P + M]``) with a key mask hiding both
    paddings; row ``b``'s response token ``t`` is predicted at column ``P - 1 + t``. Equals
    :func:`sharpen.lm.scorer.score`'s ``sum_logprob`` and the sampler's summed
    ``base_logprobs``.

    Args:
      params: model parameters (full tree; merge LoRA adapters first).
      batch: :class:`Responses` with ``[B, P]`` prompts and ``[B, M]`` responses.
      cfg: the model's config (static under jit).

    Returns:
      float32 ``[B]``; 0 for an empty response.

    References:
      Huang et al. (2025), Eq. 2 (self-reward ``log pi_base(y|x)``).
    """
    plen, m = batch.prompt.shape[1], batch.tokens.shape[1]
    resp_mask_BxM = jnp.arange(m, dtype=jnp.int32)[None, :] < batch.lengths[:, None]
    tokens_BxL = jnp.concatenate([batch.prompt, batch.tokens.astype(jnp.int32)], axis=1)
    mask_BxL = jnp.concatenate([batch.prompt_mask, resp_mask_BxM], axis=1)
    logp_BxLm1 = target_logprobs(params, tokens_BxL, cfg=cfg, key_mask_BxL=mask_BxL)
    logp_BxM = logp_BxLm1[:, plen - 1 : plen - 1 + m]
    return jnp.sum(jnp.where(resp_mask_BxM, logp_BxM, 0.0), axis=-1)


def pairs_from_samples(
    prompt_BxP, prompt_mask_BxP, tokens_Bx2xM, lengths_Bx2, base_logprobs_Bx2xM
) -> Pairs:
    """Pairs from two base samples per prompt (``sampler.generate(..., num_samples=2)``).

    The sampler's ``base_logprobs`` of a base-model draw are the base's per-token log-probs,
    so their sums are :math:`\\log\\pi_{\\rm base}(y|x)` and :math:`\\log\\pi_{\\rm base}(y'|x)`.

    Args:
      prompt_BxP, prompt_mask_BxP: the left-padded prompts.
      tokens_Bx2xM: int ``[B, 2, M]`` responses.
      lengths_Bx2: int ``[B, 2]`` lengths.
      base_logprobs_Bx2xM: float ``[B, 2, M]`` per-token base log-probs (0 past the length).

    Returns:
      :class:`Pairs` with ``y = tokens[:, 0]`` and ``y' = tokens[:, 1]``.
    """
    tokens = jnp.asarray(tokens_Bx2xM, jnp.int32)
    if tokens.ndim != 3 or tokens.shape[1] != 2:
        raise ValueError(f"tokens must be [B, 2, M], got shape {tokens.shape}")
    lengths = jnp.asarray(lengths_Bx2, jnp.int32)
    base_Bx2 = jnp.sum(jnp.asarray(base_logprobs_Bx2xM, jnp.float32), axis=-1)
    prompt = jnp.asarray(prompt_BxP, jnp.int32)
    mask = jnp.asarray(prompt_mask_BxP, bool)

    def side(j):
        return Responses(prompt, mask, tokens[:, j], lengths[:, j])

    return Pairs(side(0), side(1), base_Bx2[:, 0], base_Bx2[:, 1])


def _pair_logprobs(params, pairs: Pairs, cfg: LMConfig):
    """``(log pi(y|x), log pi(y'|x))`` in one forward pass over the ``2B`` rows."""
    both_2B = sequence_logprobs(params, _concat(pairs.y, pairs.y_prime), cfg=cfg)
    half = pairs.base_y.shape[0]
    return both_2B[:half], both_2B[half:]


def _weights(pairs: Pairs, weights_B):
    if weights_B is None:
        return jnp.ones_like(pairs.base_y)
    return weights_B.astype(pairs.base_y.dtype)


def _mean(x_B, w_B):
    return jnp.sum(x_B * w_B) / jnp.maximum(jnp.sum(w_B), 1.0)


def eq8_lm_loss(params: dict, pairs: Pairs, hyper: dict, *, cfg: LMConfig, weights_B=None):
    """Mean RLHF-Sharpening squared loss (Eq. 8) of an LM policy on self-labelled pairs.

    .. math::  \\hat L(\\theta) = \\frac1B\\sum_b\\Big(\\beta\\log\\frac{\\pi_\\theta(y_b|x_b)}
               {\\pi_{\\rm base}(y_b|x_b)} - \\beta\\log\\frac{\\pi_\\theta(y'_b|x_b)}
               {\\pi_{\\rm base}(y'_b|x_b)} - \\big(\\log\\pi_{\\rm base}(y_b|x_b)
               - \\log\\pi_{\\rm base}(y'_b|x_b)\\big)\\Big)^2 \\qquad (8)

    Per pair it is exactly :func:`sharpen.rlhf.eq8_loss` of the four sequence log-probs. It is
    zero at any policy with :math:`\\log\\pi_\\theta(y|x)-\\log\\pi_{\\rm base}(y|x)
    =\\beta^{-1}\\log\\pi_{\\rm base}(y|x)+c(x)`, e.g. :math:`\\pi^\\star_\\beta\\propto
    \\pi_{\\rm base}^{1+1/\\beta}` (Eq. 3's maximizer).

    Args:
      params: policy parameters.
      pairs: :class:`Pairs` (``B`` pairs; ``y, y' ~ pi_base`` for the offline estimator).
      hyper: ``{"beta": scalar > 0}`` (traced).
      cfg: model config (static).
      weights_B: optional ``[B]`` 0/1 weights (padding of a fixed-size buffer).

    Returns:
      ``(scalar loss, {"logp_y": [B], "logp_y_prime": [B]})``.

    References:
      Huang et al. (2025), Eq. 4 / Eq. 8; THEORY §3.5.
    """
    lp_y, lp_yp = _pair_logprobs(params, pairs, cfg)
    res = eq8_residual(lp_y, lp_yp, pairs.base_y, pairs.base_y_prime, hyper["beta"])
    loss = _mean(jnp.square(res), _weights(pairs, weights_B))
    return loss, {"logp_y": lp_y, "logp_y_prime": lp_yp}


def dpo_lm_loss(params: dict, pairs: Pairs, hyper: dict, *, cfg: LMConfig, weights_B=None):
    """Mean logistic DPO loss with preferences labelled by the self-reward ``log pi_base``.

    .. math::  \\hat L(\\theta) = \\frac1B\\sum_b -\\log\\sigma\\Big(\\beta\\log
               \\frac{\\pi_\\theta(y^w_b|x_b)}{\\pi_{\\rm base}(y^w_b|x_b)}-\\beta\\log
               \\frac{\\pi_\\theta(y^l_b|x_b)}{\\pi_{\\rm base}(y^l_b|x_b)}\\Big),

    winner :math:`y^w` = the response of the pair with the larger
    :math:`\\log\\pi_{\\rm base}`; ties get the symmetric average (see
    :func:`sharpen.rlhf.dpo_logistic_loss`, which this equals per pair).

    Args / Returns: as :func:`eq8_lm_loss` (``hyper = {"beta": ...}``).

    References:
      Rafailov et al. (2023); Huang et al. (2025) §2.2 (Eq. 4 is its regression variant).
    """
    lp_y, lp_yp = _pair_logprobs(params, pairs, cfg)
    per = dpo_margin_loss(lp_y, lp_yp, pairs.base_y, pairs.base_y_prime, hyper["beta"])
    return _mean(per, _weights(pairs, weights_B)), {"logp_y": lp_y, "logp_y_prime": lp_yp}


def xpo_lm_loss(params: dict, pairs: Pairs, hyper: dict, *, cfg: LMConfig, weights_B=None):
    """Algorithm 1's objective (reward-based XPO), **plus** sign on the squared loss.

    .. math::  \\hat L^{(t)}(\\theta) = \\frac1{|\\mathcal D|}\\sum_{(x,y,\\tilde y)\\in\\mathcal D}
               \\Big[\\alpha\\log\\pi_\\theta(\\tilde y|x) + w\\,\\ell_{\\rm Eq.8}(\\theta;x,y,\\tilde y)\\Big],

    ``y ~ pi^(t)`` (on-policy), ``y~ ~ pi_base``: exactly the per-pair term
    ``alpha * lp_yp + loss_weight * sq`` of :func:`sharpen.xpo.xpo` divided by the number of
    pairs. Minimizing :math:`\\alpha\\log\\pi(\\tilde y|x)` over base samples pushes mass away
    from what the base already produces (global optimism, THEORY §3.6; sign per §8 item 1).

    Args:
      params, pairs, cfg, weights_B: as :func:`eq8_lm_loss`; ``pairs.y`` on-policy,
        ``pairs.y_prime`` from the base.
      hyper: ``{"beta", "alpha", "loss_weight"}`` traced scalars (``alpha >= 0``, ``w > 0``).

    Returns:
      ``(scalar objective, {"logp_y", "logp_y_prime", "eq8": mean squared loss})``.

    References:
      Huang et al. (2025), Algorithm 1 and proof of Thm J.1; Xie et al. (2024), XPO.
    """
    lp_y, lp_yp = _pair_logprobs(params, pairs, cfg)
    sq = jnp.square(eq8_residual(lp_y, lp_yp, pairs.base_y, pairs.base_y_prime, hyper["beta"]))
    w = _weights(pairs, weights_B)
    per = hyper["alpha"] * lp_yp + hyper["loss_weight"] * sq
    return _mean(per, w), {"logp_y": lp_y, "logp_y_prime": lp_yp, "eq8": _mean(sq, w)}


def sft_lm_loss(params: dict, batch: Responses, hyper: dict, *, cfg: LMConfig, weights_B=None):
    """Token-level NLL of the responses (SFT-Sharpening on best-of-N winners, §2.1).

    .. math::  \\hat L(\\theta) = -\\frac{\\sum_b\\log\\pi_\\theta(y_b|x_b)}{\\sum_b |y_b|}.

    ``hyper`` is unused (kept for the common loss signature of :func:`policy_step`).

    Returns:
      ``(scalar loss, {"logp_y": [B]})``.

    References:
      Huang et al. (2025), §2.1 (SFT-Sharpening), EXPERIMENTS §10.4.
    """
    del hyper
    lp = sequence_logprobs(params, batch, cfg=cfg)
    w = jnp.ones_like(lp) if weights_B is None else weights_B.astype(lp.dtype)
    tokens = jnp.sum(batch.lengths.astype(lp.dtype) * w)
    return -jnp.sum(lp * w) / jnp.maximum(tokens, 1.0), {"logp_y": lp}


LossFn = Callable[..., tuple[jax.Array, dict]]


def _apply(optimizer, grads, opt_state, params):
    # optax mixes Python floats with the int32 step count; the suite runs strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state


@functools.partial(jax.jit, static_argnames=("loss_fn", "cfg", "optimizer"))
def policy_step(
    state: TrainState,
    batch,
    hyper: dict,
    weights_B=None,
    *,
    loss_fn: LossFn,
    cfg: LMConfig,
    optimizer: optax.GradientTransformation,
) -> tuple[TrainState, dict]:
    """One optimizer step of ``loss_fn`` on all parameters (full fine-tuning).

    Args:
      state: :class:`~sharpen.lm.train.TrainState`.
      batch: :class:`Pairs` (pair losses) or :class:`Responses` (:func:`sft_lm_loss`).
      hyper: dict of traced scalars for ``loss_fn``.
      weights_B: optional ``[B]`` row weights.
      loss_fn: one of this module's losses (static; a module-level function).
      cfg: model config (static).
      optimizer: e.g. :func:`sharpen.lm.train.make_optimizer` (static, hashed by identity).

    Returns:
      ``(new_state, {"loss": loss before the step, "grad_norm": ..., **aux})``.
    """

    def objective(params):
        return loss_fn(params, batch, hyper, cfg=cfg, weights_B=weights_B)

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    params, opt_state = _apply(optimizer, grads, state.opt_state, state.params)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}
    return TrainState(params, opt_state, state.step + 1), metrics


@functools.partial(jax.jit, static_argnames=("loss_fn", "cfg", "optimizer", "lora_alpha"))
def lora_policy_step(
    state: LoraState,
    batch,
    hyper: dict,
    weights_B=None,
    *,
    loss_fn: LossFn,
    cfg: LMConfig,
    optimizer: optax.GradientTransformation,
    lora_alpha: float,
) -> tuple[LoraState, dict]:
    """:func:`policy_step` on LoRA adapters only (the base kernels stay frozen).

    The policy is :math:`W + (\\alpha_{\\rm LoRA}/r)AB` (:func:`sharpen.lm.train.lora_merge`);
    the frozen reference :math:`\\pi_{\\rm base}` enters only through the precomputed
    ``pairs.base_y`` / ``base_y_prime``.
    """

    def objective(adapters):
        params = lora_merge(state.base, adapters, alpha=lora_alpha)
        return loss_fn(params, batch, hyper, cfg=cfg, weights_B=weights_B)

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(state.adapters)
    adapters, opt_state = _apply(optimizer, grads, state.opt_state, state.adapters)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}
    return LoraState(state.base, adapters, opt_state, state.step + 1), metrics


# ----------------------------------------------------------------------------- online XPO


class XPOState(NamedTuple):
    """State of online XPO: the policy's train state and a fixed-capacity pair buffer.

    Attributes:
      train: :class:`~sharpen.lm.train.TrainState` of the policy :math:`\\pi^{(t)}`.
      data: :class:`Pairs` buffer of capacity ``C`` (rows ``>= num_pairs`` are padding).
      num_pairs: int32 scalar, pairs collected so far (:math:`|\\mathcal D^{(t)}|`).
      round: int32 scalar, rounds done.
    """

    train: TrainState
    data: Pairs
    num_pairs: jax.Array
    round: jax.Array


def xpo_init(train: TrainState, *, capacity: int, prompt_len: int, max_new_tokens: int) -> XPOState:
    """An empty buffer of ``capacity`` pairs (``[C, P]`` prompts, ``[C, M]`` responses).

    The fixed buffer keeps every shape constant across rounds, so rounds never recompile.
    """

    def empty():
        return Responses(
            jnp.zeros((capacity, prompt_len), jnp.int32),
            jnp.ones((capacity, prompt_len), bool),
            jnp.zeros((capacity, max_new_tokens), jnp.int32),
            jnp.zeros((capacity,), jnp.int32),
        )

    zeros = jnp.zeros((capacity,), jnp.float32)
    return XPOState(train, Pairs(empty(), empty(), zeros, zeros), jnp.int32(0), jnp.int32(0))


@functools.partial(jax.jit, static_argnames=("cfg",))
def _base_scores(base_params, batch: Responses, *, cfg):
    return sequence_logprobs(base_params, batch, cfg=cfg)


@jax.jit
def _append(data: Pairs, new: Pairs, start):
    def put(buf, x):
        return jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), start, axis=0)

    return jax.tree.map(put, data, new)


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _minibatch(data: Pairs, num_pairs, key, *, batch_size: int) -> Pairs:
    idx_B = jax.random.randint(key, (batch_size,), 0, jnp.maximum(num_pairs, 1))
    return jax.tree.map(lambda x: jnp.take(x, idx_B, axis=0), data)


def xpo_round(
    state: XPOState,
    base_params: dict,
    prompt_BxP,
    prompt_mask_BxP,
    *,
    key: jax.Array,
    cfg: LMConfig,
    optimizer: optax.GradientTransformation,
    hyper: dict,
    steps: int,
    batch_size: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
) -> tuple[XPOState, dict]:
    """One round of Algorithm 1 (reward-based XPO) for an LM, on a batch of ``B`` prompts.

    .. code-block:: text

        y_b ~ pi^(t)(.|x_b),  y~_b ~ pi_base(.|x_b)           (one jitted sampler call each)
        D^(t) = D^(t-1) + {(x_b, y_b, y~_b)}                  (base-scored: log pi_base(y_b|x_b))
        pi^(t+1) <- `steps` AdamW steps on xpo_lm_loss over minibatches drawn from D^(t)

    The exact argmin of Algorithm 1 is replaced by ``steps`` optimizer steps warm-started at
    :math:`\\pi^{(t)}` (one AdamW state across rounds); each step uses ``batch_size`` pairs drawn
    uniformly (with replacement) from the ``|D^(t)|`` collected so far, an unbiased estimate of
    the average objective of :func:`xpo_lm_loss`. Budget per round: ``2B`` responses plus the
    ``B`` base scorings of the on-policy responses (generalized oracle, THEORY §1.5).

    Args:
      state: from :func:`xpo_init` (capacity ``>= (rounds) * B``) or a previous round.
      base_params: frozen :math:`\\pi_{\\rm base}`.
      prompt_BxP, prompt_mask_BxP: this round's left-padded prompts (``P`` = buffer width).
      key: PRNG key of this round (e.g. ``fold_in(key, t)``).
      cfg, optimizer: model config and optimizer (static).
      hyper: ``{"beta", "alpha", "loss_weight"}``.
      steps, batch_size: optimizer steps per round and pairs per step.
      max_new_tokens, eos_id, pad_id: sampling settings (``M`` = buffer width).

    Returns:
      ``(new_state, {"loss": [steps] objective before each step, "eq8": [steps],
      "decode_tokens": tokens generated this round})``.

    Raises:
      ValueError: when the buffer cannot hold this round's pairs.

    References:
      Huang et al. (2025), Algorithm 1 (App. J.2), THEORY §3.6 and §8 items 1–2.
    """
    capacity = state.data.base_y.shape[0]
    start = int(state.num_pairs)
    batch = prompt_BxP.shape[0]
    if start + batch > capacity:
        raise ValueError(f"XPO buffer holds {capacity} pairs; round needs {start + batch}")
    key_pol, key_base, key_mb = jax.random.split(key, 3)
    common = {
        "cfg": cfg,
        "num_samples": 1,
        "max_new_tokens": max_new_tokens,
        "eos_id": eos_id,
        "pad_id": pad_id,
    }
    on = sampler.generate(state.train.params, prompt_BxP, prompt_mask_BxP, key=key_pol, **common)
    off = sampler.generate(base_params, prompt_BxP, prompt_mask_BxP, key=key_base, **common)
    prompt = jnp.asarray(prompt_BxP, jnp.int32)
    mask = jnp.asarray(prompt_mask_BxP, bool)
    y = Responses(prompt, mask, on.tokens[:, 0], on.lengths[:, 0])
    yp = Responses(prompt, mask, off.tokens[:, 0], off.lengths[:, 0])
    new = Pairs(
        y, yp, _base_scores(base_params, y, cfg=cfg), jnp.sum(off.base_logprobs[:, 0], axis=-1)
    )
    data = _append(state.data, new, jnp.int32(start))
    num_pairs = jnp.int32(start + batch)
    train, losses, eq8s = state.train, [], []
    for s in range(steps):
        mb = _minibatch(data, num_pairs, jax.random.fold_in(key_mb, s), batch_size=batch_size)
        train, metrics = policy_step(
            train, mb, hyper, loss_fn=xpo_lm_loss, cfg=cfg, optimizer=optimizer
        )
        losses.append(metrics["loss"])
        eq8s.append(metrics["eq8"])
    decode = int(np.asarray(on.lengths).sum() + np.asarray(off.lengths).sum())
    info = {
        "loss": np.asarray(jnp.stack(losses)) if losses else np.zeros((0,), np.float32),
        "eq8": np.asarray(jnp.stack(eq8s)) if eq8s else np.zeros((0,), np.float32),
        "decode_tokens": decode,
    }
    return XPOState(train, data, num_pairs, state.round + 1), info

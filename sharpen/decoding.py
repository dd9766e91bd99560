"""Token-level decoding of an :class:`~sharpen.autoregressive.ARModel`.

Greedy decoding (THEORY §3.2, Prop 3.1), beam search, ancestral sampling at a temperature, and
inference-time best-of-N by sequence log-likelihood (App. C). Every decoder is one jitted
``lax.scan`` over positions ``t = 0..H-1`` whose step makes one batched ``next_logprobs`` call
on ``B`` independent rows; ``params`` is a ``jit`` argument and ``next_logprobs`` a static one.

Prop 3.1: if the sequence argmax ``y*`` is unique with ``pi(y*) > 1/2``, greedy returns ``y*``
(every conditional along the argmax path is ``>= pi(y*) > 1/2``). Below 1/2 greedy, beam search
and low-temperature sampling are heuristics that can miss ``y*`` (S2 tightness instance).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sharpen import _checks
from sharpen.autoregressive import ARModel, _check_tokens
from sharpen.sampling import _cdf, _inverse_cdf


def _greedy_impl(next_logprobs, params, prefix_BxH, start_B, key):
    batch = prefix_BxH.shape[0]

    def step(tokens_BxH, t):
        logp_BxV = next_logprobs(params, tokens_BxH, jnp.full((batch,), t, jnp.int32))
        if key is None:
            choice_B = jnp.argmax(logp_BxV, axis=1).astype(jnp.int32)  # lowest index on ties
        else:
            tied_BxV = logp_BxV >= jnp.max(logp_BxV, axis=1, keepdims=True)
            u_BxV = jax.random.uniform(jax.random.fold_in(key, t), logp_BxV.shape)
            choice_B = jnp.argmax(jnp.where(tied_BxV, u_BxV, -1.0), axis=1).astype(jnp.int32)
        old_B = jax.lax.dynamic_index_in_dim(tokens_BxH, t, axis=1, keepdims=False)
        new_B = jnp.where(t >= start_B, choice_B, old_B)
        return jax.lax.dynamic_update_index_in_dim(tokens_BxH, new_B, t, axis=1), None

    tokens_BxH, _ = jax.lax.scan(step, prefix_BxH, jnp.arange(prefix_BxH.shape[1], dtype=jnp.int32))
    return tokens_BxH


_greedy_jit = jax.jit(_greedy_impl, static_argnums=0)


def greedy_continue(
    model: ARModel,
    prefix_BxH: jax.typing.ArrayLike,
    start_B: jax.typing.ArrayLike,
    *,
    key: jax.Array | None = None,
) -> jax.Array:
    """Batched greedy completion: row ``b`` keeps ``prefix[b, :start[b]]`` and decodes the rest.

    .. math::  \\hat y_t = \\arg\\max_{v} \\pi_t(v \\mid \\hat y_{<t}), \\quad t \\ge start_b.

    Ties are broken by the lowest token index (``jnp.argmax``) when ``key`` is None, and
    uniformly at random among exactly tied tokens otherwise.

    Args:
      model: an :class:`~sharpen.autoregressive.ARModel`.
      prefix_BxH: [B, H] int token ids; entries at positions ``>= start[b]`` are ignored.
      start_B: [B] int first position to decode, in ``[0, H]``.
      key: optional PRNG key for random tie-breaking.

    Returns:
      [B, H] int32 completed sequences.
    """
    prefix = _check_tokens(model, prefix_BxH, "prefix_BxH")
    start = jnp.asarray(start_B)
    if start.shape != (prefix.shape[0],) or not jnp.issubdtype(start.dtype, jnp.integer):
        raise ValueError(f"start_B must be an int array of shape [{prefix.shape[0]}], got {start}")
    return _greedy_jit(model.next_logprobs, model.params, prefix, start.astype(jnp.int32), key)


def greedy(model: ARModel) -> jax.Array:
    """Greedy decoding (THEORY §3.2), ties broken by the lowest token index.

    Returns ``y*`` whenever the sequence argmax is unique with mass ``> 1/2`` (Prop 3.1).

    Args:
      model: an :class:`~sharpen.autoregressive.ARModel`.

    Returns:
      [H] int32 tokens.

    References:
      Huang et al. (ICLR 2025), Prop 3.1.

    Example:
      >>> import jax.numpy as jnp
      >>> from sharpen.autoregressive import tabular_ar_from_table
      >>> p = jnp.array([[0.6, 0.4], [0.5, 0.5], [0.0, 1.0]])
      >>> greedy(tabular_ar_from_table(jnp.log(p), vocab_size=2, horizon=2)).tolist()
      [0, 0]
    """
    zeros_1xH = jnp.zeros((1, model.horizon), jnp.int32)
    return greedy_continue(model, zeros_1xH, jnp.zeros((1,), jnp.int32))[0]


def greedy_random_ties(model: ARModel, *, key: jax.Array) -> jax.Array:
    """Greedy decoding with exact ties broken uniformly at random; returns [H] int32."""
    zeros_1xH = jnp.zeros((1, model.horizon), jnp.int32)
    return greedy_continue(model, zeros_1xH, jnp.zeros((1,), jnp.int32), key=key)[0]


def _beam_impl(next_logprobs, width, vocab_size, horizon, params):
    beams_WxH = jnp.zeros((width, horizon), jnp.int32)
    dtype = jax.eval_shape(next_logprobs, params, beams_WxH, jnp.zeros((width,), jnp.int32)).dtype
    # One live beam at the start; the others are -inf placeholders that only survive when
    # fewer than `width` finite-probability prefixes exist.
    score_W = jnp.full((width,), -jnp.inf, dtype).at[0].set(0.0)

    def step(carry, t):
        beams_WxH, score_W = carry
        logp_WxV = next_logprobs(params, beams_WxH, jnp.full((width,), t, jnp.int32))
        cand_WV = (score_W[:, None] + logp_WxV).reshape(-1)
        score_W, idx_W = jax.lax.top_k(cand_WV, width)
        parent_W, tok_W = idx_W // vocab_size, (idx_W % vocab_size).astype(jnp.int32)
        beams_WxH = jax.lax.dynamic_update_index_in_dim(beams_WxH[parent_W], tok_W, t, axis=1)
        return (beams_WxH, score_W), None

    (beams_WxH, score_W), _ = jax.lax.scan(
        step, (beams_WxH, score_W), jnp.arange(horizon, dtype=jnp.int32)
    )
    return beams_WxH, score_W


_beam_jit = jax.jit(_beam_impl, static_argnums=(0, 1, 2, 3))


def beam_search(model: ARModel, width: int):
    """Beam search of ``width`` beams by cumulative log-probability.

    Keeps the ``width`` highest-scoring prefixes at every position (``lax.top_k``; ties to the
    lower flat index ``parent * V + token``). With ``width >= V^{H-1}`` every prefix survives
    and the top beam is an exact sequence argmax; smaller widths are a heuristic.
    If fewer than ``width`` sequences have positive probability, the remaining beams have
    log-prob ``-inf`` and arbitrary tokens.

    Args:
      model: an :class:`~sharpen.autoregressive.ARModel`.
      width: number of beams ``>= 1`` (static).

    Returns:
      ``(beams [width, H] int32, logprobs [width])`` sorted by log-prob, descending.

    Raises:
      ValueError: for ``width < 1``.
    """
    width = _checks.check_static_int(width, "width", minimum=1)
    return _beam_jit(model.next_logprobs, width, model.vocab_size, model.horizon, model.params)


def _sample_impl(next_logprobs, num, horizon, params, key, temperature):
    keys_H = jax.random.split(key, horizon)
    dtype = jax.eval_shape(
        next_logprobs, params, jnp.zeros((num, horizon), jnp.int32), jnp.zeros((num,), jnp.int32)
    ).dtype
    inv_temp = (1.0 / temperature).astype(dtype)

    def step(carry, xs):
        tokens_NxH, base_N = carry
        t, key_t = xs
        logp_NxV = next_logprobs(params, tokens_NxH, jnp.full((num,), t, jnp.int32))
        # -inf stays -inf under the scaling; the CDF is shifted by its max, so tiny
        # temperatures do not overflow.
        scaled_NxV = jnp.where(jnp.isfinite(logp_NxV), logp_NxV * inv_temp, -jnp.inf)
        u_N = jax.random.uniform(key_t, (num,), dtype)
        tok_N = jax.vmap(lambda lp, u: _inverse_cdf(_cdf(lp), u[None])[0])(scaled_NxV, u_N)
        base_N = base_N + jnp.take_along_axis(logp_NxV, tok_N[:, None], axis=1)[:, 0]
        tokens_NxH = jax.lax.dynamic_update_index_in_dim(tokens_NxH, tok_N, t, axis=1)
        return (tokens_NxH, base_N), None

    init = (jnp.zeros((num, horizon), jnp.int32), jnp.zeros((num,), dtype))
    (tokens_NxH, base_N), _ = jax.lax.scan(
        step, init, (jnp.arange(horizon, dtype=jnp.int32), keys_H)
    )
    return tokens_NxH, base_N


_sample_jit = jax.jit(_sample_impl, static_argnums=(0, 1, 2))


def sample(model: ARModel, num: int, *, key: jax.Array, temperature=1.0):
    """Ancestral sampling at a temperature: ``y_t ~ softmax(log pi_t(. | y_{<t}) / temperature)``.

    Returns the *base* sequence log-prob ``log pi(y)`` at temperature 1 (the self-reward of
    §1.2), not the log-prob under the tempered sampling distribution. As ``temperature -> 0``
    the draws approach greedy decoding (exact ties are then split at random).

    Args:
      model: an :class:`~sharpen.autoregressive.ARModel`.
      num: number of independent sequences (static, ``>= 1``).
      key: PRNG key.
      temperature: ``> 0`` (may be traced).

    Returns:
      ``(tokens [num, H] int32, base_logprob [num])``.
    """
    num = _checks.check_static_int(num, "num")
    _checks.check_positive(temperature, "temperature")
    temp = jnp.asarray(temperature)
    if temp.ndim != 0:
        raise ValueError(f"temperature must be a scalar, got shape {temp.shape}")
    return _sample_jit(model.next_logprobs, num, model.horizon, model.params, key, temp)


def best_of_n(model: ARModel, num_samples: int, *, key: jax.Array):
    """Inference-time best-of-N by sequence log-likelihood (App. C).

    Draws ``num_samples`` sequences with :func:`sample` at temperature 1 using
    ``jax.random.split(key)[0]``, returns one with the largest base log-prob, exact ties
    broken uniformly at random with ``jax.random.split(key)[1]``. With ``num_samples = 1``
    this is the plain sample ``sample(model, 1, key=split(key)[0])``.

    Args:
      model: an :class:`~sharpen.autoregressive.ARModel`.
      num_samples: ``N >= 1`` (static).
      key: PRNG key.

    Returns:
      ``(tokens [H] int32, logprob [])``.
    """
    num_samples = _checks.check_static_int(num_samples, "num_samples")
    sample_key, tie_key = jax.random.split(key)
    tokens_NxH, logp_N = sample(model, num_samples, key=sample_key)
    best_N = logp_N >= jnp.max(logp_N)
    u_N = jax.random.uniform(tie_key, logp_N.shape)
    pick = jnp.argmax(jnp.where(best_N, u_N, -1.0))
    return tokens_NxH[pick], logp_N[pick]

"""Best-of-N by self-reward: samplers and exact laws.

Inference-time sharpening draws ``N`` responses from ``pi_base`` and keeps the one with the
highest self-reward (ties broken uniformly at random, App. C). SFT-Sharpening fits the *law* of
that selected response, ``pi^BoN_N``; its adaptive variant stops drawing with the rule of Eq. 10.
This module gives both as samplers (what an algorithm does) and in closed form (what the theory
analyses), so that tests can hold the two together.

Closed-form BoN law (THEORY §3.3). Sort responses into reward levels ``1, 2, ...`` (best first;
tied responses share a level), let ``T_k`` be the base mass of levels ``k, k+1, ...`` (so
``T_1 = 1``). The maximum of ``N`` draws lies in level ``k`` with probability
``T_k^N - T_{k+1}^N``, and within the level each response is picked with probability
proportional to its base mass (uniform when the reward is the log-likelihood).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sharpen import _checks
from sharpen.sampling import _cdf, _inverse_cdf, sample_from_logprobs


class _Levels(NamedTuple):
    """Responses sorted by reward (descending) and grouped into tie levels."""

    order: jax.Array  # [Y] sort permutation
    logp_s: jax.Array  # [Y] normalized base log-probs, sorted
    start_s: jax.Array  # [Y] first sorted position of each entry's level
    end_s: jax.Array  # [Y] one past the last sorted position of the level
    log_tail_s: jax.Array  # [Y + 1] log T at each sorted position (T of "past the end" = 0)


def _levels(logp_Y: jax.Array, reward_Y: jax.Array) -> _Levels:
    logp_Y = logp_Y - jax.nn.logsumexp(logp_Y)
    size = logp_Y.shape[0]
    order = jnp.argsort(-reward_Y, stable=True)
    r_s, logp_s = reward_Y[order], logp_Y[order]
    new_level = jnp.concatenate([jnp.array([True]), r_s[1:] != r_s[:-1]])
    level_id = jnp.cumsum(new_level) - 1
    pos = jnp.arange(size)
    start_s = jax.ops.segment_min(pos, level_id, num_segments=size)[level_id]
    end_s = jax.ops.segment_max(pos, level_id, num_segments=size)[level_id] + 1
    # Tail masses two ways: log1p(-head) is accurate near the top (tail ~ 1, where N * log T
    # needs absolute accuracy for N up to 1e9), the tail logsumexp near the bottom (tail ~ 0).
    head = jnp.concatenate([jnp.zeros(1, logp_s.dtype), jnp.cumsum(jnp.exp(logp_s))])
    # The reverse log-cumsum as an associative scan of logaddexp: the same log-space stability
    # as jax.lax.cumlogsumexp, ~16x faster on XLA:CPU (BENCHMARKS.md, bon_profile).
    tail_lse = jnp.concatenate(
        [
            jax.lax.associative_scan(jnp.logaddexp, logp_s, reverse=True),
            jnp.full((1,), -jnp.inf, logp_s.dtype),
        ]
    )
    log_tail = jnp.where(head < 0.5, jnp.log1p(-jnp.minimum(head, 0.5)), tail_lse)
    log_tail = log_tail.at[-1].set(-jnp.inf)
    return _Levels(order, logp_s, start_s, end_s, log_tail)


def _log_pow_diff(log_a: jax.Array, log_b: jax.Array, n: jax.Array) -> jax.Array:
    """``log(a^n - b^n)`` for ``0 <= b <= a``, stable for huge ``n``; ``-inf`` when ``a = b``."""
    safe_a = jnp.where(jnp.isfinite(log_a), log_a, 0.0)
    diff = jnp.where(jnp.isfinite(log_a), n * (log_b - safe_a), -jnp.inf)
    out = n * safe_a + jnp.log(-jnp.expm1(diff))
    return jnp.where(jnp.isfinite(log_a), out, -jnp.inf)


def _unsort(values_s: jax.Array, order: jax.Array) -> jax.Array:
    return jnp.zeros_like(values_s).at[order].set(values_s)


def _within_level(lv: _Levels, log_level_prob_s: jax.Array) -> jax.Array:
    """Spread each level's selection probability over its members proportionally to base mass."""
    log_level_mass = _log_pow_diff(lv.log_tail_s[lv.start_s], lv.log_tail_s[lv.end_s], 1.0)
    member = jnp.where(
        jnp.isfinite(lv.logp_s), log_level_prob_s + lv.logp_s - log_level_mass, -jnp.inf
    )
    return _unsort(member, lv.order)


def _bon_law_1d(logp_Y, reward_Y, num_samples):
    lv = _levels(logp_Y, reward_Y)
    log_level_prob = _log_pow_diff(lv.log_tail_s[lv.start_s], lv.log_tail_s[lv.end_s], num_samples)
    return _within_level(lv, log_level_prob)


def bon_law(
    logp_base: jax.Array,
    num_samples: float | jax.Array,
    *,
    reward: jax.Array | None = None,
) -> jax.Array:
    """Exact law ``pi^BoN_N`` of the best-of-N response, in log space.

    .. math::  \\pi^{\\rm BoN}_N(y) = \\big(T_{k(y)}^N - T_{k(y)+1}^N\\big)
               \\frac{\\pi_{\\rm base}(y)}{M_{k(y)}},\\qquad
               T_k=\\sum_{j\\ge k} M_j,

    where ``k(y)`` is the reward level of ``y`` and ``M_k`` the base mass of level ``k``. With the
    log-likelihood reward, :math:`\\pi^{\\rm BoN}_N(\\mathbf y^\\star)=1-(1-\\pi_{\\rm
    base}(\\mathbf y^\\star))^N`. Powers are taken as ``exp(N log T)`` with ``expm1``, so any
    ``N`` up to 1e9 (and beyond) is exact to working precision, with no overflow.

    Args:
      logp_base: [..., Y] base log-probabilities (normalized over the last axis).
      num_samples: N >= 1; a scalar or an array broadcastable to ``logp_base[..., 0]`` (need
        not be an integer, which lets callers differentiate or interpolate in N).
      reward: optional [..., Y] self-reward; defaults to ``logp_base`` (Eq. 2).

    Returns:
      [..., Y] log-probabilities of the selected response.

    References:
      Huang et al. (2025), §2.1 and App. C; THEORY §3.3 "Closed-form BoN law".

    Example:
      >>> import jax.numpy as jnp
      >>> law = jnp.exp(bon_law(jnp.log(jnp.array([0.5, 0.3, 0.2])), 2))
      >>> [round(float(v), 4) for v in law]  # 1-0.5^2, 0.5^2-0.2^2, 0.2^2
      [0.75, 0.21, 0.04]
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base")
    _checks.check_num_samples(num_samples)
    reward = logp_base if reward is None else jnp.asarray(reward, logp_base.dtype)
    _checks.check_same_shape(reward, logp_base, "reward", "logp_base")
    n = jnp.broadcast_to(jnp.asarray(num_samples, logp_base.dtype), logp_base.shape[:-1])
    flat = jax.vmap(_bon_law_1d)(
        logp_base.reshape(-1, logp_base.shape[-1]),
        reward.reshape(-1, logp_base.shape[-1]),
        n.reshape(-1),
    )
    return flat.reshape(logp_base.shape)


def _rows_per_block(num_rows: int, row_width: int, target: int) -> int:
    """Rows processed together so that a block's ``[rows, width]`` arrays stay in cache.

    XLA:CPU streams every pass of a search over the whole batch through memory; running the
    batch in blocks of about ``target`` elements keeps each block's working set in cache across
    the passes (3x faster for the literal sampler at N = 1e4, BENCHMARKS.md). ``target`` was
    tuned on CPU; on accelerators the blocks are only a loop over large tiles.
    """
    return max(1, min(num_rows, target // max(row_width, 1)))


def best_of_n(
    logp_base_Y: jax.Array,
    num_samples: int,
    *,
    key: jax.Array,
    reward_Y: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Inference-time best-of-N: draw N responses, return the one with the highest self-reward.

    Draws use inverse-CDF sampling; among the draws that attain the maximal reward the *first*
    is returned. This is the uniformly random tie-break of App. C in law: the draws are i.i.d.,
    hence exchangeable, so the position of the first maximiser carries no information about
    which tied response it is, and conditional on the set of maximal responses drawn the first
    one is each of them with the same probability as under a uniform tie-break
    (``test_bon_law_matches_the_sampler``, tied levels). It saves the N tie-break
    uniforms. Write per-prompt code and ``vmap`` it; see :func:`best_of_n_batch` for the
    batched form, and :func:`sample_best_of_n` for an exact sampler whose cost does not grow
    with N.

    Args:
      logp_base_Y: [Y] base log-probabilities.
      num_samples: static N >= 1.
      key: PRNG key.
      reward_Y: optional [Y] self-reward; defaults to ``logp_base_Y``.

    Returns:
      ``(selected, draws_N)``: the selected response index (int32 scalar) and the N draws.

    References:
      Huang et al. (2025), App. C (Prop C.1), §2.1.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y, draws = best_of_n(jnp.log(jnp.array([0.1, 0.9])), 8, key=jax.random.key(0))
      >>> int(y), draws.shape
      (1, (8,))
    """
    _checks.check_static_int(num_samples, "num_samples")
    reward_Y = logp_base_Y if reward_Y is None else reward_Y
    draws_N = sample_from_logprobs(logp_base_Y, (num_samples,), key=key)
    return draws_N[jnp.argmax(reward_Y[draws_N])], draws_N


def _row_keys(key: jax.Array, num_rows: int) -> jax.Array:
    """``fold_in(key, b)`` for each batch row ``b``: row ``b``'s randomness does not depend on B."""
    return jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(num_rows))


def best_of_n_batch(
    logp_base_XxY: jax.Array,
    prompts_B: jax.Array,
    num_samples: int,
    *,
    key: jax.Array,
    reward_XxY: jax.Array | None = None,
) -> jax.Array:
    """Best-of-N for a batch of prompts, literally: N draws per row, keep the best.

    Row ``b`` returns exactly ``best_of_n(logp_base_XxY[x], num_samples,
    key=fold_in(key, b), reward_Y=reward_XxY[x])[0]`` with ``x = prompts_B[b]`` (first maximiser
    among the draws). Cost ``O(B N log Y)``; the CDF is computed once per prompt when the batch
    covers the prompts (``B >= X``, e.g. many rows per prompt), once per row otherwise, and
    rows run in cache-sized blocks. This is the algorithm of the paper; for the same law at a
    cost independent of N use :func:`sample_best_of_n`.

    Args:
      logp_base_XxY: [X, Y] base log-probabilities.
      prompts_B: [B] prompt indices.
      num_samples: static N >= 1.
      key: PRNG key (folded with the batch position, so row ``b`` does not depend on B).
      reward_XxY: optional [X, Y] self-reward; defaults to ``logp_base_XxY``.

    Returns:
      [B] int32 selected response indices.
    """
    _checks.check_static_int(num_samples, "num_samples")
    reward_XxY = logp_base_XxY if reward_XxY is None else reward_XxY
    num_prompts, size = logp_base_XxY.shape
    batch = prompts_B.shape[0]
    per_prompt = batch >= num_prompts
    cdf_XxY = jax.vmap(_cdf)(logp_base_XxY) if per_prompt else None

    def one(x, k):
        cdf_Y = cdf_XxY[x] if per_prompt else _cdf(logp_base_XxY[x])
        u_N = jax.random.uniform(k, (num_samples,), logp_base_XxY.dtype)
        draws_N = _inverse_cdf(cdf_Y, u_N)
        return draws_N[jnp.argmax(reward_XxY[x][draws_N])]

    rows = _rows_per_block(batch, max(num_samples, size), 2**17)
    return jax.lax.map(lambda xk: one(*xk), (prompts_B, _row_keys(key, batch)), batch_size=rows)


def _ordered_bits(reward: jax.Array) -> jax.Array:
    """Unsigned integers with the order of the float ``reward`` (``-0.0`` and ``0.0`` equal).

    IEEE floats compare like sign-magnitude integers: flipping all bits of negatives and the
    sign bit of non-negatives makes unsigned comparison agree with float comparison.
    """
    bits = jnp.finfo(reward.dtype).bits
    utype = {16: jnp.uint16, 32: jnp.uint32, 64: jnp.uint64}[bits]
    reward = jnp.where(reward == 0, jnp.zeros((), reward.dtype), reward)
    raw = jax.lax.bitcast_convert_type(reward, utype)
    sign = utype(1 << (bits - 1))
    return jnp.where(raw >= sign, ~raw, raw | sign)


def _sample_bon_rows(logp_RxY, reward_RxY, n_R, u_Rx2):
    """The order-statistic sampler on a block of rows; see :func:`sample_best_of_n`."""
    mass = jnp.exp(logp_RxY - jnp.max(logp_RxY, axis=-1, keepdims=True))  # unnormalized
    key_RxY = _ordered_bits(reward_RxY)
    utype = key_RxY.dtype.type
    num_bits = jnp.iinfo(utype).bits
    # W = min of N i.i.d. U[0, 1): P(W > w) = (1 - w)^N; -expm1(log1p(-u) / N) is exact for
    # tiny W (large N), where 1 - u^(1/N) would cancel.
    tail_R = -jnp.expm1(jnp.log1p(-u_Rx2[:, 0]) / n_R) * jnp.sum(mass, axis=-1)
    # Level of the best draw: the largest reward key whose upper set {key >= k} has mass
    # > tail (binary lifting over the key bits; the predicate is monotone in k).
    level_R = jnp.zeros(mass.shape[0], utype)
    for bit in reversed(range(num_bits)):
        cand_R = level_R | utype(1 << bit)
        above_R = jnp.sum(jnp.where(key_RxY >= cand_R[:, None], mass, 0.0), axis=-1)
        level_R = jnp.where(above_R > tail_R, cand_R, level_R)
    reachable = mass > 0
    # Only if rounding put tail at the total mass does no key pass: then it is the lowest level.
    lowest_R = jnp.min(jnp.where(reachable, key_RxY, utype(jnp.iinfo(utype).max)), axis=-1)
    in_level = reachable & (key_RxY == jnp.maximum(level_R, lowest_R)[:, None])
    first_R = jnp.argmax(in_level, axis=-1).astype(jnp.int32)

    def within_level():
        # Member drawn proportionally to base mass with the second uniform: the largest index j
        # whose level mass strictly before j is <= target (binary lifting over index bits).
        level_mass = jnp.where(in_level, mass, 0.0)
        target_R = u_Rx2[:, 1] * jnp.sum(level_mass, axis=-1)
        iota = jax.lax.broadcasted_iota(jnp.int32, mass.shape, 1)
        pick_R = jnp.zeros(mass.shape[0], jnp.int32)
        for bit in reversed(range(mass.shape[-1].bit_length())):
            cand_R = pick_R | (1 << bit)
            below_R = jnp.sum(jnp.where(iota < cand_R[:, None], level_mass, 0.0), axis=-1)
            pick_R = jnp.where(below_R <= target_R, cand_R, pick_R)
        last_R = jnp.max(jnp.where(in_level, iota, -1), axis=-1)
        return jnp.minimum(pick_R, last_R)

    # Levels are single responses unless rewards tie: then the second search is not needed.
    return jax.lax.cond(jnp.all(jnp.sum(in_level, axis=-1) == 1), lambda: first_R, within_level)


def sample_best_of_n(
    logp_base_XxY: jax.Array,
    prompts_B: jax.Array,
    num_samples: float | jax.Array,
    *,
    key: jax.Array,
    reward_XxY: jax.Array | None = None,
) -> jax.Array:
    """Exact best-of-N samples in O(1) random numbers per row, whatever N (order statistics).

    Same law as :func:`best_of_n_batch` (the law :func:`bon_law`), without drawing the N
    responses. Order the responses by reward, best first, and lay their base masses end to end
    on ``[0, 1)``: a draw is a uniform position, and the best of N draws is the response at the
    *smallest* of N uniform positions, ``W = 1 - U^{1/N}`` (``P(W > w) = (1 - w)^N``). ``W``
    picks the reward level, with probability ``T_k^N - T_{k+1}^N`` as in :func:`bon_law`;
    within a tied level the member is drawn afresh proportionally to base mass (``W``'s place
    inside the level is not uniform, a second uniform is). The level containing ``W`` is found
    without sorting, by binary search over the bits of the reward (one masked row sum per bit:
    32 in float32, 64 in float64), so the cost is ``O(B Y bits)``, flat in N; a second search
    over the ``log2 Y`` index bits runs only when some selected level holds several responses.

    Args:
      logp_base_XxY: [X, Y] base log-probabilities (normalized over Y or not).
      prompts_B: [B] prompt indices.
      num_samples: N >= 1, a scalar or a [B] array; traced, and need not be an integer (the
        law is then :func:`bon_law` at that N).
      key: PRNG key (folded with the batch position, so row ``b`` does not depend on B).
      reward_XxY: optional [X, Y] self-reward (cast to the dtype of ``logp_base_XxY``, no
        NaNs); defaults to ``logp_base_XxY``. Ties are exact float equality.

    Returns:
      [B] int32 selected response indices; zero-mass responses are never returned.

    References:
      Huang et al. (2025), §2.1, App. C; THEORY §3.3 for the law. The order-statistic
      sampler is ours; tests check its law against :func:`bon_law` and
      :func:`best_of_n_batch`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> logp = jnp.log(jnp.array([[0.5, 0.3, 0.2], [0.0, 0.0, 1.0]]))
      >>> y = sample_best_of_n(logp, jnp.array([0, 1]), 1e9, key=jax.random.key(0))
      >>> y.tolist()
      [0, 2]
    """
    _checks.check_num_samples(num_samples)
    reward_XxY = logp_base_XxY if reward_XxY is None else reward_XxY
    reward_XxY = jnp.asarray(reward_XxY, logp_base_XxY.dtype)
    _checks.check_same_shape(reward_XxY, logp_base_XxY, "reward_XxY", "logp_base_XxY")
    dtype = logp_base_XxY.dtype
    batch = prompts_B.shape[0]
    n_B = jnp.broadcast_to(jnp.asarray(num_samples, dtype), (batch,))
    u_Bx2 = jax.vmap(lambda k: jax.random.uniform(k, (2,), dtype))(_row_keys(key, batch))

    def block(args):
        x_R, n_R, u_Rx2 = args
        return _sample_bon_rows(logp_base_XxY[x_R], reward_XxY[x_R], n_R, u_Rx2)

    rows = _rows_per_block(batch, logp_base_XxY.shape[1], 2**15)
    blocks = -(-batch // rows)
    pad = blocks * rows - batch

    def padded(v):
        return jnp.concatenate([v, jnp.repeat(v[:1], pad, axis=0)]).reshape(
            blocks, rows, *v.shape[1:]
        )

    out = jax.lax.map(block, (padded(prompts_B), padded(n_B), padded(u_Bx2)))
    return out.reshape(-1)[:batch]


class AdaptiveBoN(NamedTuple):
    """Result of :func:`adaptive_best_of_n`."""

    response: jax.Array  # int32 scalar: the most likely response among the draws
    num_draws: jax.Array  # int32 scalar: the stopping time N_mu (capped at max_draws)


def _stop_threshold(mu_stop, best_logp):
    """The stopping rule of Eq. 10 stops at the first ``k >= mu / best_prob``."""
    return mu_stop * jnp.exp(-best_logp)


def adaptive_best_of_n(
    logp_base_Y: jax.Array,
    *,
    mu_stop: float | jax.Array,
    key: jax.Array,
    max_draws: int = 10**7,
) -> AdaptiveBoN:
    """Adaptive best-of-N with the stopping rule of Eq. 10 (App. D).

    Draws ``y_1, y_2, ...`` from ``pi_base`` one at a time and stops at

    .. math::  N_\\mu = \\inf\\{k : 1/\\max_{i\\le k}\\pi_{\\rm base}(y_i) \\le k/\\mu\\},

    returning a most likely draw (ties uniformly at random, by reservoir sampling) and ``N_mu``.
    Confident prompts stop early; a point mass stops after ``ceil(mu)`` draws. Runs as one
    ``lax.while_loop``; ``vmap`` it over keys for many trials.

    Args:
      logp_base_Y: [Y] base log-probabilities.
      mu_stop: stopping parameter mu > 0 (theory: ``ln(2/delta)``, Thm D.1).
      key: PRNG key; draw ``k`` uses ``fold_in(key, k)``.
      max_draws: static safety cap; ``num_draws == max_draws`` signals truncation.

    Returns:
      :class:`AdaptiveBoN` ``(response, num_draws)``.

    References:
      Huang et al. (2025), Eq. 10, Thm D.1, Lemma I.1.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> out = adaptive_best_of_n(jnp.log(jnp.array([1.0, 0.0])), mu_stop=2.5, key=jax.random.key(0))
      >>> int(out.response), int(out.num_draws)
      (0, 3)
    """
    _checks.check_positive(mu_stop, "mu_stop")
    max_draws = _checks.check_static_int(max_draws, "max_draws")
    cdf_Y = _cdf(logp_base_Y)
    mu_stop = jnp.asarray(mu_stop, logp_base_Y.dtype)

    def draw(k):
        u_key, tie_key = jax.random.split(jax.random.fold_in(key, k))
        y = _inverse_cdf(cdf_Y, jax.random.uniform(u_key, (1,), logp_base_Y.dtype))[0]
        return y, jax.random.uniform(tie_key)

    def cond(state):
        k, best_logp, _, _ = state
        threshold = _stop_threshold(mu_stop, best_logp)
        return (k < max_draws) & (k.astype(threshold.dtype) < threshold)

    def body(state):
        k, best_logp, best_y, ties = state
        y, u = draw(k)
        logp = logp_base_Y[y]
        better, tie = logp > best_logp, logp == best_logp
        ties = jnp.where(better, 1, jnp.where(tie, ties + 1, ties))
        # Reservoir sampling: keep the new tie with probability 1/ties.
        take = better | (tie & (u * ties.astype(u.dtype) < 1.0))
        return (
            k + 1,
            jnp.where(better, logp, best_logp),
            jnp.where(take, y, best_y),
            ties,
        )

    init = (jnp.int32(0), jnp.array(-jnp.inf, logp_base_Y.dtype), jnp.int32(0), jnp.int32(0))
    k, _, best_y, _ = jax.lax.while_loop(cond, body, init)
    return AdaptiveBoN(best_y.astype(jnp.int32), k)


def _adaptive_law_1d(logp_Y, mu_stop):
    lv = _levels(logp_Y, logp_Y)
    log_t = lv.log_tail_s
    finite = jnp.isfinite(lv.logp_s)
    # K_b = first k with k >= mu / p_b (Eq. 10); zero-mass levels are never reached.
    # K uses the caller's (unnormalized) log-probs, exactly as the sampler's stopping test does.
    raw_s = logp_Y[lv.order]
    k_s = jnp.where(finite, jnp.ceil(_stop_threshold(mu_stop, raw_s)), jnp.inf)
    k_s = jnp.maximum(k_s, 1.0)
    k_prev_s = jnp.where(lv.start_s > 0, k_s[jnp.maximum(lv.start_s - 1, 0)], 0.0)
    log_tb = log_t[lv.start_s]
    tail_b = jnp.exp(log_tb)

    def tail_pow(k):  # T_b ** k, with 0 ** 0 = 1 and 0 ** inf = 0
        return jnp.where(k == 0, 1.0, jnp.where(jnp.isfinite(k), jnp.exp(k * log_tb), 0.0))

    # H_b = sum_{t=K_{b-1}}^{K_b - 1} T_b^t: expected time spent while level b is the stop level.
    first = lv.start_s == 0
    h_s = jnp.where(
        first,
        k_s,
        (tail_pow(k_prev_s) - tail_pow(k_s)) / jnp.where(first, 1.0, 1.0 - tail_b),
    )
    h_s = jnp.where(finite & (jnp.arange(h_s.shape[0]) == lv.start_s), h_s, 0.0)
    expected_draws = jnp.sum(h_s)
    # R_b = sum_{j >= b} H_j;  G_b = P(selected level >= b) = T_b^{K_b} - (1 - T_b) R_{b+1}.
    r_after = jnp.concatenate([jnp.cumsum(h_s[::-1])[::-1], jnp.zeros(1, h_s.dtype)])
    g_s = jnp.where(first, 1.0, tail_pow(k_s) - (1.0 - tail_b) * r_after[lv.end_s])
    g_s = jnp.where(finite, jnp.clip(g_s, 0.0, 1.0), 0.0)
    g_next = jnp.concatenate([g_s, jnp.zeros(1, g_s.dtype)])[lv.end_s]
    level_prob = jnp.clip(g_s - g_next, 0.0, 1.0)
    return _within_level(lv, jnp.log(level_prob)), expected_draws


def adaptive_bon_law(
    logp_base: jax.Array, *, mu_stop: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Exact law of the adaptive best-of-N response and the expected number of draws.

    With probability levels ``p_1 > p_2 > ... > p_L`` (masses ``M_b``, tails ``T_b``) and
    ``K_b = ceil(mu / p_b)``, the process of Eq. 10 survives past time ``t`` iff the best level
    seen so far, ``B_t``, has ``K_{B_t} > t``; hence

    .. math::  \\mathbb P[N_\\mu > t] = T_{b(t)}^t,\\quad b(t)=\\min\\{b: K_b>t\\},\\qquad
               \\mathbb E[N_\\mu] = \\sum_b H_b,\\quad
               H_b=\\sum_{t=K_{b-1}}^{K_b-1} T_b^t,

    and the selected level ``B`` satisfies
    :math:`\\mathbb P[B\\ge b] = T_b^{K_b} - (1-T_b)\\sum_{j>b}H_j` for ``b >= 2``: no better
    level in the first ``K_b`` draws, minus the chance that one arrives later before stopping.
    Within a level the choice is uniform. All geometric sums are in closed form, so the cost is
    ``O(Y log Y)`` whatever ``mu``.

    Args:
      logp_base: [..., Y] base log-probabilities.
      mu_stop: stopping parameter mu > 0.

    Returns:
      ``(logp_law [..., Y], expected_draws [...])``.

    References:
      Huang et al. (2025), Eq. 10, Assumption D.1 (the law is the realizability target),
      Lemma I.1. The closed form is ours (derivation in this docstring); tests check it
      against :func:`adaptive_best_of_n`.

    Example:
      >>> import jax.numpy as jnp
      >>> law, draws = adaptive_bon_law(jnp.log(jnp.array([1.0, 0.0])), mu_stop=2.5)
      >>> [round(float(v), 6) for v in jnp.exp(law)], float(draws)
      ([1.0, 0.0], 3.0)
    """
    logp_base = _checks.check_logprobs(logp_base, "logp_base")
    _checks.check_positive(mu_stop, "mu_stop")
    mu = jnp.broadcast_to(jnp.asarray(mu_stop, logp_base.dtype), logp_base.shape[:-1])
    law, draws = jax.vmap(_adaptive_law_1d)(
        logp_base.reshape(-1, logp_base.shape[-1]), mu.reshape(-1)
    )
    return law.reshape(logp_base.shape), draws.reshape(logp_base.shape[:-1])

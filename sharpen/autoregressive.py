"""Autoregressive models over ``V^H`` exposed by next-token log-probabilities.

THEORY §1.1 (autoregressive special case): a response is ``y_{1:H} in V^H`` and

.. math::  \\pi(y_{1:H}) = \\prod_{h=1}^{H} \\pi_h(y_h \\mid y_{1:h-1}).

An :class:`ARModel` is a pure function ``next_logprobs(params, prefix_BxH, t_B) -> [B, V]`` plus
its parameter pytree; everything downstream (:mod:`sharpen.decoding`, exact enumeration, mode
finding) passes ``params`` to ``jax.jit`` as an argument and treats ``next_logprobs`` as a static
argument. To avoid a recompilation per model instance, ``next_logprobs`` should be a module-level
function or a hashable object that compares equal across instances (both constructors here are).

Positions are 0-based throughout: ``t = 0`` is the first token. Prompts are implicit (one model
per prompt); batch rows are independent prefixes.

Two families:

* :func:`tabular_ar` / :func:`tabular_ar_from_table`: an arbitrary conditional for every prefix
  (S2, Prop 3.1), stored as one table row per prefix.
* :func:`linear_softmax_ar`: the multi-layer linear softmax class of Eq. 11 (App. E), with
  :func:`product_features` giving the singles/pairs/triples features of Prop E.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen import _checks

#: Largest table :func:`tabular_ar` will build (rows = number of prefixes of length < H).
MAX_TABLE_ROWS = 2**22

#: Sequences scored per pass by :func:`enumerate_sequences` (bounds peak memory).
_ENUM_CHUNK = 2**14


class ARModel(NamedTuple):
    """A distribution over V^H exposed by next-token log-probs.

    Attributes:
      next_logprobs: ``(params, prefix_BxH int32, t_B int32) -> [B, V] float``:
        ``log pi(y_t = v | y_<t = prefix[b, :t[b]])`` with 0-based ``t``; entries of ``prefix``
        at positions ``>= t[b]`` are ignored. Must be pure and jit/vmap-traceable.
      params: pytree of arrays, passed to ``jit`` as an argument (never closed over).
      vocab_size: ``V``.
      horizon: ``H``.
    """

    next_logprobs: Callable
    params: Any
    vocab_size: int
    horizon: int


# --------------------------------------------------------------------------------------------
# Tabular models


def num_prefixes(vocab_size: int, horizon: int) -> int:
    """Number of prefixes of length ``0..H-1``: ``sum_{t<H} V^t`` (rows of a tabular table)."""
    return sum(vocab_size**t for t in range(horizon))


def _check_sizes(vocab_size: Any, horizon: Any) -> tuple[int, int]:
    return (
        _checks.check_static_int(vocab_size, "vocab_size", minimum=1),
        _checks.check_static_int(horizon, "horizon", minimum=1),
    )


def _check_table_rows(vocab_size: int, horizon: int) -> int:
    rows = num_prefixes(vocab_size, horizon)
    if rows > MAX_TABLE_ROWS:
        raise ValueError(
            f"a tabular model with vocab_size={vocab_size}, horizon={horizon} needs {rows} table "
            f"rows, more than the limit {MAX_TABLE_ROWS} (2^22)"
        )
    return rows


def _tabular_next_logprobs(params, prefix_BxH, t_B):
    """Row ``offset[t] + base-V(prefix[:t])`` of the table (most significant token first)."""
    logp_PxV = params["logp_PxV"]
    vocab_size, horizon = logp_PxV.shape[1], prefix_BxH.shape[1]
    powers = np.array([vocab_size**k for k in range(horizon)], np.int32)
    offsets = np.array([num_prefixes(vocab_size, t) for t in range(horizon)], np.int32)
    t_B = t_B.astype(jnp.int32)
    pos_H = jnp.arange(horizon, dtype=jnp.int32)
    exponent_BxH = t_B[:, None] - 1 - pos_H[None, :]
    used_BxH = exponent_BxH >= 0  # positions s < t
    weight_BxH = jnp.where(used_BxH, jnp.asarray(powers)[jnp.clip(exponent_BxH, 0, None)], 0)
    digits_BxH = jnp.where(used_BxH, prefix_BxH.astype(jnp.int32), 0)
    row_B = jnp.asarray(offsets)[jnp.clip(t_B, 0, horizon - 1)] + jnp.sum(
        digits_BxH * weight_BxH, axis=1, dtype=jnp.int32
    )
    return logp_PxV[row_B]


def tabular_ar_from_table(logp_PxV: jax.typing.ArrayLike, *, vocab_size: int, horizon: int):
    """Wrap a table of conditionals as an :class:`ARModel`.

    Row ``offset[t] + sum_{s<t} y_s V^{t-1-s}`` (with ``offset[t] = sum_{k<t} V^k``) holds
    ``log pi_t(. | y_{<t})``; so row 0 is the first-token distribution, rows ``1..V`` the
    second-token conditionals after tokens ``0..V-1``, and so on.

    Args:
      logp_PxV: [P, V] normalized log-probabilities, ``P = sum_{t<H} V^t``.
      vocab_size: ``V``.
      horizon: ``H``.

    Returns:
      An :class:`ARModel` with ``params = {"logp_PxV": logp_PxV}``.

    Example:
      >>> import jax.numpy as jnp
      >>> m = tabular_ar_from_table(jnp.log(jnp.full((3, 2), 0.5)), vocab_size=2, horizon=2)
      >>> m.params["logp_PxV"].shape
      (3, 2)
    """
    vocab_size, horizon = _check_sizes(vocab_size, horizon)
    rows = _check_table_rows(vocab_size, horizon)
    logp = _checks.check_logprobs(logp_PxV, "logp_PxV", min_rank=2, max_rank=2)
    if logp.shape != (rows, vocab_size):
        raise ValueError(
            f"logp_PxV must have shape ({rows}, {vocab_size}) for vocab_size={vocab_size}, "
            f"horizon={horizon}, got {logp.shape}"
        )
    return ARModel(_tabular_next_logprobs, {"logp_PxV": logp}, vocab_size, horizon)


def tabular_ar(key: jax.Array, *, vocab_size: int, horizon: int, concentration) -> ARModel:
    """A random tabular model: ``pi_t(. | y_{<t}) ~ Dirichlet(concentration * 1_V)`` per prefix.

    Every prefix gets an independent conditional (S2). Sampled in log-space
    (``log Gamma`` draws, then ``log_softmax``), so small concentrations give very sharp but
    finite log-probabilities instead of underflowing to 0.

    Args:
      key: PRNG key (may be traced, e.g. under ``jax.vmap`` over keys).
      vocab_size: ``V``.
      horizon: ``H``.
      concentration: scalar Dirichlet concentration ``> 0`` (may be traced).

    Returns:
      An :class:`ARModel` with a table of ``sum_{t<H} V^t`` rows.

    Raises:
      ValueError: for non-positive concentration, or a table over ``2^22`` rows.

    Example:
      >>> import jax
      >>> m = tabular_ar(jax.random.key(0), vocab_size=2, horizon=3, concentration=1.0)
      >>> m.params["logp_PxV"].shape
      (7, 2)
    """
    vocab_size, horizon = _check_sizes(vocab_size, horizon)
    rows = _check_table_rows(vocab_size, horizon)
    _checks.check_positive(concentration, "concentration")
    dtype = jnp.zeros(()).dtype
    alpha = jnp.asarray(concentration, dtype)
    if alpha.ndim != 0:
        raise ValueError(f"concentration must be a scalar, got shape {alpha.shape}")
    log_gamma_PxV = jax.random.loggamma(key, alpha, (rows, vocab_size), dtype)
    logp = jax.nn.log_softmax(log_gamma_PxV, axis=-1)
    return ARModel(_tabular_next_logprobs, {"logp_PxV": logp}, vocab_size, horizon)


# --------------------------------------------------------------------------------------------
# Multi-layer linear softmax (Eq. 11)


def _linear_logits(features_fn, theta_HxD, prefix_BxH, t_B, vocab_size):
    cand_V = jnp.arange(vocab_size, dtype=jnp.int32)
    feats_BxVxD = features_fn(prefix_BxH, t_B, cand_V).astype(theta_HxD.dtype)
    theta_BxD = theta_HxD[t_B]
    return jnp.einsum("bvd,bd->bv", feats_BxVxD, theta_BxD)


@dataclasses.dataclass(frozen=True)
class LinearSoftmaxNext:
    """``next_logprobs`` of the linear softmax class (Eq. 11) for a given ``features_fn``.

    A frozen dataclass so that two models with the same ``features_fn`` and ``vocab_size``
    share one compiled program (``next_logprobs`` is a static ``jit`` argument).
    """

    features_fn: Callable
    vocab_size: int

    def __call__(self, theta_HxD, prefix_BxH, t_B):
        logits_BxV = _linear_logits(
            self.features_fn, theta_HxD, prefix_BxH, t_B.astype(jnp.int32), self.vocab_size
        )
        return jax.nn.log_softmax(logits_BxV, axis=-1)


def linear_softmax_ar(
    theta_HxD: jax.typing.ArrayLike, features_fn: Callable, *, vocab_size: int
) -> ARModel:
    """The multi-layer linear softmax model of Eq. 11 (App. E).

    .. math::  \\pi_h(y_h \\mid y_{<h}) \\propto \\exp\\langle \\phi_h(y_1, \\dots, y_h),
               \\theta_h \\rangle .

    ``features_fn(prefix_BxH, t_B, candidate_V) -> [B, V, D]`` must be a pure, traceable
    function returning ``phi_t(prefix[b, :t[b]], candidate[v])`` for each row ``b`` and
    candidate token ``v`` (0-based position ``t``); it must ignore ``prefix`` at positions
    ``>= t[b]``. Pass a module-level function or a hashable object (e.g.
    :func:`product_features`) so that compiled programs are reused. Features are cast to
    ``theta``'s dtype.

    Args:
      theta_HxD: [H, D] one parameter vector per position (``theta_h`` of Eq. 11).
      features_fn: feature map as above.
      vocab_size: ``V``.

    Returns:
      An :class:`ARModel` with ``params = theta_HxD``.

    Raises:
      ValueError: "malformed features" when ``features_fn`` does not return ``[B, V, D]``
        with ``D = theta_HxD.shape[1]``; or bad ``theta_HxD`` / ``vocab_size``.

    References:
      Huang et al. (ICLR 2025), Eq. 11 and Prop E.1.

    Example:
      >>> import jax.numpy as jnp
      >>> m = linear_softmax_ar(jnp.zeros((3, 39)), product_features(3), vocab_size=2)
      >>> m.horizon
      3
    """
    vocab_size = _checks.check_static_int(vocab_size, "vocab_size", minimum=1)
    theta = jnp.asarray(theta_HxD)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.zeros(()).dtype)
    if theta.ndim != 2 or theta.shape[0] < 1:
        raise ValueError(f"theta_HxD must have shape [H, D] with H >= 1, got {theta.shape}")
    horizon, dim = theta.shape
    try:
        out = jax.eval_shape(
            features_fn,
            jax.ShapeDtypeStruct((1, horizon), jnp.int32),
            jax.ShapeDtypeStruct((1,), jnp.int32),
            jax.ShapeDtypeStruct((vocab_size,), jnp.int32),
        )
    except Exception as err:  # any tracing failure means the map does not fit these shapes
        raise ValueError(
            f"malformed features: features_fn failed on [1, {horizon}]: {err}"
        ) from err
    if getattr(out, "shape", None) != (1, vocab_size, dim):
        raise ValueError(
            f"malformed features: features_fn must return [B, V, D] = [1, {vocab_size}, {dim}] "
            f"to match theta_HxD of shape {theta.shape}, got {getattr(out, 'shape', out)}"
        )
    return ARModel(LinearSoftmaxNext(features_fn, vocab_size), theta, vocab_size, horizon)


@dataclasses.dataclass(frozen=True)
class ProductFeatures:
    """Products of up to ``order`` signed tokens (Prop E.1): see :func:`product_features`."""

    order: int = 3

    def dim(self, horizon: int) -> int:
        """Feature dimension ``D = H + H^2 + ... + H^order``."""
        return sum(horizon**k for k in range(1, self.order + 1))

    def __call__(self, prefix_BxH, t_B, candidate_V):
        horizon = prefix_BxH.shape[1]
        pos_H = jnp.arange(horizon, dtype=jnp.int32)
        t_Bx1 = t_B.astype(jnp.int32)[:, None]
        tokens_BxVxH = jnp.where(
            (pos_H[None, :] == t_Bx1)[:, None, :],
            candidate_V.astype(jnp.int32)[None, :, None],
            prefix_BxH.astype(jnp.int32)[:, None, :],
        )
        signed = (2 * tokens_BxVxH - 1).astype(jnp.zeros(()).dtype)
        s_BxVxH = jnp.where((pos_H[None, :] <= t_Bx1)[:, None, :], signed, 0.0)
        batch, vocab = s_BxVxH.shape[:2]
        feats, term = [s_BxVxH], s_BxVxH
        for _ in range(self.order - 1):
            term = (term[..., :, None] * s_BxVxH[..., None, :]).reshape(batch, vocab, -1)
            feats.append(term)
        return jnp.concatenate(feats, axis=-1)


def product_features(order: int = 3) -> ProductFeatures:
    """Singles, ordered pairs, ordered triples ... of signed tokens (Prop E.1).

    Token ids ``{0, 1}`` map to ``s = 2 y - 1 in {-1, +1}``; the features of position ``t``
    (0-based, candidate ``y_t`` in place) are

    .. math::  (s_i)_{i},\\ (s_i s_j)_{i,j},\\ (s_i s_j s_k)_{i,j,k}, \\qquad s_i = 0 \\ (i > t),

    flattened in row-major order (coordinate ``e_{(i,j,k)}`` sits at ``H + H^2 + (i H + j) H + k``
    for ``order = 3``), ``D = H + H^2 + H^3``. Meant for ``V = 2``.

    Args:
      order: highest product order (``>= 1``).

    Returns:
      A hashable ``features_fn(prefix_BxH, t_B, candidate_V) -> [B, V, D]``.
    """
    return ProductFeatures(_checks.check_static_int(order, "order", minimum=1))


# --------------------------------------------------------------------------------------------
# Sequence log-probabilities and exact enumeration


def _sequence_logprob_impl(next_logprobs, params, tokens_BxH):
    batch, horizon = tokens_BxH.shape

    def step(total_B, t):
        logp_BxV = next_logprobs(params, tokens_BxH, jnp.full((batch,), t, jnp.int32))
        tok_B = jax.lax.dynamic_index_in_dim(tokens_BxH, t, axis=1, keepdims=False)
        return total_B + jnp.take_along_axis(logp_BxV, tok_B[:, None], axis=1)[:, 0], None

    dtype = jax.eval_shape(next_logprobs, params, tokens_BxH, jnp.zeros((batch,), jnp.int32)).dtype
    total_B, _ = jax.lax.scan(
        step, jnp.zeros((batch,), dtype), jnp.arange(horizon, dtype=jnp.int32)
    )
    return total_B


_sequence_logprob_jit = jax.jit(_sequence_logprob_impl, static_argnums=0)


def _check_tokens(model: ARModel, tokens: Any, name: str) -> jax.Array:
    arr = jnp.asarray(tokens)
    if arr.ndim != 2 or arr.shape[1] != model.horizon:
        raise ValueError(f"{name} must have shape [B, {model.horizon}], got {arr.shape}")
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if _checks.is_concrete(arr) and arr.size:
        host = np.asarray(arr)
        if host.min() < 0 or host.max() >= model.vocab_size:
            raise ValueError(
                f"{name} must hold ids in [0, {model.vocab_size}), got range "
                f"[{host.min()}, {host.max()}]"
            )
    return arr.astype(jnp.int32)


def sequence_logprob(model: ARModel, tokens_BxH: jax.typing.ArrayLike) -> jax.Array:
    """Sequence log-probability ``log pi(y_{1:H}) = sum_t log pi_t(y_t | y_{<t})``.

    One jitted pass: ``lax.scan`` over positions, each step one batched ``next_logprobs`` call.

    Args:
      model: an :class:`ARModel`.
      tokens_BxH: [B, H] int token ids in ``[0, V)``.

    Returns:
      [B] log-probabilities (``-inf`` for zero-probability sequences).

    Example:
      >>> import jax.numpy as jnp
      >>> m = tabular_ar_from_table(jnp.log(jnp.full((3, 2), 0.5)), vocab_size=2, horizon=2)
      >>> [round(float(v), 4) for v in sequence_logprob(m, jnp.array([[0, 1]]))]
      [-1.3863]
    """
    tokens = _check_tokens(model, tokens_BxH, "tokens_BxH")
    return _sequence_logprob_jit(model.next_logprobs, model.params, tokens)


def _all_sequences(vocab_size: int, horizon: int) -> jax.Array:
    """[V^H, H] every sequence in lexicographic order (position 0 most significant)."""
    idx_S = jnp.arange(vocab_size**horizon, dtype=jnp.int32)
    powers_H = jnp.asarray([vocab_size ** (horizon - 1 - h) for h in range(horizon)], jnp.int32)
    return (idx_S[:, None] // powers_H[None, :]) % vocab_size


def _enumerate_impl(next_logprobs, vocab_size, horizon, params):
    tokens_SxH = _all_sequences(vocab_size, horizon)
    size = tokens_SxH.shape[0]
    if size <= _ENUM_CHUNK:
        return tokens_SxH, _sequence_logprob_impl(next_logprobs, params, tokens_SxH)
    num_chunks = -(-size // _ENUM_CHUNK)
    padded = jnp.pad(tokens_SxH, ((0, num_chunks * _ENUM_CHUNK - size), (0, 0)))
    chunks_CxKxH = padded.reshape(num_chunks, _ENUM_CHUNK, horizon)
    logp_CxK = jax.lax.map(
        lambda tok_KxH: _sequence_logprob_impl(next_logprobs, params, tok_KxH), chunks_CxKxH
    )
    return tokens_SxH, logp_CxK.reshape(-1)[:size]


_enumerate_jit = jax.jit(_enumerate_impl, static_argnums=(0, 1, 2))


def enumerate_sequences(model: ARModel, *, max_sequences: int = 2**20):
    """All ``V^H`` sequences with their exact log-probabilities (vectorized, chunked).

    Sequences come in lexicographic order (position 0 most significant, so row ``i`` is the
    base-V expansion of ``i``); log-probs are computed ``2^14`` sequences at a time.

    Args:
      model: an :class:`ARModel` (its ``params`` may be traced, e.g. under ``vmap``).
      max_sequences: refuse larger spaces.

    Returns:
      ``(tokens_SxH, logprob_S)``: [S, H] int32 and [S] float, ``S = V^H``.

    Raises:
      ValueError: naming ``vocab_size`` and ``horizon`` when ``V^H > max_sequences``.

    Example:
      >>> import jax.numpy as jnp
      >>> m = tabular_ar_from_table(jnp.log(jnp.full((3, 2), 0.5)), vocab_size=2, horizon=2)
      >>> tok, lp = enumerate_sequences(m)
      >>> tok.tolist(), jnp.exp(lp).tolist()
      ([[0, 0], [0, 1], [1, 0], [1, 1]], [0.25, 0.25, 0.25, 0.25])
    """
    max_sequences = _checks.check_static_int(max_sequences, "max_sequences")
    size = model.vocab_size**model.horizon
    if size > max_sequences:
        raise ValueError(
            f"cannot enumerate vocab_size={model.vocab_size}, horizon={model.horizon}: "
            f"V^H = {size} sequences exceeds max_sequences={max_sequences}"
        )
    return _enumerate_jit(model.next_logprobs, model.vocab_size, model.horizon, model.params)


def argmax_set(logprob_S: jax.typing.ArrayLike, *, atol: float = 0.0) -> jax.Array:
    """Mask of the sequence argmax set ``{y : log pi(y) >= max log pi - atol}``.

    ``atol = 0`` gives exact ties only (compare in float64 where ties matter, THEORY §4.6).

    Args:
      logprob_S: [S] log-probabilities (e.g. from :func:`enumerate_sequences`).
      atol: non-negative slack in log-space.

    Returns:
      [S] bool mask.

    Example:
      >>> import jax.numpy as jnp
      >>> argmax_set(jnp.array([-1.0, -0.5, -0.5])).tolist()
      [False, True, True]
    """
    if _checks.is_concrete(atol) and not float(atol) >= 0.0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    logp = jnp.asarray(logprob_S)
    if logp.ndim != 1 or logp.shape[0] == 0:
        raise ValueError(f"logprob_S must have shape [S] with S >= 1, got {logp.shape}")
    return logp >= jnp.max(logp) - atol

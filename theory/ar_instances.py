"""Autoregressive constructions of the paper (App. E, App. G) as :class:`sharpen.autoregressive.ARModel`.

| constructor | result | what it shows |
|---|---|---|
| :func:`greedy_tightness_instance` | Prop 3.1 (tightness) | greedy misses a sequence argmax of mass ``1/2 - eta`` |
| :func:`maxcut_instance` | Prop E.1 | the sequence argmax of a 3-layer-deep linear softmax model is a maximum cut |
| :func:`non_closure_instance` | Prop E.2 | no model of the class puts > 1/2 on the base argmax ``(2, 1)`` |

Each model is a pure ``next_logprobs(params, prefix_BxH, t_B)`` with its arrays in ``params``
(never closed over), so the decoders and the exact mode finder of :mod:`sharpen` run on them
unchanged. Token ids are 0-based; the paper's 1-based tokens are ``id + 1`` and its ``{-1, +1}``
tokens of Prop E.1 are ``2 * id - 1``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sharpen import _checks
from sharpen.autoregressive import ARModel


def _greedy_tightness_logprobs(params, prefix_BxH, t_B):
    first_V, after_a_V, after_b_V = params
    rows = jnp.where((prefix_BxH[:, :1] == 0), after_a_V[None], after_b_V[None])
    return jnp.where((t_B == 0)[:, None], first_V[None], rows)


def greedy_tightness_instance(eta: float = 0.1) -> ARModel:
    """The Prop 3.1 tightness instance: greedy decoding misses the sequence argmax.

    ``V = {a, b}`` (ids 0, 1), ``H = 2``: ``pi(a) = 1/2 + eta``, ``pi(. | a)`` uniform and
    ``pi(b | b) = 1``. The argmax ``(b, b)`` has mass ``1/2 - eta``; each ``(a, .)`` has
    ``(1/2 + eta)/2 < 1/2 - eta`` when ``eta < 1/6``, yet greedy picks ``a`` first.

    Args:
      eta: in (0, 1/6).

    Returns:
      :class:`ARModel` with ``vocab_size = horizon = 2``.

    References:
      Huang et al. (2025), Prop 3.1 and its tightness remark (App. G); THEORY §5.3 S2.
    """
    if not 0 < eta < 1 / 6:
        raise ValueError(
            f"eta must lie in (0, 1/6) for (b, b) to be the unique argmax, got {eta!r}"
        )
    params = (
        jnp.log(jnp.array([0.5 + eta, 0.5 - eta])),
        jnp.log(jnp.array([0.5, 0.5])),
        jnp.log(jnp.array([0.0, 1.0])),
    )
    return ARModel(_greedy_tightness_logprobs, params, 2, 2)


def _maxcut_logprobs(params, prefix_BxH, t_B):
    adjacency_NxN, kappa, scale = params
    num_vertices = adjacency_NxN.shape[0]
    spins_BxH = 2.0 * prefix_BxH.astype(adjacency_NxN.dtype) - 1.0  # ids {0, 1} -> {-1, +1}
    s_N = spins_BxH[:, :num_vertices]
    # Logit of y_{H-1} is y_{H-1} * kappa * s with s = -sum_ij A_ij y_i y_j = 4 cut - 2|E|.
    field_B = -jnp.einsum("bi,ij,bj->b", s_N, adjacency_NxN, s_N)
    penultimate_B2 = kappa * field_B[:, None] * jnp.array([-1.0, 1.0])[None]
    # Logit of y_H is scale * y_H * (y_{H-1} + 1): y_H = +1 is near-certain after y_{H-1} = +1.
    last_B2 = scale * (spins_BxH[:, num_vertices] + 1.0)[:, None] * jnp.array([-1.0, 1.0])[None]
    logits = jnp.where(
        (t_B < num_vertices)[:, None],
        jnp.zeros_like(last_B2),
        jnp.where((t_B == num_vertices)[:, None], penultimate_B2, last_B2),
    )
    return jax.nn.log_softmax(logits, axis=-1)


def maxcut_instance(adjacency, *, kappa: float = 0.05, scale: float | None = None) -> ARModel:
    """The Prop E.1 reduction from MAX-CUT: the sequence argmax encodes a maximum cut.

    With ``G`` on ``H - 2`` vertices and an odd number of edges: tokens ``1..H-2`` are uniform,

    .. math::  \\pi(y_{H-1} | y_{<H-1}) \\propto \\exp(\\kappa\\, y_{H-1} s),\\quad
               s=-\\sum_{i,j}A_{ij}y_iy_j = 4\\,{\\rm cut}(y_{1:H-2})-2|E|,
    .. math::  \\pi(y_H | y_{<H}) \\propto \\exp(B\\, y_H (y_{H-1}+1)),\\quad B = H,

    in ``{-1, +1}`` tokens. This is the multi-layer linear softmax model of Eq. 11 with
    ``theta_{H-1} = kappa sum_ij J_ij e_(i,j,H-1)``, ``J = -A`` and
    ``theta_H = B (e_(H-1,H) + e_H)``. Every sequence argmax has ``y_{H-1} = y_H = +1`` and a
    maximum-cut prefix (a cut and its complement tie). ``kappa = 1`` is the paper's scale; the
    default ``kappa = 0.05`` keeps the argmax structure (it needs only
    ``sigma(4 kappa) sigma(4 B) > 1/2``) while the gap between a maximum and a near-maximum cut
    stays resolvable in float32 (THEORY §4.6, numerical caution).

    Args:
      adjacency: [H-2, H-2] symmetric 0/1 matrix with zero diagonal and an odd number of edges.
      kappa: scale of ``theta_{H-1}``, > 0.
      scale: ``B`` (default ``H``).

    Returns:
      :class:`ARModel` over ``{0, 1}^H``.

    References:
      Huang et al. (2025), Prop E.1 (App. E.1); THEORY §4.6 and §8 item 6.
    """
    adjacency = jnp.asarray(adjacency, float)
    n = adjacency.shape[0] if adjacency.ndim == 2 else -1
    if adjacency.ndim != 2 or adjacency.shape != (n, n) or n < 2:
        raise ValueError(
            f"adjacency must be a square [n, n] matrix with n >= 2, got {adjacency.shape}"
        )
    if _checks.is_concrete(adjacency):
        sym = bool(jnp.all(adjacency == adjacency.T))
        binary = bool(jnp.all((adjacency == 0) | (adjacency == 1)))
        if not (sym and binary) or bool(jnp.any(jnp.diag(adjacency) != 0)):
            raise ValueError("adjacency must be symmetric, 0/1, with a zero diagonal")
        edges = int(jnp.sum(adjacency)) // 2
        if edges % 2 == 0:
            raise ValueError(
                f"the reduction needs an odd number of edges (so |s| >= 2), got {edges}"
            )
    _checks.check_positive(kappa, "kappa")
    horizon = n + 2
    scale = float(horizon) if scale is None else scale
    _checks.check_positive(scale, "scale")
    params = (adjacency, jnp.asarray(kappa, float), jnp.asarray(scale, float))
    return ARModel(_maxcut_logprobs, params, 2, horizon)


def cut_values(adjacency, tokens_SxN) -> jax.Array:
    """Cut value of each assignment (ids {0, 1} per vertex): number of edges across the cut."""
    adjacency = jnp.asarray(adjacency, float)
    side = tokens_SxN.astype(adjacency.dtype)
    across = side[:, :, None] != side[:, None, :]
    return jnp.sum(jnp.where(across, adjacency[None], 0.0), axis=(1, 2)) / 2.0


def _non_closure_logprobs(params, prefix_BxH, t_B):
    theta1_2, theta2_2, n_tokens = params
    vocab = jnp.arange(n_tokens.shape[0])
    # Position 1: phi_1(1) = phi_1(2) = e_1, phi_1(i >= 3) = e_2 (paper tokens are id + 1).
    first_V = jnp.where(vocab < 2, theta1_2[0], theta1_2[1])
    # Position 2: phi_2(2, 1) = e_1, phi_2(2, j != 1) = e_2, phi_2(i != 2, .) = 0.
    after_two_V = jnp.where(vocab == 0, theta2_2[0], theta2_2[1])
    second_BxV = jnp.where(
        (prefix_BxH[:, :1] == 1), after_two_V[None], jnp.zeros_like(after_two_V)[None]
    )
    logits = jnp.where((t_B == 0)[:, None], first_V[None], second_BxV)
    return jax.nn.log_softmax(logits, axis=-1)


def non_closure_instance(
    *, n: int = 1000, B: float | None = None, theta1=None, theta2=None
) -> ARModel:
    """The Prop E.2 class member ``pi_theta`` (``theta_1 = theta_2 = B e_1`` by default).

    ``V = [n]``, ``H = d = 2``, features ``phi_1(1) = phi_1(2) = e_1``, ``phi_1(i) = e_2`` for
    ``i >= 3``; ``phi_2(2, 1) = e_1``, ``phi_2(2, j) = e_2`` for ``j != 1``, ``phi_2(i, .) = 0``
    for ``i != 2``. Tokens 1 and 2 share their first-position feature, so *every* member has
    ``pi(1) = pi(2)`` at position 1 and hence ``pi(2, 1) <= 1/2``: the class cannot represent a
    model sharpened towards its own argmax ``(2, 1)``, at any norm bound. With ``n = 1000`` and
    ``B = log n + 2``: ``pi(2, 1) ≈ 0.413``, ``pi(1, j) ≈ 4.7e-4``, ``pi(2, j != 1) ≈ 5.6e-5``.

    Args:
      n: vocabulary size (>= 3).
      B: norm of the default parameters (default ``log n + 2``).
      theta1, theta2: optional [2] parameters of another member of the class.

    Returns:
      :class:`ARModel` over ``[n]^2`` (ids 0..n-1 for the paper's tokens 1..n).

    References:
      Huang et al. (2025), Prop E.2 (App. E.2); THEORY §4.6.
    """
    _checks.check_static_int(n, "n", minimum=3)
    B = math.log(n) + 2.0 if B is None else B
    theta1 = jnp.array([B, 0.0]) if theta1 is None else jnp.asarray(theta1, float)
    theta2 = jnp.array([B, 0.0]) if theta2 is None else jnp.asarray(theta2, float)
    if theta1.shape != (2,) or theta2.shape != (2,):
        raise ValueError(
            f"theta1 and theta2 must have shape (2,), got {theta1.shape}, {theta2.shape}"
        )
    # n enters as the length of a dummy array so the vocabulary size is static under jit.
    params = (theta1.astype(float), theta2.astype(float), jnp.zeros(n))
    return ARModel(_non_closure_logprobs, params, n, 2)

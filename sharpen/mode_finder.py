"""Exact sequence mode of an autoregressive model by best-first search.

The sharpening target is the sequence argmax (THEORY §1.3)

.. math::

    \\mathbf y^\\star = \\arg\\max_{y_{1:H} \\in \\mathcal V^H} \\log \\pi(y_{1:H}),
    \\qquad \\log \\pi(y_{1:H}) = \\sum_{h=1}^{H} \\log \\pi(y_h \\mid y_{1:h-1}),

a *set* (ties allowed). Greedy decoding does not find it (Prop. E.2) and for general model classes
computing it is NP-hard (Prop. E.1, THEORY §4.6), so no search is polynomial in the worst case.
What :func:`find_modes` offers is exactness without enumerating ``V^H`` sequences whenever the
model is peaked: the log-probability of a prefix upper-bounds that of every completion (each
appended token adds a term ``<= 0``), so a best-first (uniform-cost / A* with the zero heuristic)
search over prefixes can stop as soon as its best open bound falls below the best complete
sequence it has seen, and the set of complete sequences at that level is certified.

The model is any object with the fields of ``sharpen.autoregressive.ARModel``
(``next_logprobs(params, prefix_BxH, t_B) -> [B, V]``, ``params``, ``vocab_size``, ``horizon``):
a tabular model in tests, a transformer later. Only next-token log-probabilities are queried.
"""

from __future__ import annotations

import heapq
import math
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from sharpen import _checks

__all__ = ["ModeResult", "find_modes"]


class ModeResult(NamedTuple):
    """Result of :func:`find_modes`.

    Attributes:
      sequences: ``[k, H]`` int32, every sequence whose log-probability is within ``atol`` of the
        best one found, sorted lexicographically (``k = 0`` only when the budget ran out before
        any complete sequence was reached, or every sequence has probability 0).
      logprob: float64 log-probability of the best sequence found (``-inf`` when ``k = 0``).
      certificate: the largest upper bound left on the frontier when the search stopped
        (``-inf`` for an empty frontier). Every sequence not in ``sequences`` has log-probability
        ``<= max(certificate, logprob - atol)``; with ``exact=True``, ``certificate < logprob - atol``
        (or the frontier is empty), which proves that ``sequences`` is the full argmax set.
      expansions: number of prefixes whose next-token distribution was queried.
      exact: ``False`` when ``node_budget`` ran out first; the result is then the best found so
        far and ``max(certificate, logprob)`` is a valid upper bound on the true maximum.
    """

    sequences: np.ndarray
    logprob: float
    certificate: float
    expansions: int
    exact: bool


_JIT_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _jitted(fn: Callable) -> Callable:
    """``jax.jit(fn)``, memoized per function so repeated searches reuse one compilation."""
    try:
        return _JIT_CACHE[fn]
    except KeyError:
        jitted = jax.jit(fn)
        _JIT_CACHE[fn] = jitted
        return jitted
    except TypeError:  # not weak-referenceable (e.g. some builtins); jax still caches by fun
        return jax.jit(fn)


def find_modes(
    model: Any,
    *,
    node_budget: int = 10**6,
    batch_size: int = 256,
    atol: float = 0.0,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> ModeResult:
    """All sequence modes ``argmax_y log pi(y)`` of an autoregressive model, exactly.

    Best-first search over prefixes with a priority queue keyed on the prefix log-probability
    :math:`\\log\\pi(y_{1:t}) \\ge \\log\\pi(y_{1:H})`, an admissible bound because every
    next-token log-probability is ``<= 0``. Nodes are expanded in batches: the up-to
    ``batch_size`` best open prefixes whose bound can still reach the best complete log-probability
    (minus ``atol``) are padded to a fixed ``[batch_size, H]`` array and sent through ONE jitted
    ``model.next_logprobs`` call (params passed as an argument, so it compiles once per shape);
    their children are pushed unless they already fall below the best complete sequence. A batch
    may expand nodes that a one-at-a-time search would have skipped; that costs expansions, never
    correctness. Complete sequences are popped in order of log-probability; the search stops when
    the best open bound is ``< best - atol``, so every tie is collected.

    Log-probabilities are accumulated on the host in float64, left to right, from the device
    values cast to float64, so ties are compared exactly as the device computed them
    (``atol=0.0`` means exact equality of those sums).

    Complexity: with ``E`` expansions (at most ``(V^H - 1)/(V - 1)``, the number of proper
    prefixes, and far fewer for peaked models) the search makes ``ceil(E / batch_size)`` device
    calls and ``O(E V log(E V))`` host heap work, holding ``O(E V)`` prefixes in memory. No
    polynomial bound exists in general (sequence argmax is NP-hard, Prop. E.1).

    Args:
      model: an ``ARModel``-like object: ``next_logprobs(params, prefix [B, H] int32, t [B]
        int32) -> [B, V]`` giving ``log pi(y_t = v | prefix[b, :t[b]])`` (0-based ``t``; entries
        at positions ``>= t[b]`` ignored), ``params`` (pytree), ``vocab_size`` (V), ``horizon``
        (H). The returned log-probabilities must be ``<= 0`` (``-inf`` allowed).
      node_budget: maximum number of prefixes to expand (``>= 1``). When it runs out the
        function does not raise: it returns ``exact=False`` with the best sequences found so
        far and the frontier bound that could not be closed as ``certificate``.
      batch_size: prefixes per device call (``>= 1``); fixes the compiled batch shape.
      atol: non-negative slack; sequences with log-probability ``>= best - atol`` count as ties.
      eos_id: an absorbing end token, or ``None``. When set, a child ending in ``eos_id`` is
        complete at once: it is filled to length ``H`` with ``pad_id`` and keeps its
        log-probability. This is exact only for models whose continuation after ``eos_id`` is
        ``pad_id`` with probability 1 (as :func:`sharpen.lm.ar_adapter.lm_ar_model`); it
        saves the ``H - t`` deterministic expansions (and, batched, the ``H - t`` device calls)
        that would otherwise walk every ended response to the horizon, so a certified search
        needs about as many device calls as the mode has tokens, not ``H``.
      pad_id: the filler after ``eos_id``.

    Returns:
      A :class:`ModeResult` (``sequences [k, H]``, ``logprob``, ``certificate``, ``expansions``,
      ``exact``).

    Raises:
      ValueError: bad ``node_budget``, ``batch_size``, ``atol`` or model fields, or a model that
        returns a log-probability that is NaN or ``> 0`` or has the wrong shape.

    References:
      Huang et al., "Self-Improvement in Language Models: The Sharpening Mechanism", ICLR 2025,
      §1.3 (the argmax set ``y*``), App. E (Props. E.1, E.2); THEORY §1.3, §4.6.

    Example:
      >>> import jax.numpy as jnp
      >>> from types import SimpleNamespace
      >>> table = jnp.log(jnp.array([[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]]))  # root, after 0, after 1
      >>> def next_logprobs(params, prefix, t):
      ...     return params[jnp.where(t == 0, 0, prefix[:, 0] + 1)]
      >>> m = SimpleNamespace(next_logprobs=next_logprobs, params=table, vocab_size=2, horizon=2)
      >>> res = find_modes(m, batch_size=2)
      >>> res.sequences.tolist(), res.exact   # 0.4 * 0.9 = 0.36 beats 0.6 * 0.5 = 0.30
      ([[1, 0]], True)
    """
    node_budget = _checks.check_static_int(node_budget, "node_budget")
    batch_size = _checks.check_static_int(batch_size, "batch_size")
    atol = _checks.finite_float(atol, "atol")
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    vocab_size = _checks.check_static_int(model.vocab_size, "model.vocab_size")
    horizon = _checks.check_static_int(model.horizon, "model.horizon")
    for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
        if (
            value is not None
            and not 0 <= _checks.check_static_int(value, name, minimum=0) < vocab_size
        ):
            raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size}), got {value!r}")
    ending = None if eos_id is None else (int(eos_id), int(pad_id), horizon)
    next_logprobs = _jitted(model.next_logprobs)

    # Heap entries (-logprob, prefix): ties in log-probability pop in lexicographic order.
    frontier: list[tuple[float, tuple[int, ...]]] = [(-0.0, ())]
    complete: list[tuple[float, tuple[int, ...]]] = []
    best = -math.inf
    expansions = 0
    prefix_BxH = np.zeros((batch_size, horizon), np.int32)
    t_B = np.zeros((batch_size,), np.int32)
    while frontier and -frontier[0][0] >= best - atol:
        batch: list[tuple[float, tuple[int, ...]]] = []
        while frontier and len(batch) < batch_size and -frontier[0][0] >= best - atol:
            neg_lp, seq = frontier[0]
            if len(seq) == horizon:  # popped in order: no open bound exceeds it right now
                heapq.heappop(frontier)
                complete.append((-neg_lp, seq))
                best = max(best, -neg_lp)
            elif expansions + len(batch) < node_budget:
                batch.append(heapq.heappop(frontier))
            else:
                break
        if not batch:  # either done (loop condition fails) or the budget is spent
            break
        expansions += len(batch)
        _expand(
            batch,
            next_logprobs,
            model.params,
            vocab_size,
            prefix_BxH,
            t_B,
            frontier,
            best - atol,
            ending,
        )
    exact = not (frontier and -frontier[0][0] >= best - atol)
    certificate = -frontier[0][0] if frontier else -math.inf
    modes = sorted(seq for lp, seq in complete if lp >= best - atol)
    sequences = np.asarray(modes, np.int32).reshape(len(modes), horizon)
    return ModeResult(sequences, float(best), float(certificate), expansions, exact)


def _expand(
    batch, next_logprobs, params, vocab_size, prefix_BxH, t_B, frontier, threshold, ending
) -> None:
    """Query one padded batch of prefixes and push the children that can still reach a mode.

    ``ending = (eos_id, pad_id, H)`` completes children that end in ``eos_id`` (see
    :func:`find_modes`); ``None`` pushes every child as it is.
    """
    n = len(batch)
    prefix_BxH[:] = 0
    t_B[:] = 0
    for b, (_, seq) in enumerate(batch):
        prefix_BxH[b, : len(seq)] = seq
        t_B[b] = len(seq)
    out = next_logprobs(params, prefix_BxH, t_B)
    logp_BxV = np.asarray(out, dtype=np.float64)
    if logp_BxV.shape != (len(t_B), vocab_size):
        raise ValueError(
            f"model.next_logprobs must return shape [batch_size, vocab_size] = "
            f"{(len(t_B), vocab_size)}, got {logp_BxV.shape}"
        )
    logp_nxV = logp_BxV[:n]
    bad = np.isnan(logp_nxV) | (logp_nxV > 0)
    if bad.any():
        b, v = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            "model.next_logprobs must return log-probabilities <= 0 (the search bound relies on "
            f"it); got {logp_nxV[b, v]!r} for token {v} after prefix {batch[b][1]}"
        )
    parent_n = np.array([-neg_lp for neg_lp, _ in batch], np.float64)
    child_nxV = parent_n[:, None] + logp_nxV  # same left-to-right float64 sum as any brute force
    keep = (child_nxV >= threshold) & (child_nxV > -np.inf)
    for b, v in zip(*np.nonzero(keep), strict=True):
        child = (*batch[b][1], int(v))
        if ending is not None and v == ending[0]:
            child += (ending[1],) * (ending[2] - len(child))
        heapq.heappush(frontier, (-float(child_nxV[b, v]), child))

"""Tests for :mod:`sharpen.mode_finder`: exact agreement with brute-force enumeration.

The brute force sums the model's own table entries in float64, left to right, exactly as
:func:`find_modes` accumulates the device values, so argmax sets are compared with ``==`` on
log-probabilities (no tolerance): a constructed tie is a tie in both.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest

from sharpen.autoregressive import (
    enumerate_sequences,
    num_prefixes,
    tabular_ar,
    tabular_ar_from_table,
)
from sharpen.mode_finder import ModeResult, find_modes
from tests import tolerances

# (V, H) grids kept few so each shape compiles once; V^H <= 2187 so flat models stay cheap.
SMALL_SHAPES = [(2, 6), (2, 10), (3, 5), (3, 7), (4, 4), (4, 5)]
CONCENTRATIONS = [0.05, 0.2, 1.0, 5.0, 100.0]
MODELS_PER_CELL = 17  # 6 shapes x 5 concentrations x 17 = 510 random models
BATCH = 64


def brute_force(model) -> np.ndarray:
    """[V^H] float64 log-probs of all sequences, lexicographic order, summed left to right."""
    table = np.asarray(model.params["logp_PxV"], np.float64)
    V, H = model.vocab_size, model.horizon
    lp = np.zeros(1)
    for t in range(H):
        start = num_prefixes(V, t)
        lp = (lp[:, None] + table[start : start + V**t]).reshape(-1)
    return lp


def index_to_seq(idx: np.ndarray, V: int, H: int) -> np.ndarray:
    powers = V ** np.arange(H - 1, -1, -1)
    return (idx[:, None] // powers[None, :]) % V


def argmax_seqs(lp: np.ndarray, V: int, H: int, atol: float = 0.0) -> np.ndarray:
    return index_to_seq(np.flatnonzero(lp >= lp.max() - atol), V, H).astype(np.int32)


def with_tie(model, rng: np.random.Generator):
    """A copy of ``model`` whose argmax set has >= 2 sequences, exactly (no rounding slack).

    On the argmax path ``y`` pick a depth ``t`` and a sibling ``b`` of ``a = y[t]``; copy the
    subtree under ``y[:t] a`` onto ``y[:t] b`` and give ``b`` the very same conditional entry as
    ``a``. Where ``pi(b | y[:t]) <= pi(a | y[:t]) <= 1/2`` (and V >= 3) the other entries of that row
    are scaled down and ``a``'s entry is left bit-identical, so ``y`` keeps its log-prob; otherwise the tie is
    made at ``t = 0`` with ``pi(a) = pi(b)`` and the remaining first tokens made unlikely enough.
    """
    V, H = model.vocab_size, model.horizon
    dtype = np.asarray(model.params["logp_PxV"]).dtype
    table = np.asarray(model.params["logp_PxV"], np.float64).copy()
    lp = brute_force(model)
    y = index_to_seq(np.array([int(np.argmax(lp))]), V, H)[0]
    rows = [
        num_prefixes(V, t) + sum(int(y[s]) * V ** (t - 1 - s) for s in range(t)) for t in range(H)
    ]
    # depths where pi(a) <= 1/2 and a sibling b is no likelier: raising b to pi(a) takes mass
    # only from the other entries of the row
    half = np.log(0.5) - 1e-6
    lower = {
        t: [b for b in range(V) if b != y[t] and table[rows[t], b] <= table[rows[t], y[t]] <= half]
        for t in range(H)
    }
    deep = [t for t in range(H) if V >= 3 and lower[t]]
    t = int(rng.choice(deep)) if deep else 0
    a = int(y[t])
    b = int(rng.choice(lower[t])) if deep else int((a + 1 + rng.integers(V - 1)) % V)
    others = np.arange(V)[(np.arange(V) != a) & (np.arange(V) != b)]
    row = table[rows[t]]
    if deep:
        p_others = np.exp(row[others])
        row[others] = np.log(p_others * (1 - 2 * np.exp(row[a])) / p_others.sum())
    else:  # best sequence through a or b beats anything through the others (mass eps)
        eps = 0.1 * np.exp(lp.max() - row[a]) if V >= 3 else 0.0
        row[[a]] = np.log((1 - eps) / 2)
        row[others] = np.log(eps / len(others)) if V >= 3 else row[others]
    row[b] = row[a]
    i = rows[t] - num_prefixes(V, t)
    for k in range(H - t - 1):  # rows of the two subtrees at depth t + 1 + k
        start, width = num_prefixes(V, t + 1 + k), V**k
        src = start + (i * V + a) * width
        dst = start + (i * V + b) * width
        table[dst : dst + width] = table[src : src + width]
    return tabular_ar_from_table(table.astype(dtype), vocab_size=V, horizon=H)


def assert_matches_enumeration(model, res: ModeResult, atol: float = 0.0) -> None:
    V, H = model.vocab_size, model.horizon
    lp = brute_force(model)
    assert res.exact
    assert res.sequences.dtype == np.int32 and res.sequences.shape[1:] == (H,)
    np.testing.assert_array_equal(res.sequences, argmax_seqs(lp, V, H, atol))
    assert res.logprob == lp.max()
    assert res.certificate < res.logprob - atol or res.certificate == -np.inf


def test_agrees_with_enumeration_on_random_models():
    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    num, num_tied, ratios = 0, 0, []
    start = time.perf_counter()
    for s, (V, H) in enumerate(SMALL_SHAPES):
        for c, alpha in enumerate(CONCENTRATIONS):
            for r in range(MODELS_PER_CELL):
                model_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, s), c), r)
                model = tabular_ar(model_key, vocab_size=V, horizon=H, concentration=alpha)
                if r % 3 == 0:
                    model = with_tie(model, rng)
                atol = 0.5 if r % 6 == 5 else 0.0  # never on a with_tie model
                res = find_modes(model, batch_size=BATCH, atol=atol)
                assert_matches_enumeration(model, res, atol)
                num += 1
                num_tied += atol == 0.0 and len(res.sequences) > 1
                ratios.append(res.expansions / V**H)
    print(
        f"{num} random models ({num_tied} with exact ties), mean expansions/V^H = "
        f"{np.mean(ratios):.3f}, {time.perf_counter() - start:.1f} s"
    )
    assert num >= 500 and num_tied >= 180  # every with_tie model (r % 3 == 0)


@pytest.mark.parametrize(("V", "H"), [(2, 6), (3, 4), (4, 3)])
def test_uniform_model_returns_every_sequence(V, H):
    table = np.log(np.full((num_prefixes(V, H), V), 1.0 / V, tolerances.float_dtype()))
    model = tabular_ar_from_table(table, vocab_size=V, horizon=H)
    res = find_modes(model, batch_size=BATCH)
    assert_matches_enumeration(model, res)
    assert res.sequences.shape == (V**H, H)


def test_peaked_models_expand_few_prefixes():
    V, H, num_models = 4, 10, 4  # table generation (~1 s per model) dominates the time
    key = jax.random.key(1)
    ratios, ratios_1 = [], []
    for r in range(num_models):
        model = tabular_ar(jax.random.fold_in(key, r), vocab_size=V, horizon=H, concentration=0.1)
        res = find_modes(model)
        assert_matches_enumeration(model, res)
        ratios.append(res.expansions / V**H)
        res_1 = find_modes(model, batch_size=1)
        assert_matches_enumeration(model, res_1)
        ratios_1.append(res_1.expansions / V**H)
    # Measured (CPU, key 1): batch 256 expands 1621 of 4^10 = 1,048,576 (1.5e-3: the first
    # complete sequence is reached after ~10 batches, then everything is pruned); batch 1 ~1e-5.
    print(
        f"V=4, H=10, concentration 0.1: mean expansions / V^H = {np.mean(ratios):.2e} "
        f"(batch 256), {np.mean(ratios_1):.2e} (batch 1)"
    )
    assert np.mean(ratios) < 0.1 and np.mean(ratios_1) <= np.mean(ratios)


def test_logprob_matches_enumerate_sequences():
    model = tabular_ar(jax.random.key(2), vocab_size=3, horizon=5, concentration=0.5)
    _, logprob_S = enumerate_sequences(model)
    res = find_modes(model, batch_size=BATCH)
    tolerances.assert_close(res.logprob, np.max(np.asarray(logprob_S)), "composite")


@pytest.mark.parametrize("node_budget", [1, 3, 10, 40])
def test_budget_exhaustion_returns_valid_certificate(node_budget):
    V, H = 3, 6
    model = tabular_ar(jax.random.key(3), vocab_size=V, horizon=H, concentration=20.0)
    lp = brute_force(model)
    res = find_modes(model, node_budget=node_budget, batch_size=4)
    assert not res.exact
    assert res.expansions <= node_budget
    assert res.certificate >= lp.max()
    if len(res.sequences):  # best found so far: real sequences with the reported log-prob
        idx = res.sequences @ (V ** np.arange(H - 1, -1, -1))
        np.testing.assert_array_equal(lp[idx], res.logprob)
    else:
        assert res.logprob == -np.inf


def test_budget_exactly_sufficient_is_exact():
    model = tabular_ar(jax.random.key(4), vocab_size=2, horizon=4, concentration=1.0)
    full = find_modes(model, batch_size=1)
    again = find_modes(model, node_budget=full.expansions, batch_size=1)
    assert again.exact and again.expansions == full.expansions
    np.testing.assert_array_equal(again.sequences, full.sequences)


def test_second_call_does_not_recompile():
    base = tabular_ar(jax.random.key(5), vocab_size=2, horizon=5, concentration=1.0)
    traces = []

    def next_logprobs(params, prefix_BxH, t_B):
        traces.append(1)
        return base.next_logprobs(params, prefix_BxH, t_B)

    for r in range(3):
        m = tabular_ar(jax.random.key(10 + r), vocab_size=2, horizon=5, concentration=1.0)
        find_modes(m._replace(next_logprobs=next_logprobs), batch_size=8)
    assert len(traces) == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"node_budget": 0}, "node_budget"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"atol": -1.0}, "atol"),
        ({"atol": float("nan")}, "atol"),
        ({"eos_id": 2}, "eos_id"),
        ({"eos_id": 1, "pad_id": -1}, "pad_id"),
    ],
)
def test_validation_names_argument(kwargs, name):
    model = tabular_ar(jax.random.key(6), vocab_size=2, horizon=2, concentration=1.0)
    with pytest.raises(ValueError, match=name):
        find_modes(model, **kwargs)


def test_positive_logprobs_rejected():
    model = tabular_ar(jax.random.key(7), vocab_size=2, horizon=2, concentration=1.0)
    bad = model._replace(next_logprobs=lambda p, x, t: model.next_logprobs(p, x, t) + 1.0)
    with pytest.raises(ValueError, match="next_logprobs"):
        find_modes(bad)

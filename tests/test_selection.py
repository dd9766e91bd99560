"""Selection rules and LM-run analysis (:mod:`sharpen.selection`): property tests with fixed keys.

Monte-Carlo checks state their bound next to the assertion; everything else is exact.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from sharpen import selection as sel

# 99.9 % quantile of chi-square with 3 degrees of freedom (4 equally likely outcomes).
_CHI2_3DOF_999 = 16.27


def synthetic_run(
    *,
    models=("m0", "m1"),
    tasks=("t0", "t1"),
    seeds=(0, 1),
    num_prompts=12,
    n_max=8,
    correct_on_top=False,
    rng_seed=0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ``samples.csv`` / ``greedy.csv`` pair following the data contract.

    Correct responses get +3 nats; with ``correct_on_top`` every correct response has a higher
    ``sum_logprob`` than every incorrect one of the same prompt. Wrong answers come from four
    distractors, and ~10 % of wrong responses are unparseable.
    """
    rng = np.random.default_rng(rng_seed)
    shape = (len(models), len(tasks), len(seeds), num_prompts, n_max)
    p_correct = rng.uniform(0.05, 0.8, size=(*shape[:2], 1, num_prompts, 1))
    correct = rng.uniform(size=shape) < p_correct
    parsed = correct | (rng.uniform(size=shape) < 0.9)
    tokens = rng.integers(5, 60, size=shape)
    sum_lp = -0.5 * tokens + 3.0 * correct + rng.normal(size=shape)
    if correct_on_top:
        sum_lp = np.where(correct, 1.0 + rng.uniform(size=shape), -rng.uniform(size=shape))
    answer = np.where(correct, "42", np.char.add("w", rng.integers(0, 4, size=shape).astype(str)))
    idx = np.indices(shape).reshape(5, -1)
    samples = pd.DataFrame(
        {
            "model": np.asarray(models)[idx[0]],
            "task": np.asarray(tasks)[idx[1]],
            "seed": np.asarray(seeds)[idx[2]],
            "prompt_id": idx[3],
            "sample": idx[4],
            "sum_logprob": sum_lp.ravel(),
            "num_tokens": tokens.ravel(),
            "mean_logprob": (sum_lp / tokens).ravel(),
            "entropy": rng.uniform(0.1, 2.0, size=shape).ravel(),
            "self_certainty": rng.uniform(0.0, 5.0, size=shape).ravel(),
            "answer": np.where(parsed, answer, "").ravel(),
            "parsed": parsed.ravel().astype(int),
            "correct": correct.ravel().astype(int),
        }
    )
    gshape = (len(models), len(tasks), num_prompts)
    gidx = np.indices(gshape).reshape(3, -1)
    g_correct = (rng.uniform(size=gshape) < p_correct[:, :, 0, :, 0]).ravel()
    greedy = pd.DataFrame(
        {
            "model": np.asarray(models)[gidx[0]],
            "task": np.asarray(tasks)[gidx[1]],
            "prompt_id": gidx[2],
            "sum_logprob": -8.0 + rng.normal(size=g_correct.size),
            "num_tokens": 20,
            "answer": np.where(g_correct, "42", "w0"),
            "parsed": 1,
            "correct": g_correct.astype(int),
        }
    )
    return samples, greedy


# ----------------------------------------------------------------------------- selection rules


def test_bon_with_one_sample_is_that_sample():
    reward = jax.random.normal(jax.random.key(0), (50, 1))
    assert sel.select_bon(reward, key=jax.random.key(1)).tolist() == [0] * 50


def test_bon_picks_the_unique_maximum_and_never_nan():
    reward = jnp.array([[-3.0, -1.0, -2.0], [jnp.nan, -5.0, -9.0], [jnp.nan, jnp.nan, jnp.nan]])
    idx = sel.select_bon(reward, key=jax.random.key(0))
    assert idx.shape == (3,) and idx.dtype == jnp.int32
    assert idx[:2].tolist() == [1, 1] and 0 <= int(idx[2]) < 3


def test_bon_with_all_rewards_equal_is_uniform():
    num_prompts, n = 20_000, 4
    idx = sel.select_bon(jnp.zeros((num_prompts, n)), key=jax.random.key(3))
    counts = np.bincount(np.asarray(idx), minlength=n)
    expected = num_prompts / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < _CHI2_3DOF_999, (counts, chi2)


def test_bon_tie_break_is_uniform_among_the_maxima_only():
    num_prompts = 20_000
    row = jnp.array([0.0, -1.0, 0.0, 0.0, -2.0, 0.0])  # maxima at 0, 2, 3, 5
    idx = np.asarray(sel.select_bon(jnp.tile(row, (num_prompts, 1)), key=jax.random.key(4)))
    counts = np.bincount(idx, minlength=6)
    assert counts[1] == counts[4] == 0
    top = counts[[0, 2, 3, 5]]
    chi2 = ((top - num_prompts / 4) ** 2 / (num_prompts / 4)).sum()
    assert chi2 < _CHI2_3DOF_999, (counts, chi2)


def test_majority_picks_the_modal_parsed_answer():
    ids = jnp.array([[3, 5, 5, 3, 5, 7], [1, 9, 9, 9, 2, 2], [4, 4, 4, 8, 8, 0]])
    parsed = jnp.array([[1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]])
    for k in range(20):
        idx = np.asarray(sel.select_majority(ids, parsed, key=jax.random.key(k)))
        winners = np.asarray(ids)[np.arange(3), idx]
        # row 1: 9 is the most frequent id but unparsed; row 2: 4 likewise.
        assert winners.tolist() == [5, 2, 8]
        assert np.asarray(parsed)[np.arange(3), idx].all()


def test_majority_with_nothing_parsed_is_uniform_and_ties_split_evenly():
    num_prompts = 20_000
    ids = jnp.tile(jnp.array([1, 1, 1, 2]), (num_prompts, 1))
    idx = sel.select_majority(ids, jnp.zeros_like(ids), key=jax.random.key(5))
    counts = np.bincount(np.asarray(idx), minlength=4)
    chi2 = ((counts - num_prompts / 4) ** 2 / (num_prompts / 4)).sum()
    assert chi2 < _CHI2_3DOF_999, counts
    # Two answers with two votes each: each answer wins half the time. Binomial(20000, 1/2) has
    # sd 70.7; 5 sd = 354.
    ids = jnp.tile(jnp.array([6, 8, 8, 6]), (num_prompts, 1))
    idx = sel.select_majority(ids, jnp.ones_like(ids), key=jax.random.key(6))
    wins6 = int((np.asarray(ids)[np.arange(num_prompts), np.asarray(idx)] == 6).sum())
    assert abs(wins6 - num_prompts / 2) < 5 * math.sqrt(num_prompts / 4)


def test_select_majority_validates_inputs():
    with pytest.raises(ValueError, match="answer_ids_PxN"):
        sel.select_majority(jnp.zeros((2, 3)), jnp.ones((2, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="equal shapes"):
        sel.select_majority(jnp.zeros((2, 3), int), jnp.ones((2, 4)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="reward_PxN"):
        sel.select_bon(jnp.zeros((2, 0)), key=jax.random.key(0))


def test_pass_at_n_and_pass_at_k_match_enumeration():
    assert sel.pass_at_n(jnp.array([[0, 1, 0], [0, 0, 0]])).tolist() == [1.0, 0.0]
    n = 6
    for c in range(n + 1):
        correct = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(correct[i] for i in s) for s in subsets) / len(subsets)
            assert sel.pass_at_k(np.array([c]), n, k)[0] == pytest.approx(brute, abs=1e-15)
    with pytest.raises(ValueError, match="k"):
        sel.pass_at_k(np.array([1]), 4, 5)
    with pytest.raises(ValueError, match="num_correct"):
        sel.pass_at_k(np.array([5]), 4, 2)


# ----------------------------------------------------------------------------- lift and ranks


def test_relative_lift_guard_and_paper_example():
    lift = sel.relative_lift([0.33333, 0.5, 0.2, 0.0], [0.147, 0.0, np.nan, 0.0])
    assert lift[0] == pytest.approx(126.76, abs=0.01)  # Llama3.2-3B / Phys, Fig. 1(a)
    assert np.isnan(lift[1:]).all() and not np.isinf(lift).any()
    assert sel.absolute_lift(0.33, 0.147) == pytest.approx(18.3)


def _brute_auroc(s, y):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])


def test_auroc_equals_pair_count_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(5):
        s = np.round(rng.normal(size=60), 1)  # rounding makes ties
        y = (rng.uniform(size=60) < 0.4).astype(int)
        assert sel.auroc(s, y) == pytest.approx(_brute_auroc(s, y), abs=1e-12), trial
    assert sel.auroc([1.0, 1.0, 1.0], [1, 0, 1]) == 0.5
    assert np.isnan(sel.auroc([1.0, 2.0], [1, 1]))
    with pytest.raises(ValueError, match="labels"):
        sel.auroc([1.0, 2.0], [1, 2])


def test_quantile_and_dominance_gaps():
    s, y = np.array([-1.0, -2.0, -4.0, -6.0]), np.array([1, 1, 0, 0])
    assert sel.quantile_gap(s, y, quantiles=(0.5,)).tolist() == [3.5]
    assert sel.stochastic_dominance_gap(s, y) == 0.0
    assert sel.stochastic_dominance_gap(s, 1 - y) == 1.0
    assert sel.spearman([1, 2, 3], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- curves


def test_bon_subset_means_equal_enumeration_over_subsets():
    """Exact BoN subset average == brute force over all C(N, n) subsets with uniform ties."""
    rng = np.random.default_rng(1)
    n_max, rows = 7, 5
    reward = np.round(rng.normal(size=(rows, n_max)), 0)  # heavy ties
    reward[0, 2] = np.nan
    values = rng.normal(size=(2, rows, n_max))
    ns = (1, 2, 3, 7)
    got = sel._bon_subset_means(reward, values, ns)
    r = np.where(np.isnan(reward), -np.inf, reward)
    for j, n in enumerate(ns):
        subsets = list(itertools.combinations(range(n_max), n))
        for row in range(rows):
            total = np.zeros(2)
            for sub in subsets:
                sub = np.array(sub)
                best = sub[r[row, sub] == r[row, sub].max()]
                total += values[:, row, best].mean(axis=-1)
            np.testing.assert_allclose(got[j, :, row], total / len(subsets), rtol=1e-12)


def test_subsample_curves_bon_equals_pass_at_n_when_correct_is_likeliest():
    samples, greedy = synthetic_run(correct_on_top=True, n_max=8)
    curves = sel.subsample_curves(samples, greedy, ns=(1, 2, 4, 8), num_subsets=4, seed=0)
    assert tuple(curves.columns) == sel.CURVE_COLUMNS
    assert len(curves) == 2 * 2 * 2 * len(sel.RULES) * 4
    bon = curves[curves["rule"] == "bon_sum"]
    # Exact for every N: the pick is correct iff the subset holds a correct response.
    np.testing.assert_allclose(bon["accuracy"], bon["pass_at_n"], rtol=0, atol=1e-12)
    top = curves[curves["num_samples"] == 8]
    np.testing.assert_allclose(
        top["pass_at_n"], top.groupby(["model", "task", "seed"])["pass_at_n"].transform("first")
    )
    # N = 1: every rule's subset average of a BoN rule is the mean over all responses.
    n1 = curves[(curves["num_samples"] == 1) & (curves["rule"] != "majority")]
    means = samples.groupby(["model", "task", "seed"])["correct"].mean()
    for (m, t, s), acc in means.items():
        rows = n1[(n1["model"] == m) & (n1["task"] == t) & (n1["seed"] == s)]
        np.testing.assert_allclose(rows["accuracy"], acc, atol=1e-12)


def test_subsample_curves_majority_matches_select_majority_at_n_max():
    samples, greedy = synthetic_run(n_max=6, num_prompts=30)
    curves = sel.subsample_curves(samples, greedy, ns=(6,), num_subsets=3, seed=2)
    maj = curves[curves["rule"] == "majority"].set_index(["model", "task", "seed"])
    for (m, t, s), sub in samples.groupby(["model", "task", "seed"]):
        sub = sub.sort_values(["prompt_id", "sample"])
        ids = pd.factorize(sub["answer"])[0].reshape(-1, 6)
        parsed = sub["parsed"].to_numpy().reshape(-1, 6)
        correct = sub["correct"].to_numpy().reshape(-1, 6)
        # With answer ties the pick is random; average many keys (the law is exact per key).
        accs = [
            correct[
                np.arange(len(ids)),
                np.asarray(
                    sel.select_majority(
                        jnp.asarray(ids), jnp.asarray(parsed), key=jax.random.key(k)
                    )
                ),
            ].mean()
            for k in range(40)
        ]
        # Each prompt's majority correctness is Bernoulli (0/1 unless tied); 40 keys x 3
        # subsets average: sd <= 0.5 / sqrt(30 prompts * 3) per run; 5 sd of the difference.
        bound = 5 * 0.5 * math.sqrt(1 / (30 * 3) + 1 / (30 * 40))
        assert abs(maj.loc[(m, t, s), "accuracy"] - np.mean(accs)) < bound


def test_subsample_curves_greedy_columns_and_validation():
    samples, greedy = synthetic_run()
    curves = sel.subsample_curves(samples, greedy, ns=(1, 8), num_subsets=2, seed=0)
    want = greedy.groupby(["model", "task"])["correct"].mean()
    got = curves.groupby(["model", "task"])["greedy_accuracy"].first()
    np.testing.assert_allclose(got.loc[want.index], want)
    np.testing.assert_allclose(
        curves["lift"], sel.relative_lift(curves["accuracy"], curves["greedy_accuracy"])
    )
    with pytest.raises(ValueError, match="ns"):
        sel.subsample_curves(samples, greedy, ns=(9,), num_subsets=1, seed=0)
    with pytest.raises(ValueError, match="greedy_df has no row"):
        sel.subsample_curves(samples, greedy.iloc[1:], ns=(1,), num_subsets=1, seed=0)
    with pytest.raises(ValueError, match="same number of samples"):
        sel.subsample_curves(samples.iloc[1:], greedy, ns=(1,), num_subsets=1, seed=0)


def test_read_samples_round_trip_keeps_answers(tmp_path):
    samples, greedy = synthetic_run()
    samples.loc[0, "answer"] = "None"
    samples.to_csv(tmp_path / "samples.csv", index=False)
    greedy.to_csv(tmp_path / "greedy.csv", index=False)
    back = sel.read_samples(tmp_path)
    assert (
        back["answer"].iloc[0] == "None"
        and (back["answer"] == "").sum() == (samples["answer"] == "").sum()
    )
    assert list(sel.read_greedy(tmp_path).columns) == list(sel.GREEDY_COLUMNS)


def test_summarize_reports_the_claims():
    samples, greedy = synthetic_run(correct_on_top=True, n_max=8)
    curves = sel.subsample_curves(samples, greedy, ns=(1, 2, 4, 8), num_subsets=2, seed=0)
    table = sel.summarize(curves, samples, greedy)
    assert len(table) == 4 and table["n_max"].eq(8).all()
    assert table["bon_beats_sample"].all()
    np.testing.assert_allclose(table["acc_bon_sum"], table["pass_at_nmax"], atol=1e-12)
    assert (table["auroc"] > 0.5).all() and (table["auroc_within_prompt"] == 1.0).all()
    assert (table["dominance_gap"] == 0.0).all() and (table["median_gap"] > 0).all()
    assert (table["loglik_monotone_frac"] == 1.0).all() and (table["loglik_spearman"] == 1.0).all()
    assert table["saturation_n_acc"].isin([1, 2, 4, 8]).all()

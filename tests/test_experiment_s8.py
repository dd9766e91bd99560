"""S8 (Example J.1 and the hidden-argmax instance: XPO vs SFT vs offline Eq. 8): run contract,
determinism, resume, config checks, the Gram-form Eq. 8 loss, and the figure.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import io
from experiments import s8_exploration as s8
from figures import fig_exploration
from sharpen import linear_softmax, rlhf
from tests import run_contract

_FILES = ("config.json", "metrics.csv", "m_star.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s8"
    s8.run(s8.smoke(), out)
    return out


@pytest.mark.slow
def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    metrics = io.read_csv(smoke_run / "metrics.csv")
    assert set(metrics["method"]) == {"sft", "xpo", "offline"}
    assert set(metrics["family"]) == set(s8.FAMILIES)
    assert metrics["target_mass"].between(0.0, 1.0).all()
    ms = io.read_csv(smoke_run / "m_star.csv")
    assert len(ms) == len(s8.units(s8.smoke()))
    # Instance guarantees of Example J.1 hold at every d.
    checks = summary.set_index("quantity")["verdict"]
    assert all(checks[q] == "pass" for q in checks.index if "gamma_margin" in q or "C_cov /" in q)


@pytest.mark.slow
def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s8, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.slow
def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s8, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dims", (4, 6)),
        ("dims", (6, 4, 8)),
        ("min_dist", 0.2),
        ("tilt", 0.0),
        ("log_margin", 0.0),
        ("epsilon", 0.6),
        ("delta", 0.0),
        ("num_seeds", 1),
        ("per_octave", 0),
        ("sft_prompts", 0),
        ("xpo_rounds", 1),
        ("offline_max_pairs", 1),
        ("learning_rate", 0.0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s8.smoke(), **{field: value})


def test_budget_grid_is_geometric_and_ends_at_the_maximum():
    assert s8.budget_grid(16, 1) == (1, 2, 4, 8, 16)
    assert s8.budget_grid(12, 2)[-1] == 12


def test_gram_form_equals_the_mean_eq8_loss():
    inst = s8.build_instance(s8.smoke(), "hidden", 5)
    feats, theta_base = inst.features, inst.theta_base
    beta = 0.05
    ys, yps = jnp.array([1, 3, 0, 7]), jnp.array([2, 2, 5, 1])
    theta = theta_base + jax.random.normal(jax.random.key(0), theta_base.shape, theta_base.dtype)
    lp, lp_base = (linear_softmax.policy_logprobs(t, feats) for t in (theta, theta_base))
    want = jnp.mean(rlhf.eq8_loss(lp[ys], lp[yps], lp_base[ys], lp_base[yps], beta))
    delta = feats[ys] - feats[yps]
    t = lp_base[ys] - lp_base[yps]
    got = s8.eq8_gram_loss(theta, theta_base, delta.T @ delta, delta.T @ t, t @ t, 4.0, beta)
    # float32 sum of squares of O(1) residuals: relative error a few ulps times 4 terms.
    np.testing.assert_allclose(float(got), float(want), rtol=1e-4)


def test_padding_leaves_the_policy_unchanged():
    inst = s8.build_instance(s8.smoke(), "j1", 4)
    feats, theta, mask = s8.pad_instance(inst, inst.features.shape[0] + 5, 7)
    padded = s8.masked_logprobs(theta, feats, mask)
    plain = linear_softmax.policy_logprobs(inst.theta_base, inst.features)
    np.testing.assert_allclose(np.asarray(padded[: plain.shape[0]]), np.asarray(plain), atol=1e-6)
    assert bool(jnp.all(jnp.isneginf(padded[plain.shape[0] :])))


@pytest.mark.slow
def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_exploration.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_exploration.png"]
    assert paths[0].stat().st_size > 0

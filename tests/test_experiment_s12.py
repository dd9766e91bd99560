"""S12 (Lemma F.1, MLE Hellinger rate): run contract, determinism, resume, config checks, figure.

The smoke preset runs once per module into a temp folder; the other tests reuse it. The MLE
cross-check holds :func:`sharpen.product_class_mle` (per prompt) against
:func:`sharpen.finite_class_mle` over the enumerated ``J^X`` members of the same class.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import sharpen
from experiments import io
from experiments import s12_mle_rate as s12
from figures import fig_mle_rate
from tests import run_contract, tolerances

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s12"
    s12.run(s12.smoke(), out)
    return out


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert set(summary["verdict"]) <= set(io.VERDICTS)
    metrics = io.read_csv(smoke_run / "metrics.csv")
    cfg = s12.smoke()
    assert len(metrics) == len(cfg.num_prompts) * cfg.num_seeds * len(cfg.n_grid)
    assert ((metrics["hellinger_sq"] >= 0) & (metrics["hellinger_sq"] <= 2)).all()
    assert io.read_json(smoke_run / "config.json")["experiment"] == s12.NAME


def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s12, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s12, smoke_run, tmp_path, ("metrics.csv", "summary.csv"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("rho", 1.5), ("ratio_n", 17), ("n_grid", (64, 32)), ("num_prompts", ()), ("tilt", 0.0)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s12.smoke(), **{field: value})


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_mle_rate.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_mle_rate.png"]
    assert paths[0].stat().st_size > 0


def test_hellinger_sq_limits():
    logp = jnp.log(jnp.asarray([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    tolerances.assert_close(s12.hellinger_sq(logp, logp), np.zeros(2), abs_floor=True)
    tolerances.assert_close(s12.hellinger_sq(logp[:1], logp[1:]), np.full(1, 2.0))


def test_product_mle_attains_the_enumerated_class_maximum():
    J, X, Y = 4, 3, s12.smoke().num_responses
    # A sub-class of the smoke class (same table shape as the run: no new compile).
    cand_XxJxY = s12.build_class(s12.smoke(), jax.random.key(3))[:X, :J]
    mu_X = jnp.full((X,), 1.0 / X)
    prompts = sharpen.sample_prompts(mu_X, 40, key=jax.random.key(4))
    responses = sharpen.sample_responses(cand_XxJxY[:, 0], prompts, 1, key=jax.random.key(5))
    counts_XxY = sharpen.counts_from_pairs(prompts, responses[:, 0], X, Y)
    counts_XxY = counts_XxY.astype(cand_XxJxY.dtype)
    members = list(itertools.product(range(J), repeat=X))
    idx_KxX = jnp.asarray(members)
    class_KxXxY = cand_XxJxY[jnp.arange(X)[None], idx_KxX]
    k_hat = sharpen.finite_class_mle(counts_XxY, class_KxXxY, key=jax.random.key(6))
    j_hat = sharpen.product_class_mle(counts_XxY, cand_XxJxY, key=jax.random.key(7))

    def loglik(logp_XxY):
        return jnp.sum(counts_XxY * logp_XxY)

    best_enumerated = loglik(class_KxXxY[k_hat])
    best_product = loglik(cand_XxJxY[jnp.arange(X), j_hat])
    all_KxXxY = jax.vmap(loglik)(class_KxXxY)
    tolerances.assert_close(best_product, best_enumerated, "composite")
    tolerances.assert_close(best_product, jnp.max(all_KxXxY), "composite")


def test_quantile_rows_flag_a_violated_bound():
    cfg = s12.smoke()
    rows = [
        {"num_prompts": x, "seed": s, "n": n, "hellinger_sq": 2.0}
        for x in cfg.num_prompts
        for s in range(cfg.num_seeds)
        for n in cfg.n_grid
    ]
    verdicts = {r["verdict"] for r in s12.quantile_rows(pd.DataFrame(rows), cfg)}
    assert verdicts == {"fail"}

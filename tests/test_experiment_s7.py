"""S7 (offline Eq. 8 in the tabular class vs n, β floor, DPO beside it): the closed-form Eq. 8
minimizer against gradient descent on the library loss, run contract, determinism, resume,
config checks, and the figure.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import io
from experiments import s7_offline_rlhf as s7
from figures import fig_offline_rlhf
from sharpen import rlhf
from tests import run_contract, tolerances
from theory import rlhf_instances

_FILES = ("config.json", "metrics.csv", "summary.csv")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "s7"
    s7.run(s7.smoke(), out)
    return out


def _small_instance():
    logp = rlhf_instances.random_tabular_policy(
        key=jax.random.key(3), num_prompts=3, num_responses=5
    )
    prompts, responses = s7._pairs(logp, 6, jax.random.key(4))
    counts = s7._counts(prompts, responses, jnp.asarray(6, jnp.int32), (3, 5, 5))
    return logp, prompts, responses, counts


def test_eq8_min_norm_is_the_gradient_descent_limit_of_the_library_loss():
    logp, prompts, responses, counts = _small_instance()
    beta = 0.5
    y, yp = responses[:, 0], responses[:, 1]

    def loss(theta):
        lh = jax.nn.log_softmax(theta, axis=-1)
        return jnp.sum(
            rlhf.eq8_loss(
                lh[prompts, y], lh[prompts, yp], logp[prompts, y], logp[prompts, yp], beta
            )
        )

    opt = optax.sgd(0.2)

    def step(carry, _):
        theta, state = carry
        updates, state = opt.update(jax.grad(loss)(theta), state)
        return (optax.apply_updates(theta, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (logp, opt.init(logp)), None, length=3000)
    closed = s7.eq8_min_norm(logp, counts, beta)
    # composite: log_softmax of logits of size ~ |log p| / beta, after 3000 float32 steps.
    tolerances.assert_close(jax.nn.log_softmax(theta, axis=-1), closed, "composite")
    assert float(loss(closed)) <= 1e-8


def test_eq8_min_norm_with_every_pair_observed_is_pi_beta_star():
    logp = rlhf_instances.random_tabular_policy(
        key=jax.random.key(5), num_prompts=2, num_responses=4
    )
    counts = jnp.ones((2, 4, 4))
    tolerances.assert_close(
        s7.eq8_min_norm(logp, counts, 0.3), rlhf.pi_beta_star(logp, 0.3), "composite"
    )


def test_eq8_min_norm_leaves_unobserved_prompts_at_the_base():
    logp = rlhf_instances.random_tabular_policy(
        key=jax.random.key(6), num_prompts=2, num_responses=4
    )
    counts = jnp.zeros((2, 4, 4)).at[0, 1, 2].set(1.0)
    out = s7.eq8_min_norm(logp, counts, 0.1)
    tolerances.assert_close(out[1], logp[1], "simple")


def test_dpo_fit_sharpens_towards_the_winner():
    logp = jnp.log(jnp.asarray([[0.4, 0.35, 0.25]]))
    counts = jnp.zeros((1, 3, 3)).at[0, 0, 1].set(5.0).at[0, 1, 2].set(5.0)
    out = s7.dpo_fit(logp, counts, jnp.asarray(0.1), steps=50, learning_rate=jnp.asarray(0.3))
    assert float(out[0, 0]) > float(logp[0, 0])
    assert float(out[0, 2]) < float(logp[0, 2])


def test_smoke_writes_the_run_contract(smoke_run):
    for name in _FILES:
        assert (smoke_run / name).is_file()
    summary = io.read_csv(smoke_run / "summary.csv")
    assert tuple(summary.columns) == io.SUMMARY_COLUMNS
    assert "fail" not in set(summary["verdict"])
    cfg = s7.smoke()
    metrics = io.read_csv(smoke_run / "metrics.csv")
    points = len(cfg.n_grid) + len(cfg.beta_factors)
    assert len(metrics) == len(cfg.gammas) * len(s7.METHODS) * cfg.num_seeds * points
    assert metrics["error"].between(0.0, 1.0).all()
    assert (metrics[metrics["method"] == "eq8"]["eq8_rms_residual"] <= s7.INTERP_TOL).all()


@pytest.mark.slow
def test_same_config_gives_identical_metrics(smoke_run, tmp_path):
    run_contract.assert_rerun_identical(s7, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.slow
def test_resume_after_deleting_a_unit_gives_identical_bytes(smoke_run, tmp_path):
    run_contract.assert_resume_identical(s7, smoke_run, tmp_path, _FILES[1:])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gammas", ()),
        ("gammas", (1.0, 0.1)),
        ("gammas", (2.0,)),
        ("num_prompts", 0),
        ("num_responses", 2),
        ("n_grid", (1, 2)),
        ("num_seeds", 1),
        ("delta", 0.0),
        ("epsilon", 1.0),
        ("beta_scale", 0.0),
        ("beta_factors", (1.0,)),
        ("dpo_steps", 0),
        ("dpo_learning_rate", -1.0),
    ],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(s7.smoke(), **{field: value})


def test_margin_instance_has_the_exact_margin():
    cfg = s7.smoke()
    logp = s7.margin_instance(cfg, 0.3)
    np.testing.assert_allclose(np.asarray(rlhf.gamma_margin(logp)), 0.3, rtol=1e-4)


def test_figure_is_written(smoke_run, tmp_path):
    paths = fig_offline_rlhf.make(smoke_run.parent, tmp_path / "figs")
    assert paths == [tmp_path / "figs" / "fig_offline_rlhf.png"]
    assert paths[0].stat().st_size > 0


@pytest.mark.parametrize("preset", sorted(s7.PRESETS))
def test_every_preset_is_a_valid_config(preset):
    assert isinstance(s7.PRESETS[preset](), s7.Config)

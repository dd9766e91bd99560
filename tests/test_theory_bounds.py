"""Property tests for :mod:`theory.bounds` (THEORY §0, §4.1, §4.2, §4.5, §4.7).

Properties, limits, identities between results and small simulations, not golden numbers. The
few literal values are the magnitudes quoted in THEORY §5.3 (S5), checked to their stated
precision. Everything runs with ``JAX_ENABLE_X64=0`` and ``=1``.
"""

from __future__ import annotations

import functools
import inspect
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import bounds

# Relative tolerances keyed by the dtype under test (STYLE §11): "simple" for one or two
# operations, "composite" for chains of log/exp/pow whose float32 error grows with |log value|.
_RTOL = {
    "simple": {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10},
    "composite": {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10},
}


def _rtol(kind: str = "simple") -> float:
    return _RTOL[kind][np.dtype(jnp.zeros(()).dtype)]


def _np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _close(actual, desired, kind: str = "simple", rtol: float | None = None) -> None:
    rtol = _rtol(kind) if rtol is None else rtol
    chex.assert_trees_all_close(_np(actual), _np(desired), rtol=rtol, atol=0.0)


# One valid call per jax-traceable function, and the argument to sweep in vmap tests.
_CASES = {
    "lower_bound_sft": (
        bounds.lower_bound_sft,
        dict(c_cov=4.0, log_class_size=10.0, epsilon=0.01, p=2),
        ("epsilon", [0.001, 0.01, 0.3]),
    ),
    "lower_bound_adaptive": (
        bounds.lower_bound_adaptive,
        dict(c_cov=4.0, log_class_size=10.0, epsilon=0.01, p=1),
        ("c_cov", [1.0, 4.0, 100.0]),
    ),
    "hard_instance_c_cov": (
        bounds.hard_instance_c_cov,
        dict(Delta=0.16, M=201.0, gamma=0.5, p=2),
        ("Delta", [0.0, 0.16, 1.0]),
    ),
    "inference_bon_num_samples": (
        bounds.inference_bon_num_samples,
        dict(p_star=0.1, rho=0.05),
        ("p_star", [1e-3, 0.1, 1.0]),
    ),
    "inference_bon_failure_bound": (
        bounds.inference_bon_failure_bound,
        dict(p_star=0.1, num_samples=30.0),
        ("num_samples", [1.0, 30.0, 1e4]),
    ),
    "bon_miss_probability": (
        bounds.bon_miss_probability,
        dict(p_star=0.1, num_samples=30.0),
        ("p_star", [1e-6, 0.1, 1.0]),
    ),
    "sft_settings": (
        bounds.sft_settings,
        dict(c_cov=4.0, log_class_size=10.0, epsilon=0.1, delta=0.25, rho=0.05, c=2.0),
        ("delta", [0.01, 0.25, 0.49]),
    ),
    "sft_sample_complexity": (
        bounds.sft_sample_complexity,
        dict(c_cov=4.0, log_class_size=10.0, epsilon=0.1, delta=0.25, rho=0.05),
        ("rho", [1e-6, 0.05, 0.5]),
    ),
    "sft_error_bound": (
        bounds.sft_error_bound,
        dict(
            log_class_size=10.0,
            n=1000.0,
            c_cov_gamma=4.0,
            num_samples_star=40.0,
            delta=0.25,
            rho=0.05,
        ),
        ("n", [1.0, 1e3, 1e6]),
    ),
    "bon_coverage_term_bound": (
        bounds.bon_coverage_term_bound,
        dict(c_cov=4.0, num_samples=200.0, delta=0.25),
        ("num_samples", [1.0, 200.0, 1e5]),
    ),
    "adaptive_sft_sample_complexity": (
        bounds.adaptive_sft_sample_complexity,
        dict(c_cov_bar=4.0, log_class_size=10.0, epsilon=0.1, delta=0.25, rho=0.05),
        ("log_class_size", [0.0, 10.0, 1e3]),
    ),
    "adaptive_sft_expected_draws_bound": (
        bounds.adaptive_sft_expected_draws_bound,
        dict(n=100.0, mu_stop=2.0, c_cov_bar=4.0),
        ("mu_stop", [0.1, 2.0, 20.0]),
    ),
    "adaptive_sft_error_bound": (
        bounds.adaptive_sft_error_bound,
        dict(log_class_size=10.0, n=1000.0, delta=0.25, rho=0.05),
        ("delta", [0.01, 0.25, 0.99]),
    ),
    "stopping_rule_bounds": (
        bounds.stopping_rule_bounds,
        dict(mu_stop=2.0, p_star=0.13, num_argmax=1.0),
        ("num_argmax", [1.0, 2.0, 7.0]),
    ),
    "default_mu_stop": (bounds.default_mu_stop, dict(delta=0.25), ("delta", [1e-6, 0.25, 0.9])),
    "mle_hellinger_bound": (
        bounds.mle_hellinger_bound,
        dict(log_class_size=10.0, n=1000.0, rho=0.05),
        ("n", [1.0, 1e3, 1e9]),
    ),
    "elliptic_potential_bound": (
        bounds.elliptic_potential_bound,
        dict(d=4.0, T=100.0, K=1.0, lam=1.0),
        ("T", [1.0, 100.0, 1e6]),
    ),
}


def _with(kwargs: dict, **override) -> dict:
    return {**kwargs, **override}


# --------------------------------------------------------------------------- jit / vmap / dtype


def test_every_public_function_is_covered():
    assert set(bounds.__all__) == set(_CASES) | {"hard_instance_parameters", "greedy_threshold"}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_jit_with_all_arguments_traced_matches_eager(name):
    fn, kwargs, _ = _CASES[name]
    eager = fn(**kwargs)
    jitted = jax.jit(lambda kw: fn(**kw))(
        {k: jnp.asarray(v, dtype=float) for k, v in kwargs.items()}
    )
    chex.assert_trees_all_close(
        jax.tree.map(_np, jitted), jax.tree.map(_np, eager), rtol=_rtol("composite")
    )


@pytest.mark.parametrize("name", sorted(_CASES))
def test_vmap_matches_broadcasting(name):
    fn, kwargs, (arg, grid) = _CASES[name]
    batched = jax.vmap(lambda v: fn(**_with(kwargs, **{arg: v})))(jnp.asarray(grid, dtype=float))
    broadcast = fn(**_with(kwargs, **{arg: np.asarray(grid)}))
    looped = [fn(**_with(kwargs, **{arg: v})) for v in grid]
    for b, e, *one in zip(
        jax.tree.leaves(batched),
        jax.tree.leaves(broadcast),
        *map(jax.tree.leaves, looped),
        strict=True,
    ):
        chex.assert_shape(b, (len(grid),))
        _close(b, e, "composite")
        _close(b, one, "composite")


@pytest.mark.parametrize("name", sorted(_CASES))
def test_output_dtype_is_default_float_and_float64_under_x64(name):
    fn, kwargs, _ = _CASES[name]
    for leaf in jax.tree.leaves(fn(**kwargs)):
        assert isinstance(leaf, jax.Array)
        assert leaf.dtype == jnp.zeros(()).dtype
    with jax.enable_x64(True):
        for leaf in jax.tree.leaves(fn(**kwargs)):
            assert leaf.dtype == jnp.float64


def test_arguments_of_different_ranks_broadcast():
    eps_E1 = np.array([[0.01], [0.05], [0.2]])
    c_cov_C = np.array([1.0, 2.0, 8.0, 32.0])
    out = bounds.lower_bound_sft(c_cov_C, 10.0, eps_E1, p=np.array([1, 2, 3, 4]))
    chex.assert_shape(out, (3, 4))
    n, num_samples = bounds.sft_settings(c_cov_C, 10.0, eps_E1, 0.25, 0.05)
    chex.assert_shape([n, num_samples], (3, 4))
    _close(n[:, 0], n[:, 3])  # n does not depend on C_cov


def test_float64_agrees_with_the_formulas_to_closed_form_precision():
    c_cov, log_pi, eps, delta, rho = 7.0, 23.0, 3e-3, 0.2, 1e-3
    with jax.enable_x64(True):
        thm31 = c_cov * log_pi / (eps**2 * (1 + math.log(c_cov / eps)))
        _close(bounds.lower_bound_sft(c_cov, log_pi, eps), thm31, rtol=1e-13)
        eq7 = c_cov * (log_pi + math.log(1 / rho)) * math.log(1 / delta) / (delta * eps**2)
        _close(bounds.sft_sample_complexity(c_cov, log_pi, eps, delta, rho), eq7, rtol=1e-13)
        _close(bounds.bon_miss_probability(1e-12, 1e12), math.exp(-1.0 - 5e-13), rtol=1e-13)
        _close(
            bounds.mle_hellinger_bound(log_pi, 1e7, rho),
            2 * math.log(math.exp(log_pi) / rho) / 1e7,
            rtol=1e-13,
        )


# --------------------------------------------------------------------------- monotonicity

_EPS = np.geomspace(1e-4, 0.5, 12)
_DELTA = np.geomspace(1e-4, 0.9, 12)
_RHO = np.geomspace(1e-9, 0.9, 12)
_COV = np.geomspace(1.0, 1e4, 12)
_LOGPI = np.geomspace(0.1, 1e4, 12)
_COUNT = np.geomspace(1.0, 1e7, 12)
_PSTAR = np.geomspace(1e-5, 1.0, 12)

_SFT = dict(c_cov=4.0, log_class_size=10.0, epsilon=0.05, delta=0.25, rho=0.05)
_ADA = dict(c_cov_bar=4.0, log_class_size=10.0, epsilon=0.05, delta=0.25, rho=0.05)
_ERR = dict(
    log_class_size=10.0, n=1e3, c_cov_gamma=4.0, num_samples_star=40.0, delta=0.25, rho=0.05
)

_UP, _DOWN = 1, -1
_LB = dict(c_cov=4.0, log_class_size=10.0, epsilon=0.05)
_AERR = dict(log_class_size=10.0, n=1e3, delta=0.25, rho=0.05)
_DRAWS = dict(n=100.0, mu_stop=2.0, c_cov_bar=4.0)
_HEL = dict(log_class_size=10.0, n=1e3, rho=0.05)
_BON = dict(p_star=0.01, num_samples=100.0)
_COVT = dict(c_cov=4.0, num_samples=1e6, delta=0.25)
_STOP = dict(mu_stop=2.0, p_star=0.01, num_argmax=1.0)
_ELL = dict(d=4.0, T=100.0, K=2.0, lam=1.0)
_HARD = dict(Delta=0.1, M=50.0, gamma=0.5, p=1)
_ARGMAX = np.arange(1.0, 13.0)

# (function, output index or None, base kwargs) -> [(argument, grid, direction), ...]
_MONOTONE_SPEC = [
    *[
        (
            (fn, None, _with(_LB, p=p)),
            [("epsilon", _EPS, _DOWN), ("c_cov", _COV, _UP), ("log_class_size", _LOGPI, _UP)],
        )
        for fn in (bounds.lower_bound_sft, bounds.lower_bound_adaptive)
        for p in (1, 2, 3)
    ],
    *[
        (
            (fn, None, base),
            [
                ("epsilon", _EPS, _DOWN),
                (cov, _COV, _UP),
                ("log_class_size", _LOGPI, _UP),
                ("delta", _DELTA, _DOWN),
                ("rho", _RHO, _DOWN),
            ],
        )
        for fn, base, cov in (
            (bounds.sft_sample_complexity, _SFT, "c_cov"),
            (bounds.adaptive_sft_sample_complexity, _ADA, "c_cov_bar"),
        )
    ],
    (
        (bounds.sft_settings, 0, _SFT),
        [
            ("epsilon", _EPS, _DOWN),
            ("delta", _DELTA, _DOWN),
            ("rho", _RHO, _DOWN),
            ("log_class_size", _LOGPI, _UP),
        ],
    ),
    (
        (bounds.sft_settings, 1, _SFT),
        [("epsilon", _EPS, _DOWN), ("delta", _DELTA, _DOWN), ("c_cov", _COV, _UP)],
    ),
    (
        (bounds.sft_error_bound, None, _ERR),
        [
            ("n", _COUNT, _DOWN),
            ("num_samples_star", _COUNT, _DOWN),
            ("c_cov_gamma", _COV, _UP),
            ("log_class_size", _LOGPI, _UP),
            ("delta", _DELTA, _DOWN),
            ("rho", _RHO, _DOWN),
        ],
    ),
    (
        (bounds.adaptive_sft_error_bound, None, _AERR),
        [
            ("n", _COUNT, _DOWN),
            ("log_class_size", _LOGPI, _UP),
            ("delta", _DELTA, _DOWN),
            ("rho", _RHO, _DOWN),
        ],
    ),
    (
        (bounds.adaptive_sft_expected_draws_bound, None, _DRAWS),
        [("n", _COUNT, _UP), ("mu_stop", _LOGPI, _UP), ("c_cov_bar", _COV, _UP)],
    ),
    (
        (bounds.mle_hellinger_bound, None, _HEL),
        [("n", _COUNT, _DOWN), ("log_class_size", _LOGPI, _UP), ("rho", _RHO, _DOWN)],
    ),
    (
        (bounds.bon_miss_probability, None, _BON),
        [
            ("p_star", np.geomspace(1e-4, 0.5, 12), _DOWN),
            ("num_samples", np.geomspace(1, 1e3, 12), _DOWN),
        ],
    ),
    (
        (bounds.inference_bon_failure_bound, None, _BON),
        [
            ("p_star", np.geomspace(1e-5, 0.5, 12), _DOWN),
            ("num_samples", np.geomspace(1, 1e3, 12), _DOWN),
        ],
    ),
    (
        (bounds.bon_coverage_term_bound, None, _COVT),
        [
            ("c_cov", _COV, _UP),
            ("num_samples", np.geomspace(10, 1e7, 12), _DOWN),
            ("delta", _DELTA, _DOWN),
        ],
    ),
    (
        (bounds.stopping_rule_bounds, 0, _STOP),
        [("mu_stop", _LOGPI, _UP), ("p_star", _PSTAR, _DOWN), ("num_argmax", _ARGMAX, _DOWN)],
    ),
    (
        (bounds.stopping_rule_bounds, 1, _STOP),
        [("mu_stop", np.geomspace(0.1, 10, 12), _DOWN), ("num_argmax", _ARGMAX, _DOWN)],
    ),
    ((bounds.default_mu_stop, None, dict(delta=0.25)), [("delta", _DELTA, _DOWN)]),
    (
        (bounds.elliptic_potential_bound, None, _ELL),
        [("d", _ARGMAX, _UP), ("T", _COUNT, _UP), ("K", np.geomspace(1.0, 1e3, 12), _UP)],
    ),
    # Increasing in p: power means increase with the order (Lyapunov).
    (
        (bounds.hard_instance_c_cov, None, _HARD),
        [
            ("Delta", np.linspace(0, 1, 12), _UP),
            ("M", np.geomspace(3, 1e4, 12), _UP),
            ("gamma", np.linspace(0, 0.9, 12), _DOWN),
            ("p", np.arange(1.0, 9.0), _UP),
        ],
    ),
]
_MONOTONE = [(*head, *sweep) for head, sweeps in _MONOTONE_SPEC for sweep in sweeps]


@pytest.mark.parametrize(
    ("fn", "index", "base", "arg", "grid", "sign"),
    _MONOTONE,
    ids=[f"{m[0].__name__}[{m[1]}]-{m[3]}" for m in _MONOTONE],
)
def test_strictly_monotone_in_each_argument(fn, index, base, arg, grid, sign):
    out = fn(**_with(base, **{arg: grid}))
    out = _np(out if index is None else out[index])
    assert np.all(np.isfinite(out))
    assert np.all(sign * np.diff(out) > 0), out


@pytest.mark.parametrize(("arg", "grid"), [("p_star", _PSTAR), ("rho", _RHO)])
def test_inference_bon_num_samples_is_non_increasing(arg, grid):
    out = _np(bounds.inference_bon_num_samples(**_with(dict(p_star=0.01, rho=0.05), **{arg: grid})))
    assert np.all(np.diff(out) <= 0) and out[0] > out[-1]


# --------------------------------------------------------------------------- Thm 3.1 / 3.1′ / D.2


def _log_lower_bound(u, c_cov, p, fn):
    """log of the bound as a function of u = log(1/epsilon)."""
    return jnp.log(fn(c_cov, 10.0, jnp.exp(-u), p=p))


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("c_cov", [1.0, 4.0, 32.0])
def test_lower_bound_slopes_match_analytic_derivative(p, c_cov):
    """d log m / d log(1/eps) = power - (1/p) / (1 + log(C eps^{-1/p})), power = 1 + 1/p or 1/p."""
    with jax.enable_x64(True):
        u = np.linspace(0.5, 25.0, 15)
        h = 1e-4  # central differences: truncation O(h^2) ~ 1e-8, rounding ~ 1e-16 * 60 / h ~ 1e-10
        log_factor = 1.0 + math.log(c_cov) + u / p
        for fn, power in (
            (bounds.lower_bound_sft, 1 + 1 / p),
            (bounds.lower_bound_adaptive, 1 / p),
        ):
            analytic = power - (1 / p) / log_factor
            f = lambda v, fn=fn: _np(_log_lower_bound(jnp.asarray(v), c_cov, p, fn))  # noqa: E731
            finite_diff = (f(u + h) - f(u - h)) / (2 * h)
            _close(finite_diff, analytic, rtol=1e-6)
            grad = jax.vmap(jax.grad(lambda v, fn=fn: _log_lower_bound(v, c_cov, p, fn)))(
                jnp.asarray(u)
            )
            _close(grad, analytic, rtol=1e-12)
            # Between power - 1/p and power, increasing towards power as eps -> 0.
            assert np.all((analytic > power - 1 / p) & (analytic < power))
            assert np.all(np.diff(analytic) > 0)
            # Slope in log C: 1 - 1/(1 + log(C eps^{-1/p})) in (0, 1).
            g = lambda lc, fn=fn: _np(jnp.log(fn(np.exp(lc), 10.0, np.exp(-u), p=p)))  # noqa: E731
            lc = math.log(c_cov)  # one-sided second-order stencil: C >= 1 is required
            slope_c = (-3 * g(lc) + 4 * g(lc + h) - g(lc + 2 * h)) / (2 * h)
            _close(slope_c, 1.0 - 1.0 / log_factor, rtol=1e-6)


def test_lower_bound_slope_approaches_one_plus_one_over_p():
    with jax.enable_x64(True):
        for p in (1, 2, 3):
            u, h = 300.0, 1e-3  # eps = e^-300; slope = 1 + 1/p - (1/p)/(1 + 300/p)
            f = lambda v, p=p: float(jnp.log(bounds.lower_bound_sft(1.0, 10.0, math.exp(-v), p=p)))  # noqa: E731
            slope = (f(u + h) - f(u - h)) / (2 * h)
            assert 1 + 1 / p - 0.01 < slope < 1 + 1 / p


def test_p_equal_one_gives_thm_3_1_and_thm_d_2():
    eps, c_cov, log_pi = _EPS[:, None], _COV[None, :], 17.0
    thm31 = c_cov * log_pi / (eps**2 * (1.0 + np.log(c_cov / eps)))
    thmd2 = c_cov * log_pi / (eps * (1.0 + np.log(c_cov / eps)))
    _close(bounds.lower_bound_sft(c_cov, log_pi, eps, p=1), thm31, "composite")
    _close(bounds.lower_bound_adaptive(c_cov, log_pi, eps, p=1), thmd2, "composite")


@pytest.mark.parametrize("p", [1, 2, 5])
def test_adaptive_lower_bound_is_epsilon_times_non_adaptive(p):
    ratio = bounds.lower_bound_adaptive(8.0, 3.0, _EPS, p=p) / bounds.lower_bound_sft(
        8.0, 3.0, _EPS, p=p
    )
    _close(ratio, _EPS, "composite")


def test_constant_c_scales_every_order_statement_linearly():
    for fn, kwargs in (
        (bounds.lower_bound_sft, dict(c_cov=4.0, log_class_size=10.0, epsilon=0.01)),
        (bounds.lower_bound_adaptive, dict(c_cov=4.0, log_class_size=10.0, epsilon=0.01)),
        (bounds.sft_sample_complexity, _SFT),
        (bounds.adaptive_sft_sample_complexity, _ADA),
        (bounds.sft_error_bound, _ERR),
        (bounds.adaptive_sft_error_bound, dict(log_class_size=10.0, n=1e3, delta=0.25, rho=0.05)),
    ):
        _close(fn(**kwargs, c=3.5), 3.5 * _np(fn(**kwargs)))


def test_sft_upper_bound_matches_lower_bound_up_to_logs():
    """Eq. 7 / Thm 3.1 = log(1/delta)(log|Pi| + log(1/rho))(1 + log(C/eps)) / (delta log|Pi|)."""
    c_cov, log_pi, delta, rho = 16.0, 30.0, 0.25, 0.05
    ratio = _np(bounds.sft_sample_complexity(c_cov, log_pi, _EPS, delta, rho)) / _np(
        bounds.lower_bound_sft(c_cov, log_pi, _EPS)
    )
    per_log = ratio / (1.0 + np.log(c_cov / _EPS))
    _close(
        per_log,
        np.full_like(
            per_log, math.log(1 / delta) * (log_pi + math.log(1 / rho)) / (delta * log_pi)
        ),
        "composite",
    )


# --------------------------------------------------------------------------- hard instance


def _hard_instance_coverage(delta_mass, m, gamma, p):
    """C_{cov,gamma,p} computed from the explicit construction of THEORY §4.1 (numpy, float64)."""
    d = 3
    argmax_mass = 1.0 / ((1.0 - gamma) * m)
    other_mass = (1.0 - gamma / ((m - 1) * (1.0 - gamma))) / m
    rows, masses = [np.eye(1, m + 1, 0)[0]], []  # P_0 = delta_{y_0} on {y_0, ..., y_M}
    for i in range(1, d + 1):
        row = np.zeros(m + 1)
        row[1:] = other_mass
        row[i] = argmax_mass
        rows.append(row)
    mu = np.array([1.0 - delta_mass] + [delta_mass / d] * d)
    for row in rows:
        np.testing.assert_allclose(row.sum(), 1.0, rtol=1e-12)
        in_set = row >= (1.0 - gamma) * row.max() * (1 - 1e-12)
        assert in_set.sum() == 1  # y*_gamma is a singleton
        masses.append(row[in_set].sum())
    return float(np.sum(mu * np.asarray(masses) ** -p) ** (1.0 / p))


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("gamma", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("m", [3, 7, 50])
def test_hard_instance_c_cov_matches_the_construction(m, gamma, p):
    for delta_mass in (0.0, 0.01, 0.16, 1.0):
        expected = _hard_instance_coverage(delta_mass, m, gamma, p)
        _close(bounds.hard_instance_c_cov(delta_mass, m, gamma=gamma, p=p), expected, "composite")


def test_hard_instance_c_cov_p1_gamma_half_is_one_minus_delta_plus_delta_m_over_2():
    delta_mass = np.linspace(0.0, 1.0, 11)[:, None]
    m = np.array([2.0, 3.0, 21.0, 201.0, 1e5])[None, :]
    _close(bounds.hard_instance_c_cov(delta_mass, m), 1.0 - delta_mass + delta_mass * m / 2.0)


@pytest.mark.parametrize("p", [1, 2])
def test_hard_instance_parameters_on_the_s3_grid(p):
    eps = np.geomspace(1e-3, 1 / 16, 9)[:, None]
    c_cov = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])[None, :]
    delta_mass, m = bounds.hard_instance_parameters(eps, c_cov, p=p)
    assert m.dtype.kind == "i" and m.shape == (9, 6)
    np.testing.assert_allclose(delta_mass, np.broadcast_to(16.0 * eps, (9, 6)), rtol=1e-15)
    x = 1.0 + c_cov * eps ** (-1.0 / p)
    assert np.all((m >= x * (1 - 1e-12)) & (m < x + 1.0)) and np.all(m >= 3)
    # Coverage <= (9 + 2^{p-1})^{1/p} C: (M/2)^p < 2^{p-1}(1 + C^p/(2^p eps)) and 16 eps <= 1.
    cov = _np(bounds.hard_instance_c_cov(delta_mass, m.astype(np.float64), p=p))
    assert np.all(cov <= (9.0 + 2.0 ** (p - 1)) ** (1 / p) * c_cov)
    # log|Pi| = d log M is of order d (1 + log(C eps^{-1/p})) (Thm 3.1′ (i)).
    ratio = np.log(m) / (1.0 + np.log(c_cov * eps ** (-1.0 / p)))
    assert np.all((ratio > 0.5) & (ratio < 1.2))


def test_hard_instance_parameters_scalars_adaptive_and_rounding():
    delta_mass, m = bounds.hard_instance_parameters(0.01, 2.0)
    assert isinstance(delta_mass, float) and isinstance(m, int)
    assert (delta_mass, m) == (0.16, 201)
    # Mathematically integral C eps^{-1/p} stays integral despite pow rounding.
    assert bounds.hard_instance_parameters(0.001, 1.0, p=3)[1] == 11
    assert bounds.hard_instance_parameters(1e-9, 1.0, p=3)[1] == 1001
    assert bounds.hard_instance_parameters(0.01, 2.0, p=2)[1] == 21
    assert bounds.hard_instance_parameters(0.01, 2.0, adaptive=True, c1=4.0) == (0.04, 201)
    assert bounds.hard_instance_parameters(0.01, 2.0, c1=4.0)[0] == 0.16  # c1 only if adaptive
    with pytest.raises(ValueError, match="epsilon"):
        bounds.hard_instance_parameters(0.1, 2.0)
    with pytest.raises(ValueError, match="epsilon"):
        bounds.hard_instance_parameters(0.5, 2.0, adaptive=True, c1=4.0)


# --------------------------------------------------------------------------- Prop 3.1


def test_greedy_threshold_on_the_s2_tightness_instance():
    threshold = bounds.greedy_threshold()
    assert threshold == 0.5
    for eta in (0.01, 0.1, 0.16):
        first = np.array([0.5 + eta, 0.5 - eta])  # pi(a), pi(b)
        second = np.array([[0.5, 0.5], [0.0, 1.0]])  # pi(.|a) uniform, pi(b|b) = 1
        seq = first[:, None] * second
        argmax = np.unravel_index(np.argmax(seq), seq.shape)
        greedy = (int(np.argmax(first)), int(np.argmax(second[np.argmax(first)])))
        assert argmax == (1, 1) and seq[argmax] <= threshold and greedy != argmax


def test_greedy_recovers_the_argmax_above_the_threshold():
    """Prop 3.1 on random autoregressive tables, |V| = 3, H = 3, by exact enumeration."""
    num_models = 300
    # 1 + 3 + 9 conditionals per model, drawn in one call.
    tables = _np(jax.random.dirichlet(jax.random.key(0), jnp.full((3,), 0.3), (num_models, 13)))
    p1, p2, p3 = tables[:, 0], tables[:, 1:4], tables[:, 4:].reshape(num_models, 3, 3, 3)
    seq = p1[:, :, None, None] * p2[:, :, :, None] * p3
    checked = 0
    for i in range(num_models):
        flat = seq[i].ravel()
        top = np.argmax(flat)
        if flat[top] > bounds.greedy_threshold():
            a = int(np.argmax(p1[i]))
            b = int(np.argmax(p2[i, a]))
            c = int(np.argmax(p3[i, a, b]))
            assert np.ravel_multi_index((a, b, c), (3, 3, 3)) == top
            checked += 1
    assert checked > 30


# --------------------------------------------------------------------------- Prop C.1 and BoN law


def test_bon_miss_probability_equals_the_power_for_small_n():
    p = np.array([1e-3, 0.01, 0.1, 0.5, 0.9, 1.0])[:, None]
    n = np.arange(1.0, 21.0)[None, :]
    exact = np.array([[(1.0 - pi) ** int(ni) for ni in n[0]] for pi in p[:, 0]])
    _close(bounds.bon_miss_probability(p, n), exact)
    assert np.all(
        _np(bounds.bon_miss_probability(p, n)) <= _np(bounds.inference_bon_failure_bound(p, n))
    )


def test_bon_miss_probability_is_stable_for_huge_n():
    value = _np(bounds.bon_miss_probability(1e-9, 1e9))
    assert np.isfinite(value) and value > 0
    _close(value, math.exp(1e9 * math.log1p(-1e-9)))  # = e^{-1 - 5e-10}
    assert abs(value - math.exp(-1.0)) < 1e-6


def test_bon_miss_probability_matches_monte_carlo():
    p_star, n, trials = 0.1, 10, 20_000
    hits = jax.random.bernoulli(jax.random.key(1), p_star, (trials, n))
    freq = float(jnp.mean(~jnp.any(hits, axis=1)))
    q = float(bounds.bon_miss_probability(p_star, n))
    assert abs(freq - q) <= 5.0 * math.sqrt(q * (1 - q) / trials)  # 5 standard errors


def test_inference_bon_num_samples_is_the_smallest_sufficient_n():
    p = np.geomspace(1e-4, 1.0, 13)[:, None]
    rho = np.array([1e-6, 1e-3, 0.05, 0.5])[None, :]
    n = _np(bounds.inference_bon_num_samples(p, rho))
    tol = _rtol("composite")
    assert np.all(n == np.round(n)) and np.all(n >= 1)
    miss = _np(bounds.bon_miss_probability(p, n))
    assert np.all(miss <= np.exp(-n * p) * (1 + tol))
    assert np.all(np.exp(-n * p) <= rho * (1 + tol))  # Prop C.1
    assert np.all(np.exp(-(n - 1) * p) >= rho * (1 - tol))  # and N - 1 would not do


# --------------------------------------------------------------------------- Thm 4.1 / 4.1′


@pytest.mark.parametrize("c", [1.0, 3.0])
def test_sft_settings_product_is_sample_complexity_up_to_log_2_over_delta(c):
    delta = _DELTA[:, None]
    eps = _EPS[None, :]
    n, num_samples = bounds.sft_settings(6.0, 12.0, eps, delta, 0.01, c=c)
    m = bounds.sft_sample_complexity(6.0, 12.0, eps, delta, 0.01, c=c**2)
    _close(_np(n) * _np(num_samples), _np(m) * np.log(2 / delta) / np.log(1 / delta), "composite")


def test_sft_settings_give_error_two_epsilon_over_c():
    """With n = c log(|Pi|/rho)/(delta eps) and N* = c C/eps, each term of Thm 4.1′ is eps/c."""
    c, c_cov, log_pi, delta, rho = 8.0, 5.0, 9.0, 0.2, 0.01
    n, num_samples = bounds.sft_settings(c_cov, log_pi, _EPS, delta, rho, c=c)
    n_star = _np(num_samples) / math.log(2 / delta)
    err = bounds.sft_error_bound(log_pi, _np(n), c_cov, n_star, delta, rho)
    _close(err, 2 * _EPS / c, "composite")


def test_sample_complexities_have_exact_power_slopes():
    """Eq. 7 has slope 2 in 1/eps and 1 in C; Thm D.1 slope 1 in 1/eps."""
    _close(
        _np(bounds.sft_sample_complexity(**_with(_SFT, epsilon=_EPS / 2)))
        / _np(bounds.sft_sample_complexity(**_with(_SFT, epsilon=_EPS))),
        np.full_like(_EPS, 4.0),
    )
    _close(
        _np(bounds.sft_sample_complexity(**_with(_SFT, c_cov=2 * _COV)))
        / _np(bounds.sft_sample_complexity(**_with(_SFT, c_cov=_COV))),
        np.full_like(_COV, 2.0),
    )
    _close(
        _np(bounds.adaptive_sft_sample_complexity(**_with(_ADA, epsilon=_EPS / 2)))
        / _np(bounds.adaptive_sft_sample_complexity(**_with(_ADA, epsilon=_EPS))),
        np.full_like(_EPS, 2.0),
    )


def test_bon_coverage_term_bound_holds_on_random_coverage_profiles():
    """Exact population error of the BoN law vs the Markov bound (THEORY S4 (iii))."""
    num_prompts = 2000
    for seed, (a, b) in enumerate(((0.5, 5.0), (2.0, 2.0), (0.2, 1.0))):
        p_star = _np(jax.random.beta(jax.random.key(seed), a, b, (num_prompts,)))
        p_star = np.clip(p_star, 1e-6, 1.0)
        c_cov = float(np.mean(1.0 / p_star))
        for delta in (0.05, 0.25, 0.5):
            n = np.geomspace(1, 1e5, 11)
            error = np.mean((1.0 - p_star[:, None]) ** n[None, :] > delta / 2, axis=0)
            bound = _np(bounds.bon_coverage_term_bound(c_cov, n, delta))
            assert np.all(error <= bound) and np.all(bound <= 1.0)


def test_bon_coverage_term_bound_is_tight_for_a_two_point_mixture():
    delta, n, w = 0.25, 1000, 0.05
    q = 0.99 * (1.0 - (delta / 2) ** (1.0 / n))  # (1 - q)^n > delta/2, just
    p_star = np.array([1.0, q])
    weights = np.array([1.0 - w, w])
    error = float(np.sum(weights * ((1.0 - p_star) ** n > delta / 2)))
    c_cov = float(np.sum(weights / p_star))
    bound = float(bounds.bon_coverage_term_bound(c_cov, n, delta))
    assert error == w and error <= bound <= 1.1 * error


def test_bon_coverage_term_bound_clips_at_one():
    assert float(bounds.bon_coverage_term_bound(100.0, 1.0, 0.1)) == 1.0


# --------------------------------------------------------------------------- Thm D.1 / Lemma I.1


def test_adaptive_sample_complexity_is_epsilon_times_non_adaptive():
    ratio = _np(bounds.adaptive_sft_sample_complexity(**_with(_ADA, epsilon=_EPS))) / _np(
        bounds.sft_sample_complexity(**_with(_SFT, epsilon=_EPS))
    )
    _close(ratio, _EPS)


def test_adaptive_error_bound_is_the_statistical_term_of_thm_4_1_prime():
    # The coverage term C/N* vanishes as N* -> infinity (N* = 1e30 leaves 1e-30).
    stat = bounds.sft_error_bound(10.0, _COUNT, 1.0, 1e30, 0.25, 0.05)
    _close(bounds.adaptive_sft_error_bound(10.0, _COUNT, 0.25, 0.05), stat)


def test_expected_draws_bound_matches_sample_complexity_at_the_theory_n():
    """n = log(|Pi|/rho)/(delta eps), mu = ln(2/delta): n (1 + mu) C = Thm D.1 * (1+mu)/ln(1/delta)."""
    c_bar, log_pi, delta, rho = 3.0, 7.0, 0.1, 0.02
    n = (log_pi + math.log(1 / rho)) / (delta * _EPS)
    mu = _np(bounds.default_mu_stop(delta))
    draws = bounds.adaptive_sft_expected_draws_bound(n, mu, c_bar)
    rate = bounds.adaptive_sft_sample_complexity(c_bar, log_pi, _EPS, delta, rho)
    _close(draws, _np(rate) * (1 + mu) / math.log(1 / delta), "composite")


def test_expected_draws_bound_dominates_the_sum_of_lemma_i1_bounds():
    k1, k2 = jax.random.split(jax.random.key(3))
    num_prompts, mu = 500, 2.5
    num_argmax = _np(jax.random.randint(k1, (num_prompts,), 1, 5))
    p_star = _np(jax.random.uniform(k2, (num_prompts,), minval=0.01, maxval=1.0)) / num_argmax
    per_prompt, _ = bounds.stopping_rule_bounds(mu, p_star, num_argmax)
    c_cov_bar = float(np.mean(1.0 / p_star))
    total = float(bounds.adaptive_sft_expected_draws_bound(num_prompts, mu, c_cov_bar))
    assert num_prompts * float(np.mean(_np(per_prompt))) <= total * (1 + _rtol())


def test_default_mu_stop_gives_failure_delta_over_two():
    delta = _DELTA
    mu = _np(bounds.default_mu_stop(delta))
    _, fail = bounds.stopping_rule_bounds(mu, 0.3, 1.0)
    _close(fail, delta / 2, "composite")
    _, fail_tied = bounds.stopping_rule_bounds(mu, 0.3, 3.0)
    assert np.all(_np(fail_tied) < delta / 2)


def test_stopping_rule_bounds_s5_magnitudes():
    """THEORY S5: K=20, P*~0.13, mu=2 -> bound ~23, e^-2 ~ 0.135; K=100, P*~0.044, mu=3 -> ~91, ~0.050."""
    draws, fail = bounds.stopping_rule_bounds(2.0, 0.13, 1)
    assert abs(float(draws) - 23.0) < 1.0 and abs(float(fail) - 0.135) < 1e-3
    draws, fail = bounds.stopping_rule_bounds(3.0, 0.044, 1)
    assert abs(float(draws) - 91.0) < 1.0 and abs(float(fail) - 0.050) < 1e-3


@functools.partial(jax.jit, static_argnames=("trials", "max_draws"))
def _stopping_rule_draws(key, probs_K, mu, *, trials, max_draws):
    """N_mu = inf{k : 1/max_{i<=k} P(y_i) <= k/mu}; returns (N_mu, missed argmax, stopped)."""
    draws_TxL = jax.random.categorical(key, jnp.log(probs_K), shape=(trials, max_draws))
    best_TxL = jax.lax.cummax(probs_K[draws_TxL], axis=1)
    k_1xL = jnp.arange(1, max_draws + 1, dtype=best_TxL.dtype)[None, :]
    stop_TxL = k_1xL * best_TxL >= mu
    n_mu_T = jnp.argmax(stop_TxL, axis=1) + 1
    best_T = jnp.take_along_axis(best_TxL, (n_mu_T - 1)[:, None], axis=1)[:, 0]
    return n_mu_T, best_T < jnp.max(probs_K), jnp.any(stop_TxL, axis=1)


@pytest.mark.parametrize(("num_argmax", "mu"), [(1, 2.0), (1, 3.0), (2, 2.0)])
def test_stopping_rule_bounds_hold_in_simulation(num_argmax, mu):
    k_inst, k_sim = jax.random.split(jax.random.fold_in(jax.random.key(4), num_argmax))
    rest = _np(jax.random.dirichlet(k_inst, jnp.full((18,), 10.0)))
    top = 0.15
    probs = np.concatenate([np.full(num_argmax, top), rest * (1.0 - num_argmax * top)])
    assert rest.max() * (1.0 - num_argmax * top) < top
    trials = 4000
    n_mu, missed, stopped = map(
        _np,
        _stopping_rule_draws(
            k_sim, jnp.asarray(probs, dtype=float), mu, trials=trials, max_draws=512
        ),
    )
    assert stopped.all()
    draws_bound, fail_bound = bounds.stopping_rule_bounds(mu, top, num_argmax)
    # Mean and failure frequency within 5 standard errors of the bounds.
    assert n_mu.mean() <= float(draws_bound) + 5.0 * n_mu.std() / math.sqrt(trials)
    fb = float(fail_bound)
    assert missed.mean() <= fb + 5.0 * math.sqrt(fb * (1 - fb) / trials)


# --------------------------------------------------------------------------- Lemma F.1 / F.2


def test_mle_hellinger_bound_exact_rates():
    _close(
        _np(bounds.mle_hellinger_bound(10.0, 2 * _COUNT, 0.05))
        / _np(bounds.mle_hellinger_bound(10.0, _COUNT, 0.05)),
        np.full_like(_COUNT, 0.5),
    )
    affine = _np(bounds.mle_hellinger_bound(_LOGPI, 100.0, 0.05))
    _close(affine, 2.0 * (_LOGPI + math.log(1 / 0.05)) / 100.0)


def test_mle_hellinger_bound_holds_in_simulation():
    """Finite class of |Pi| = 64 distributions on 6 outcomes; the truth is member 0."""
    size, outcomes, n, rho, trials = 64, 6, 100, 0.1, 500
    k_class, k_data = jax.random.split(jax.random.key(5))
    class_PxY = jax.random.dirichlet(k_class, jnp.ones(outcomes), (size,))
    log_class_PxY = jnp.log(class_PxY)

    def trial(key):
        y_N = jax.random.categorical(key, log_class_PxY[0], shape=(n,))
        counts_Y = jnp.sum(jax.nn.one_hot(y_N, outcomes, dtype=class_PxY.dtype), axis=0)
        mle = jnp.argmax(log_class_PxY @ counts_Y)
        return jnp.sum((jnp.sqrt(class_PxY[mle]) - jnp.sqrt(class_PxY[0])) ** 2)

    keys = jax.vmap(lambda t: jax.random.fold_in(k_data, t))(jnp.arange(trials))
    hellinger_T = _np(jax.jit(jax.vmap(trial))(keys))
    bound = float(bounds.mle_hellinger_bound(math.log(size), n, rho))
    violations = float(np.mean(hellinger_T > bound))
    assert violations <= rho + 5.0 * math.sqrt(rho * (1 - rho) / trials)


@pytest.mark.parametrize(("k", "lam"), [(1.0, 1.0), (4.0, 1.0), (1.0, 0.1), (10.0, 0.5)])
def test_elliptic_potential_bound_holds_for_random_rank_one_increments(k, lam):
    d, t = 3, 300
    v_TxD = _np(jax.random.normal(jax.random.fold_in(jax.random.key(6), int(10 * k)), (t, d)))
    gamma = lam * np.eye(d)
    potential = 0.0
    for v in v_TxD:
        a = k * np.outer(v, v) / (v @ v)  # PSD with trace exactly K
        potential += np.trace(np.linalg.solve(gamma, a))
        gamma = gamma + a
    assert potential <= float(bounds.elliptic_potential_bound(d, t, k, lam))


def test_elliptic_potential_bound_needs_lam_at_most_k():
    """d = T = K = 1, lam = 2, A_1 = 1: potential 1/2, bound log(1)/... = 0 (condition omitted)."""
    assert float(bounds.elliptic_potential_bound(1, 1, 1.0, 2.0)) < 0.5


# --------------------------------------------------------------------------- validation

_BAD = {
    "epsilon": [0.0, 1.0, float("nan"), -1.0],
    "delta": [0.0, 1.0, 1.5, float("nan")],
    "rho": [0.0, 1.0, float("nan")],
    "n": [0.0, 0.5, -3.0, float("nan")],
    "num_samples": [0.0, 0.5, float("inf")],
    "num_samples_star": [0.0, 0.5],
    "c_cov": [0.5, 0.0, float("nan"), float("inf")],
    "c_cov_gamma": [0.5, float("nan")],
    "c_cov_bar": [0.5, float("nan")],
    "log_class_size": [-1.0, float("nan"), float("inf")],
    "p": [0, 1.5, -1, float("nan")],
    "c": [0.0, -1.0, float("nan")],
    "p_star": [0.0, 1.5, -0.1, float("nan")],
    "mu_stop": [0.0, -1.0, float("inf")],
    "num_argmax": [0.0, 0.5],
    "d": [0.0],
    "T": [0.0, 0.5],
    "K": [0.0, -1.0],
    "lam": [0.0, -1.0],
    "Delta": [-0.1, 1.1, float("nan")],
    "M": [1.0, 0.0],
    "gamma": [1.0, -0.1, float("nan")],
}

_VALIDATION_CASES = [
    (name, arg, bad)
    for name, (fn, kwargs, _) in sorted(_CASES.items())
    for arg in inspect.signature(fn).parameters
    if arg in kwargs or arg in ("p", "c")
    for bad in _BAD[arg]
] + [("hard_instance_parameters", arg, bad) for arg in ("epsilon", "c", "p") for bad in _BAD[arg]]


@pytest.mark.parametrize(("name", "arg", "bad"), _VALIDATION_CASES)
def test_invalid_argument_raises_value_error_naming_it(name, arg, bad):
    if name == "hard_instance_parameters":
        fn, kwargs = bounds.hard_instance_parameters, dict(epsilon=0.01, c=2.0)
    else:
        fn, kwargs, _ = _CASES[name]
    with pytest.raises(ValueError, match=rf"^{arg} must .*got {bad!r}"):
        fn(**_with(kwargs, **{arg: bad}))


def test_invalid_entry_of_an_array_is_reported_with_its_index():
    with pytest.raises(ValueError, match=r"^epsilon must .*got 1\.5 at index \(2,\)"):
        bounds.lower_bound_sft(2.0, 1.0, np.array([0.1, 0.2, 1.5]))


def test_cross_argument_checks():
    with pytest.raises(ValueError, match=r"^num_argmax"):
        bounds.stopping_rule_bounds(1.0, 0.4, 3)  # 3 * 0.4 > 1
    with pytest.raises(ValueError, match=r"^gamma"):
        bounds.hard_instance_c_cov(0.1, 2.0, gamma=0.6)  # off-argmax mass would be negative


def test_tracers_are_not_validated():
    out = jax.jit(bounds.lower_bound_sft)(2.0, 1.0, 1.5)  # eps = 1.5 is invalid but traced
    assert out.shape == ()
    out = jax.vmap(bounds.bon_miss_probability, in_axes=(0, None))(jnp.asarray([0.5, 2.0]), 3.0)
    assert out.shape == (2,)

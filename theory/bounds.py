r"""Closed-form SFT-side rates of the sharpening paper as pure ``jax.numpy`` functions.

Every rate of THEORY §0 on the SFT side (lower bounds, inference-time best-of-N, SFT-Sharpening,
adaptive SFT-Sharpening, and the two technical lemmas they use) is one pure function of its
parameters. Simulations compare measured quantities against these functions; figures draw them.

| function | result | value |
|---|---|---|
| :func:`lower_bound_sft` | Thm 3.1, Thm 3.1′ (non-adaptive) | :math:`cC\log|\Pi|/(\epsilon^{1+1/p}(1+\log(C\epsilon^{-1/p})))` |
| :func:`lower_bound_adaptive` | Thm D.2, Thm 3.1′ (adaptive) | :math:`cC\log|\Pi|/(\epsilon^{1/p}(1+\log(C\epsilon^{-1/p})))` |
| :func:`hard_instance_parameters` | proof of Thm 3.1′ (THEORY §4.1) | :math:`\Delta=16\epsilon`, :math:`M=\lceil1+C\epsilon^{-1/p}\rceil` |
| :func:`hard_instance_c_cov` | proof of Thm 3.1′ (THEORY §4.1) | :math:`((1-\Delta)+(M(1-\gamma))^p\Delta)^{1/p}` |
| :func:`greedy_threshold` | Prop 3.1 | :math:`1/2` |
| :func:`inference_bon_num_samples` | Prop C.1 | :math:`\lceil\log(1/\rho)/p^\star\rceil` |
| :func:`inference_bon_failure_bound` | Prop C.1 | :math:`e^{-Np^\star}` |
| :func:`bon_miss_probability` | BoN law (§3.3), exact | :math:`(1-p^\star)^N` |
| :func:`sft_settings` | Thm 4.1 | :math:`n=c\log(|\Pi|/\rho)/(\delta\epsilon)`, :math:`N=cC_{\rm cov}\log(2/\delta)/\epsilon` |
| :func:`sft_sample_complexity` | Thm 4.1, Eq. 7 | :math:`cC_{\rm cov}\log(|\Pi|/\rho)\log(1/\delta)/(\delta\epsilon^2)` |
| :func:`sft_error_bound` | Thm 4.1′ | :math:`c(\log(|\Pi|/\rho)/(\delta n)+C_{{\rm cov},\gamma}/N^\star)` |
| :func:`bon_coverage_term_bound` | Thm 4.1′ proof (Markov step) | :math:`\min\{1,C_{\rm cov}\log(2/\delta)/N\}` |
| :func:`adaptive_sft_sample_complexity` | Thm D.1 | :math:`c\bar C_{\rm cov}\log(|\Pi|/\rho)\log(1/\delta)/(\delta\epsilon)` |
| :func:`adaptive_sft_expected_draws_bound` | Thm D.1 proof | :math:`n(1+\mu_{\rm stop})\bar C_{\rm cov}` |
| :func:`adaptive_sft_error_bound` | Thm D.1 | :math:`c\log(|\Pi|/\rho)/(\delta n)` |
| :func:`stopping_rule_bounds` | Lemma I.1 | :math:`(\mu+1/|\mathbf y^\star|)/P^\star`, :math:`e^{-|\mathbf y^\star|\mu}` |
| :func:`default_mu_stop` | Thm D.1 | :math:`\ln(2/\delta)` |
| :func:`mle_hellinger_bound` | Lemma F.1 | :math:`2\log(|\Pi|/\rho)/n` |
| :func:`elliptic_potential_bound` | Lemma F.2 | :math:`dK\log((T+1)K/\lambda)/(\lambda\log(1+K/\lambda))` |

Conventions:

- **Orders vs. exact bounds.** Where the paper states only an order (:math:`\lesssim`, :math:`O`,
  :math:`\Omega`) the function takes an explicit absolute constant ``c`` (default ``1.0``); its
  value is then a *rate*, meaningful up to that constant, and slopes are what simulations check.
  The other functions are exact inequalities or identities with no hidden constant.
- **Shapes and dtypes.** Array arguments broadcast against each other (explicitly, so the
  functions also run under ``jax_numpy_rank_promotion="raise"``); the result has the broadcast
  shape and JAX's default float dtype: float64 under ``JAX_ENABLE_X64=1``, float32 otherwise.
  All functions except :func:`hard_instance_parameters` and :func:`greedy_threshold` work under
  ``jax.jit`` and ``jax.vmap``.
- **Logarithms** are natural. ``log_class_size`` is :math:`\log|\Pi|`, so
  :math:`\log(|\Pi|/\rho)` is ``log_class_size + log(1/rho)``.
- **Validation.** Concrete inputs are checked and a ``ValueError`` names the argument and the
  offending value. Tracers (inside ``jit``/``vmap``) carry no value and are not checked; the
  formulas then assume valid input.

References:
  Huang, Block, Foster, Rohatgi, Zhang, Simchowitz, Ash, Krishnamurthy. *Self-Improvement in
  Language Models: The Sharpening Mechanism.* ICLR 2025 (arXiv:2412.01951).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "adaptive_sft_error_bound",
    "adaptive_sft_expected_draws_bound",
    "adaptive_sft_sample_complexity",
    "bon_coverage_term_bound",
    "bon_miss_probability",
    "default_mu_stop",
    "elliptic_potential_bound",
    "greedy_threshold",
    "hard_instance_c_cov",
    "hard_instance_parameters",
    "inference_bon_failure_bound",
    "inference_bon_num_samples",
    "lower_bound_adaptive",
    "lower_bound_sft",
    "mle_hellinger_bound",
    "sft_error_bound",
    "sft_sample_complexity",
    "sft_settings",
    "stopping_rule_bounds",
]

# Relative slack before the ceiling in M = ceil(1 + C eps^(-1/p)): eps ** (-1/p) carries rounding
# error (0.001 ** (-1/3) == 9.999999999999998), which must not move an integral value up by one.
_CEIL_RTOL = 1e-12


# --------------------------------------------------------------------------- validation helpers


def _is_tracer(x: object) -> bool:
    return isinstance(x, jax.core.Tracer)


def _require(name: str, x: ArrayLike, ok: Callable[[np.ndarray], np.ndarray], what: str) -> None:
    """Raise ``ValueError`` unless ``ok`` holds entrywise on concrete ``x``; skip tracers."""
    if _is_tracer(x):
        return
    host = np.asarray(x, dtype=np.float64)
    good = np.broadcast_to(ok(host), host.shape)  # NaN fails every comparison, hence `good`
    if not good.all():
        idx = tuple(int(i) for i in np.argwhere(~good)[0])
        got = repr(float(host[idx])) + (f" at index {idx}" if host.ndim else "")
        raise ValueError(f"{name} must be {what}; got {got}")


def _open_unit(name: str, x: ArrayLike) -> None:
    _require(name, x, lambda h: (h > 0) & (h < 1), "in the open interval (0, 1)")


def _prob(name: str, x: ArrayLike) -> None:
    _require(name, x, lambda h: (h > 0) & (h <= 1), "in the interval (0, 1]")


def _at_least(name: str, x: ArrayLike, lo: float) -> None:
    _require(name, x, lambda h: np.isfinite(h) & (h >= lo), f"finite and >= {lo:g}")


def _positive(name: str, x: ArrayLike) -> None:
    _require(name, x, lambda h: np.isfinite(h) & (h > 0), "finite and > 0")


def _order(name: str, x: ArrayLike) -> None:
    _require(name, x, lambda h: np.isfinite(h) & (h >= 1) & (h == np.floor(h)), "an integer >= 1")


def _floats(*xs: ArrayLike) -> list[jax.Array]:
    """Cast to the default float dtype and broadcast explicitly (rank promotion may be 'raise')."""
    return jnp.broadcast_arrays(*(jnp.asarray(x, dtype=float) for x in xs))


def _log_over(log_class_size: jax.Array, rho: jax.Array) -> jax.Array:
    """:math:`\\log(|\\Pi|/\\rho)` from :math:`\\log|\\Pi|` and :math:`\\rho`."""
    return log_class_size - jnp.log(rho)


# --------------------------------------------------------------------------- Section 3: limits


def lower_bound_sft(
    c_cov: ArrayLike,
    log_class_size: ArrayLike,
    epsilon: ArrayLike,
    *,
    p: ArrayLike = 1,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Lower bound on the queries of any non-adaptive sample-and-evaluate sharpener.

    .. math::

       m \gtrsim \frac{C\log|\Pi|}{\epsilon^{1+1/p}\,\big(1+\log(C\epsilon^{-1/p})\big)}

    The paper states an order (:math:`\gtrsim`); the absolute constant is the argument ``c``.
    ``p = 1`` is Thm 3.1, :math:`m\gtrsim C\log|\Pi|/(\epsilon^2(1+\log(C/\epsilon)))`. Its
    log-log slope in :math:`1/\epsilon` is
    :math:`1+\frac1p-\frac{1/p}{1+\log(C\epsilon^{-1/p})}`, which tends to :math:`1+1/p` as
    :math:`\epsilon\to0`.

    Args:
      c_cov: [...] coverage level :math:`C\ge1` (order-:math:`p` coverage of the class).
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      epsilon: [...] fraction of prompts allowed to fail, in (0, 1).
      p: [...] coverage order, an integer >= 1.
      c: [...] absolute constant > 0 hidden in :math:`\gtrsim`.

    Returns:
      [...] the bound on :math:`m`, broadcast shape of the arguments.

    References:
      Huang et al. (2025), Thm 3.1 and Thm 3.1′ (sample-and-evaluate oracle), App. H.

    Example:
      >>> from theory.bounds import lower_bound_sft
      >>> print(f"{float(lower_bound_sft(4.0, 10.0, 0.01)):.1f}")
      57212.6
    """
    _at_least("c_cov", c_cov, 1.0)
    _at_least("log_class_size", log_class_size, 0.0)
    _open_unit("epsilon", epsilon)
    _order("p", p)
    _positive("c", c)
    c_cov, log_pi, eps, p, c = _floats(c_cov, log_class_size, epsilon, p, c)
    log_factor = 1.0 + jnp.log(c_cov) - jnp.log(eps) / p
    return c * c_cov * log_pi * eps ** -(1.0 + 1.0 / p) / log_factor


def lower_bound_adaptive(
    c_cov: ArrayLike,
    log_class_size: ArrayLike,
    epsilon: ArrayLike,
    *,
    p: ArrayLike = 1,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Lower bound on the expected queries of any adaptive sample-and-evaluate sharpener.

    .. math::

       \mathbb E[m] \gtrsim \frac{C\log|\Pi|}{\epsilon^{1/p}\,\big(1+\log(C\epsilon^{-1/p})\big)}

    The constant hidden in :math:`\gtrsim` is ``c``. ``p = 1`` is Thm D.2,
    :math:`\mathbb E[m]\gtrsim C\log|\Pi|/(\epsilon(1+\log(C/\epsilon)))`, which shows that the
    :math:`1/\epsilon` rate of Thm D.1 is tight. For every ``p`` the ratio to
    :func:`lower_bound_sft` is exactly :math:`\epsilon`.

    Args:
      c_cov: [...] coverage level :math:`C\ge1`.
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      epsilon: [...] fraction of prompts allowed to fail, in (0, 1).
      p: [...] coverage order, an integer >= 1.
      c: [...] absolute constant > 0 hidden in :math:`\gtrsim`.

    Returns:
      [...] the bound on :math:`\mathbb E[m]`.

    References:
      Huang et al. (2025), Thm D.2 and Thm 3.1′ (adaptive oracle, Def. D.1), App. H.

    Example:
      >>> from theory.bounds import lower_bound_adaptive
      >>> print(f"{float(lower_bound_adaptive(4.0, 10.0, 0.01)):.2f}")
      572.13
    """
    _at_least("c_cov", c_cov, 1.0)
    _at_least("log_class_size", log_class_size, 0.0)
    _open_unit("epsilon", epsilon)
    _order("p", p)
    _positive("c", c)
    c_cov, log_pi, eps, p, c = _floats(c_cov, log_class_size, epsilon, p, c)
    log_factor = 1.0 + jnp.log(c_cov) - jnp.log(eps) / p
    return c * c_cov * log_pi * eps ** -(1.0 / p) / log_factor


def hard_instance_parameters(
    epsilon: ArrayLike,
    c: ArrayLike,
    *,
    p: ArrayLike = 1,
    adaptive: bool = False,
    c1: float = 16.0,
) -> tuple[float, int] | tuple[np.ndarray, np.ndarray]:
    r"""Mass of the hard prompts and number of responses of the lower-bound instance.

    .. math::

       \Delta = 16\,\epsilon \ \ (\text{non-adaptive}),\qquad
       \Delta = c_1\epsilon \ \ (\text{adaptive}),\qquad
       M = \big\lceil 1 + C\epsilon^{-1/p} \big\rceil .

    These are the "Parameters" of the hard instance in THEORY §4.1 (proof of Thm 3.1′); the paper
    gives :math:`M\asymp1+C\epsilon^{-1/p}` and THEORY S3 fixes the ceiling. ``c1`` is used only
    when ``adaptive`` is true (the paper leaves :math:`c_1` unnamed; default 16). Since
    :math:`C\ge1` and :math:`\epsilon<1`, :math:`M\ge3`; Lemma H.4 (adaptive) also needs
    :math:`M\ge6`. A relative slack of ``1e-12`` before the ceiling keeps mathematically integral
    values integral (``C=1, epsilon=0.001, p=3`` gives ``M=11``, not 12).

    This runs on the host in float64 numpy and is not traceable: ``M`` sets array shapes.

    Args:
      epsilon: [...] target failure fraction, in (0, 1); needs :math:`\Delta\le1`.
      c: [...] coverage level :math:`C\ge1`.
      p: [...] coverage order, an integer >= 1.
      adaptive: use :math:`\Delta=c_1\epsilon` (Thm D.2 / adaptive Thm 3.1′) instead of
        :math:`16\epsilon`.
      c1: constant > 0 of the adaptive :math:`\Delta`.

    Returns:
      ``(Delta, M)``: a Python ``float`` and ``int`` when every argument is a scalar, otherwise
      float64 and int64 numpy arrays of the broadcast shape.

    Raises:
      ValueError: for invalid arguments, or when :math:`\Delta>1` (``epsilon`` too large).

    References:
      Huang et al. (2025), proof of Thm 3.1′ (App. H, Lemmas H.2–H.4); THEORY §4.1 and §5.3 S3.

    Example:
      >>> from theory.bounds import hard_instance_parameters
      >>> hard_instance_parameters(0.01, 2.0)
      (0.16, 201)
      >>> hard_instance_parameters(0.01, 2.0, p=2)
      (0.16, 21)
    """
    _open_unit("epsilon", epsilon)
    _at_least("c", c, 1.0)
    _order("p", p)
    _positive("c1", c1)
    scalar = all(np.ndim(v) == 0 for v in (epsilon, c, p))
    eps, cc, pp = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (epsilon, c, p)))
    scale = float(c1) if adaptive else 16.0
    delta_mass = scale * eps
    if np.any(delta_mass > 1.0):
        idx = tuple(int(i) for i in np.argwhere(delta_mass > 1.0)[0])
        raise ValueError(
            f"Delta = {scale:g} * epsilon must be <= 1; got epsilon={float(eps[idx])!r} "
            f"(Delta={float(delta_mass[idx])!r})"
        )
    x = 1.0 + cc * eps ** (-1.0 / pp)
    m = np.ceil(x * (1.0 - _CEIL_RTOL)).astype(np.int64)
    if scalar:
        return float(delta_mass), int(m)
    return delta_mass, m


def hard_instance_c_cov(
    Delta: ArrayLike, M: ArrayLike, *, gamma: ArrayLike = 0.5, p: ArrayLike = 1
) -> jax.Array:
    r"""Order-:math:`p` coverage coefficient of any model of the lower-bound class.

    .. math::

       C_{{\rm cov},\gamma,p}(\pi)
       = \big((1-\Delta) + (M(1-\gamma))^p\,\Delta\big)^{1/p},
       \qquad p=1,\ \gamma=\tfrac12:\ \ C_{\rm cov} = 1-\Delta+\Delta M/2 .

    The easy prompt (mass :math:`1-\Delta`) is deterministic; on each hard prompt the
    approximate-argmax set is the singleton :math:`\{y_i\}` of mass :math:`1/((1-\gamma)M)`.
    The construction exists when the off-argmax masses are non-negative,
    :math:`\gamma\le1-1/M`, which is checked. Exact (no hidden constant).

    Args:
      Delta: [...] total mass of the hard prompts, in [0, 1].
      M: [...] number of responses on a hard prompt, >= 2.
      gamma: [...] approximation slack in [0, 1) with :math:`\gamma\le1-1/M`.
      p: [...] coverage order, an integer >= 1.

    Returns:
      [...] :math:`C_{{\rm cov},\gamma,p}`.

    References:
      Huang et al. (2025), proof of Thm 3.1′ (App. H); THEORY §4.1 "Coverage".

    Example:
      >>> from theory.bounds import hard_instance_c_cov
      >>> print(f"{float(hard_instance_c_cov(0.16, 201)):.2f}")
      16.92
    """
    _require("Delta", Delta, lambda h: (h >= 0) & (h <= 1), "in the interval [0, 1]")
    _at_least("M", M, 2.0)
    _require("gamma", gamma, lambda h: (h >= 0) & (h < 1), "in the interval [0, 1)")
    _order("p", p)
    if not (_is_tracer(M) or _is_tracer(gamma)):
        m_host, g_host = np.broadcast_arrays(
            np.asarray(M, np.float64), np.asarray(gamma, np.float64)
        )
        _require("gamma", g_host, lambda h: h <= 1.0 - 1.0 / m_host, "<= 1 - 1/M (mass >= 0)")
    delta_mass, m, gamma, p = _floats(Delta, M, gamma, p)
    return ((1.0 - delta_mass) + (m * (1.0 - gamma)) ** p * delta_mass) ** (1.0 / p)


def greedy_threshold() -> float:
    r"""Mass above which greedy decoding returns the unique sequence argmax.

    .. math::

       \pi(y^\star\mid x) > \tfrac12 \ \Longrightarrow\ \text{greedy decoding returns } y^\star.

    The inequality is strict and tight: at mass :math:`\le1/2` greedy can fail (THEORY S2:
    :math:`\mathcal V=\{a,b\}`, :math:`H=2`, :math:`\pi(a)=1/2+\eta`, :math:`\pi(\cdot|a)`
    uniform, :math:`\pi(b|b)=1`). This is why :math:`(\epsilon,\delta)`-sharpening with any
    constant :math:`\delta<1/2` suffices for deployment.

    Returns:
      ``0.5`` as a Python float.

    References:
      Huang et al. (2025), Prop 3.1 (proof in App. G).

    Example:
      >>> from theory.bounds import greedy_threshold
      >>> greedy_threshold()
      0.5
    """
    return 0.5


# --------------------------------------------------------------------------- App. C: BoN


def inference_bon_num_samples(p_star: ArrayLike, rho: ArrayLike) -> jax.Array:
    r"""Best-of-N draws that suffice to return an approximate argmax with probability 1 - rho.

    .. math::

       N = \Big\lceil \frac{\log(1/\rho)}{p^\star} \Big\rceil,
       \qquad (1-p^\star)^N \le e^{-Np^\star} \le \rho .

    :math:`p^\star=\pi_{\rm base}(\mathbf y^\star_\gamma(x)\mid x)` is the *set* mass of the
    target. Exact, and the smallest integer for which :math:`e^{-Np^\star}\le\rho`.

    Args:
      p_star: [...] target mass, in (0, 1].
      rho: [...] failure probability, in (0, 1).

    Returns:
      [...] :math:`N`, integral values in float dtype.

    References:
      Huang et al. (2025), Prop C.1 (App. C).

    Example:
      >>> from theory.bounds import inference_bon_num_samples
      >>> float(inference_bon_num_samples(0.1, 0.05))
      30.0
    """
    _prob("p_star", p_star)
    _open_unit("rho", rho)
    p_star, rho = _floats(p_star, rho)
    return jnp.ceil(-jnp.log(rho) / p_star)


def inference_bon_failure_bound(p_star: ArrayLike, num_samples: ArrayLike) -> jax.Array:
    r"""Upper bound on the probability that best-of-N misses the target set.

    .. math::

       \mathbb P[\hat y\notin\mathbf y^\star_\gamma(x)] = (1-p^\star)^N \le e^{-Np^\star}.

    Exact inequality (from :math:`1-p\le e^{-p}`); compare :func:`bon_miss_probability`.

    Args:
      p_star: [...] target mass :math:`\pi_{\rm base}(\mathbf y^\star_\gamma(x)|x)`, in (0, 1].
      num_samples: [...] :math:`N\ge1`.

    Returns:
      [...] :math:`e^{-Np^\star}`.

    References:
      Huang et al. (2025), Prop C.1 (App. C).

    Example:
      >>> from theory.bounds import inference_bon_failure_bound
      >>> print(f"{float(inference_bon_failure_bound(0.1, 30)):.5f}")
      0.04979
    """
    _prob("p_star", p_star)
    _at_least("num_samples", num_samples, 1.0)
    p_star, n = _floats(p_star, num_samples)
    return jnp.exp(-n * p_star)


def bon_miss_probability(p_star: ArrayLike, num_samples: ArrayLike) -> jax.Array:
    r"""Exact probability that none of N i.i.d. draws lands in a set of mass p_star.

    .. math::

       1-\pi^{\rm BoN}_N(\mathbf y^\star(x)\mid x) = (1-p^\star)^N = \exp\big(N\log(1-p^\star)\big).

    Computed as ``exp(N * log1p(-p_star))``: the naive power rounds :math:`1-p^\star` to 1 for
    small :math:`p^\star` (float32 below ~6e-8), whereas ``log1p`` keeps it, so
    :math:`N=10^9`, :math:`p^\star=10^{-9}` gives :math:`\approx e^{-1}` in either dtype.

    Args:
      p_star: [...] set mass, in (0, 1].
      num_samples: [...] :math:`N\ge1`.

    Returns:
      [...] :math:`(1-p^\star)^N` in [0, 1).

    References:
      Huang et al. (2025), §3.3 best-of-N law (THEORY §3.3); Prop C.1.

    Example:
      >>> from theory.bounds import bon_miss_probability
      >>> print(f"{float(bon_miss_probability(0.5, 3)):.4f}")
      0.1250
    """
    _prob("p_star", p_star)
    _at_least("num_samples", num_samples, 1.0)
    p_star, n = _floats(p_star, num_samples)
    return jnp.exp(n * jnp.log1p(-p_star))


# --------------------------------------------------------------------------- §4.1: SFT


def sft_settings(
    c_cov: ArrayLike,
    log_class_size: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    rho: ArrayLike,
    *,
    c: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""Numbers of prompts and of responses per prompt that make SFT-Sharpening succeed.

    .. math::

       n = c\,\frac{\log(|\Pi|/\rho)}{\delta\epsilon},
       \qquad N = c\,\frac{C_{\rm cov}\log(2/\delta)}{\epsilon} .

    ``c`` is the theorem's absolute constant. The values are real; round up with ``jnp.ceil``
    for integer counts. :math:`N` here is the *total* number of responses per prompt, i.e.
    :math:`N=N^\star\log(2/\delta)` with the :math:`N^\star` of Thm 4.1′ (THEORY §8, item 5).
    The product :math:`nN` equals :func:`sft_sample_complexity` with constant :math:`c^2`,
    times :math:`\log(2/\delta)/\log(1/\delta)`.

    Args:
      c_cov: [...] :math:`C_{\rm cov}\ge1` (Eq. 6).
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      epsilon: [...] target failure fraction, in (0, 1).
      delta: [...] mass allowed off the argmax, in (0, 1).
      rho: [...] failure probability over the data, in (0, 1).
      c: [...] absolute constant > 0.

    Returns:
      ``(n, N)``, each [...].

    References:
      Huang et al. (2025), Thm 4.1 (§4.1); THEORY §3.3.

    Example:
      >>> from theory.bounds import sft_settings
      >>> n, N = sft_settings(4.0, 10.0, 0.1, 0.25, 0.05)
      >>> print(f"{float(n):.1f} {float(N):.1f}")
      519.8 83.2
    """
    _at_least("c_cov", c_cov, 1.0)
    _at_least("log_class_size", log_class_size, 0.0)
    _open_unit("epsilon", epsilon)
    _open_unit("delta", delta)
    _open_unit("rho", rho)
    _positive("c", c)
    c_cov, log_pi, eps, delta, rho, c = _floats(c_cov, log_class_size, epsilon, delta, rho, c)
    n = c * _log_over(log_pi, rho) / (delta * eps)
    num_samples = c * c_cov * (jnp.log(2.0) - jnp.log(delta)) / eps
    return n, num_samples


def sft_sample_complexity(
    c_cov: ArrayLike,
    log_class_size: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    rho: ArrayLike,
    *,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Total sample-and-evaluate queries of SFT-Sharpening (Eq. 7).

    .. math::

       m = O\Big(\frac{C_{\rm cov}\log(|\Pi|/\rho)\log(1/\delta)}{\delta\,\epsilon^2}\Big)

    The constant in :math:`O` is ``c``. The product :math:`n\cdot N` of :func:`sft_settings` is
    the same order, with :math:`\log(2/\delta)` in place of :math:`\log(1/\delta)` (and constant
    :math:`c^2`); the two differ only by a factor bounded for :math:`\delta` bounded away from 1.
    Log-log slope 2 in :math:`1/\epsilon`, matching :func:`lower_bound_sft` at :math:`p=1` up to
    the log factor: for constant :math:`\delta`, SFT-Sharpening is minimax optimal.

    Args:
      c_cov: [...] :math:`C_{\rm cov}\ge1`.
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      epsilon: [...] target failure fraction, in (0, 1).
      delta: [...] mass allowed off the argmax, in (0, 1).
      rho: [...] failure probability over the data, in (0, 1).
      c: [...] absolute constant > 0.

    Returns:
      [...] :math:`m`.

    References:
      Huang et al. (2025), Thm 4.1, Eq. 7.

    Example:
      >>> from theory.bounds import sft_sample_complexity
      >>> print(f"{float(sft_sample_complexity(4.0, 10.0, 0.1, 0.25, 0.05)):.1f}")
      28825.5
    """
    _at_least("c_cov", c_cov, 1.0)
    _at_least("log_class_size", log_class_size, 0.0)
    _open_unit("epsilon", epsilon)
    _open_unit("delta", delta)
    _open_unit("rho", rho)
    _positive("c", c)
    c_cov, log_pi, eps, delta, rho, c = _floats(c_cov, log_class_size, epsilon, delta, rho, c)
    return c * c_cov * _log_over(log_pi, rho) * -jnp.log(delta) / (delta * eps**2)


def sft_error_bound(
    log_class_size: ArrayLike,
    n: ArrayLike,
    c_cov_gamma: ArrayLike,
    num_samples_star: ArrayLike,
    delta: ArrayLike,
    rho: ArrayLike,
    *,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Sharpening error of SFT-Sharpening as a statistical plus a coverage term.

    .. math::

       \mathbb P_x\big[\hat\pi(\mathbf y^\star_\gamma(x)\mid x)\le1-2\delta\big]
       \lesssim \frac{\log(|\Pi|/\rho)}{\delta\,n} + \frac{C_{{\rm cov},\gamma}}{N^\star}

    with probability :math:`\ge1-\rho`, when :math:`N=N^\star\log(2/\delta)` responses are drawn
    per prompt. The constant in :math:`\lesssim` is ``c``; the value is not clipped to 1. The
    first term is Lemma F.1 through data processing, the second the Markov step bounded exactly
    by :func:`bon_coverage_term_bound`.

    Args:
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      n: [...] number of prompts, >= 1.
      c_cov_gamma: [...] :math:`C_{{\rm cov},\gamma}\ge1`.
      num_samples_star: [...] :math:`N^\star\ge1` (excludes the :math:`\log(2/\delta)` factor).
      delta: [...] in (0, 1).
      rho: [...] failure probability over the data, in (0, 1).
      c: [...] absolute constant > 0.

    Returns:
      [...] the bound on the error.

    References:
      Huang et al. (2025), Thm 4.1′ (App. I).

    Example:
      >>> from theory.bounds import sft_error_bound
      >>> print(f"{float(sft_error_bound(10.0, 1000, 4.0, 40, 0.25, 0.05)):.4f}")
      0.1520
    """
    _at_least("log_class_size", log_class_size, 0.0)
    _at_least("n", n, 1.0)
    _at_least("c_cov_gamma", c_cov_gamma, 1.0)
    _at_least("num_samples_star", num_samples_star, 1.0)
    _open_unit("delta", delta)
    _open_unit("rho", rho)
    _positive("c", c)
    log_pi, n, c_cov, n_star, delta, rho, c = _floats(
        log_class_size, n, c_cov_gamma, num_samples_star, delta, rho, c
    )
    return c * (_log_over(log_pi, rho) / (delta * n) + c_cov / n_star)


def bon_coverage_term_bound(
    c_cov: ArrayLike, num_samples: ArrayLike, delta: ArrayLike
) -> jax.Array:
    r"""Markov bound on the fraction of prompts where best-of-N puts > delta/2 off the argmax.

    .. math::

       \mathbb P_{x\sim\mu}\big[(1-p^\star(x))^N > \delta/2\big]
       \le \min\Big\{1, \frac{C_{\rm cov}\log(2/\delta)}{N}\Big\},
       \qquad p^\star(x)=\pi_{\rm base}(\mathbf y^\star(x)\mid x).

    Since :math:`1-\pi^{\rm BoN}_N(\mathbf y^\star|x)=(1-p^\star)^N`, the left side is the
    population error of the best-of-N law at level :math:`1-\delta/2`. Derivation (exact, no
    hidden constant): :math:`(1-p)^N>\delta/2` gives
    :math:`N\log\frac1{1-p}<\log\frac2\delta`, and :math:`\log\frac1{1-p}\ge p`, so
    :math:`p<\log(2/\delta)/N`, i.e. :math:`1/p^\star(x)>N/\log(2/\delta)`. Markov's inequality
    on the non-negative variable :math:`1/p^\star(x)`, whose mean is :math:`C_{\rm cov}`,
    bounds the probability of that event by :math:`C_{\rm cov}\log(2/\delta)/N`. Tight for a
    two-point law of :math:`p^\star`; loose for light tails.

    Args:
      c_cov: [...] :math:`C_{\rm cov}=\mathbb E_x[1/p^\star(x)]\ge1`.
      num_samples: [...] :math:`N\ge1`.
      delta: [...] in (0, 1).

    Returns:
      [...] the bound, in (0, 1].

    References:
      Huang et al. (2025), proof of Thm 4.1′ (App. I, Markov step); THEORY §5.3 S4 (iii).

    Example:
      >>> from theory.bounds import bon_coverage_term_bound
      >>> print(f"{float(bon_coverage_term_bound(4.0, 200, 0.25)):.5f}")
      0.04159
    """
    _at_least("c_cov", c_cov, 1.0)
    _at_least("num_samples", num_samples, 1.0)
    _open_unit("delta", delta)
    c_cov, n, delta = _floats(c_cov, num_samples, delta)
    return jnp.minimum(1.0, c_cov * (jnp.log(2.0) - jnp.log(delta)) / n)


# --------------------------------------------------------------------------- App. D / I: adaptive


def adaptive_sft_sample_complexity(
    c_cov_bar: ArrayLike,
    log_class_size: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    rho: ArrayLike,
    *,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Expected queries of adaptive SFT-Sharpening (stopping rule, Thm D.1).

    .. math::

       \mathbb E[m] = O\Big(\frac{\bar C_{\rm cov}\log(|\Pi|/\rho)\log(1/\delta)}{\delta\,\epsilon}\Big)

    The constant in :math:`O` is ``c``. One factor :math:`1/\epsilon` less than
    :func:`sft_sample_complexity` (with :math:`\bar C_{\rm cov}\ge C_{\rm cov}` in place of
    :math:`C_{\rm cov}`); tight by Thm D.2 (:func:`lower_bound_adaptive`).

    Args:
      c_cov_bar: [...] :math:`\bar C_{\rm cov}=\mathbb E_x[1/\max_y\pi_{\rm base}(y|x)]\ge1`.
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      epsilon: [...] target failure fraction, in (0, 1).
      delta: [...] in (0, 1).
      rho: [...] failure probability over the data, in (0, 1).
      c: [...] absolute constant > 0.

    Returns:
      [...] :math:`\mathbb E[m]`.

    References:
      Huang et al. (2025), Thm D.1 (App. D).

    Example:
      >>> from theory.bounds import adaptive_sft_sample_complexity
      >>> print(f"{float(adaptive_sft_sample_complexity(4.0, 10.0, 0.1, 0.25, 0.05)):.2f}")
      2882.55
    """
    _at_least("c_cov_bar", c_cov_bar, 1.0)
    _at_least("log_class_size", log_class_size, 0.0)
    _open_unit("epsilon", epsilon)
    _open_unit("delta", delta)
    _open_unit("rho", rho)
    _positive("c", c)
    c_bar, log_pi, eps, delta, rho, c = _floats(c_cov_bar, log_class_size, epsilon, delta, rho, c)
    return c * c_bar * _log_over(log_pi, rho) * -jnp.log(delta) / (delta * eps)


def adaptive_sft_expected_draws_bound(
    n: ArrayLike, mu_stop: ArrayLike, c_cov_bar: ArrayLike
) -> jax.Array:
    r"""Explicit bound on the expected draws of adaptive SFT-Sharpening over n prompts.

    .. math::

       \mathbb E[m] \le n\,(1+\mu_{\rm stop})\,\bar C_{\rm cov}

    Exact: sum over prompts of Lemma I.1,
    :math:`\mathbb E[N_\mu]\le(\mu+1/|\mathbf y^\star|)/P^\star\le(1+\mu)/P^\star`, averaged over
    :math:`x\sim\mu`.

    Args:
      n: [...] number of prompts, >= 1.
      mu_stop: [...] stopping parameter > 0 (theory: :func:`default_mu_stop`).
      c_cov_bar: [...] :math:`\bar C_{\rm cov}\ge1`.

    Returns:
      [...] the bound on :math:`\mathbb E[m]`.

    References:
      Huang et al. (2025), proof of Thm D.1 (App. I).

    Example:
      >>> from theory.bounds import adaptive_sft_expected_draws_bound
      >>> float(adaptive_sft_expected_draws_bound(100, 2.0, 4.0))
      1200.0
    """
    _at_least("n", n, 1.0)
    _positive("mu_stop", mu_stop)
    _at_least("c_cov_bar", c_cov_bar, 1.0)
    n, mu, c_bar = _floats(n, mu_stop, c_cov_bar)
    return n * (1.0 + mu) * c_bar


def adaptive_sft_error_bound(
    log_class_size: ArrayLike,
    n: ArrayLike,
    delta: ArrayLike,
    rho: ArrayLike,
    *,
    c: ArrayLike = 1.0,
) -> jax.Array:
    r"""Sharpening error of adaptive SFT-Sharpening: the statistical term alone.

    .. math::

       \mathbb P_x\big[\hat\pi(\mathbf y^\star(x)\mid x)\le1-\delta\big]
       \lesssim \frac{\log(|\Pi|/\rho)}{\delta\,n}

    with probability :math:`\ge1-\rho`, at :math:`\mu_{\rm stop}=\ln(2/\delta)`. There is no
    coverage term: the stopping rule pays for coverage in draws instead. The constant in
    :math:`\lesssim` is ``c``; the value is not clipped to 1. It equals the first term of
    :func:`sft_error_bound`.

    Args:
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      n: [...] number of prompts, >= 1.
      delta: [...] in (0, 1).
      rho: [...] failure probability over the data, in (0, 1).
      c: [...] absolute constant > 0.

    Returns:
      [...] the bound on the error.

    References:
      Huang et al. (2025), Thm D.1 (App. D).

    Example:
      >>> from theory.bounds import adaptive_sft_error_bound
      >>> print(f"{float(adaptive_sft_error_bound(10.0, 1000, 0.25, 0.05)):.4f}")
      0.0520
    """
    _at_least("log_class_size", log_class_size, 0.0)
    _at_least("n", n, 1.0)
    _open_unit("delta", delta)
    _open_unit("rho", rho)
    _positive("c", c)
    log_pi, n, delta, rho, c = _floats(log_class_size, n, delta, rho, c)
    return c * _log_over(log_pi, rho) / (delta * n)


def stopping_rule_bounds(
    mu_stop: ArrayLike, p_star: ArrayLike, num_argmax: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    r"""Expected stopping time and failure probability of the adaptive stopping rule.

    .. math::

       \mathbb E[N_\mu] \le \frac{\mu+1/|\mathbf y^\star|}{P^\star},
       \qquad \mathbb P[\hat y_\tau\notin\mathbf y^\star] \le e^{-|\mathbf y^\star|\mu},

    for :math:`N_\mu=\inf\{k: 1/\max_{i\le k}P(y_i)\le k/\mu\}` and any stopping time
    :math:`\tau\ge N_\mu`. :math:`P^\star=\max_yP(y)` is the mass of *one* argmax response
    (not of the set), and :math:`|\mathbf y^\star|P^\star\le1` is checked. Exact.

    Args:
      mu_stop: [...] :math:`\mu>0`.
      p_star: [...] :math:`P^\star`, in (0, 1].
      num_argmax: [...] :math:`|\mathbf y^\star|\ge1`.

    Returns:
      ``(expected_draws_bound, failure_bound)``, each [...].

    References:
      Huang et al. (2025), Lemma I.1 (App. I); THEORY §5.3 S5.

    Example:
      >>> from theory.bounds import stopping_rule_bounds
      >>> draws, fail = stopping_rule_bounds(2.0, 0.13, 1)
      >>> print(f"{float(draws):.2f} {float(fail):.4f}")
      23.08 0.1353
    """
    _positive("mu_stop", mu_stop)
    _prob("p_star", p_star)
    _at_least("num_argmax", num_argmax, 1.0)
    if not (_is_tracer(p_star) or _is_tracer(num_argmax)):
        mass = np.asarray(p_star, np.float64) * np.asarray(num_argmax, np.float64)
        _require(
            "num_argmax", mass, lambda h: h <= 1.0 + 1e-6, "such that num_argmax * p_star <= 1"
        )
    mu, p_star, k = _floats(mu_stop, p_star, num_argmax)
    return (mu + 1.0 / k) / p_star, jnp.exp(-k * mu)


def default_mu_stop(delta: ArrayLike) -> jax.Array:
    r"""Stopping parameter of adaptive SFT-Sharpening.

    .. math::

       \mu_{\rm stop} = \ln(2/\delta)

    With it Lemma I.1 gives a failure probability :math:`\le e^{-\mu}=\delta/2` per prompt, so
    the law of the selected response puts :math:`\ge1-\delta/2` on :math:`\mathbf y^\star(x)`.

    Args:
      delta: [...] in (0, 1).

    Returns:
      [...] :math:`\mu_{\rm stop}`.

    References:
      Huang et al. (2025), Thm D.1 and Lemma I.1.

    Example:
      >>> from theory.bounds import default_mu_stop
      >>> print(f"{float(default_mu_stop(0.25)):.4f}")
      2.0794
    """
    _open_unit("delta", delta)
    (delta,) = _floats(delta)
    return jnp.log(2.0) - jnp.log(delta)


# --------------------------------------------------------------------------- App. F: tools


def mle_hellinger_bound(log_class_size: ArrayLike, n: ArrayLike, rho: ArrayLike) -> jax.Array:
    r"""High-probability bound on the squared Hellinger error of MLE over a finite class.

    .. math::

       \mathbb E_x\,D_H^2\big(\hat\pi(\cdot\mid x),\pi^\star(\cdot\mid x)\big)
       \le \frac{2\,(\log|\Pi|+\log(1/\rho))}{n}

    with probability :math:`\ge1-\rho`, when :math:`\pi^\star\in\Pi`. :math:`D_H^2` is *without*
    the factor 1/2: :math:`\sum_y(\sqrt{P(y)}-\sqrt{Q(y)})^2`. Exact (no hidden constant).

    Args:
      log_class_size: [...] :math:`\log|\Pi|\ge0`.
      n: [...] number of samples, >= 1.
      rho: [...] failure probability, in (0, 1).

    Returns:
      [...] the bound.

    References:
      Huang et al. (2025), Lemma F.1 (App. F).

    Example:
      >>> from theory.bounds import mle_hellinger_bound
      >>> print(f"{float(mle_hellinger_bound(10.0, 1000, 0.05)):.5f}")
      0.02599
    """
    _at_least("log_class_size", log_class_size, 0.0)
    _at_least("n", n, 1.0)
    _open_unit("rho", rho)
    log_pi, n, rho = _floats(log_class_size, n, rho)
    return 2.0 * _log_over(log_pi, rho) / n


def elliptic_potential_bound(d: ArrayLike, T: ArrayLike, K: ArrayLike, lam: ArrayLike) -> jax.Array:
    r"""Elliptic potential bound for PSD increments with bounded trace.

    .. math::

       \sum_{t=1}^T\mathrm{Tr}\big(\Gamma_{t-1}^{-1}A_t\big)
       \le \frac{dK\log\big((T+1)K/\lambda\big)}{\lambda\log(1+K/\lambda)},
       \qquad \Gamma_t=\lambda I+\sum_{i\le t}A_i,\ A_t\succeq0,\ \mathrm{Tr}(A_t)\le K.

    Exact as printed, but only valid for :math:`\lambda\le K`, a condition the statement
    omits: the proof bounds :math:`\log\det(\Gamma_T/\lambda)\le d\log(1+TK/(d\lambda))`, and
    :math:`1+TK/\lambda\le(T+1)K/\lambda` iff :math:`\lambda\le K`. For :math:`\lambda>K` the
    expression can fall below the potential and even be negative (e.g. :math:`d=T=K=1`,
    :math:`\lambda=2`: bound 0, potential up to 1/2). The condition is not enforced here.

    Args:
      d: [...] dimension, >= 1.
      T: [...] number of rounds, >= 1.
      K: [...] trace bound > 0.
      lam: [...] regularizer :math:`\lambda>0` (the bound needs :math:`\lambda\le K`).

    Returns:
      [...] the bound.

    References:
      Huang et al. (2025), Lemma F.2 (App. F), used for Lemma J.5.

    Example:
      >>> from theory.bounds import elliptic_potential_bound
      >>> print(f"{float(elliptic_potential_bound(4, 100, 1.0, 1.0)):.3f}")
      26.633
    """
    _at_least("d", d, 1.0)
    _at_least("T", T, 1.0)
    _positive("K", K)
    _positive("lam", lam)
    d, t, k, lam = _floats(d, T, K, lam)
    return d * k * jnp.log((t + 1.0) * k / lam) / (lam * jnp.log1p(k / lam))

"""Instances for RLHF-Sharpening (§4.2): tabular margin families, Example J.1, and a hidden-argmax
instance on which offline Eq. 8 needs coverage but XPO does not.

| constructor | used by | what it is |
|---|---|---|
| :func:`margin_policy` | S6, S7 | tabular ``pi_base`` with exact ``gamma_margin`` and exact per-prompt ``p*`` |
| :func:`random_tabular_policy` | S6 | Dirichlet tabular instances (Lemma 4.1 checks), optional ties |
| :func:`sphere_packing` | S8, S9 | greedy ``min_dist``-packing of the unit sphere :math:`S^{d-1}` |
| :func:`example_j1` | S8, S9 | Example J.1: :math:`\\phi(y)=y`, :math:`\\theta_{\\rm base}=y^\\star` |
| :func:`hidden_argmax_instance` | S8 | the construction below (not in the paper) |
| :func:`linear_instance_stats` | S8 | :math:`|\\mathcal Y|`, :math:`C_{\\rm cov}`, :math:`\\gamma_{\\rm margin}`, ``beta``, ``B`` |

Response 0 is the argmax :math:`y^\\star` of every instance here.

**Example J.1 (exponential separation, App. J.2.4).** One prompt; :math:`\\mathcal Y\\subset S^{d-1}`
a packing with pairwise distances :math:`\\ge r\\ge1/4`; :math:`\\phi(x,y)=y`;
:math:`\\theta_{\\rm base}=y^\\star`. For :math:`y\\ne y^\\star`,
:math:`\\langle y,y^\\star\\rangle=1-\\|y-y^\\star\\|^2/2\\le1-r^2/2`, so
:math:`\\gamma_{\\rm margin}\\ge e^{r^2/2}-1` (:math:`\\ge e^{1/32}-1` at :math:`r=1/4`), and
:math:`\\pi_{\\rm base}(y^\\star)\\le e^2\\pi_{\\rm base}(y)` gives
:math:`C_{\\rm cov}\\ge|\\mathcal Y|/e^2`. *Size cap.* A greedy 1/4-packing already has about
1500 points at ``d = 4`` and far more than 4096 from ``d = 6`` on, so under a cap of 4096 points
its size (and :math:`C_{\\rm cov}`) stops growing with ``d``. The simulations therefore use
``min_dist = 3/4``: a 3/4-packing *is* a 1/4-packing (every guarantee above holds, with the
larger margin :math:`e^{9/32}-1\\approx0.32`), and its greedy size grows like
:math:`e^{0.4d}` (about 30, 100, 290, 700, 1570 points at ``d = 4, 6, 8, 10, 12`` with
``10^5`` candidates), below the cap for every ``d <= 12``. The packing is greedy over a fixed pool
of ``num_candidates`` uniform points drawn with ``key`` (deterministic given the key), so it is
*nearly* maximal; the pool, not the cap, limits it.

**Hidden-argmax instance (our construction; THEORY §9 question 6).** On Example J.1 the rewards
are noiseless and linear, so offline Eq. 8 recovers :math:`(1+1/\\beta)\\theta_{\\rm base}` as
soon as about ``d`` base pairs span :math:`\\mathbb R^d`: offline RLHF escapes
:math:`C_{\\rm cov}` there too. To separate exploration from offline data the argmax must hide in
a direction that base samples do not reveal.

*Definition.* Let :math:`u_1,\\dots,u_M` be a packing of :math:`S^{d-2}` (the first ``d - 1``
coordinates, last coordinate 0; the *bulk*), :math:`\\psi\\in(0,\\pi/2)` a tilt angle and
:math:`c>0` a log-margin. Set

.. math::  \\phi(y^\\star)=\\cos\\psi\\,u_1+\\sin\\psi\\,e_d,\\qquad \\phi(y_j)=u_j,\\qquad
           \\theta_{\\rm base}=u_1+a\\,e_d,\\quad a=\\frac{c+1-\\cos\\psi}{\\sin\\psi}.

Then :math:`\\langle\\theta_{\\rm base},\\phi(y^\\star)\\rangle=1+c` and
:math:`\\langle\\theta_{\\rm base},\\phi(y_j)\\rangle=\\langle u_j,u_1\\rangle\\le1`, so :math:`y^\\star`
is the unique argmax with :math:`\\gamma_{\\rm margin}=e^c-1` exactly, and
:math:`C_{\\rm cov}=1+\\sum_je^{\\langle u_j,u_1\\rangle-1-c}` grows like the bulk, exponentially in
``d``.

*Why offline Eq. 8 fails.* In :math:`\\Pi_{\\phi,B}` the Eq. 8 residual of a pair is
:math:`\\beta\\langle\\theta-(1+1/\\beta)\\theta_{\\rm base},\\phi(y)-\\phi(y')\\rangle`. Until
:math:`y^\\star` itself is drawn (probability :math:`1-(1-p^\\star)^{2n}` for ``n`` pairs,
:math:`p^\\star=1/C_{\\rm cov}`), every difference lies in :math:`e_d^\\perp`: the loss does not
depend on :math:`\\theta_d`, which stays where the optimizer starts (:math:`a` from
:math:`\\theta_{\\rm base}`, or 0), while the bulk part converges to :math:`(1+1/\\beta)u_1`. The
fitted logit gap is then :math:`\\langle\\hat\\theta,\\phi(y^\\star)-u_1\\rangle=c-(1-\\cos\\psi)/\\beta`
(with :math:`\\hat\\theta_d=a`), negative whenever :math:`\\beta<(1-\\cos\\psi)/c`: the estimator
sharpens onto the decoy :math:`u_1` and puts less than 1/2 on :math:`y^\\star`. Every minimizer of
the empirical loss that keeps :math:`\\theta_d\\le a` fails, so offline needs
:math:`n\\gtrsim C_{\\rm cov}\\log(1/\\epsilon)/2` pairs — the coverage price of Thm 4.2.

*Why XPO succeeds.* XPO's on-policy response comes from the current iterate. Once the bulk part
is learnt (about ``d`` rounds), the iterate puts on :math:`y^\\star` the fraction
:math:`\\exp(c-(1-\\cos\\psi)/\\beta)` of the decoy's mass — a constant (about 0.2 at the
defaults :math:`\\psi=1/4`, :math:`c=9/32`, :math:`\\beta\\approx0.02`), not :math:`1/C_{\\rm cov}`,
because sharpening the bulk concentrates the policy next to :math:`y^\\star`. A few rounds later an
on-policy :math:`y^\\star` enters the data, its pair pins :math:`\\theta_d=(1+1/\\beta)a`, and the
iterate is :math:`\\pi^\\star_\\beta`, which is sharp. The optimism term
:math:`\\alpha\\sum\\log\\pi(\\tilde y)` only helps: it lowers the mass of the base responses seen,
and with it raises that of :math:`y^\\star`. Cost: :math:`\\mathrm{poly}(d)` rounds, independent of
:math:`C_{\\rm cov}`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sharpen import _checks

#: Candidates processed per vectorized block of the greedy packing.
_BLOCK = 2048


class LinearInstance(NamedTuple):
    """A single-prompt linear-softmax instance; response 0 is the argmax ``y*``."""

    features: jax.Array  # [Y, d], rows of norm <= 1
    theta_base: jax.Array  # [d]


class InstanceStats(NamedTuple):
    """Structural quantities of a single-prompt linear instance (see :func:`linear_instance_stats`)."""

    num_responses: int
    c_cov: float
    gamma_margin: float
    p_star: float
    beta: float
    radius: float


# --------------------------------------------------------------------------- tabular families


def margin_policy(p_star_X, num_responses: int, gamma_margin) -> jax.Array:
    """Tabular ``pi_base`` with argmax mass ``p*(x)`` and margin exactly ``gamma_margin``.

    Response 0 has mass :math:`p^\\star(x)`, response 1 (the runner-up) has
    :math:`p^\\star(x)/(1+\\gamma_{\\rm margin})`, and the rest is spread uniformly over responses
    ``2..K-1``, so that :math:`\\gamma_{\\rm margin}(x)` (Assumption 4.2) is exact at every prompt
    and :math:`C_{\\rm cov}=\\mathbb E_\\mu[1/p^\\star(x)]` (Eq. 6) is set by ``p_star_X``.

    Args:
      p_star_X: [X] argmax masses. Need ``p*(1 + 1/(1+g)) <= 1`` (top two fit) and
        ``p* >= (1+g) / (1 + g + K - 1)`` (the uniform tail stays below the runner-up).
      num_responses: K >= 3.
      gamma_margin: margin g > 0.

    Returns:
      [X, K] log-probabilities.

    References:
      Huang et al. (2025), Assumption 4.2, Eq. 6.

    Example:
      >>> lp = margin_policy(jnp.array([0.5]), 4, 1.0)
      >>> [round(float(v), 4) for v in jnp.exp(lp[0])]
      [0.5, 0.25, 0.125, 0.125]
    """
    K = _checks.check_static_int(num_responses, "num_responses", minimum=3)
    g = _checks.finite_float(gamma_margin, "gamma_margin")
    _checks.check_positive(g, "gamma_margin")
    p_X = np.asarray(p_star_X, np.float64)
    if p_X.ndim != 1 or p_X.size == 0:
        raise ValueError(f"p_star_X must be a non-empty [X] array, got shape {p_X.shape}")
    lo, hi = (1.0 + g) / (1.0 + g + K - 1.0), 1.0 / (1.0 + 1.0 / (1.0 + g))
    if np.any(p_X < lo * (1 - 1e-12)) or np.any(p_X > hi * (1 + 1e-12)):
        raise ValueError(
            f"p_star_X must lie in [{lo:.6g}, {hi:.6g}] for K={K}, gamma_margin={g}, got {p_X}"
        )
    runner_X = p_X / (1.0 + g)
    tail_X = np.maximum(1.0 - p_X - runner_X, 0.0) / (K - 2)
    probs = np.concatenate(
        [p_X[:, None], runner_X[:, None], np.repeat(tail_X[:, None], K - 2, axis=1)], axis=1
    )
    return jnp.log(jnp.asarray(probs / probs.sum(axis=1, keepdims=True), float))


def random_tabular_policy(
    *, key: jax.Array, num_prompts: int, num_responses: int, concentration: float = 1.0,
    num_ties: int = 0,
) -> jax.Array:  # fmt: skip
    """Dirichlet tabular ``pi_base`` [X, K]; with ``num_ties = k`` the top ``k + 1`` masses tie.

    Ties are made by replacing the ``k + 1`` largest masses of each row by their mean, so the
    argmax set has exactly ``k + 1`` elements (Lemma 4.1 must hold with ties too, THEORY §5.6).

    Returns:
      [X, K] log-probabilities.
    """
    X = _checks.check_static_int(num_prompts, "num_prompts")
    K = _checks.check_static_int(num_responses, "num_responses", minimum=2)
    _checks.check_positive(concentration, "concentration")
    if not 0 <= num_ties < K:
        raise ValueError(f"num_ties must lie in [0, {K}), got {num_ties}")
    p = np.asarray(jax.random.dirichlet(key, jnp.full((K,), concentration), (X,)), np.float64)
    p = np.maximum(p, 1e-12)
    if num_ties:
        order = np.argsort(-p, axis=1)[:, : num_ties + 1]
        top = np.take_along_axis(p, order, axis=1)
        np.put_along_axis(p, order, top.mean(axis=1, keepdims=True), axis=1)
    return jnp.log(jnp.asarray(p / p.sum(axis=1, keepdims=True), float))


# --------------------------------------------------------------------------- sphere packings


def sphere_packing(
    *, key: jax.Array, dim: int, min_dist: float = 0.25, max_size: int = 4096,
    num_candidates: int = 100_000,
) -> jax.Array:  # fmt: skip
    """Greedy ``min_dist``-packing of the unit sphere :math:`S^{d-1}\\subset\\mathbb R^d`.

    Draws ``num_candidates`` uniform points on the sphere with ``key`` and scans them in order,
    keeping a point iff its distance to every kept point is at least ``min_dist`` (equivalently,
    inner product at most :math:`1-r^2/2`), until ``max_size`` points are kept. Deterministic
    given ``key``; the first candidate is always kept (row 0). The result is maximal with
    respect to the pool, not to the sphere; the pool, or the cap, bounds its size (see the module
    docstring on why S8 uses ``min_dist = 3/4``).

    Args:
      key: PRNG key of the candidate pool.
      dim: d >= 2.
      min_dist: r in (0, 2].
      max_size: cap on the number of points (>= 1).
      num_candidates: pool size (>= 1).

    Returns:
      [M, d] float array of unit rows, pairwise distances >= ``min_dist``.

    References:
      Huang et al. (2025), Example J.1.
    """
    d = _checks.check_static_int(dim, "dim", minimum=2)
    cap = _checks.check_static_int(max_size, "max_size")
    pool = _checks.check_static_int(num_candidates, "num_candidates")
    r = _checks.finite_float(min_dist, "min_dist")
    if not 0 < r <= 2:
        raise ValueError(f"min_dist must lie in (0, 2], got {min_dist!r}")
    cand = np.asarray(jax.random.normal(key, (pool, d), jnp.float32), np.float64)
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    thr = 1.0 - 0.5 * r * r
    kept = np.empty((cap, d))
    k = 0
    for start in range(0, pool, _BLOCK):
        block = cand[start : start + _BLOCK]
        if k:
            block = block[np.max(block @ kept[:k].T, axis=1) <= thr]
        for x in block:  # sequential within the survivors of the block
            if k and np.max(kept[:k] @ x) > thr:
                continue
            kept[k] = x
            k += 1
            if k == cap:
                return jnp.asarray(kept[:k], float)
    return jnp.asarray(kept[:k], float)


def example_j1(
    *, key: jax.Array, dim: int, min_dist: float = 0.75, max_size: int = 4096,
    num_candidates: int = 100_000,
) -> LinearInstance:  # fmt: skip
    """Example J.1: features a sphere packing, :math:`\\theta_{\\rm base}=y^\\star` (row 0).

    .. math::  \\pi_{\\rm base}(y)\\propto\\exp\\langle y,y^\\star\\rangle,\\quad y\\in\\mathcal Y\\subset S^{d-1},

    with :math:`\\gamma_{\\rm margin}\\ge e^{r^2/2}-1` and :math:`C_{\\rm cov}\\ge|\\mathcal Y|/e^2`.
    Default ``min_dist = 3/4`` (a 1/4-packing too; module docstring).

    Returns:
      :class:`LinearInstance` (``features [Y, d]``, ``theta_base [d]``).

    References:
      Huang et al. (2025), Example J.1, Def. J.3.
    """
    feats = sphere_packing(
        key=key, dim=dim, min_dist=min_dist, max_size=max_size, num_candidates=num_candidates
    )
    return LinearInstance(features=feats, theta_base=feats[0])


def hidden_argmax_instance(
    *, key: jax.Array, dim: int, min_dist: float = 0.75, tilt: float = 0.25,
    log_margin: float = 9.0 / 32.0, max_size: int = 4096, num_candidates: int = 100_000,
) -> LinearInstance:  # fmt: skip
    """The hidden-argmax instance (module docstring): the argmax leans out of the bulk's span.

    Bulk :math:`u_j`: a packing of :math:`S^{d-2}` in the first ``d - 1`` coordinates;
    :math:`\\phi(y^\\star)=\\cos\\psi\\,u_1+\\sin\\psi\\,e_d` (row 0);
    :math:`\\theta_{\\rm base}=u_1+a e_d`, :math:`a=(c+1-\\cos\\psi)/\\sin\\psi`, so
    :math:`\\gamma_{\\rm margin}=e^c-1` exactly. Offline Eq. 8 fits put less than 1/2 on
    :math:`y^\\star` until :math:`y^\\star` is drawn from the base, whenever
    :math:`\\beta<(1-\\cos\\psi)/c` (about 0.11 at the defaults).

    Args:
      key: PRNG key of the bulk packing.
      dim: d >= 3.
      min_dist: bulk packing distance (also keeps ``y*`` off the bulk: ``||phi(y*) - u_1|| =
        2 sin(psi/2)``).
      tilt: :math:`\\psi\\in(0,\\pi/2)`.
      log_margin: c > 0, so ``gamma_margin = e^c - 1``.
      max_size, num_candidates: as in :func:`sphere_packing` (bulk size is ``M <= max_size - 1``).

    Returns:
      :class:`LinearInstance` with ``features [M + 1, d]``.
    """
    d = _checks.check_static_int(dim, "dim", minimum=3)
    psi = _checks.finite_float(tilt, "tilt")
    if not 0 < psi < math.pi / 2:
        raise ValueError(f"tilt must lie in (0, pi/2), got {tilt!r}")
    c = _checks.finite_float(log_margin, "log_margin")
    _checks.check_positive(c, "log_margin")
    bulk = np.asarray(
        sphere_packing(
            key=key, dim=d - 1, min_dist=min_dist, max_size=max_size - 1,
            num_candidates=num_candidates,
        ),
        np.float64,
    )  # fmt: skip
    feats = np.zeros((bulk.shape[0] + 1, d))
    feats[1:, : d - 1] = bulk
    feats[0, : d - 1] = math.cos(psi) * bulk[0]
    feats[0, d - 1] = math.sin(psi)
    theta = np.zeros(d)
    theta[: d - 1] = bulk[0]
    theta[d - 1] = (c + 1.0 - math.cos(psi)) / math.sin(psi)
    return LinearInstance(features=jnp.asarray(feats, float), theta_base=jnp.asarray(theta, float))


def linear_instance_stats(inst: LinearInstance, *, delta: float) -> InstanceStats:
    """:math:`|\\mathcal Y|`, :math:`C_{\\rm cov}`, :math:`\\gamma_{\\rm margin}`, and the theory's
    ``beta`` and ``B`` for a single-prompt linear instance whose argmax is response 0.

    ``beta`` :math:`=\\gamma_{\\rm margin}/(2\\log(2|\\mathcal Y|/\\delta))` (Thm 4.3) and
    ``B`` :math:`=3\\log(2|\\mathcal Y|/\\delta)\\|\\theta_{\\rm base}\\|/\\gamma_{\\rm margin}=
    \\tfrac32\\|\\theta_{\\rm base}\\|/\\beta` (Thm J.3's norm condition, so that
    :math:`(1+1/\\beta)\\theta_{\\rm base}` lies in the ball). Computed in float64 on the host.

    Returns:
      :class:`InstanceStats` of Python numbers.

    Raises:
      ValueError: response 0 is not the unique argmax.
    """
    _checks.check_open_unit(delta, "delta")
    logits = np.asarray(inst.features, np.float64) @ np.asarray(inst.theta_base, np.float64)
    logp = logits - np.logaddexp.reduce(logits)
    if logp.size < 2 or not np.all(logp[1:] < logp[0]):
        raise ValueError("inst: response 0 must be the unique argmax of pi_base")
    m = int(logp.size)
    gamma = math.expm1(float(logp[0] - np.max(logp[1:])))
    beta = gamma / (2.0 * math.log(2.0 * m / delta))
    radius = 1.5 * float(np.linalg.norm(np.asarray(inst.theta_base, np.float64))) / beta
    return InstanceStats(
        num_responses=m, c_cov=math.exp(-float(logp[0])), gamma_margin=gamma,
        p_star=math.exp(float(logp[0])), beta=beta, radius=radius,
    )  # fmt: skip

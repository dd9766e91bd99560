"""The linear softmax class :math:`\\Pi_{\\phi,B}` (Def. J.3) on a finite response space.

.. math::  \\pi_\\theta(y|x) = \\frac{\\exp\\langle\\phi(x,y),\\theta\\rangle}
           {\\sum_{y'}\\exp\\langle\\phi(x,y'),\\theta\\rangle},\\qquad
           \\|\\phi(x,y)\\|_2\\le1,\\quad\\|\\theta\\|_2\\le B.

(:math:`\\pi_{\\rm zero}` is uniform on :math:`\\mathcal Y`, so it cancels.) Features are an array
``features [X, Y, d]`` (or ``[Y, d]`` for a single prompt), ``theta [d]``.

| function | returns |
|---|---|
| ``policy_logprobs(theta, features)`` | [X, Y] (or [Y]) log-probabilities |
| ``sample(theta, features, prompts, *, key, num_samples)`` | [B, num_samples] int32 responses |
| ``project_to_ball(theta, radius)`` | [d] projection onto :math:`\\{\\|\\theta\\|_2\\le B\\}` |
| ``sharpened_theta(theta, beta)`` | [d] :math:`(1+1/\\beta)\\theta` |
| ``check_features(features, tol=1e-6)`` | validated features (``ValueError`` naming ``features``) |

**Closed under sharpening** (THEORY §4.4): for :math:`\\pi_{\\rm base}=\\pi_{\\theta^\\star}`,
:math:`\\pi^\\star_\\beta\\propto\\pi_{\\theta^\\star}^{1+1/\\beta}=\\pi_{(1+1/\\beta)\\theta^\\star}`, which
lies in :math:`\\Pi_{\\phi,B}` iff :math:`(1+1/\\beta)\\|\\theta^\\star\\|\\le B`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sharpen import _checks
from sharpen.sampling import sample_responses

#: Slack allowed on ``||phi(x, y)||_2 <= 1`` (float32 rounding of normalized features).
FEATURE_NORM_TOL = 1e-6


def check_features(features, tol: float = FEATURE_NORM_TOL, name: str = "features") -> jax.Array:
    """Validate ``features [X, Y, d]`` or ``[Y, d]``: finite, non-empty, ``||phi||_2 <= 1 + tol``.

    Raises:
      ValueError: naming ``name`` for a wrong rank, an empty axis, a non-finite entry, or a
        feature vector of norm above ``1 + tol``.
    """
    arr = jnp.asarray(features)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if arr.ndim not in (2, 3) or 0 in arr.shape:
        raise ValueError(f"{name} must have shape [X, Y, d] or [Y, d], got {arr.shape}")
    if _checks.is_concrete(arr):
        host = np.asarray(arr, np.float64)
        if not np.all(np.isfinite(host)):
            raise ValueError(f"{name} must be finite")
        norms = np.linalg.norm(host, axis=-1)
        if np.any(norms > 1.0 + tol):
            idx = tuple(int(i) for i in np.argwhere(norms > 1.0 + tol)[0])
            raise ValueError(
                f"{name} must satisfy ||phi(x, y)||_2 <= 1 (Def. J.3); norm {norms[idx]!r} "
                f"at index {idx}"
            )
    return arr


def check_theta(theta, dim: int, name: str = "theta") -> jax.Array:
    """Validate a parameter vector ``theta [d]`` against the feature dimension ``d``."""
    arr = jnp.asarray(theta)
    if arr.shape != (dim,):
        raise ValueError(
            f"{name} must have shape [d] = ({dim},) to match features, got {arr.shape}"
        )
    if _checks.is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr, np.float64))):
        raise ValueError(f"{name} must be finite, got {theta!r}")
    return arr


def _logprobs(theta_D: jax.Array, features_XxYxD: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(features_XxYxD @ theta_D.astype(features_XxYxD.dtype), axis=-1)


def policy_logprobs(theta: jax.typing.ArrayLike, features: jax.typing.ArrayLike) -> jax.Array:
    """Log-probabilities of :math:`\\pi_\\theta\\in\\Pi_{\\phi,B}` (Def. J.3).

    .. math::  \\log\\pi_\\theta(y|x) = \\langle\\phi(x,y),\\theta\\rangle
               - \\log\\sum_{y'}\\exp\\langle\\phi(x,y'),\\theta\\rangle.

    Args:
      theta: [d] parameter (not projected: the norm bound is the caller's constraint).
      features: [X, Y, d] or [Y, d] features with norm <= 1.

    Returns:
      [X, Y] (or [Y]) log-probabilities, in the dtype of ``features``.

    References:
      Huang et al. (2025), Def. J.3.

    Example:
      >>> import jax.numpy as jnp
      >>> phi = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> p = jnp.exp(policy_logprobs(jnp.array([jnp.log(3.0), 0.0]), phi))
      >>> [round(float(v), 4) for v in p]
      [0.75, 0.25]
    """
    features = check_features(features)
    theta = check_theta(theta, features.shape[-1])
    return _logprobs(theta, features)


def sample(
    theta: jax.typing.ArrayLike,
    features: jax.typing.ArrayLike,
    prompts: jax.typing.ArrayLike,
    *,
    key: jax.Array,
    num_samples: int,
) -> jax.Array:
    """Draw ``num_samples`` responses from :math:`\\pi_\\theta(\\cdot|x)` for each prompt (inverse CDF).

    Args:
      theta: [d] parameter.
      features: [X, Y, d] (or [Y, d], then X = 1 and every prompt index must be 0).
      prompts: [B] int prompt indices in ``[0, X)``.
      key: PRNG key.
      num_samples: static number of responses per prompt.

    Returns:
      [B, num_samples] int32 response indices.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> phi = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> sample(jnp.array([50.0, 0.0]), phi, jnp.array([0]), key=jax.random.key(0),
      ...        num_samples=3).tolist()
      [[0, 0, 0]]
    """
    features = check_features(features)
    theta = check_theta(theta, features.shape[-1])
    num_samples = _checks.check_static_int(num_samples, "num_samples")
    features_XxYxD = features if features.ndim == 3 else features[None]
    prompts = jnp.asarray(prompts)
    if prompts.ndim != 1 or not jnp.issubdtype(prompts.dtype, jnp.integer):
        raise ValueError(f"prompts must be a [B] integer array, got {prompts.dtype}{prompts.shape}")
    if _checks.is_concrete(prompts):
        host = np.asarray(prompts)
        if host.size and (host.min() < 0 or host.max() >= features_XxYxD.shape[0]):
            raise ValueError(
                f"prompts must lie in [0, {features_XxYxD.shape[0]}), got values in "
                f"[{host.min()}, {host.max()}]"
            )
    logp_XxY = _logprobs(theta, features_XxYxD)
    return sample_responses(logp_XxY, prompts, num_samples, key=key)


def project_to_ball(theta: jax.typing.ArrayLike, radius) -> jax.Array:
    """Euclidean projection onto the ball :math:`\\{\\|\\theta\\|_2\\le B\\}`.

    .. math::  \\Pi_B(\\theta) = \\theta\\cdot\\min\\{1, B/\\|\\theta\\|_2\\}.

    Args:
      theta: [..., d] parameters (projected along the last axis).
      radius: norm bound B > 0.

    Returns:
      [..., d] projected parameters.

    References:
      Huang et al. (2025), Def. J.3 (the constraint set of :math:`\\Pi_{\\phi,B}`).

    Example:
      >>> import jax.numpy as jnp
      >>> [round(float(v), 4) for v in project_to_ball(jnp.array([3.0, 4.0]), 1.0)]
      [0.6, 0.8]
    """
    _checks.check_positive(radius, "radius")
    return _project(jnp.asarray(theta), radius)


def _project(theta: jax.Array, radius) -> jax.Array:
    norm = jnp.linalg.norm(theta, axis=-1, keepdims=True)
    radius = jnp.asarray(radius, theta.dtype)
    scale = jnp.where(norm > radius, radius / jnp.where(norm > 0, norm, 1.0), 1.0)
    return theta * scale


def sharpened_theta(theta: jax.typing.ArrayLike, beta) -> jax.Array:
    """Parameter of :math:`\\pi^\\star_\\beta` for a linear-softmax base model.

    .. math::  \\pi^\\star_\\beta[\\pi_\\theta] = \\pi_{(1+1/\\beta)\\theta}.

    Args:
      theta: [..., d] parameter of the base model.
      beta: KL coefficient > 0.

    Returns:
      [..., d] :math:`(1+1/\\beta)\\theta`.

    References:
      Huang et al. (2025), App. J.2.4 (closure of :math:`\\Pi_{\\phi,B}` under sharpening).

    Example:
      >>> import jax.numpy as jnp
      >>> sharpened_theta(jnp.array([1.0, -2.0]), 0.5).tolist()
      [3.0, -6.0]
    """
    _checks.check_positive(beta, "beta")
    theta = jnp.asarray(theta)
    return (1.0 + 1.0 / jnp.asarray(beta, theta.dtype)) * theta

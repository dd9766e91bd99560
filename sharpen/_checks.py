"""Validation at the public boundary.

Every public function of :mod:`sharpen` that takes user input calls one of these helpers before
any jitted work, so that bad input fails early with a ``ValueError`` naming the argument and the
offending value (STYLE house rules). Inside ``jit`` the inputs are tracers and carry no values;
the helpers then check only static properties (rank, shape) and return the input unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: Absolute slack allowed on ``sum(exp(logp)) - 1`` for a distribution to count as normalized.
NORMALIZATION_ATOL = 1e-6


def is_concrete(x: Any) -> bool:
    """Whether ``x`` carries a value (is not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def _first_bad(arr: np.ndarray, mask: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"{arr[idx]!r} at index {idx}"


def check_logprobs(logp: Any, name: str, *, min_rank: int = 1, max_rank: int | None = None):
    """Check that ``logp [..., Y]`` holds normalized log-probabilities over the last axis.

    Raises ``ValueError`` naming ``name`` for NaN, ``+inf``, positive entries, rows whose mass
    differs from 1 by more than :data:`NORMALIZATION_ATOL`, or a rank outside the allowed range.
    ``-inf`` (zero probability) is allowed. Returns ``jnp.asarray(logp)``.
    """
    arr = jnp.asarray(logp)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    max_rank = max_rank if max_rank is not None else arr.ndim
    if not (min_rank <= arr.ndim <= max_rank) or arr.shape[-1] == 0:
        raise ValueError(
            f"{name} must have rank in [{min_rank}, {max_rank}] with a non-empty last axis, "
            f"got shape {arr.shape}"
        )
    if is_concrete(arr):
        host = np.asarray(arr, dtype=np.float64)
        bad = np.isnan(host) | (host == np.inf)
        if bad.any():
            raise ValueError(f"{name} must not contain NaN or +inf, found {_first_bad(host, bad)}")
        bad = host > 1e-7
        if bad.any():
            raise ValueError(
                f"{name} holds log-probabilities, which must be <= 0; found {_first_bad(host, bad)}"
            )
        mass = np.exp(host).sum(axis=-1)
        bad = np.abs(mass - 1.0) > NORMALIZATION_ATOL
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} must be normalized over its last axis (|sum - 1| <= "
                f"{NORMALIZATION_ATOL}); row {idx} sums to {mass[idx]!r}"
            )
    return arr


def check_probs(p: Any, name: str, *, rank: int = 1):
    """Check that ``p`` holds a probability vector (non-negative, finite, sums to 1)."""
    arr = jnp.asarray(p)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if arr.ndim != rank or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have rank {rank} and be non-empty, got shape {arr.shape}")
    if is_concrete(arr):
        host = np.asarray(arr, dtype=np.float64)
        bad = ~np.isfinite(host) | (host < 0)
        if bad.any():
            raise ValueError(
                f"{name} must be finite and non-negative, found {_first_bad(host, bad)}"
            )
        mass = host.sum(axis=-1)
        if np.any(np.abs(mass - 1.0) > NORMALIZATION_ATOL):
            raise ValueError(f"{name} must sum to 1 (within {NORMALIZATION_ATOL}), sums to {mass}")
    return arr


def check_open_unit(value: Any, name: str) -> Any:
    """Check ``0 < value < 1`` (for ``delta``, ``epsilon``, ``rho``); arrays are checked entrywise."""
    if is_concrete(value):
        host = np.asarray(value, dtype=np.float64)
        if not np.all((host > 0) & (host < 1)):
            raise ValueError(f"{name} must lie in the open interval (0, 1), got {value!r}")
    return value


def check_gamma(value: Any, name: str = "gamma") -> Any:
    """Check the approximation slack ``0 <= gamma < 1`` (Def. F.1)."""
    if is_concrete(value):
        host = np.asarray(value, dtype=np.float64)
        if not np.all((host >= 0) & (host < 1)):
            raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return value


def check_num_samples(value: Any, name: str = "num_samples") -> Any:
    """Check that a number of draws is >= 1 (entrywise for arrays) and not NaN."""
    if is_concrete(value):
        host = np.asarray(value, dtype=np.float64)
        if not np.all(host >= 1):  # NaN fails this comparison too
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def check_positive(value: Any, name: str) -> Any:
    """Check ``value > 0`` and finite (entrywise)."""
    if is_concrete(value):
        host = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(host) & (host > 0)):
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return value


def check_static_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Check a static (Python) integer such as a number of draws that sets an array shape."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` when two arrays that must align have different shapes."""
    if tuple(np.shape(a)) != tuple(np.shape(b)):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {np.shape(a)} and {np.shape(b)}"
        )


def check_prompt_axis(logp: Any, mu: Any, name_logp: str = "logp", name_mu: str = "mu") -> None:
    """Raise when the prompt distribution ``mu [X]`` does not match ``logp [X, Y]``."""
    if np.ndim(logp) != 2:
        raise ValueError(f"{name_logp} must have shape [X, Y], got {np.shape(logp)}")
    if np.shape(mu) != (np.shape(logp)[0],):
        raise ValueError(
            f"{name_mu} must have shape [X] = ({np.shape(logp)[0]},) to match {name_logp}, "
            f"got {np.shape(mu)}"
        )


def finite_float(value: Any, name: str) -> float:
    """Convert a scalar to ``float`` and check it is finite."""
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out

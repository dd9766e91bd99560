"""The suite's one tolerance table, keyed by dtype (STYLE §11).

``simple`` is for one or two floating-point operations (a normalization, a single log/exp);
``composite`` for chains of log/exp/pow, cumulative sums and logsumexp, whose float32 error
grows with the magnitude of the logs involved. float64 closed forms are held to 1e-10 either
way. A test that needs a looser value says why next to the override; Monte-Carlo tests do not
use this table at all, they derive their tolerance from a bound stated in the test.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

RTOL: dict[str, dict[np.dtype, float]] = {
    "simple": {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10},
    "composite": {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10},
}

#: Absolute floor for probabilities compared near 0 (a few ulps of 1 in each dtype).
ATOL: dict[np.dtype, float] = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-13}


def float_dtype() -> np.dtype:
    """The default JAX float dtype: float32, or float64 under ``JAX_ENABLE_X64=1``."""
    return np.dtype(jnp.zeros(()).dtype)


def rtol(kind: str = "simple", dtype=None) -> float:
    """Relative tolerance for ``kind`` ("simple" or "composite") at ``dtype`` (default float)."""
    return RTOL[kind][np.dtype(dtype) if dtype is not None else float_dtype()]


def atol(dtype=None) -> float:
    """Absolute floor for values that may be ~0, at ``dtype`` (default float)."""
    return ATOL[np.dtype(dtype) if dtype is not None else float_dtype()]


def assert_close(actual, desired, kind: str = "simple", *, dtype=None, abs_floor: bool = False):
    """``chex.assert_trees_all_close`` with the table's ``rtol`` (and ``atol`` if asked).

    Both sides are compared in float64 on the host, so either may be computed in numpy.
    ``dtype`` picks the row of the table: the dtype the computation under test ran in, by
    default the suite's float dtype (not the dtype of ``actual``, which is often a float64 copy).
    """
    dtype = float_dtype() if dtype is None else dtype
    chex.assert_trees_all_close(
        np.asarray(actual, np.float64),
        np.asarray(desired, np.float64),
        rtol=rtol(kind, dtype),
        atol=atol(dtype) if abs_floor else 0.0,
    )

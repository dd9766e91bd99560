"""Strict JAX for the whole suite (STYLE §10).

* ``jax_numpy_rank_promotion = "raise"``: implicit rank broadcasting is an error, so a missing
  ``[..., None]`` cannot silently produce an outer product.
* ``jax_numpy_dtype_promotion = "strict"``: no implicit promotion between non-weak dtypes
  (``int32 * float32``, ``float32 + float64``); Python scalars stay weakly typed, so
  ``0.5 * x_float32`` is fine. The library runs under it: every code path was checked with
  ``JAX_ENABLE_X64=0`` and ``=1``.
* After every test module, ``jax.clear_caches()`` drops the compiled programs. Each XLA CPU
  executable holds ~3 memory mappings; the whole suite in one process compiles enough programs
  to pass the kernel's ``vm.max_map_count`` (65530), and XLA then segfaulted while compiling
  (always at the same late test, with and without the persistent cache).
* matplotlib uses the ``Agg`` backend, and ``SHARPEN_JAX_CACHE=<dir>`` turns on the persistent
  compilation cache (both via :func:`sharpen.cli.setup_runtime`, as the CLI does).

Run the suite twice, with ``JAX_ENABLE_X64=0`` and ``=1``; tests take their dtype from
:func:`tests.tolerances.float_dtype` rather than hard-coding float32.
"""

from __future__ import annotations

import gc

import jax
import pytest

from sharpen.cli import setup_runtime

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
setup_runtime()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    yield
    jax.clear_caches()
    gc.collect()

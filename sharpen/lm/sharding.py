"""Data- and model-parallel execution of the LM on a ``("data", "model")`` device mesh.

The same code runs on 1 CPU device, 8 virtual CPU devices, a GPU box or a TPU pod slice:
:func:`make_mesh` lays every visible device on a 2-D mesh, :func:`shard_batch` splits the
batch rows along ``"data"``, :func:`shard_params` replicates the parameters (``model = 1``) or
splits the output dimension of the large kernels along ``"model"`` (``model > 1``, where the
width divides), and the jitted steps below carry explicit in/out shardings so XLA inserts the
gradient all-reduce (and the model-axis collectives) itself. Results equal the 1-device ones
up to the order of floating-point reductions.

:func:`sharpen.lm.sampler.generate` takes a ``mesh`` and then runs the KV-cache sampler with
the prompt rows split along ``"data"`` (parameters replicated); the LM experiments sample
through it (:func:`sharpen.lm.chunked.generate_chunked`), so their sampling uses all devices.

Mesh axes use ``AxisType.Auto`` (classic sharding propagation): under the explicit axes that
``jax.make_mesh`` defaults to, an embedding lookup with sharded ids fails.

Multi-host TPU (a pod slice, e.g. v5e-16 = 4 hosts x 4 chips)
-------------------------------------------------------------
1. Start the *same* program on every host (``gcloud compute tpus tpu-vm ssh NAME
   --worker=all --command="python -m ..."``).
2. Call ``jax.distributed.initialize()`` once per process, first thing, before any other JAX
   call (before ``jax.devices()``, before creating arrays). On Cloud TPU it takes no
   arguments: coordinator address, process count and process id come from the TPU metadata
   server (``TPU_WORKER_ID`` / ``TPU_PROCESS_ADDRESSES`` when the metadata server is
   skipped). SLURM, Open MPI and Kubernetes jobs are also detected automatically. Anywhere
   else pass ``coordinator_address="host0:1234", num_processes=N, process_id=i`` (the
   address may instead come from ``JAX_COORDINATOR_ADDRESS``; ``JAX_LOCAL_DEVICE_IDS``
   restricts a process to some local devices).
3. ``jax.devices()`` then lists *all* chips of the slice and :func:`make_mesh` spans them.
   ``jax.make_mesh`` orders devices by the physical ICI topology and the last mesh axis
   (``"model"``) is the fastest-varying, so model-parallel collectives stay between
   neighbouring chips while the ``"data"`` all-reduce spans the slice. For several slices
   joined over DCN, build the device array with
   ``jax.experimental.mesh_utils.create_hybrid_device_mesh`` and keep ``"model"`` inside a
   slice.
4. Each process feeds only its *local* rows: :func:`shard_batch` calls
   ``jax.make_array_from_process_local_data`` when ``jax.process_count() > 1``, so the
   global batch is ``process_count x`` the rows each process passes. Give every process the
   same data key and slice by ``jax.process_index()`` so no row is seen twice.
5. Write checkpoints with Orbax from every process (it coordinates the hosts); log and
   print from ``jax.process_index() == 0`` only.

Virtual CPU devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (set before JAX
starts). Dispatching many sharded steps without waiting can deadlock XLA's in-process CPU
all-reduce, so loops over these steps must block on a result every few steps.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sharpen.lm import train
from sharpen.lm.config import LMConfig
from sharpen.lm.model import forward

__all__ = [
    "make_mesh",
    "param_specs",
    "shard_batch",
    "shard_params",
    "shard_state",
    "sharded_eval_loss",
    "sharded_forward",
    "sharded_target_logprobs",
    "sharded_train_step",
]

#: Leaf names whose last (output) dimension is split along ``"model"`` when it divides.
MODEL_SHARDED = ("kernel", "lm_head")


def make_mesh(data: int | None = None, model: int = 1) -> Mesh:
    """A ``(data, model)`` mesh over all devices, axes ``("data", "model")``, ``AxisType.Auto``.

    Args:
      data: data-parallel size; ``jax.device_count() // model`` when ``None``.
      model: model-parallel size.

    Raises:
      ValueError: when ``data * model`` differs from the number of devices.
    """
    n = jax.device_count()
    if model < 1 or n % model:
        raise ValueError(f"model must be a positive divisor of the {n} devices, got {model}")
    data = n // model if data is None else data
    if data < 1 or data * model != n:
        raise ValueError(f"data * model must equal the {n} devices, got {data=} {model=}")
    auto = jax.sharding.AxisType.Auto
    return jax.make_mesh((data, model), ("data", "model"), axis_types=(auto, auto))


def _leaf_spec(path, leaf, model: int) -> PartitionSpec:
    name = getattr(path[-1], "key", None) if path else None
    shape = getattr(leaf, "shape", ())
    if model > 1 and name in MODEL_SHARDED and len(shape) >= 2 and shape[-1] % model == 0:
        return PartitionSpec(*([None] * (len(shape) - 1)), "model")
    return PartitionSpec()


def param_specs(tree, mesh: Mesh):
    """``PartitionSpec`` per leaf of a params-like tree (params, Adam moments, a TrainState).

    Leaves named ``kernel`` / ``lm_head`` split their last dimension along ``"model"`` when
    ``mesh.shape["model"] > 1`` divides it; every other leaf (norms, biases, embeddings,
    step counters) is replicated.
    """
    model = mesh.shape["model"]
    return jax.tree_util.tree_map_with_path(lambda p, x: _leaf_spec(p, x, model), tree)


def _named(tree, mesh: Mesh):
    return jax.tree.map(
        lambda spec: NamedSharding(mesh, spec),
        param_specs(tree, mesh),
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def shard_params(params, mesh: Mesh):
    """Place a params tree (or any tree of the same naming, e.g. a TrainState) on ``mesh``."""
    return jax.device_put(params, _named(params, mesh))


shard_state = shard_params


def _batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def shard_batch(batch, mesh: Mesh):
    """Split every leaf's leading (batch) dimension along ``"data"``.

    On one process the leaves are the whole batch, whose row count must be divisible by
    ``mesh.shape["data"]``. On several processes each passes its local rows and the result
    is the global array (``jax.make_array_from_process_local_data``).
    """
    sharding = _batch_sharding(mesh)
    data = mesh.shape["data"]

    def put(x):
        if jax.process_count() > 1:
            return jax.make_array_from_process_local_data(sharding, x)
        if x.shape[0] % data:
            raise ValueError(
                f"batch dimension {x.shape[0]} is not divisible by the data axis ({data})"
            )
        return jax.device_put(x, sharding)

    return jax.tree.map(put, batch)


def sharded_train_step(
    state: train.TrainState,
    mesh: Mesh,
    *,
    cfg: LMConfig,
    optimizer: optax.GradientTransformation,
) -> Callable[[train.TrainState, train.Batch], tuple[train.TrainState, dict]]:
    """A jitted :func:`sharpen.lm.train.train_step` with explicit shardings.

    Args:
      state: a (possibly unsharded) state; only its structure and shapes are used.
      mesh: from :func:`make_mesh`.
      cfg: model config.
      optimizer: from :func:`sharpen.lm.train.make_optimizer`.

    Returns:
      ``step(state, batch) -> (state, metrics)``; pass ``shard_state(state, mesh)`` and
      ``shard_batch(batch, mesh)``. The new state keeps the input's shardings; metrics are
      replicated scalars.
    """
    state_sh = _named(state, mesh)
    replicated = NamedSharding(mesh, PartitionSpec())

    def step(state, batch):
        return train._train_step(state, batch, cfg=cfg, optimizer=optimizer)

    return jax.jit(
        step,
        in_shardings=(state_sh, _batch_sharding(mesh)),
        out_shardings=(state_sh, replicated),
    )


def sharded_forward(params, mesh: Mesh, *, cfg: LMConfig) -> Callable:
    """``fn(params, tokens_BxL, key_mask_BxL) -> logits [B, L, V]``, rows split along ``"data"``."""
    data = _batch_sharding(mesh)

    def fn(params, tokens_BxL, key_mask_BxL):
        return forward(params, tokens_BxL, cfg=cfg, key_mask_BxL=key_mask_BxL)

    return jax.jit(fn, in_shardings=(_named(params, mesh), data, data), out_shardings=data)


def sharded_target_logprobs(params, mesh: Mesh, *, cfg: LMConfig) -> Callable:
    """``fn(params, batch) -> [B]`` summed log-prob of each row's ``loss_mask`` targets.

    The scoring primitive of best-of-N: with an SFT-style mask it is ``log pi(y | x)`` of the
    response (prompt excluded), computed data-parallel.
    """
    data = _batch_sharding(mesh)

    def fn(params, batch: train.Batch):
        logp_BxT = train.target_logprobs(params, batch.tokens, cfg=cfg, key_mask_BxL=batch.key_mask)
        return jnp.sum(jnp.where(batch.loss_mask[:, 1:], logp_BxT, 0.0), axis=-1)

    return jax.jit(fn, in_shardings=(_named(params, mesh), data), out_shardings=data)


def sharded_eval_loss(params, mesh: Mesh, *, cfg: LMConfig) -> Callable:
    """``fn(params, batch) -> scalar`` :func:`sharpen.lm.train.token_loss`, data-parallel."""

    def fn(params, batch: train.Batch):
        return train.token_loss(
            params, batch.tokens, batch.loss_mask, cfg=cfg, key_mask_BxL=batch.key_mask
        )

    return jax.jit(
        fn,
        in_shardings=(_named(params, mesh), _batch_sharding(mesh)),
        out_shardings=NamedSharding(mesh, PartitionSpec()),
    )

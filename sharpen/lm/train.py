"""Next-token training of the small LM: loss, optimizer, one jitted step, batch packing, LoRA.

Everything here is a pure function of pytrees; the model is :func:`sharpen.lm.model.forward`
with the :class:`~sharpen.lm.config.LMConfig` as a static argument.

Batch layout (right-padded, one example per row)::

    tokens    <bos> p_1 … p_m r_1 … r_k <eos> <pad> … <pad>      [B, L]
    key_mask    1    1 …  1   1 …  1    1     0   …   0          true at real tokens
    loss_mask   0    0 …  0   1 …  1    1     0   …   0          SFT: response + <eos> targets
    loss_mask   0    1 …  1   1 …  1    1     0   …   0          pretraining: every real target

``loss_mask[b, i]`` says whether **token** ``i`` counts as a target (predicted from the
logits at position ``i - 1``); ``loss_mask[:, 0]`` is ignored because nothing predicts the
first token. Right padding keeps positions ``0 … n-1`` for the real tokens, so the causal
mask alone already hides the pads from every real token.

Mixed precision: with ``cfg.dtype = "bfloat16"`` and ``cfg.param_dtype = "float32"`` the
matmuls run in bf16 while the parameters, gradients and Adam moments stay float32 (the
"master weights"); logits, softmaxes and the loss are float32 throughout.

LoRA (Hu et al. 2021): :func:`lora_init` adds rank-``r`` factors ``A [in, r]`` (normal) and
``B [r, out]`` (zero) beside chosen kernels; :func:`lora_merge` returns
``W + (alpha / r) A B`` so the ordinary forward runs on merged weights, and
:func:`lora_train_step` differentiates with respect to the adapters only.

References: Loshchilov & Hutter 2019 (AdamW); Hu et al. 2021 (LoRA); EXPERIMENTS.md §10.4.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sharpen.lm.config import LMConfig
from sharpen.lm.model import hidden_states, output_logits, target_logprobs_from_logits
from sharpen.lm.tokenizer import Tokenizer

__all__ = [
    "Batch",
    "LoraState",
    "TrainState",
    "batch_indices",
    "decay_mask",
    "encode_pairs",
    "eval_loss",
    "init_lora_state",
    "init_train_state",
    "lora_init",
    "lora_merge",
    "lora_train_step",
    "make_optimizer",
    "take",
    "target_logprobs",
    "token_loss",
    "train_step",
]

#: Kernels LoRA adapts by default (attention and MLP projections of every block).
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


class Batch(NamedTuple):
    """A fixed-shape training batch (see the module docstring for the layout).

    Attributes:
      tokens: int32 ``[B, L]``.
      key_mask: bool ``[B, L]``, true at real (non-pad) tokens.
      loss_mask: bool ``[B, L]``, true at the target tokens that count in the loss.
    """

    tokens: jax.Array
    key_mask: jax.Array
    loss_mask: jax.Array


class TrainState(NamedTuple):
    """Parameters, optimizer state and the number of steps taken (int32 scalar)."""

    params: dict
    opt_state: optax.OptState
    step: jax.Array


def target_logprobs(
    params: dict, tokens_BxL: jax.Array, *, cfg: LMConfig, key_mask_BxL: jax.Array | None = None
) -> jax.Array:
    r"""Log-probability of every token given its prefix.

    .. math:: \ell_{b,i} = \log \pi_\theta(x_{b,i} \mid x_{b,<i}), \quad i = 1 \dots L-1.

    Args:
      params: model parameters.
      tokens_BxL: int ``[B, L]``.
      cfg: the model's config.
      key_mask_BxL: bool ``[B, L]`` real-token mask (all true by default).

    Returns:
      float32 ``[B, L - 1]``; entry ``i - 1`` is the log-prob of token ``i``.
    """
    h_BxLxD = hidden_states(params, tokens_BxL, cfg=cfg, key_mask_BxL=key_mask_BxL)
    # Nothing predicts from the last position: leave it out of the head matmul.
    logits_BxTxV = output_logits(params, h_BxLxD[:, :-1], cfg=cfg)
    return target_logprobs_from_logits(logits_BxTxV, tokens_BxL[:, 1:])


def token_loss(
    params: dict,
    tokens_BxL: jax.Array,
    loss_mask_BxL: jax.Array,
    *,
    cfg: LMConfig,
    key_mask_BxL: jax.Array | None = None,
) -> jax.Array:
    r"""Mean next-token cross-entropy over the masked target tokens.

    .. math::
        \mathcal{L}(\theta) = -\frac{\sum_{b,i \ge 1} m_{b,i}\,
        \log \pi_\theta(x_{b,i} \mid x_{b,<i})}{\max(1, \sum_{b,i \ge 1} m_{b,i})}

    Every target token weighs the same (a token-level mean, not a per-sequence mean).

    Args:
      params: model parameters.
      tokens_BxL: int ``[B, L]``.
      loss_mask_BxL: bool ``[B, L]``; ``m[b, i]`` true when token ``i`` is a target.
        Column 0 is ignored.
      cfg: the model's config (static under jit).
      key_mask_BxL: bool ``[B, L]`` real-token mask for attention (all true by default,
        which is exact for right-padded batches).

    Returns:
      float32 scalar, in nats per target token.

    >>> import jax, jax.numpy as jnp
    >>> from sharpen.lm import LMConfig, init_params
    >>> cfg = LMConfig("llama", vocab_size=5, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_len=4)
    >>> params = init_params(cfg, key=jax.random.key(0))
    >>> tokens = jnp.array([[1, 3, 4, 2]])
    >>> float(token_loss(params, tokens, jnp.ones((1, 4), bool), cfg=cfg)) > 0
    True
    """
    logp_BxT = target_logprobs(params, tokens_BxL, cfg=cfg, key_mask_BxL=key_mask_BxL)
    mask_BxT = loss_mask_BxL[:, 1:].astype(jnp.float32)
    return -jnp.sum(logp_BxT * mask_BxT) / jnp.maximum(jnp.sum(mask_BxT), 1.0)


def decay_mask(params: dict) -> dict:
    """True at the leaves AdamW decays: kernels, embeddings, the untied head (not norms, biases)."""

    def decays(path, _):
        return getattr(path[-1], "key", None) in (
            "kernel",
            "embedding",
            "lm_head",
            "lora_a",
            "lora_b",
        )

    return jax.tree_util.tree_map_with_path(decays, params)


@functools.lru_cache(maxsize=64)
def make_optimizer(
    lr: float,
    *,
    warmup: int,
    total_steps: int,
    weight_decay: float,
    clip_norm: float,
    schedule: str = "cosine",
    b2: float = 0.95,
) -> optax.GradientTransformation:
    """AdamW with linear warmup, then cosine (or linear) decay to 0, after global-norm clipping.

    Cached on its arguments, so equal settings give the *same* object and a jitted step that
    takes the optimizer as a static argument compiles once.

    Args:
      lr: peak learning rate (> 0).
      warmup: linear-warmup steps from 0 to ``lr`` (>= 0, < ``total_steps``).
      total_steps: steps at which the schedule reaches 0.
      weight_decay: decoupled weight decay on kernels and embeddings (:func:`decay_mask`).
      clip_norm: clip gradients to this global norm (``inf`` disables clipping).
      schedule: ``"cosine"`` or ``"linear"`` decay after warmup (the paper's SFT uses linear).
      b2: Adam's second-moment decay.

    Returns:
      An ``optax.GradientTransformation``.
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if total_steps < 1 or not 0 <= warmup < total_steps:
        raise ValueError(f"need 0 <= warmup < total_steps, got {warmup=} {total_steps=}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive, got {clip_norm}")
    if schedule == "cosine":
        decay = optax.cosine_decay_schedule(lr, total_steps - warmup)
    elif schedule == "linear":
        decay = optax.linear_schedule(lr, 0.0, total_steps - warmup)
    else:
        raise ValueError(f"schedule must be 'cosine' or 'linear', got {schedule!r}")
    sched = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])
    adamw = optax.adamw(sched, b1=0.9, b2=b2, weight_decay=weight_decay, mask=decay_mask)
    if clip_norm == float("inf"):
        return adamw
    return optax.chain(optax.clip_by_global_norm(clip_norm), adamw)


def init_train_state(params: dict, optimizer: optax.GradientTransformation) -> TrainState:
    """Step 0: ``params`` with a fresh optimizer state."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def _apply(optimizer, grads, opt_state, params):
    # optax mixes Python floats with the int32 step count; the suite runs strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state


def _train_step(state: TrainState, batch: Batch, *, cfg: LMConfig, optimizer) -> tuple:
    def loss_fn(params):
        return token_loss(
            params, batch.tokens, batch.loss_mask, cfg=cfg, key_mask_BxL=batch.key_mask
        )

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    params, opt_state = _apply(optimizer, grads, state.opt_state, state.params)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
    return TrainState(params, opt_state, state.step + 1), metrics


@functools.partial(jax.jit, static_argnames=("cfg", "optimizer"))
def train_step(
    state: TrainState, batch: Batch, *, cfg: LMConfig, optimizer: optax.GradientTransformation
) -> tuple[TrainState, dict]:
    """One optimizer step on :func:`token_loss`.

    Args:
      state: current :class:`TrainState`.
      batch: a :class:`Batch` of ``[B, L]`` arrays.
      cfg: model config (static).
      optimizer: from :func:`make_optimizer` (static; hashed by identity, so reuse it).

    Returns:
      ``(new_state, {"loss": loss before the update, "grad_norm": global gradient norm})``.
    """
    return _train_step(state, batch, cfg=cfg, optimizer=optimizer)


@functools.partial(jax.jit, static_argnames=("cfg",))
def eval_loss(params: dict, batch: Batch, *, cfg: LMConfig) -> jax.Array:
    """:func:`token_loss` of one batch, jitted (no gradient)."""
    return token_loss(params, batch.tokens, batch.loss_mask, cfg=cfg, key_mask_BxL=batch.key_mask)


# ----------------------------------------------------------------------------- batches


def encode_pairs(
    tokenizer: Tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    seq_len: int,
    loss_on: str = "response",
) -> Batch:
    """Pack ``(prompt, response)`` texts into right-padded numpy arrays (layout: module docstring).

    Each row is ``[<bos>] + prompt + response + [<eos>]`` followed by ``<pad>``.

    Args:
      tokenizer: any :class:`~sharpen.lm.tokenizer.Tokenizer` (``bos_id`` may be ``None``).
      pairs: ``(prompt, response)`` strings.
      seq_len: row length ``L``; a longer example raises ``ValueError``.
      loss_on: ``"response"`` (SFT: response and ``<eos>`` are targets) or ``"all"``
        (pretraining: every real token after the first is a target).

    Returns:
      A :class:`Batch` of numpy arrays with ``B = len(pairs)``.
    """
    if loss_on not in ("response", "all"):
        raise ValueError(f"loss_on must be 'response' or 'all', got {loss_on!r}")
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    tokens = np.full((len(pairs), seq_len), tokenizer.pad_id, np.int32)
    key_mask = np.zeros((len(pairs), seq_len), bool)
    loss_mask = np.zeros((len(pairs), seq_len), bool)
    head = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    for row, (prompt, response) in enumerate(pairs):
        p = head + list(tokenizer.encode(prompt))
        ids = p + list(tokenizer.encode(response)) + [tokenizer.eos_id]
        if len(ids) > seq_len:
            raise ValueError(
                f"pairs[{row}] needs {len(ids)} tokens, more than seq_len={seq_len}: {prompt!r}"
            )
        tokens[row, : len(ids)] = ids
        key_mask[row, : len(ids)] = True
        loss_mask[row, (len(p) if loss_on == "response" else 1) : len(ids)] = True
    return Batch(tokens, key_mask, loss_mask)


def batch_indices(key: jax.Array, step: int, *, batch_size: int, num_examples: int) -> np.ndarray:
    """Example indices of batch ``step``: consecutive slices of per-epoch shuffles.

    Epoch ``e`` is ``permutation(fold_in(key, e))``; an epoch's tail that does not fill a batch
    is dropped. A pure function of ``(key, step)``, so a resumed run sees exactly the batches
    an uninterrupted one would.

    Returns:
      int ``[batch_size]`` numpy array.
    """
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"need 1 <= batch_size <= num_examples, got {batch_size=} {num_examples=}")
    per_epoch = num_examples // batch_size
    epoch, slot = divmod(int(step), per_epoch)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), num_examples))
    return perm[slot * batch_size : (slot + 1) * batch_size]


def take(batch: Batch, indices: np.ndarray) -> Batch:
    """Rows ``indices`` of a numpy :class:`Batch`."""
    return Batch(*(np.asarray(x)[indices] for x in batch))


# ----------------------------------------------------------------------------- LoRA


class LoraState(NamedTuple):
    """Frozen base params, trainable adapters, adapter optimizer state, step."""

    base: dict
    adapters: dict
    opt_state: optax.OptState
    step: jax.Array


def lora_init(
    params: dict, *, rank: int, key: jax.Array, targets: Sequence[str] = LORA_TARGETS
) -> dict:
    """Rank-``rank`` adapters ``{"lora_a": [.., in, r], "lora_b": [.., r, out]}`` per target kernel.

    ``A ~ N(0, 1/in)`` and ``B = 0``, so the adapted model starts equal to the base. The
    adapter tree mirrors the param tree, holding only the ``targets`` dense layers (matched by
    module name, e.g. ``"q"``, ``"up"``); stacked layers keep their leading ``[n_layers]`` axis.

    Args:
      params: base parameters.
      rank: adapter rank ``r`` (>= 1).
      key: PRNG key for ``A``.
      targets: module names whose ``kernel`` gets an adapter.

    Returns:
      The adapter pytree (float32).
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    adapters: dict = {}
    found = 0
    for path, leaf in flat:
        names = [getattr(p, "key", None) for p in path]
        if names[-1] != "kernel" or names[-2] not in targets:
            continue
        *lead, d_in, d_out = leaf.shape
        a = jax.random.normal(jax.random.fold_in(key, found), (*lead, d_in, rank), jnp.float32)
        node = adapters
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node["lora_a"] = a / np.sqrt(d_in).astype(np.float32)
        node["lora_b"] = jnp.zeros((*lead, rank, d_out), jnp.float32)
        found += 1
    if not found:
        raise ValueError(f"no kernel matches targets {tuple(targets)}")
    return adapters


def lora_merge(base: dict, adapters: dict, *, alpha: float) -> dict:
    r"""Base params with every adapted kernel replaced by ``W + (alpha / r) A B``.

    .. math:: W' = W + \frac{\alpha}{r} A B, \qquad A \in \mathbb{R}^{d_{in} \times r},
       B \in \mathbb{R}^{r \times d_{out}}

    Args:
      base: base parameters.
      adapters: from :func:`lora_init` (same nesting, ``lora_a`` / ``lora_b`` leaves).
      alpha: LoRA scaling numerator.

    Returns:
      A parameter tree of the base's structure and dtypes.
    """

    def merge(node_p, node_a):
        if "lora_a" in node_a:
            a, b = node_a["lora_a"], node_a["lora_b"]
            delta = (alpha / a.shape[-1]) * jnp.matmul(a, b)
            return {**node_p, "kernel": (node_p["kernel"] + delta).astype(node_p["kernel"].dtype)}
        return {k: merge(v, node_a[k]) if k in node_a else v for k, v in node_p.items()}

    return merge(base, adapters)


def init_lora_state(base: dict, adapters: dict, optimizer) -> LoraState:
    """Step 0 of LoRA fine-tuning."""
    return LoraState(base, adapters, optimizer.init(adapters), jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=("cfg", "optimizer", "alpha"))
def lora_train_step(
    state: LoraState, batch: Batch, *, cfg: LMConfig, optimizer, alpha: float
) -> tuple[LoraState, dict]:
    """One optimizer step on the adapters only (base frozen); see :func:`train_step`."""

    def loss_fn(adapters):
        params = lora_merge(state.base, adapters, alpha=alpha)
        return token_loss(
            params, batch.tokens, batch.loss_mask, cfg=cfg, key_mask_BxL=batch.key_mask
        )

    loss, grads = jax.value_and_grad(loss_fn)(state.adapters)
    adapters, opt_state = _apply(optimizer, grads, state.opt_state, state.adapters)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
    return LoraState(state.base, adapters, opt_state, state.step + 1), metrics

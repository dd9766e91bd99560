"""Hugging Face checkpoints → our params: logit parity with ``transformers`` and load-time errors.

Tiny random GPT-2, Llama (GQA, untied head), Mistral and Qwen2 (q/k/v biases) models are built
with ``transformers`` (torch CPU, fixed seed), every parameter re-drawn so biases and norm
scales are non-trivial, saved with ``save_pretrained`` and loaded by
:func:`sharpen.lm.checkpoint.load_hf_checkpoint`. Logits must agree to ``PARITY_ATOL`` on a
batch with a left-padded row (transformers gets the same attention mask and position ids).
"""

from __future__ import annotations

import copy
import json

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors
import safetensors.numpy
import tokenizers
import torch
import transformers
from tokenizers import models, pre_tokenizers, trainers

from sharpen.lm.checkpoint import (
    check_vocab,
    config_from_hf,
    load_hf_checkpoint,
    load_tokenizer,
)
from sharpen.lm.config import LMConfig
from sharpen.lm.hf_tokenizer import HFTokenizer
from sharpen.lm.model import default_positions, forward

# fp32 parity of two independent implementations of the same network (2 layers, d=64);
# measured 1e-7..4e-7, the bound leaves room for BLAS differences across machines.
PARITY_ATOL = 1e-4
VOCAB = 100
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _hf_config(family: str):
    common = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation="eager",
        bos_token_id=1,
        eos_token_id=2,
    )
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=VOCAB,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=64,
            bos_token_id=1,
            eos_token_id=2,
            attn_implementation="eager",
        )
    if family == "llama":
        rope = {"rope_type": "default", "rope_theta": 500.0}
        return transformers.LlamaConfig(tie_word_embeddings=False, rope_parameters=rope, **common)
    if family == "mistral":
        return transformers.MistralConfig(tie_word_embeddings=True, sliding_window=None, **common)
    if family == "qwen2":
        return transformers.Qwen2Config(tie_word_embeddings=True, **common)
    raise AssertionError(family)


_MODEL_CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
}


def _random_model(family: str, seed: int = 0):
    """A transformers model with every parameter drawn at random (biases and norms included)."""
    torch.manual_seed(seed)
    model = getattr(transformers, _MODEL_CLASSES[family])(_hf_config(family)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    return model


def _batch(seed: int = 1):
    """Tokens [2, 12] and mask: row 0 full, row 1 left-padded by 4 (pad token 0)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, VOCAB, size=(2, 12)).astype(np.int32)
    mask = np.ones((2, 12), bool)
    mask[1, :4] = False
    tokens[1, :4] = 0
    return tokens, mask


def _reference_logits(model, tokens, mask):
    positions = np.asarray(default_positions(jnp.asarray(mask)))
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(tokens.astype(np.int64)),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            position_ids=torch.from_numpy(positions.astype(np.int64)),
        )
    return out.logits.float().numpy()


def _max_delta(cfg, params, model, tokens, mask) -> float:
    ours = np.asarray(forward(params, jnp.asarray(tokens), cfg=cfg, key_mask_BxL=jnp.asarray(mask)))
    ref = _reference_logits(model, tokens, mask)
    assert ours.shape == ref.shape == (*tokens.shape, VOCAB)
    return float(np.abs(ours - ref)[mask].max())  # padded query positions are don't-care


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """family -> (directory, model); written once per module."""
    out = {}
    for family in _MODEL_CLASSES:
        directory = tmp_path_factory.mktemp(family)
        model = _random_model(family)
        model.save_pretrained(directory)
        out[family] = (directory, model)
    return out


@pytest.mark.parametrize("family", list(_MODEL_CLASSES))
def test_logit_parity(saved, family):
    directory, model = saved[family]
    cfg, params = load_hf_checkpoint(directory)
    assert cfg.arch == ("gpt2" if family == "gpt2" else "llama")
    assert cfg.qkv_bias == (family == "qwen2")
    assert cfg.tie_embeddings == (family != "llama")
    if family == "llama":
        assert cfg.rope_theta == 500.0 and cfg.kv_heads == 2 and "lm_head" in params
    tokens, mask = _batch()
    delta = _max_delta(cfg, params, model, tokens, mask)
    print(f"{family}: max |Δlogit| = {delta:.2e}")
    assert delta <= PARITY_ATOL


def test_left_padding_matches_unpadded(saved):
    """The padded row's real positions equal the same tokens run alone (our model, no padding)."""
    directory, _ = saved["llama"]
    cfg, params = load_hf_checkpoint(directory)
    tokens, mask = _batch()
    padded = forward(params, jnp.asarray(tokens), cfg=cfg, key_mask_BxL=jnp.asarray(mask))
    alone = forward(params, jnp.asarray(tokens[1:, 4:]), cfg=cfg)
    np.testing.assert_allclose(np.asarray(padded[1, 4:]), np.asarray(alone[0]), atol=1e-5)


def test_sharded_checkpoint(tmp_path):
    model = _random_model("llama", seed=3)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    cfg, params = load_hf_checkpoint(tmp_path)
    tokens, mask = _batch()
    delta = _max_delta(cfg, params, model, tokens, mask)
    print(f"llama sharded: max |Δlogit| = {delta:.2e}")
    assert delta <= PARITY_ATOL
    shard = tmp_path / "model-00002-of-00014.safetensors"
    assert shard.is_file()
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=r"model-00002-of-00014\.safetensors"):
        load_hf_checkpoint(tmp_path)


def test_bfloat16_checkpoint(tmp_path):
    """A bf16 checkpoint loads (numpy has no bf16) and matches transformers run on the same values."""
    model = _random_model("qwen2", seed=4)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    # Cast a copy: casting the reference itself would also round its RoPE inv_freq buffer.
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(tmp_path)
    with safetensors.safe_open(str(tmp_path / "model.safetensors"), framework="np") as f:
        assert f.get_slice("model.embed_tokens.weight").get_dtype() == "BF16"
    cfg, params = load_hf_checkpoint(tmp_path)
    assert params["embed"]["embedding"].dtype == jnp.float32
    tokens, mask = _batch()
    delta = _max_delta(cfg, params, model, tokens, mask)
    print(f"qwen2 bf16 weights: max |Δlogit| = {delta:.2e}")
    assert delta <= PARITY_ATOL
    cfg16, params16 = load_hf_checkpoint(tmp_path, dtype="bfloat16")
    assert cfg16.dtype == "bfloat16" and params16["embed"]["embedding"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(params16["embed"]["embedding"], np.float32),
        np.asarray(params["embed"]["embedding"]),
    )


def test_gpt2_without_transformer_prefix(saved, tmp_path):
    directory, model = saved["gpt2"]
    tensors = safetensors.numpy.load_file(str(directory / "model.safetensors"))
    bare = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    safetensors.numpy.save_file(bare, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    cfg, params = load_hf_checkpoint(tmp_path)
    tokens, mask = _batch()
    assert _max_delta(cfg, params, model, tokens, mask) <= PARITY_ATOL


# --- errors -------------------------------------------------------------------------------


def _copy(src, dst):
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_missing_files(saved, tmp_path):
    directory = _copy(saved["llama"][0], tmp_path)
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_hf_checkpoint(directory)
    (directory / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_hf_checkpoint(directory)


def test_unsupported_model_type(saved, tmp_path):
    directory = _copy(saved["llama"][0], tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "gpt_neox"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model_type='gpt_neox'.*supported.*llama"):
        load_hf_checkpoint(directory)


def test_shape_mismatch_names_tensor_and_shapes(saved, tmp_path):
    directory = _copy(saved["llama"][0], tmp_path)
    path = directory / "model.safetensors"
    tensors = safetensors.numpy.load_file(str(path))
    name = "model.layers.1.self_attn.k_proj.weight"
    assert tensors[name].shape == (32, 64)
    tensors[name] = tensors[name][:16]
    safetensors.numpy.save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"k_proj\.weight.*\(16, 64\).*\(32, 64\)"):
        load_hf_checkpoint(directory)


def test_missing_and_unexpected_tensors(saved, tmp_path):
    directory = _copy(saved["qwen2"][0], tmp_path)
    path = directory / "model.safetensors"
    tensors = safetensors.numpy.load_file(str(path))
    extra = dict(tensors, **{"model.layers.0.self_attn.o_proj.bias": np.zeros(64, np.float32)})
    safetensors.numpy.save_file(extra, str(path))
    with pytest.raises(ValueError, match=r"unexpected tensors.*o_proj\.bias"):
        load_hf_checkpoint(directory)
    del tensors["model.layers.0.self_attn.q_proj.bias"]
    safetensors.numpy.save_file(tensors, str(path))
    with pytest.raises(
        ValueError, match=r"missing tensor 'model\.layers\.0\.self_attn\.q_proj\.bias'"
    ):
        load_hf_checkpoint(directory)


_LLAMA_DICT = {
    "model_type": "llama",
    "vocab_size": 10,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 32,
}


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        (
            {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
            "rope_scaling.rope_type='linear'",
        ),
        (
            {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}},
            "rope_parameters.rope_type='yarn'",
        ),
        ({"model_type": "mistral", "sliding_window": 16}, "sliding_window=16"),
        (
            {"architectures": ["LlamaForSequenceClassification"]},
            "architectures.*LlamaForSequenceClassification",
        ),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ],
)
def test_config_errors(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        config_from_hf({**_LLAMA_DICT, **changes})


def test_config_rope_theta_old_and_new_layout():
    old = config_from_hf({**_LLAMA_DICT, "rope_theta": 1e6, "tie_word_embeddings": True})
    new = config_from_hf(
        {**_LLAMA_DICT, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}
    )
    assert old.rope_theta == new.rope_theta == 1e6
    assert old.tie_embeddings and not new.tie_embeddings
    assert config_from_hf({**_LLAMA_DICT, "head_dim": 8}).dim_per_head == 8
    # a window as long as the context is no window at all
    assert (
        config_from_hf({**_LLAMA_DICT, "model_type": "mistral", "sliding_window": 32}).arch
        == "llama"
    )


# --- tokenizer ----------------------------------------------------------------------------

_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture
def tokenizer_dir(tmp_path):
    """A tiny byte-level BPE ``tokenizer.json`` trained here, with ChatML specials."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = ["the capital of France is Paris", "what is the capital of Spain?"] * 20
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    config = {"eos_token": "<|im_end|>", "bos_token": "<|im_start|>", "chat_template": CHATML}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tmp_path


def test_load_tokenizer_round_trip(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    assert isinstance(tok, HFTokenizer)
    assert (tok.eos_id, tok.pad_id) == (2, 2)  # pad falls back to eos
    assert tok.bos_id is None  # the tokenizer does not prepend <|im_start|>
    assert tok.vocab_size == tok.tokenizer.get_vocab_size()
    text = "the capital of Spain is Madrid!"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode([1, *ids, 2]) == text  # specials dropped
    prompt = tok.chat_prompt([{"role": "user", "content": "hi"}])
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.encode(prompt)[0] == 1 and 2 in tok.encode(prompt)


def test_tokenizer_ids_from_generation_config(tokenizer_dir):
    (tokenizer_dir / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError, match="no eos token"):
        load_tokenizer(tokenizer_dir)
    (tokenizer_dir / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, 2]}))
    tok = load_tokenizer(tokenizer_dir)
    assert tok.eos_id == 0 and tok.chat_template is None
    with pytest.raises(ValueError, match="no chat template"):
        tok.chat_prompt([{"role": "user", "content": "hi"}])


def test_tokenizer_errors(tokenizer_dir, tmp_path_factory):
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path_factory.mktemp("empty"))
    tok = load_tokenizer(tokenizer_dir)
    small = LMConfig(
        arch="llama", vocab_size=100, d_model=8, n_layers=1, n_heads=2, d_ff=8, max_len=8
    )
    with pytest.raises(ValueError, match=rf"vocab mismatch.*{tok.vocab_size}.*100"):
        check_vocab(tok, small)
    check_vocab(tok, small.replace(vocab_size=tok.vocab_size + 10))  # padded embedding is fine
    tok.chat_template = "{{ messages }}"
    with pytest.raises(ValueError, match="ChatML"):
        tok.chat_prompt([{"role": "user", "content": "hi"}])

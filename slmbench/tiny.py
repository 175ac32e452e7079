"""Tiny random-weight models of each supported architecture, built from a config in seconds.

They exist so the harness can test itself on every architecture without downloads. Their
weights are random (seeded, so deterministic): their outputs are noise and every place that
shows them says so.
"""

from __future__ import annotations

import zlib

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Shared shape: 2 layers, hidden 64, 4 heads (2 KV heads); vocab = 256 bytes + specials.
_COMMON = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=1024, initializer_range=0.2, tie_word_embeddings=False,
)
ARCHITECTURES = {
    "llama": dict(model_type="llama"),
    "qwen2": dict(model_type="qwen2"),
    "mistral": dict(model_type="mistral", sliding_window=None),
    "phi3": dict(model_type="phi3", num_key_value_heads=4),
    "gemma3": dict(model_type="gemma3_text", head_dim=16, sliding_window=64, query_pre_attn_scalar=16),
}


def byte_tokenizer(chat: bool) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 byte tokens + specials) that needs no files or network."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat:
        tokenizer.chat_template = CHATML_TEMPLATE
        tokenizer.eos_token = "<|im_end|>"
    return tokenizer


def build_tiny_model(architecture: str, chat: bool, seed: int | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build a tiny random model and its tokenizer; same seed, same weights.

    The default seed differs per architecture so that two architectures never share weights.
    """
    seed = zlib.crc32(architecture.encode()) if seed is None else seed
    tokenizer = byte_tokenizer(chat)
    settings = {**_COMMON, **ARCHITECTURES[architecture]}
    model_type = settings.pop("model_type")
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id, **{"pad_token_id": tokenizer.pad_token_id, **settings},
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), tokenizer

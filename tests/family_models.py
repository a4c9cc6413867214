"""Tiny Qwen2- and Llama-3-style checkpoints for tests, built from configs (nothing downloaded).

Each tokenizer carries its family's special tokens. The models are *programmed*, not trained:
attention and MLP outputs are zeroed, so the next token depends only on the current one, and the
output head maps each token of a chosen reply to the next one. Greedy decoding then writes exactly
that reply after any prompt that ends like the family's generation prompt (a newline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from baselines.llm.tokenizer import CHAT_TEMPLATE, ENDOFTEXT, train_tokenizer

LLAMA3_SPECIAL = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>", "<|eom_id|>", "<|python_tag|>",
]
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if tools %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{{- '<|eot_id|>' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + (message.content or '') + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def _char_tokenizer(special: list[str], added: list[str], pieces: list[str], **roles: str) -> Any:
    """A character-level tokenizer with a family's special tokens, ``added`` plain added tokens
    and multi-character ``pieces`` (so a programmed reply is a few tokens)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted({chr(c) for c in range(32, 127)} | {"\n"})
    core = Tokenizer(models.WordLevel(vocab={ch: i for i, ch in enumerate(chars)}, unk_token=" "))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in added + pieces])
    return PreTrainedTokenizerFast(tokenizer_object=core, **roles)


def _one_id(tokenizer: Any, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens"
    return int(ids[0])


def _programmed_model(cls: Any, config: Any, tokenizer: Any, chain: list[str]) -> Any:
    """A randomly initialised model whose greedy reply after a prompt ending with ``chain[0]`` is
    ``chain[1:]`` (each a single token): token -> next token through the output head only."""
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        head = model.lm_head.weight
        head.zero_()
        ids = [_one_id(tokenizer, t) for t in chain]
        assert len(set(ids[:-1])) == len(ids) - 1, "each token of the chain leads to one next token"
        for prev, nxt in zip(ids, ids[1:], strict=False):
            head[nxt] += 10 * embeddings[prev] / embeddings[prev].norm()
    return model


def _save_family(path: Path, cls: Any, config: Any, tokenizer: Any, chain: list[str], eos: list[str]) -> Path:
    model = _programmed_model(cls, config, tokenizer, chain)
    model.generation_config.eos_token_id = [_one_id(tokenizer, t) for t in eos]
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


LLAMA_CALL = ['{"name": "get", ', '"arguments": {"key": "K1"}}']
QWEN_CALL = ["\n<function=get>\n<parameter=key>\nK1\n</parameter>\n</function>\n"]


def save_llama3(path: Path) -> Path:
    """Save a Llama-3 style checkpoint to ``path``: base-model EOS ``<|end_of_text|>``; ``generation_config`` also lists
    ``<|eom_id|>`` and ``<|eot_id|>`` (as Llama 3.1 Instruct); the reply is an OpenAI-JSON call."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _char_tokenizer(
        LLAMA3_SPECIAL, [], LLAMA_CALL, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )
    tokenizer.chat_template = LLAMA3_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return _save_family(
        path, LlamaForCausalLM, config, tokenizer,
        ["\n", *LLAMA_CALL, "<|eot_id|>"], ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"],
    )


def save_qwen2(path: Path) -> Path:
    """Save a Qwen2 style checkpoint to ``path``: ChatML special tokens, ``<tool_call>`` tags as plain added tokens, EOS
    ``<|endoftext|>`` (a base model's), ``generation_config`` ``[<|im_end|>, <|endoftext|>]``; the
    reply is a Qwen3-Coder style XML call."""
    from tokenizers import AddedToken
    from transformers import Qwen2Config, Qwen2ForCausalLM

    # Byte-level BPE as Qwen's (transformers loads a qwen2 checkpoint's tokenizer with Qwen2's
    # pre-tokenizer), with the ChatML special tokens and the tags as plain added tokens.
    tokenizer = train_tokenizer(["Find K1.\nassistant user system"] * 4, vocab_size=300)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_CALL])
    tokenizer.eos_token = ENDOFTEXT
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save_family(
        path, Qwen2ForCausalLM, config, tokenizer,
        ["\n", "<tool_call>", *QWEN_CALL, "</tool_call>", "<|im_end|>"], ["<|im_end|>", "<|endoftext|>"],
    )

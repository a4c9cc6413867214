"""Saved checkpoints carry a chat template that TRL recognises (issue 21, item 2).

TRL finds a tokenizer's tool-call parser (``add_response_schema``) and its training template
(``get_training_chat_template``) by comparing the chat template with the exact strings of the
models it knows. Ours is Qwen3-Instruct-2507's string, so a saved tiny checkpoint, and the
committed leaderboard model, are recognised; the renderings are those the tiny models are
trained on (tests/test_checkpoints.py, tests/train/test_tokenizer.py check them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
chat_template_utils = pytest.importorskip("trl.chat_template_utils")

from baselines.llm.model import TinyLMConfig, build_tiny_model, load_pretrained, save_pretrained  # noqa: E402
from baselines.llm.tokenizer import CHAT_TEMPLATE, load_tokenizer, train_tokenizer  # noqa: E402

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "benchmarks" / "results" / "leaderboard" / "models" / "lookup_sft"
PREFIX = "<|im_start|>user\nFind K1.<|im_end|>\n<|im_start|>assistant\n"
"""The prompt before a reply (``parse_response`` reads the reply in its context)."""


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly saved tiny checkpoint."""
    tokenizer = train_tokenizer(["<tool_call>{}</tool_call><answer>x</answer>"] * 4, vocab_size=300)
    model = build_tiny_model(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=64), tokenizer)
    return save_pretrained(model, tokenizer, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def saved_tokenizer(saved_checkpoint: Path) -> Any:
    """The saved checkpoint's tokenizer, loaded afresh for each test (TRL sets attributes on it)."""
    return load_pretrained(saved_checkpoint)[1]


def assert_recognised_by_trl(tokenizer: Any) -> None:
    """TRL's own detection: a response parser, tool-calling support, a training template."""
    assert tokenizer.chat_template == chat_template_utils.qwen3_instruct_2507_chat_template
    assert getattr(tokenizer, "response_template", None) is None
    assert getattr(tokenizer, "response_schema", None) is None
    chat_template_utils.add_response_schema(tokenizer)  # raises "Unrecognized chat template" otherwise
    call = '<tool_call>\n{"name": "get", "arguments": {"key": "K1"}}\n</tool_call><|im_end|>'
    assert tokenizer.parse_response(call, prefix=PREFIX) == {
        "role": "assistant",
        "tool_calls": [{"type": "function", "function": {"name": "get", "arguments": {"key": "K1"}}}],
    }
    assert tokenizer.parse_response("<answer>D2</answer><|im_end|>", prefix=PREFIX) == {
        "role": "assistant", "content": "<answer>D2</answer>",
    }
    assert chat_template_utils.supports_tool_calling(tokenizer)
    assert chat_template_utils.is_chat_template_prefix_preserving(tokenizer)
    training = chat_template_utils.get_training_chat_template(tokenizer)
    assert training == chat_template_utils.qwen3_instruct_2507_training_chat_template
    assert chat_template_utils.is_chat_template_stop_token_trained(tokenizer, chat_template=training)


def test_chat_template_is_the_qwen3_instruct_2507_template_trl_knows() -> None:
    assert CHAT_TEMPLATE == chat_template_utils.qwen3_instruct_2507_chat_template


def test_saved_tiny_checkpoint_is_recognised_by_trl(saved_tokenizer: Any) -> None:
    assert_recognised_by_trl(saved_tokenizer)


def test_committed_leaderboard_model_is_recognised_by_trl() -> None:
    assert_recognised_by_trl(load_tokenizer(COMMITTED))


def test_toolgym_prepare_tokenizer_uses_trls_parser(saved_tokenizer: Any) -> None:
    from toolgym.integrations.trl import hermes_response_template, prepare_tokenizer

    prepare_tokenizer(saved_tokenizer)
    assert saved_tokenizer.response_template is not None
    assert saved_tokenizer.response_template != hermes_response_template()  # TRL's own, not the fallback

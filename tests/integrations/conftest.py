"""Fixtures for the trainer-adapter tests: a tiny chat model that can call ToolGym tools.

The model is trained from scratch here (nothing is downloaded): a BPE tokenizer and a 2-layer
GPT-2 are fitted for a few dozen steps on oracle episodes of ``ToolGym/Lookup-v0`` rendered
with the tokenizer's chat template, which is enough for it to emit ``<tool_call>`` JSON and
``<answer>`` replies some of the time (so GRPO groups have reward variance).

Missing optional packages (trl, verifiers, datasets) skip the tests locally but **fail** when
``CI=true``, like the Docker sandbox tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ENV_ID = "ToolGym/Lookup-v0"
ENV_KWARGS: dict[str, Any] = {"max_turns": 4, "invalid_action": {"penalty": -0.1}}
SFT_STEPS = 40


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; skip the test if it is missing, except under ``CI=true`` (fail)."""
    if IN_CI:
        try:
            return __import__(module)
        except ImportError as exc:
            pytest.fail(f"{module} is required when CI=true (pip install 'toolgym[{extra}]'): {exc}")
    return pytest.importorskip(module, reason=f"needs {module} (pip install 'toolgym[{extra}]')")


def short_chat_template() -> str:
    """Our ChatML template with the tool list shortened to the tool names (shorter sequences
    make the CPU tests several times faster; the full template is used outside tests)."""
    from baselines.llm.tokenizer import CHAT_TEMPLATE

    rest = CHAT_TEMPLATE[CHAT_TEMPLATE.index("{%- else %}") :]  # from the template's no-tools branch
    tools_block = (
        "{%- if tools %}<|im_start|>system\nTools:{% for tool in tools %} "
        "{{ (tool.function if tool.function is defined else tool).name }}{% endfor %}<|im_end|>\n"
    )
    return tools_block + rest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat model briefly trained on Lookup oracle episodes, saved with its tokenizer."""
    torch = require("torch", "train")
    require("transformers", "train")
    from baselines.llm.model import TinyLMConfig, build_tiny_model, fit_sequences
    from baselines.llm.tokenizer import train_tokenizer
    from toolgym.integrations._session import EpisodeSession, oracle_conversations

    torch.set_num_threads(2)
    session = EpisodeSession(ENV_ID, **ENV_KWARGS)
    tools = session.tool_schemas
    session.close()
    template = short_chat_template()
    conversations = oracle_conversations(ENV_ID, 160, **ENV_KWARGS)
    renderer = train_tokenizer(["x"], vocab_size=300)
    renderer.chat_template = template
    texts = [renderer.apply_chat_template(c, tools=tools, tokenize=False) for c in conversations]
    tokenizer = train_tokenizer(texts, vocab_size=400, model_max_length=256)  # EOS is <|im_end|>
    tokenizer.chat_template = template
    config = TinyLMConfig(arch="gpt2", d_model=48, n_layers=2, n_heads=4, d_ff=96, max_positions=256)
    model = build_tiny_model(config, tokenizer, seed=0)  # generation_config stops at <|im_end|>
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    fit_sequences(model, encoded, pad_id=tokenizer.pad_token_id, steps=SFT_STEPS, batch_size=12, lr=5e-3, seed=0)
    out = tmp_path_factory.mktemp("tiny_chat") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out

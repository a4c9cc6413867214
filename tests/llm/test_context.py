"""The tiny models' context fits every env's first prompt with tools (issue 21, item 1).

A model built from each shipped SFT config (and from :class:`TinyLMConfig`'s defaults) must read
the longest first prompt of every registered env, over every task of every split, in both
protocols (``tools=`` through the chat template, and the env's text system prompt in every action
format), with room left for the reply. Prompts are measured in UTF-8 bytes, which bound the
token count of any byte-level BPE tokenizer a trainer learns (checked below), so the test holds
whatever tokenizer a config trains.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import toolgym  # noqa: E402,F401  (registers the envs)
from baselines.llm.context import FirstPrompt, first_prompts, longest_first_prompt  # noqa: E402
from baselines.llm.model import TOOL_PROMPT_CONTEXT, TinyLMConfig, build_tiny_model, context_length  # noqa: E402
from baselines.llm.tokenizer import train_tokenizer  # noqa: E402
from baselines.train.config import SFTConfig, load_config  # noqa: E402
from toolgym.core.formats import action_format_names  # noqa: E402

ROOT = Path(__file__).parents[2]
SFT_CONFIGS = sorted((ROOT / "baselines" / "train" / "configs").glob("*_sft.yaml"))
TOOLGYM_IDS = sorted(i for i in gym.registry if i.startswith("ToolGym/"))
ROOM = 1024
"""Tokens left after the first prompt: the first reply and the first tool results."""


@functools.cache
def _renderer() -> Any:
    return train_tokenizer(["x"] * 4, vocab_size=300)


@functools.cache
def longest(env_id: str) -> tuple[int, FirstPrompt]:
    """The env's longest first prompt in bytes, over all tasks, splits, protocols and formats."""
    formats = [f for f in action_format_names() if f != "auto"]
    return longest_first_prompt(first_prompts(env_id, action_formats=formats), _renderer(), unit="bytes")


def test_shipped_sft_configs_exist() -> None:
    assert {p.name for p in SFT_CONFIGS} >= {"lookup_sft.yaml", "search_sft.yaml"}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", TOOLGYM_IDS)
def test_every_shipped_config_builds_a_model_that_reads_the_env_longest_first_prompt(env_id: str) -> None:
    n_bytes, prompt = longest(env_id)
    configs = {p.name: load_config(SFTConfig, p).model for p in SFT_CONFIGS}
    configs["TinyLMConfig()"] = TinyLMConfig()
    too_short = {}
    for name, model_cfg in configs.items():
        model = build_tiny_model(model_cfg, _renderer())
        if n_bytes + ROOM > context_length(model):
            too_short[name] = context_length(model)
    assert not too_short, (
        f"{env_id}: the first prompt of {prompt.split}/{prompt.task_id} ({prompt.protocol}, "
        f"{prompt.action_format}) is {n_bytes} bytes; with {ROOM} tokens of room it does not fit "
        f"the context of {too_short}"
    )
    assert n_bytes + ROOM <= TOOL_PROMPT_CONTEXT


def test_bytes_bound_the_tokens_of_a_trained_tokenizer() -> None:
    """Byte-level BPE: each token covers at least one byte, so bytes bound tokens."""
    prompts = list(first_prompts("ToolGym/Search-v0", splits=("test",), max_tasks=20))
    texts = [p.render(_renderer()) for p in prompts]
    for tokenizer in (_renderer(), train_tokenizer(texts, vocab_size=600)):
        for prompt in prompts:
            assert 0 < prompt.n_tokens(tokenizer) <= prompt.n_bytes(tokenizer)


def test_first_prompts_cover_both_protocols_and_every_format() -> None:
    prompts = list(first_prompts("ToolGym/Lookup-v0", splits=("test",), action_formats=("hermes", "pythonic"), max_tasks=2))
    kinds = [(p.protocol, p.action_format) for p in prompts]
    assert kinds == [("native", "hermes"), ("text", "hermes")] * 2 + [("text", "pythonic")] * 2
    native = prompts[0]
    assert native.tools and native.messages[0]["role"] == "system"
    assert '"name": "get"' in native.render(_renderer())  # tools rendered through the template
    assert prompts[1].tools is None and "<tool_call>" in prompts[1].messages[0]["content"]
    with pytest.raises(ValueError, match="Unknown protocol"):
        next(first_prompts("ToolGym/Lookup-v0", protocols=("json",)))
    with pytest.raises(ValueError, match="unit must be"):
        longest_first_prompt(prompts, _renderer(), unit="chars")

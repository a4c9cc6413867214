"""Shared fixtures for the trainer tests: a tiny tokenizer and model on ToolGym/Lookup-v0.

Everything is session-scoped and tiny (d_model 48, 2 layers) so the whole directory runs in well
under the 3-minute budget on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import toolgym  # noqa: F401  (registers ToolGym/Lookup-v0)
from baselines.llm.model import TinyLMConfig, build_tiny_model, save_pretrained
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.tokenizer import ChatFormat, conversation_text, train_tokenizer
from baselines.train.envs import ExpertBank, task_ids

ENV_ID = "ToolGym/Lookup-v0"
TINY = TinyLMConfig(arch="gpt2", d_model=48, n_layers=2, n_heads=4, d_ff=96, max_positions=256)


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bank() -> ExpertBank:
    """Oracle trajectories on the Lookup train split."""
    return ExpertBank(ENV_ID, "train")


@pytest.fixture(scope="session")
def trajectories(bank: ExpertBank) -> list:
    """200 oracle trajectories (all successful)."""
    return bank.many(task_ids(bank.env, 200))


@pytest.fixture(scope="session")
def tokenizer(trajectories: list):
    """A small BPE tokenizer trained on Lookup episodes (with the system prompt)."""
    texts = [conversation_text(t.system, t.user, t.actions, t.observations) for t in trajectories]
    return train_tokenizer(texts, vocab_size=400, model_max_length=TINY.max_positions)


@pytest.fixture(scope="session")
def chat(tokenizer) -> ChatFormat:
    """ChatML pieces without the system prompt (short sequences)."""
    return ChatFormat(tokenizer, include_system_prompt=False)


@pytest.fixture()
def model(tokenizer):
    """A fresh randomly initialised tiny GPT-2."""
    return build_tiny_model(TINY, tokenizer, seed=0)


@pytest.fixture()
def policy(model, chat) -> CausalLMPolicy:
    """The tiny model as a policy (T=1)."""
    return CausalLMPolicy(model, chat.control)


@pytest.fixture(scope="session")
def sft_checkpoint(tmp_path_factory, tokenizer, chat, trajectories) -> Path:
    """A tiny model briefly trained on oracle trajectories (so rollouts have some structure)."""
    from baselines.train.sft import sft_step

    model = build_tiny_model(TINY, tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(40):
        batch = trajectories[(step * 16) % 192 : (step * 16) % 192 + 16]
        sft_step(model, optimizer, chat, batch, temperature=1.0, grad_clip=1.0, max_observation_tokens=64, step=step)
    return save_pretrained(model, tokenizer, tmp_path_factory.mktemp("sft") / "model")

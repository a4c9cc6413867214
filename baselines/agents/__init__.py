"""Baseline agents sharing one interface: ``reset(seed=None)`` and ``act(observation, info) -> str``."""

from __future__ import annotations

from typing import Any

from toolgym.core.errors import ConfigError
from toolgym.core.policy import Policy

AGENT_NAMES = ("random", "oracle", "sb3:PATH")


def make_agent(name: str, env: Any, *, seed: int | None = None) -> Policy:
    """Build the agent called ``name`` for ``env`` (a Gymnasium env, possibly wrapped).

    Args:
        name: ``"random"``, ``"oracle"`` (the env's scripted solver) or ``"sb3:PATH"`` (a
            Stable-Baselines3 model saved by ``python -m baselines.agents.sb3 train``).
        env: The env the agent will play (the oracle is looked up on ``env.unwrapped``).
        seed: Seed for agents with randomness.

    Raises:
        ConfigError: for an unknown name, or an env without an oracle.
    """
    if name == "random":
        from baselines.agents.random import RandomAgent

        return RandomAgent(seed=seed)
    if name == "oracle":
        return env.unwrapped.make_oracle()
    if name.startswith("sb3:"):
        from baselines.agents.sb3 import SB3Agent

        return SB3Agent(name.removeprefix("sb3:"), seed=seed)
    raise ConfigError(f"Unknown agent {name!r}; expected one of {list(AGENT_NAMES)}.")

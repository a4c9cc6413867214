"""Baseline agents sharing one interface: ``reset(seed=None)`` and ``act(observation, info) -> str``."""

from __future__ import annotations

from typing import Any

from toolgym.core.errors import ConfigError
from toolgym.core.policy import Policy

AGENT_NAMES = ("random", "oracle")


def make_agent(name: str, env: Any, *, seed: int | None = None) -> Policy:
    """Build the agent called ``name`` for ``env`` (a Gymnasium env, possibly wrapped).

    Args:
        name: ``"random"`` or ``"oracle"`` (the env's scripted solver).
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
    raise ConfigError(f"Unknown agent {name!r}; expected one of {list(AGENT_NAMES)}.")

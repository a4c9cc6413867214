"""Baseline agents sharing one interface: ``reset(seed=None)`` and ``act(observation, info) -> str``.

LLM agents (``llm:``, ``openai:``) also have ``reset_batch(n, seed=None)`` and
``act_batch(observations, infos, slots=None) -> list[str]``, which the leaderboard uses to play
several episodes at once (see :class:`toolgym.core.policy.BatchPolicy`).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from toolgym.core.errors import ConfigError
from toolgym.core.policy import Policy

AGENT_NAMES = ("random", "oracle", "sb3:PATH", "llm:PATH", "openai:MODEL@BASE_URL")
"""Agent specs :func:`make_agent` accepts (``llm:`` and ``openai:`` take ``?key=value&...`` options)."""

LLM_OPTIONS: dict[str, Any] = {
    "protocol": str,
    "system": str,
    "max_new_tokens": int,
    "max_observation_tokens": int,
    "temperature": float,
    "threads": int,
    "device": str,
    "tool_format": str,
}
"""Options of ``llm:PATH?key=value&...`` and their types (see :class:`baselines.agents.llm.LLMAgent`)."""


def parse_llm_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``PATH[?key=value&...]`` (the part after ``llm:``) into the path and typed options.

    Raises:
        ConfigError: for an empty path or an unknown or mistyped option.
    """
    path, _, query = spec.partition("?")
    if not path:
        raise ConfigError("Expected llm:PATH with PATH a local Hugging Face checkpoint directory.")
    options: dict[str, Any] = {}
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigError(
            f"Malformed options {query!r} in 'llm:{spec}'; expected key=value&key=value."
        ) from exc
    for key, value in pairs:
        if key not in LLM_OPTIONS:
            raise ConfigError(f"Unknown option {key!r} in 'llm:{spec}'; known: {sorted(LLM_OPTIONS)}.")
        try:
            options[key] = LLM_OPTIONS[key](value)
        except ValueError as exc:
            raise ConfigError(
                f"Option {key}={value!r} in 'llm:{spec}' is not a valid {LLM_OPTIONS[key].__name__}."
            ) from exc
    return path, options


def make_agent(name: str, env: Any, *, seed: int | None = None) -> Policy:
    """Build the agent called ``name`` for ``env`` (a Gymnasium env, possibly wrapped).

    Args:
        name: One of :data:`AGENT_NAMES`: ``"random"``; ``"oracle"`` (the env's scripted
            solver); ``"sb3:PATH"`` (a Stable-Baselines3 model saved by
            ``python -m baselines.agents.sb3 train``); ``"llm:PATH[?options]"`` (a local Hugging
            Face causal-LM directory, e.g. ``llm:runs/lookup_sft/model`` or
            ``llm:DIR?protocol=native&max_new_tokens=128``; options in :data:`LLM_OPTIONS`);
            ``"openai:MODEL@BASE_URL[?options]"`` (an OpenAI-compatible server, e.g.
            ``openai:tiny@http://127.0.0.1:8000/v1?protocol=text&system=none``; options in
            :mod:`baselines.agents.openai_server`).
        env: The env the agent will play (the oracle is looked up on ``env.unwrapped``).
        seed: Seed for agents with randomness.

    Raises:
        ConfigError: for an unknown name or bad options, or an env without an oracle.
    """
    if name == "random":
        from baselines.agents.random import RandomAgent

        return RandomAgent(seed=seed)
    if name == "oracle":
        return env.unwrapped.make_oracle()
    if name.startswith("sb3:"):
        from baselines.agents.sb3 import SB3Agent

        return SB3Agent(name.removeprefix("sb3:"), seed=seed)
    if name.startswith("llm:"):
        path, options = parse_llm_spec(name.removeprefix("llm:"))
        from baselines.agents.llm import LLMAgent

        return LLMAgent(path, seed=seed, **options)
    if name.startswith("openai:"):
        from baselines.agents.openai_server import agent_from_spec

        return agent_from_spec(name.removeprefix("openai:"), seed=seed)
    raise ConfigError(f"Unknown agent {name!r}; expected one of {list(AGENT_NAMES)}.")


def _check_sb3(spec: str) -> None:
    from baselines.agents.sb3 import load_sidecar

    load_sidecar(spec.removeprefix("sb3:"))


def _skip_sb3(spec: str, env_id: str) -> str | None:
    from baselines.agents.sb3 import load_sidecar

    trained_on = str(load_sidecar(spec.removeprefix("sb3:"))["env_id"])
    return None if trained_on == env_id else f"trained on {trained_on}"


def _skip_oracle(spec: str, env_id: str) -> str | None:
    from toolgym.registry import env_class

    return None if getattr(env_class(env_id), "oracle_cls", None) else "the env declares no oracle_cls"


def _check_llm(spec: str) -> None:
    from pathlib import Path

    path, _ = parse_llm_spec(spec.removeprefix("llm:"))
    if not Path(path).is_dir():
        raise ConfigError(f"Agent {spec!r}: no model directory at {path!r} (expected a Hugging Face checkpoint).")


def _check_openai(spec: str) -> None:
    from baselines.agents.openai_server import agent_from_spec

    agent_from_spec(spec.removeprefix("openai:"))


def _build(spec: str, env: Any, seed: int | None) -> Policy:
    return make_agent(spec, env, seed=seed)


def _leaderboard() -> Any:
    import baselines.leaderboard

    return baselines.leaderboard


def register() -> None:
    """Register the baseline agents (and the leaderboard runner) with :mod:`toolgym.agents`; the
    ``toolgym.agents`` entry point ``baselines`` names this function. Nothing heavy is imported:
    checks and builders import their agent's module (and torch) only when called."""
    from toolgym.agents import register_agent, register_leaderboard

    register_agent("random", _build, help="random")
    register_agent("oracle", _build, skip=_skip_oracle, help="oracle")
    register_agent("sb3", _build, check=_check_sb3, skip=_skip_sb3, takes_argument=True, help="sb3:PATH")
    register_agent("llm", _build, check=_check_llm, takes_argument=True, help="llm:PATH")
    register_agent("openai", _build, check=_check_openai, takes_argument=True, help="openai:MODEL@BASE_URL")
    register_leaderboard(_leaderboard)


register()  # importing the baselines is enough to use their agents, also without the entry point

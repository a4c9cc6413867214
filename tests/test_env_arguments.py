"""Keyword arguments of ``gym.make`` are validated and named in the error."""

from __future__ import annotations

import gymnasium as gym
import pytest

import toolgym  # noqa: F401 - registers the environments
from toolgym.core.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_action_chars": 0}, "max_action_chars must be a positive integer, got 0"),
        ({"max_action_chars": -5}, "max_action_chars must be a positive integer, got -5"),
        ({"max_output_chars": -1}, "max_output_chars must be a positive integer, got -1"),
        ({"max_output_chars": 2.5}, "max_output_chars must be a positive integer, got 2.5"),
        ({"max_turns": 0}, "max_turns must be a positive integer, got 0"),
        ({"max_turns": True}, "max_turns must be a positive integer, got True"),
    ],
)
def test_nonsense_numbers_are_rejected_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gym.make("ToolGym/Lookup-v0", **kwargs)


def test_unknown_keyword_names_it_with_a_suggestion_and_no_internal_kwargs() -> None:
    with pytest.raises(ConfigError) as info:
        gym.make("ToolGym/Lookup-v0", max_turn=3)
    message = str(info.value)
    assert "unknown keyword argument 'max_turn'" in message and "Did you mean 'max_turns'?" in message
    assert "pinned_data" not in message and "max_output_chars" in message
    with pytest.raises(ConfigError, match="Did you mean 'sandbox'"):
        gym.make("ToolGym/Code-v0", sandbx="process")

"""The ``turn_end`` kwarg of the single-request envs (every generated env): with ``"no_call"``, an
action without a parseable tool call ends the conversation, as a message without a call ends the
user turn in BFCL's loop (the BFCL envs' own tests are in ``test_bfcl.py``)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import toolgym  # noqa: F401 - registers the environments
from toolgym.checker import check_tool_env
from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ConfigError
from toolgym.core.formats import CALL_CLOSE, CALL_OPEN
from toolgym.envs.bfcl.env import BFCLMultiTurnEnv
from toolgym.envs.turn_end import TURN_END_MODES, SingleRequestEnv
from toolgym.evaluation import evaluate
from toolgym.registry import BUILTIN_ENVS

HERMES = get_action_format("hermes")


def _env_class(entry_point: str) -> type:
    module, _, name = entry_point.partition(":")
    return getattr(importlib.import_module(module), name)


SINGLE_REQUEST_IDS = [e.id for e in BUILTIN_ENVS if issubclass(_env_class(e.entry_point), SingleRequestEnv)]
ENV_KWARGS: dict[str, dict[str, Any]] = {"ToolGym/Code-v0": {"sandbox": "process"}}
"""Kwargs every env of a test gets (Code-v0 runs its oracle in the process sandbox here)."""

# (action, error code) pairs: nothing that parses as a tool call.
NON_CALLS = [
    ("I am not sure what to do.", "no_action"),
    ("", "empty_action"),
    (CALL_OPEN, "missing_tag"),
    (CALL_OPEN + "{bad json" + CALL_CLOSE, "bad_json"),
    (HERMES.render(ToolCall("a", {})) + HERMES.render(ToolCall("b", {})), "multiple_actions"),
]


def _make(env_id: str, **kwargs: Any) -> gym.Env:
    return gym.make(env_id, split="test", **{**ENV_KWARGS.get(env_id, {}), **kwargs})


def test_every_builtin_env_has_turn_end() -> None:
    classes = {e.id: _env_class(e.entry_point) for e in BUILTIN_ENVS}
    missing = [i for i, c in classes.items() if not issubclass(c, (SingleRequestEnv, BFCLMultiTurnEnv))]
    assert missing == []
    assert {"ToolGym/Lookup-v0", "ToolGym/Search-v0", "ToolGym/Multi-v0", "ToolGym/Booking-v0"} <= set(
        SINGLE_REQUEST_IDS
    )


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_a_bad_turn_end_is_a_one_line_config_error(env_id: str) -> None:
    with pytest.raises(ConfigError) as info:
        _make(env_id, turn_end="never")
    assert str(info.value) == "turn_end='never' is not understood; expected one of ('tool', 'no_call')."


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
@pytest.mark.parametrize(("action", "code"), NON_CALLS)
def test_in_no_call_mode_an_action_without_a_call_ends_the_conversation_unanswered(
    env_id: str, action: str, code: str
) -> None:
    env = _make(env_id, turn_end="no_call", invalid_action={"penalty": -0.5})
    _, info = env.reset(seed=0)
    assert info["turn_end"] == "no_call"
    obs, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (-0.5, True, False)
    assert obs == f"Error [{code}]: {info['error_message']}\n\nThe conversation is over (no final answer was given)."
    assert info["error"] == code and info["parsed"] is None and info["tool_output"] is None
    assert info["success"] is False and info["stop_reason"] == "answer" and info["invalid_actions"] == 1
    assert info["reward_components"] == {"success": 0.0, "invalid_penalty": -0.5}
    _, _, _, _, info = env.step(action)
    assert info["error"] == "episode_over"


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_in_tool_mode_the_same_action_is_an_error_the_agent_may_retry(env_id: str) -> None:
    env = _make(env_id, invalid_action="continue")
    _, info = env.reset(seed=0)
    assert info["turn_end"] == "tool"
    obs, reward, terminated, truncated, info = env.step("I am not sure what to do.")
    assert not (terminated or truncated) and info["error"] == "no_action" and info["stop_reason"] is None
    assert obs == HERMES.wrap_observation(f"Error [no_action]: {info['error_message']}")


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_in_no_call_mode_a_parseable_call_that_fails_does_not_end_the_turn(env_id: str) -> None:
    env = _make(env_id, turn_end="no_call", invalid_action="continue")
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(HERMES.render(ToolCall("no_such_tool", {})))
    assert not (terminated or truncated) and info["error"] == "unknown_tool"


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_in_no_call_mode_a_final_answer_is_graded_as_in_tool_mode(env_id: str) -> None:
    results = {}
    for mode in TURN_END_MODES:
        env = _make(env_id, turn_end=mode)
        env.reset(seed=0)
        results[mode] = env.step(HERMES.render(FinalAnswer("unknown")))[:4]
    assert results["no_call"] == results["tool"] and results["tool"][2] is True


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_the_instructions_and_prompt_are_the_same_in_both_modes(env_id: str) -> None:
    observations = {mode: _make(env_id, turn_end=mode).reset(seed=4)[0] for mode in TURN_END_MODES}
    assert observations["no_call"] == observations["tool"]


def test_reaching_the_invalid_action_limit_still_reports_too_many_invalid() -> None:
    steps = {}
    for mode in TURN_END_MODES:
        env = gym.make("ToolGym/Lookup-v0", split="test", turn_end=mode)  # invalid_action="terminate"
        env.reset(seed=0)
        steps[mode] = env.step("I am not sure what to do.")
    assert steps["no_call"][:4] == steps["tool"][:4]
    assert steps["no_call"][4]["stop_reason"] == "too_many_invalid" and steps["no_call"][2]


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
@pytest.mark.parametrize("turn_end", TURN_END_MODES)
def test_the_oracle_solves_tasks_in_both_modes(env_id: str, turn_end: str) -> None:
    oracle = _make(env_id).unwrapped.make_oracle()
    kwargs = {**ENV_KWARGS.get(env_id, {}), "turn_end": turn_end}
    results = evaluate(env_id, oracle, episodes=6, split="test", env_kwargs=kwargs)
    assert [r.reward for r in results] == [1.0] * 6 and all(r.stop_reason == "answer" for r in results)


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
@pytest.mark.parametrize("turn_end", TURN_END_MODES)
def test_gymnasium_check_env_passes_in_both_modes(env_id: str, turn_end: str) -> None:
    env = _make(env_id, turn_end=turn_end)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", SINGLE_REQUEST_IDS)
def test_toolgym_check_passes_in_no_call_mode(env_id: str) -> None:
    kwargs = {**ENV_KWARGS.get(env_id, {}), "turn_end": "no_call"}
    report = check_tool_env(env_id, episodes=100, tasks=6, env_kwargs=kwargs)
    assert report.ok, report.to_text()

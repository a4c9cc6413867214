"""The environment contract, checked on every registered environment (no per-env exemptions)."""

from __future__ import annotations

import json
import pickle
import warnings
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.core.errors import ErrorCode
from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN, CALL_CLOSE, CALL_OPEN

KNOWN_CODES = {code.value for code in ErrorCode}
RESET_KEYS = {"task_id", "turn", "tools", "action_format", "system_prompt", "task_prompt", "difficulty", "split"}
STEP_KEYS = {"task_id", "turn", "parsed", "error", "error_message", "tool_output", "success", "stop_reason"}


def _first_tool(info: dict[str, Any]) -> dict[str, Any]:
    """The first tool that has required parameters (so ``{}`` violates its schema)."""
    for schema in info["tools"]:
        if schema["function"]["parameters"].get("required"):
            return schema["function"]
    raise AssertionError("every ToolGym env is expected to have a tool with required parameters")


def test_check_env_passes_without_warnings(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_reset_returns_prompt_and_documented_info(env_id: str) -> None:
    env = gym.make(env_id)
    obs, info = env.reset(seed=3)
    assert isinstance(obs, str) and env.observation_space.contains(obs)
    assert RESET_KEYS <= set(info)
    assert info["turn"] == 0
    assert info["task_prompt"] in obs
    assert info["tools"], "an env without tools is not a tool env"
    for schema in info["tools"]:
        assert schema["type"] == "function"
        assert {"name", "description", "parameters"} <= set(schema["function"])
        json.dumps(schema)  # JSON-serialisable


def test_same_seed_gives_same_task_and_trajectory(env_id: str) -> None:
    from baselines.agents.random import RandomAgent

    def rollout(seed: int) -> list[Any]:
        env = gym.make(env_id)
        agent = RandomAgent(seed=seed)
        obs, info = env.reset(seed=seed)
        agent.reset(seed=seed)
        trace: list[Any] = [obs, info["task_id"]]
        for _ in range(6):
            obs, reward, term, trunc, info = env.step(agent.act(obs, info))
            trace += [obs, reward, term, trunc, info["error"]]
            if term or trunc:
                break
        return trace

    assert rollout(11) == rollout(11)
    tasks = {gym.make(env_id).reset(seed=s)[1]["task_id"] for s in range(8)}
    assert len(tasks) > 1, "different seeds should pick different tasks"


def test_reset_options_select_task(env_id: str) -> None:
    env = gym.make(env_id)
    task = env.unwrapped.task_set[0]
    _, info = env.reset(seed=0, options={"task_id": task.id})
    assert info["task_id"] == task.id
    level = task.difficulty
    for seed in range(5):
        _, info = env.reset(seed=seed, options={"difficulty": level})
        assert info["difficulty"] == level
    with pytest.raises(ValueError, match="Unknown reset options"):
        env.reset(options={"bogus": 1})


def test_oracle_step_contract(env_id: str) -> None:
    env = gym.make(env_id)
    oracle = env.unwrapped.make_oracle()
    obs, info = env.reset(seed=0)
    oracle.reset(seed=0)
    for turn in range(1, env.unwrapped.max_turns + 1):
        obs, reward, terminated, truncated, info = env.step(oracle.act(obs, info))
        assert STEP_KEYS <= set(info)
        assert info["turn"] == turn
        assert isinstance(obs, str) and env.observation_space.contains(obs)
        assert info["error"] is None, info["error_message"]
        if terminated or truncated:
            break
    assert terminated and info["success"] and reward == 1.0 and info["stop_reason"] == "answer"


def _malformed_cases(tool: dict[str, Any], max_chars: int) -> list[tuple[Any, str]]:
    name = tool["name"]
    call = json.dumps({"name": name, "arguments": {}})
    return [
        (None, "invalid_action_type"),
        (12345, "invalid_action_type"),
        (b"<answer>x</answer>", "invalid_action_type"),
        ("", "empty_action"),
        ("   \n\t", "empty_action"),
        ("x" * (max_chars + 1), "action_too_long"),
        ("I think the answer is 42.", "no_action"),
        (f"{CALL_OPEN}{call}", "missing_tag"),
        (f"{call}{CALL_CLOSE}", "missing_tag"),
        (ANSWER_OPEN + "forty two", "missing_tag"),
        (f"{CALL_OPEN}{CALL_OPEN}{call}{CALL_CLOSE}{CALL_CLOSE}", "nested_tags"),
        (f"{CALL_OPEN}{call}{CALL_CLOSE}{ANSWER_OPEN}x{ANSWER_CLOSE}", "multiple_actions"),
        (f"{CALL_OPEN}{call}{CALL_CLOSE}\n{CALL_OPEN}{call}{CALL_CLOSE}", "multiple_actions"),
        (CALL_OPEN + "{'name': 'x'}" + CALL_CLOSE, "bad_json"),
        (CALL_OPEN + "{\"name\": " + CALL_CLOSE, "bad_json"),
        (CALL_OPEN + "[" * 50_00 + "]" * 50_00 + CALL_CLOSE, "bad_json"),
        (CALL_OPEN + "[1, 2]" + CALL_CLOSE, "malformed_call"),
        (CALL_OPEN + '{"arguments": {}}' + CALL_CLOSE, "malformed_call"),
        (f'{CALL_OPEN}{{"name": "{name}", "arguments": [1]}}{CALL_CLOSE}', "malformed_call"),
        (f'{CALL_OPEN}{{"name": "{name}", "args": {{}}}}{CALL_CLOSE}', "malformed_call"),
        (CALL_OPEN + '{"name": "no_such_tool", "arguments": {}}' + CALL_CLOSE, "unknown_tool"),
        (f"{CALL_OPEN}{call}{CALL_CLOSE}", "schema_violation"),
    ]


def test_each_malformed_class_gets_its_error_code(env_id: str) -> None:
    env = gym.make(env_id, max_turns=100, invalid_action="continue")
    obs, info = env.reset(seed=0)
    tool = _first_tool(info)
    for action, code in _malformed_cases(tool, env.unwrapped.max_action_chars):
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["error"] == code, (repr(action)[:80], info["error_message"])
        assert not terminated and not truncated
        assert f"[{code}]" in obs and len(info["error_message"]) > 20
        assert env.observation_space.contains(obs)


def test_step_after_episode_end_returns_episode_over(env_id: str) -> None:
    env = gym.make(env_id, max_turns=1, invalid_action="continue").unwrapped
    env.reset(seed=0)
    env.step("no action here")
    obs, reward, terminated, truncated, info = env.step(ANSWER_OPEN + "x" + ANSWER_CLOSE)
    assert info["error"] == "episode_over" and terminated and reward == 0.0


def test_turn_limit_truncates(env_id: str) -> None:
    env = gym.make(env_id, max_turns=2, invalid_action="continue")
    env.reset(seed=0)
    assert env.step("hmm")[3] is False
    obs, _, terminated, truncated, info = env.step("hmm")
    assert truncated and not terminated and info["stop_reason"] == "too_many_turns"
    assert "turn limit" in obs


def test_invalid_action_policy_penalises_and_terminates(env_id: str) -> None:
    env = gym.make(env_id, invalid_action={"penalty": -0.5, "terminate_after": 2})
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("garbage")
    assert reward == -0.5 and not terminated and info["invalid_actions"] == 1
    _, reward, terminated, _, info = env.step(CALL_OPEN + "{}" + CALL_CLOSE)
    assert reward == -0.5 and terminated and info["stop_reason"] == "too_many_invalid"


NASTY_ACTIONS = [
    "\x00" * 100,
    CALL_OPEN + "\x00" + CALL_CLOSE,
    ANSWER_OPEN + "\x00\x00" + ANSWER_CLOSE,
    CALL_OPEN + "{\"name\": \"search\", \"arguments\": {\"query\": \"\\u0000\"}}" + CALL_CLOSE,
    "\ud800\udfff" + CALL_OPEN + "\ud83d" + CALL_CLOSE,
    ANSWER_OPEN + "\udcff" + ANSWER_CLOSE,
    CALL_OPEN + '{"a":' * 3000 + "1" + "}" * 3000 + CALL_CLOSE,
    CALL_OPEN + '{"name": "x", "arguments": {"q": ' + "[" * 900 + "]" * 900 + "}}" + CALL_CLOSE,
    CALL_OPEN + "9" * 50_000 + CALL_CLOSE,
    CALL_OPEN + ANSWER_OPEN + CALL_CLOSE + ANSWER_CLOSE,
    ANSWER_OPEN + CALL_OPEN + ANSWER_CLOSE + CALL_CLOSE,
    CALL_CLOSE + ANSWER_CLOSE + CALL_OPEN + ANSWER_OPEN,
    CALL_OPEN * 2000,
    "<" * 10_000 + ">" * 5_000,
    "\u202e\u200b" + ANSWER_OPEN + "\ufeff" + ANSWER_CLOSE,
    ANSWER_OPEN + "é" * 10_000 + ANSWER_CLOSE,
    CALL_OPEN + '{"name": "search", "arguments": "{\\"query\\": 1}"}' + CALL_CLOSE,
    CALL_OPEN + '{"name": "' + "n" * 10_000 + '", "arguments": {}}' + CALL_CLOSE,
    CALL_OPEN + '{"name": null, "arguments": null}' + CALL_CLOSE,
    CALL_OPEN + "NaN" + CALL_CLOSE,
    CALL_OPEN + '{"name": "open", "arguments": {"doc_id": "' + "\\ud800" * 5 + '"}}' + CALL_CLOSE,
]


@pytest.mark.parametrize("action", NASTY_ACTIONS, ids=range(len(NASTY_ACTIONS)))
def test_nasty_inputs_never_raise(env_id: str, action: str) -> None:
    env = gym.make(env_id, max_turns=3)
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs)
    obs.encode("utf-8")  # observations are always valid UTF-8, even when echoing bad input
    assert info["error"] is None or info["error"] in KNOWN_CODES
    if info["error"]:
        assert info["error_message"]


TAGS = [CALL_OPEN, CALL_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, "{", "}", '"name"', '"arguments"', ":", ","]
action_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=20)), max_size=25).map("".join),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
        max_leaves=20,
    ).map(lambda v: f"{CALL_OPEN}{json.dumps(v)}{CALL_CLOSE}"),
)


def test_step_never_raises_on_arbitrary_text(env_id: str) -> None:
    env = gym.make(env_id, max_turns=50)
    env.reset(seed=0)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(action=action_text)
    def check(action: str) -> None:
        obs, _, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert info["error"] is None or info["error"] in KNOWN_CODES
        if terminated or truncated:
            env.reset()

    check()


@pytest.mark.parametrize("mode", [None, "sync", "async"])  # None: the env's vector entry point
def test_vector_env_steps_real_text(env_id: str, mode: str | None) -> None:
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode)
    try:
        obs, infos = envs.reset(seed=[5, 6])
        assert len(obs) == 2 and all(isinstance(o, str) and " " in o for o in obs)
        single = gym.make(env_id)
        assert obs[0] == single.reset(seed=5)[0]
        obs, rewards, terminated, truncated, infos = envs.step(("no action", ANSWER_OPEN + "é ü 漢字" + ANSWER_CLOSE))
        assert list(infos["error"]) == ["no_action", None]
        assert bool(terminated[1])
    finally:
        envs.close()


def test_render_ansi_shows_transcript(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    env.step("hello")
    text = env.render()
    assert obs in text and "[agent]\nhello" in text and "no_action" in text


def test_env_pickles_between_processes(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    clone = pickle.loads(pickle.dumps(env))
    assert clone.reset(seed=2) == env.reset(seed=2)

"""A tool or setup failure in one episode of a vector env is an error observation in that
episode only; it never kills the batch."""

from __future__ import annotations

import gymnasium as gym
import pytest

from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN, CALL_CLOSE, CALL_OPEN

FAULTY = "Broken/Faulty-v0"
if FAULTY not in gym.registry:
    gym.register(id=FAULTY, entry_point="tests.broken_envs:FaultyWeather")

CALL = CALL_OPEN + '{{"name": "get_weather", "arguments": {{"city": "{}"}}}}' + CALL_CLOSE


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_crashing_tool_fails_only_its_episode(mode: str) -> None:
    envs = gym.make_vec(FAULTY, num_envs=2, vectorization_mode=mode)
    try:
        envs.reset(options={"task_id": "weather-oslo-lima"})
        obs, rewards, terminated, truncated, infos = envs.step((CALL.format("Cairo"), CALL.format("Oslo")))
        assert list(infos["error"]) == ["tool_error", None]
        assert "weather service crashed" in obs[0] and "Oslo: 3 °C" in obs[1]
        assert not terminated.any()
        obs, rewards, terminated, truncated, infos = envs.step((ANSWER_OPEN + "Lima" + ANSWER_CLOSE,) * 2)
        assert list(rewards) == [1.0, 1.0]
    finally:
        envs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_setup_ends_only_its_episode(mode: str) -> None:
    envs = gym.make_vec(FAULTY, num_envs=2, vectorization_mode=mode)
    try:
        env = gym.make(FAULTY).unwrapped
        # find two seeds: one that draws a Quito task (setup fails), one that does not
        seeds = {}
        for seed in range(200):
            _, info = env.reset(seed=seed)
            seeds.setdefault("quito" in info["task_id"], seed)
        obs, infos = envs.reset(seed=[seeds[True], seeds[False]])
        assert list(infos["error"]) == ["setup_error", None]
        assert "sandbox pool unavailable" in obs[0]
        obs, rewards, terminated, truncated, infos = envs.step((ANSWER_OPEN + "x" + ANSWER_CLOSE, CALL.format("Lima")))
        assert bool(terminated[0]) and rewards[0] == 0.0 and infos["stop_reason"][0] == "setup_error"
        assert not terminated[1] and infos["error"][1] is None and "Lima: 19 °C" in obs[1]
    finally:
        envs.close()

"""``toolgym.evaluation``: sequential and batched play record the same episodes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import pytest

import toolgym  # noqa: F401  (registers the envs)
from toolgym.core.formats import CALL_CLOSE, CALL_OPEN
from toolgym.core.policy import BatchPolicy, Policy, supports_batch
from toolgym.evaluation import EpisodeResult, evaluate, run_episodes_batched

LOOKUP = "ToolGym/Lookup-v0"


def reply(observation: str, turn: int) -> str:
    """A deterministic action from the observation and turn alone: look up the task's last word,
    then answer with the tool's reply (right on one-hop tasks only)."""
    words = observation.replace("<tool_response>", " ").replace("</tool_response>", " ").split()
    word = words[-1].strip(".?!\"'") if words else "x"
    if turn == 0:
        return f'{CALL_OPEN}{{"name": "get", "arguments": {{"key": "{word}"}}}}{CALL_CLOSE}'
    return f"<answer>{word}</answer>"


class Echo:
    """A policy whose action depends only on the observation and the turn: sequential and batched
    play must then agree episode by episode. Counts its calls to tell the two paths apart."""

    def __init__(self) -> None:
        self.turns: list[int] = [0]
        self.batched_calls = 0
        self.slot_tokens: list[int] = [0]

    def reset(self, *, seed: int | None = None) -> None:
        self.turns = [0]

    def act(self, observation: str, info: dict[str, Any]) -> str:
        action = reply(observation, self.turns[0])
        self.turns[0] += 1
        return action

    def reset_batch(self, n: int, *, seed: int | None = None) -> None:
        self.turns = [0] * n
        self.slot_tokens = [0] * n

    def act_batch(self, observations: Sequence[str], infos: Sequence[dict[str, Any]],
                  slots: Sequence[int] | None = None) -> list[str]:
        self.batched_calls += 1
        out = []
        for observation, slot in zip(observations, slots if slots is not None else range(len(observations)), strict=True):
            out.append(reply(observation, self.turns[slot]))
            self.turns[slot] += 1
            self.slot_tokens[slot] += len(observation)
        return out


def key(r: EpisodeResult) -> tuple:
    return (r.task_id, r.seed, r.success, r.reward, r.turns, r.format_errors, r.tool_errors, r.stop_reason,
            tuple(sorted(r.error_codes.items())))


@pytest.mark.parametrize("episodes", [None, 7])
def test_batched_evaluation_records_the_sequential_episodes(episodes: int | None) -> None:
    sequential_policy, batched_policy = Echo(), Echo()
    assert isinstance(batched_policy, BatchPolicy) and supports_batch(batched_policy)
    seen: list[EpisodeResult] = []
    one = evaluate(LOOKUP, sequential_policy, episodes=episodes, split="dev", seed=3)
    many = evaluate(LOOKUP, batched_policy, episodes=episodes, split="dev", seed=3, batch_size=4, on_episode=seen.append)
    assert [key(r) for r in many] == [key(r) for r in one] and len(one) == (episodes or len(one))
    assert sequential_policy.batched_calls == 0 and batched_policy.batched_calls > 0
    assert sorted(map(key, seen)) == sorted(map(key, many))  # on_episode saw every episode once
    if episodes is None:  # every task of the split once, in order
        env = gym.make(LOOKUP, split="dev")
        assert [r.task_id for r in many] == [t.id for t in env.unwrapped.task_set]
        env.close()
    assert len({r.success for r in one}) == 2  # the episodes differ, so the comparison means something


def test_a_policy_without_batch_methods_plays_one_episode_at_a_time() -> None:
    class Plain:
        def reset(self, *, seed: int | None = None) -> None:
            self.turn = 0

        def act(self, observation: str, info: dict[str, Any]) -> str:
            self.turn += 1
            return reply(observation, self.turn - 1)

    plain: Policy = Plain()
    assert not supports_batch(plain)
    assert [key(r) for r in evaluate(LOOKUP, plain, episodes=5, split="dev", batch_size=8)] == \
        [key(r) for r in evaluate(LOOKUP, Echo(), episodes=5, split="dev")]


def test_run_episodes_batched_pairs_results_with_tokens_and_checks_its_arguments() -> None:
    env = gym.make(LOOKUP, split="dev")
    played = run_episodes_batched(env, Echo(), [0, 1, 2], batch_size=2, env_id=LOOKUP)
    assert [r.seed for r, _ in played] == [0, 1, 2] and all(tokens > 0 for _, tokens in played)
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got 0"):
        run_episodes_batched(env, Echo(), [0, 1], batch_size=0)
    with pytest.raises(ValueError, match="one entry per seed: 1 for 2 seeds"):
        run_episodes_batched(env, Echo(), [0, 1], batch_size=2, options=[None])
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got -1"):
        evaluate(LOOKUP, Echo(), episodes=2, batch_size=-1)
    env.close()

"""Grader self-tests on every env: the scripted oracle solves every test task through the tools,
and a random agent almost never does."""

from __future__ import annotations

import gymnasium as gym

from baselines.agents.random import RandomAgent
from toolgym.evaluation import evaluate, summarize


def test_oracle_solves_every_test_task(env_id: str) -> None:
    oracle = gym.make(env_id).unwrapped.make_oracle()
    results = evaluate(env_id, oracle, split="test")
    failed = [r.task_id for r in results if not r.success]
    assert results and not failed, f"oracle failed {len(failed)}/{len(results)}: {failed[:10]}"
    assert summarize(results).format_error_rate == 0.0


def test_random_agent_scores_near_zero(env_id: str) -> None:
    results = evaluate(env_id, RandomAgent(seed=0), episodes=100, split="test")
    summary = summarize(results)
    assert summary.success_rate <= 0.05, summary
    assert summary.format_error_rate > 0.1, "the random agent should produce malformed actions"

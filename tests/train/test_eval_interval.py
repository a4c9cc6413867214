"""Training evaluations report the success rate's 95% Wilson interval (not ± a normal approximation)."""

from __future__ import annotations

import pytest

from baselines.llm.rollout import RolloutSettings
from baselines.train.common import evaluate, fixed_requests
from baselines.train.envs import make_envs, task_ids
from tests.train.conftest import ENV_ID
from toolgym.stats import wilson_interval


def test_evaluate_reports_the_wilson_interval(policy, chat) -> None:
    envs = make_envs(ENV_ID, 4, "dev", {})
    requests = fixed_requests(task_ids(envs[0]), 4, seed=10_000)
    stats, episodes = evaluate(policy, chat, envs, requests, RolloutSettings(max_new_tokens=8), seed=0)
    wins = sum(e.success for e in episodes)
    low, high = wilson_interval(wins, len(episodes))
    assert (stats["eval/success_ci_low"], stats["eval/success_ci_high"]) == pytest.approx((low, high))
    assert stats["eval/success_ci_low"] <= stats["eval/success"] <= stats["eval/success_ci_high"]
    assert stats["eval/success_ci_high"] - stats["eval/success_ci_low"] > 0.3  # 4 episodes: wide, never ± 0

"""Run policies on environments and summarise the episodes.

Used by ``toolgym run`` and by the leaderboard. Each episode is recorded as an
:class:`EpisodeResult` (one tidy row), and :func:`summarize` aggregates them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym

from toolgym.core.errors import INVALID_ACTION_CODES, ErrorCode
from toolgym.core.policy import Policy
from toolgym.stats import wilson_interval


@dataclass
class EpisodeResult:
    """One episode: what happened and how long it took."""

    env_id: str
    task_id: str
    seed: int | None
    success: bool
    reward: float
    turns: int
    format_errors: int
    tool_errors: int
    stop_reason: str | None
    wall_s: float
    error_codes: dict[str, int] = field(default_factory=dict)
    env_s: float = 0.0
    """Seconds spent inside ``env.step`` (needs ``record_timing=True``; else 0)."""
    tool_s: float = 0.0
    """Seconds spent running tools (needs ``record_timing=True``; else 0)."""
    output_chars: int = 0
    """Characters of tool output (needs ``record_timing=True``; else 0)."""

    def to_row(self) -> dict[str, Any]:
        """A flat dict for CSV writing."""
        row = asdict(self)
        row["error_codes"] = ";".join(f"{k}={v}" for k, v in sorted(self.error_codes.items()))
        return row


def run_episode(
    env: gym.Env[str, str],
    policy: Policy,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    env_id: str = "",
) -> EpisodeResult:
    """Play one episode of ``policy`` in ``env`` and return its result."""
    started = time.perf_counter()
    observation, info = env.reset(seed=seed, options=options)
    policy.reset(seed=seed)
    task_id = str(info.get("task_id", ""))
    total = 0.0
    turns = 0
    codes: Counter[str] = Counter()
    success = False
    stop_reason: str | None = None
    cost = {"step_s": 0.0, "tool_s": 0.0, "output_chars": 0}
    while True:
        action = policy.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        turns += 1
        for key in cost:
            cost[key] += info.get("timing", {}).get(key, 0)
        if info.get("error"):
            codes[info["error"]] += 1
        if terminated or truncated:
            success = bool(info.get("success", False))
            stop_reason = info.get("stop_reason")
            break
    invalid = {code.value for code in INVALID_ACTION_CODES}
    tool_codes = {ErrorCode.TOOL_ERROR.value, ErrorCode.TIMEOUT.value, ErrorCode.SANDBOX_ERROR.value}
    return EpisodeResult(
        env_id=env_id or (env.spec.id if env.spec else type(env.unwrapped).__name__),
        task_id=task_id,
        seed=seed,
        success=success,
        reward=total,
        turns=turns,
        format_errors=sum(n for c, n in codes.items() if c in invalid),
        tool_errors=sum(n for c, n in codes.items() if c in tool_codes),
        stop_reason=stop_reason,
        wall_s=time.perf_counter() - started,
        error_codes=dict(codes),
        env_s=float(cost["step_s"]),
        tool_s=float(cost["tool_s"]),
        output_chars=int(cost["output_chars"]),
    )


def evaluate(
    env_id: str,
    policy: Policy,
    *,
    episodes: int | None = None,
    split: str = "test",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Evaluate ``policy`` on ``env_id``.

    Args:
        env_id: A registered id, e.g. ``"ToolGym/Search-v0"``.
        policy: The agent.
        episodes: ``None`` plays every task of the split once, in order (task ``i`` with seed
            ``seed + i``); a number plays that many episodes on tasks drawn with seeds
            ``seed, seed + 1, ...``.
        split: Task split.
        seed: Base seed.
        env_kwargs: Extra kwargs for :func:`gymnasium.make`.
        on_episode: Called after each episode (e.g. to advance a progress bar).
    """
    env = gym.make(env_id, split=split, **(env_kwargs or {}))
    try:
        plan: Iterable[tuple[int, dict[str, Any] | None]]
        if episodes is None:
            task_ids: Sequence[str] = [t.id for t in env.unwrapped.task_set]  # type: ignore[attr-defined]
            plan = [(seed + i, {"task_id": tid}) for i, tid in enumerate(task_ids)]
        else:
            plan = [(seed + i, None) for i in range(episodes)]
        results = []
        for episode_seed, options in plan:
            result = run_episode(env, policy, seed=episode_seed, options=options, env_id=env_id)
            results.append(result)
            if on_episode is not None:
                on_episode(result)
        return results
    finally:
        env.close()


@dataclass(frozen=True)
class Summary:
    """Aggregates over episodes."""

    episodes: int
    successes: int
    success_rate: float
    success_ci: tuple[float, float]
    """95% Wilson score interval ``(low, high)`` of the success rate (:func:`toolgym.stats.wilson_interval`)."""
    mean_reward: float
    mean_turns: float
    format_error_rate: float
    """Invalid actions per step (format, unknown tool, schema violation)."""
    error_codes: dict[str, int]


def summarize(results: Sequence[EpisodeResult]) -> Summary:
    """Success rate with its 95% Wilson interval, means and error counts."""
    n = len(results)
    if n == 0:
        return Summary(0, 0, math.nan, (math.nan, math.nan), math.nan, math.nan, math.nan, {})
    successes = sum(bool(r.success) for r in results)
    steps = sum(r.turns for r in results)
    codes: Counter[str] = Counter()
    for r in results:
        codes.update(r.error_codes)
    return Summary(
        episodes=n,
        successes=successes,
        success_rate=successes / n,
        success_ci=wilson_interval(successes, n),
        mean_reward=statistics.fmean(r.reward for r in results),
        mean_turns=statistics.fmean(r.turns for r in results),
        format_error_rate=sum(r.format_errors for r in results) / steps if steps else 0.0,
        error_codes=dict(codes.most_common()),
    )

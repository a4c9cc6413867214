"""Run policies on environments and summarise the episodes.

Used by ``toolgym run`` and by the leaderboard. Each episode is recorded as an
:class:`EpisodeResult` (one tidy row), and :func:`summarize` aggregates them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym

from toolgym.core.errors import INVALID_ACTION_CODES, ErrorCode
from toolgym.core.policy import BatchPolicy, Policy, supports_batch
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


class _Tally:
    """What one episode has accumulated so far: reward, turns, error codes and timing."""

    def __init__(self, seed: int | None) -> None:
        self.started = time.perf_counter()
        self.seed = seed
        self.task_id = ""  # known once the env is reset
        self.total = 0.0
        self.turns = 0
        self.codes: Counter[str] = Counter()
        self.cost: dict[str, float] = {"step_s": 0.0, "tool_s": 0.0, "output_chars": 0}

    def add(self, reward: float, info: dict[str, Any]) -> None:
        """Count one ``env.step``'s reward and info."""
        self.total += float(reward)
        self.turns += 1
        for key in self.cost:
            self.cost[key] += info.get("timing", {}).get(key, 0)
        if info.get("error"):
            self.codes[info["error"]] += 1

    def result(self, env_id: str, last_info: dict[str, Any]) -> EpisodeResult:
        """The finished episode's :class:`EpisodeResult` (``last_info``: the final step's info)."""
        invalid = {code.value for code in INVALID_ACTION_CODES}
        tool_codes = {ErrorCode.TOOL_ERROR.value, ErrorCode.TIMEOUT.value, ErrorCode.SANDBOX_ERROR.value}
        return EpisodeResult(
            env_id=env_id,
            task_id=self.task_id,
            seed=self.seed,
            success=bool(last_info.get("success", False)),
            reward=self.total,
            turns=self.turns,
            format_errors=sum(n for c, n in self.codes.items() if c in invalid),
            tool_errors=sum(n for c, n in self.codes.items() if c in tool_codes),
            stop_reason=last_info.get("stop_reason"),
            wall_s=time.perf_counter() - self.started,
            error_codes=dict(self.codes),
            env_s=float(self.cost["step_s"]),
            tool_s=float(self.cost["tool_s"]),
            output_chars=int(self.cost["output_chars"]),
        )


def _env_name(env: gym.Env[str, str], env_id: str) -> str:
    return env_id or (env.spec.id if env.spec else type(env.unwrapped).__name__)


def run_episode(
    env: gym.Env[str, str],
    policy: Policy,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    env_id: str = "",
) -> EpisodeResult:
    """Play one episode of ``policy`` in ``env`` and return its result."""
    tally = _Tally(seed)
    observation, info = env.reset(seed=seed, options=options)
    policy.reset(seed=seed)
    tally.task_id = str(info.get("task_id", ""))
    while True:
        action = policy.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        tally.add(reward, info)
        if terminated or truncated:
            return tally.result(_env_name(env, env_id), info)


def run_episodes_batched(
    env: gym.Env[str, str],
    policy: BatchPolicy,
    seeds: Sequence[int],
    *,
    batch_size: int,
    options: Sequence[dict[str, Any] | None] | None = None,
    env_id: str = "",
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[tuple[EpisodeResult, int]]:
    """Play one episode per seed, ``batch_size`` at a time, with one ``policy.act_batch`` call per
    turn for all running episodes of the batch.

    ``env`` plays the first episode of each batch; copies made from its spec (the same id and
    ``gym.make`` arguments) play the others and are closed at the end. Each result is what
    :func:`run_episode` would record for that seed (and ``options[i]``), paired with the tokens the
    policy counted for it (its ``slot_tokens[i]`` if it keeps them, else 0); results are in the
    order of ``seeds``.

    Raises:
        ValueError: for ``batch_size < 1``, ``options`` of another length than ``seeds``, or an
            ``env`` without a spec to copy (not made by :func:`gymnasium.make`) when copies are needed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size!r}.")
    plan_options = list(options) if options is not None else [None] * len(seeds)
    if len(plan_options) != len(seeds):
        raise ValueError(f"options must have one entry per seed: {len(plan_options)} for {len(seeds)} seeds.")
    if min(batch_size, len(seeds)) > 1 and env.spec is None:
        raise ValueError("run_episodes_batched copies env from its spec; make it with gymnasium.make.")
    name = _env_name(env, env_id)
    spare: list[gym.Env[str, str]] = []
    played: list[tuple[EpisodeResult, int]] = []
    try:
        for start in range(0, len(seeds), batch_size):
            wave = list(range(start, min(start + batch_size, len(seeds))))
            while len(spare) < len(wave) - 1:
                spare.append(gym.make(env.spec))  # type: ignore[arg-type]
            played.extend(_play_wave([env, *spare][: len(wave)], policy, [seeds[i] for i in wave],
                                     [plan_options[i] for i in wave], name, on_episode))
    finally:
        for extra in spare:
            extra.close()
    return played


def _play_wave(
    envs: Sequence[gym.Env[str, str]],
    policy: BatchPolicy,
    seeds: Sequence[int],
    options: Sequence[dict[str, Any] | None],
    env_id: str,
    on_episode: Callable[[EpisodeResult], None] | None,
) -> list[tuple[EpisodeResult, int]]:
    n = len(envs)
    policy.reset_batch(n, seed=seeds[0])
    observations, infos, tallies = [], [], []
    for env, seed, option in zip(envs, seeds, options, strict=True):
        tally = _Tally(seed)
        observation, info = env.reset(seed=seed, options=option)
        tally.task_id = str(info.get("task_id", ""))
        observations.append(observation)
        infos.append(info)
        tallies.append(tally)
    results: list[tuple[EpisodeResult, int] | None] = [None] * n
    running = list(range(n))
    while running:
        actions = policy.act_batch([observations[i] for i in running], [infos[i] for i in running], running)
        still = []
        for i, action in zip(running, actions, strict=True):
            observation, reward, terminated, truncated, info = envs[i].step(action)
            observations[i], infos[i] = observation, info
            tallies[i].add(reward, info)
            if not (terminated or truncated):
                still.append(i)
                continue
            result = tallies[i].result(env_id, info)
            slot_tokens = getattr(policy, "slot_tokens", None)
            results[i] = (result, int(slot_tokens[i]) if slot_tokens is not None else 0)
            if on_episode is not None:
                on_episode(result)
        running = still
    return [r for r in results if r is not None]


def evaluate(
    env_id: str,
    policy: Policy,
    *,
    episodes: int | None = None,
    split: str = "test",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    batch_size: int = 1,
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
        batch_size: Episodes played at once by a policy that can (:func:`~toolgym.core.policy.supports_batch`,
            e.g. ``llm:`` agents: one batched generation per turn); other policies play one at a
            time whatever it is. The tasks and seeds are the same either way.

    Raises:
        ValueError: for ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size!r}.")
    env = gym.make(env_id, split=split, **(env_kwargs or {}))
    try:
        plan: list[tuple[int, dict[str, Any] | None]]
        if episodes is None:
            task_ids: Sequence[str] = [t.id for t in env.unwrapped.task_set]  # type: ignore[attr-defined]
            plan = [(seed + i, {"task_id": tid}) for i, tid in enumerate(task_ids)]
        else:
            plan = [(seed + i, None) for i in range(episodes)]
        if batch_size > 1 and len(plan) > 1 and supports_batch(policy):
            played = run_episodes_batched(env, policy, [s for s, _ in plan], batch_size=batch_size,  # type: ignore[arg-type]
                                          options=[o for _, o in plan], env_id=env_id, on_episode=on_episode)
            return [result for result, _ in played]
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

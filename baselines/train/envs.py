"""Env plumbing for the trainers: making envs, listing tasks, caching oracle trajectories."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

import toolgym  # noqa: F401  (registers the ToolGym/ envs)
from baselines.llm.rollout import ExpertTrajectory, run_oracle
from toolgym.core.formats import FinalAnswer, ToolCall, get_action_format


def make_env(env_id: str, split: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, split=split, **env_kwargs)``."""
    return gym.make(env_id, split=split, **(env_kwargs or {}))


def make_envs(env_id: str, n: int, split: str, env_kwargs: dict[str, Any] | None = None) -> list[gym.Env]:
    """``n`` independent envs (rollouts step them one by one; see ``unwrap_envs``)."""
    return [make_env(env_id, split, env_kwargs) for _ in range(n)]


def task_ids(env: gym.Env, limit: int | None = None, skip: int = 0) -> list[str]:
    """Ids of the env's tasks (after its split / difficulty / task_ids filters), in file order.

    Args:
        env: The env whose task set is listed.
        limit: Keep at most this many ids (after ``skip``); ``None`` keeps all.
        skip: Drop the first ``skip`` ids.

    Raises:
        ValueError: if ``skip`` leaves no task.
    """
    ids = [t.id for t in env.unwrapped.task_set]
    if skip:
        if skip >= len(ids):
            raise ValueError(f"skip_tasks={skip} leaves no task: the env's task set has {len(ids)}; expected skip_tasks < {len(ids)}.")
        ids = ids[skip:]
    return ids[:limit] if limit is not None else ids


class ExpertBank:
    """Oracle trajectories per task id, computed on first use and cached.

    Args:
        env_id: The env.
        split: Split of the tasks.
        env_kwargs: Extra ``gym.make`` kwargs (must match the training envs').
    """

    def __init__(self, env_id: str, split: str, env_kwargs: dict[str, Any] | None = None) -> None:
        self.env = make_env(env_id, split, env_kwargs)
        self._cache: dict[str, ExpertTrajectory] = {}

    def get(self, task_id: str) -> ExpertTrajectory:
        """The oracle's trajectory on ``task_id`` (seed 0)."""
        traj = self._cache.get(task_id)
        if traj is None:
            traj = run_oracle(self.env, task_id, seed=0)
            self._cache[task_id] = traj
        return traj

    def many(self, ids: Sequence[str]) -> list[ExpertTrajectory]:
        """Trajectories for several tasks."""
        return [self.get(t) for t in ids]

    def play(self, task_id: str, perturb: Callable[[str], str], *, seed: int = 0) -> ExpertTrajectory:
        """The oracle's episode on ``task_id`` with each action passed through ``perturb`` before
        the env sees it (not cached: a perturbed episode is a sample)."""
        return run_oracle(self.env, task_id, seed=seed, perturb=perturb)


class ExpertNoise:
    """The pilot's noisy expert, in any action format: content values are replaced at random.

    With probability ``p`` each string/number leaf of a tool call's arguments is replaced by a
    value seen for the same tool argument in other expert actions, and each final answer by
    another task's answer. Actions are parsed and re-rendered with the env's action format, so
    the format is untouched: SFT learns the format fully and the content only partly.

    Args:
        trajectories: Expert trajectories whose actions supply the replacement values.
        p: Probability of replacing each value.
        action_format: The actions' format (a name such as ``"hermes"`` or ``"pythonic"``, or an
            :class:`~toolgym.core.formats.ActionFormat`).
    """

    def __init__(self, trajectories: Sequence[ExpertTrajectory], p: float, action_format: Any = "hermes") -> None:
        self.p = p
        self.format = get_action_format(action_format)
        self.arg_pool: dict[tuple[str, str], list[Any]] = {}
        self.answers: list[str] = []
        for traj in trajectories:
            for action in traj.actions:
                parsed = self.format.parse(action)
                if isinstance(parsed, FinalAnswer):
                    self.answers.append(parsed.text)
                elif isinstance(parsed, ToolCall):
                    for key, value in parsed.arguments.items():
                        if _is_leaf(value):
                            self.arg_pool.setdefault((parsed.name, key), []).append(value)
        self.arg_pool = {k: sorted(set(v), key=str) for k, v in self.arg_pool.items()}
        self.answers = sorted(set(self.answers))

    def corrupt(self, actions: Sequence[str], rng: random.Random) -> list[str]:
        """The actions with content replaced at random (a new list; inputs untouched)."""
        if self.p <= 0:
            return list(actions)
        return [self.corrupt_one(action, rng) for action in actions]

    def corrupt_one(self, action: str, rng: random.Random, p: float | None = None) -> str:
        """One action with its content replaced at random, each value with probability ``p``
        (default: the instance's); unparseable text is returned as is."""
        p = self.p if p is None else p
        parsed = self.format.parse(action)
        if isinstance(parsed, FinalAnswer):
            text = parsed.text
            if self.answers and rng.random() < p:
                text = rng.choice(self.answers)
            return self.format.render(FinalAnswer(text))
        if not isinstance(parsed, ToolCall):
            return action
        args = dict(parsed.arguments)
        for key, value in list(args.items()):
            pool = self.arg_pool.get((parsed.name, key))
            if pool and _is_leaf(value) and rng.random() < p:
                args[key] = rng.choice(pool)
        return self.format.render(ToolCall(parsed.name, args))


class PlayedNoise:
    """Perturbs an oracle's actions *before the env sees them*, so that what follows is real.

    Each action, independently: with probability ``format_p`` it is cut at a random point (an
    unparseable turn, as a broken policy writes it: the env answers with its parse error); else
    its content is replaced as by :class:`ExpertNoise` with probability ``content_p`` per value
    (a wrong call: the env answers with the tool's real output or error). The oracle then acts on
    what the env answered, so the episode's observations, errors and failures are the env's own.

    Args:
        noise: Supplies content replacements (its ``p`` is ignored: ``content_p`` is used).
        content_p: Probability of replacing each content value of an action.
        format_p: Probability of cutting an action short.
        seed: Seed of the perturbations.
    """

    def __init__(self, noise: ExpertNoise, *, content_p: float, format_p: float, seed: int) -> None:
        self.noise, self.content_p, self.format_p = noise, content_p, format_p
        self.rng = random.Random(seed)

    def __call__(self, action: str) -> str:
        """The action to send to the env in place of ``action``."""
        if len(action) > 1 and self.rng.random() < self.format_p:
            return action[: self.rng.randrange(1, len(action))]
        return self.noise.corrupt_one(action, self.rng, self.content_p) if self.content_p > 0 else action


def _is_leaf(value: Any) -> bool:
    """A replaceable content value: a string or a number (not a bool)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)

"""Env plumbing for the trainers: making envs, listing tasks, caching oracle trajectories."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

import toolgym  # noqa: F401  (registers the ToolGym/ envs)
from baselines.llm.rollout import ExpertTrajectory, run_oracle


def make_env(env_id: str, split: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, split=split, **env_kwargs)``."""
    return gym.make(env_id, split=split, **(env_kwargs or {}))


def make_envs(env_id: str, n: int, split: str, env_kwargs: dict[str, Any] | None = None) -> list[gym.Env]:
    """``n`` independent envs (rollouts step them one by one; see ``unwrap_envs``)."""
    return [make_env(env_id, split, env_kwargs) for _ in range(n)]


def task_ids(env: gym.Env, limit: int | None = None) -> list[str]:
    """Ids of the env's tasks (after its split / difficulty / task_ids filters), in file order."""
    ids = [t.id for t in env.unwrapped.task_set]
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


class ExpertNoise:
    """The pilot's noisy expert, for any Hermes-style env: content values are replaced at random.

    With probability ``p`` each string/number leaf of a tool call's arguments is replaced by a
    value seen for the same tool argument in other expert actions, and each final answer by
    another task's answer. The format is untouched, so SFT learns the format fully and the
    content only partly.
    """

    def __init__(self, trajectories: Sequence[ExpertTrajectory], p: float) -> None:
        self.p = p
        self.arg_pool: dict[tuple[str, str], list[Any]] = {}
        self.answers: list[str] = []
        for traj in trajectories:
            for action in traj.actions:
                parsed = _parse(action)
                if parsed is None:
                    continue
                if parsed[0] == "answer":
                    self.answers.append(parsed[1])
                else:
                    name, args = parsed[1], parsed[2]
                    for key, value in args.items():
                        if isinstance(value, str | int | float) and not isinstance(value, bool):
                            self.arg_pool.setdefault((name, key), []).append(value)
        self.arg_pool = {k: sorted(set(v), key=str) for k, v in self.arg_pool.items()}
        self.answers = sorted(set(self.answers))

    def corrupt(self, actions: Sequence[str], rng: random.Random) -> list[str]:
        """The actions with content replaced at random (a new list; inputs untouched)."""
        if self.p <= 0:
            return list(actions)
        out = []
        for action in actions:
            parsed = _parse(action)
            if parsed is None:
                out.append(action)
            elif parsed[0] == "answer":
                text = parsed[1]
                if self.answers and rng.random() < self.p:
                    text = rng.choice(self.answers)
                out.append(f"<answer>{text}</answer>")
            else:
                name, args = parsed[1], dict(parsed[2])
                for key, value in list(args.items()):
                    pool = self.arg_pool.get((name, key))
                    if pool and isinstance(value, str | int | float) and rng.random() < self.p:
                        args[key] = rng.choice(pool)
                out.append(f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>")
        return out


def _parse(action: str) -> tuple[str, Any, Any] | None:
    """``("answer", text, None)`` or ``("call", name, args)`` for a Hermes action, else None."""
    text = action.strip()
    if text.startswith("<answer>") and text.endswith("</answer>"):
        return ("answer", text[len("<answer>") : -len("</answer>")], None)
    if text.startswith("<tool_call>") and text.endswith("</tool_call>"):
        try:
            obj = json.loads(text[len("<tool_call>") : -len("</tool_call>")])
        except json.JSONDecodeError:
            return None
        if isinstance(obj, dict) and isinstance(obj.get("arguments"), dict):
            return ("call", str(obj.get("name")), obj["arguments"])
    return None

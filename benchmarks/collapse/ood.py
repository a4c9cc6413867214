"""Held-out presentation of an env, to test whether a trained policy is robust to format shifts.

The reference study reports that interleaved SFT keeps RL stable but hurts robustness to
out-of-distribution formats. Our tiny policies see no system prompt, so renaming tools or changing
the accepted action format would be invisible to them; what they *do* see is the task prompt and
the tool outputs. :class:`ShiftedPresentation` changes both while keeping the task, the tools, the
action format and the grader unchanged:

* the task prompt is wrapped: ``"Task: <prompt> Use the tools, then answer."``;
* each tool output ``X`` is returned as JSON, ``{"result": "X"}``, inside the same
  ``<tool_response>`` tags.

A policy that learned the task (follow the pointer, copy the value) should survive this; one that
memorised surface forms will not.

:class:`ShiftedToolOutputs` is the milder variant: only the tool outputs are JSON-wrapped, the task
prompt is unchanged. It was added after the first runs showed that the tiny starting policy scores
0 under the full shift (a floor that no arm can go below, so it cannot show a loss of robustness);
it was chosen on the starting checkpoint alone (0.11 success), before comparing any arm on it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import gymnasium as gym

_RESPONSE = re.compile(r"<tool_response>\n?(.*?)\n?</tool_response>", re.S)


def shift_tool_output(observation: str) -> str:
    """``<tool_response>\\nX\\n</tool_response>`` -> the same tags around ``{"result": "X"}``.

    Observations without a tool response (error messages) are returned unchanged.
    """
    return _RESPONSE.sub(lambda m: "<tool_response>\n" + json.dumps({"result": m.group(1)}) + "\n</tool_response>", observation)


def shift_prompt(prompt: str) -> str:
    """The task prompt as the held-out variant shows it."""
    return f"Task: {prompt} Use the tools, then answer."


class ShiftedPresentation(gym.Wrapper):
    """Serve an env's tasks with a shifted prompt and JSON-wrapped tool outputs (see module docs).

    Only what the policy reads changes (``observation``, ``info["task_prompt"]``); rewards,
    termination and ``info`` otherwise pass through.
    """

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the inner env and shift the prompt."""
        observation, info = self.env.reset(seed=seed, options=options)
        prompt = info.get("task_prompt")
        if isinstance(prompt, str):
            info = {**info, "task_prompt": shift_prompt(prompt)}
            observation = observation[: len(observation) - len(prompt)] + shift_prompt(prompt) if observation.endswith(prompt) else observation
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the inner env and shift the tool output."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        return shift_tool_output(observation), reward, terminated, truncated, info


class ShiftedToolOutputs(ShiftedPresentation):
    """Only the tool outputs are shifted (``{"result": "X"}``); the task prompt is as trained."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the inner env unchanged."""
        return self.env.reset(seed=seed, options=options)


VARIANTS: dict[str, Any] = {"id": None, "ood": ShiftedPresentation, "ood_tool": ShiftedToolOutputs}
"""Evaluation variants: as trained (``id``), the full shift (``ood``), tool outputs only (``ood_tool``)."""


def evaluate_checkpoint(
    model_dir: str,
    env_id: str,
    *,
    split: str,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    include_system_prompt: bool = False,
    max_new_tokens: int = 64,
    max_observation_tokens: int = 256,
    seed: int = 0,
    variants: tuple[str, ...] = tuple(VARIANTS),
    device: str = "cpu",
) -> dict[str, float]:
    """Success of a saved policy on ``split`` for each of ``variants`` (keys of :data:`VARIANTS`):
    as trained (``id/…``), shifted (``ood/…``), tool outputs shifted (``ood_tool/…``).

    All evaluations use the same tasks, episode seeds and sampling seed (T = 1), so the
    difference is the presentation alone. ``device`` is the torch device the policy runs on
    (the run's own, e.g. ``"cuda"``); sampling draws from a CPU generator on any device.
    """
    import toolgym  # noqa: F401  (registers the envs)
    from baselines.llm.policy import CausalLMPolicy
    from baselines.llm.rollout import RolloutSettings
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train.common import evaluate, fixed_requests, load_policy_checkpoint
    from baselines.train.envs import make_envs, task_ids

    model, tokenizer = load_policy_checkpoint(model_dir)
    model.to(device).eval()
    chat = ChatFormat(tokenizer, include_system_prompt=include_system_prompt)
    policy = CausalLMPolicy(model, chat.control)
    settings = RolloutSettings(max_new_tokens, max_observation_tokens)
    n_envs = min(episodes, 64)
    envs = make_envs(env_id, n_envs, split, env_kwargs)
    requests = fixed_requests(task_ids(envs[0]), episodes, seed=20_000)
    out: dict[str, float] = {}
    for prefix in variants:
        wrapper = VARIANTS[prefix]
        batch = envs if wrapper is None else [wrapper(e) for e in envs]
        stats, _ = evaluate(policy, chat, batch, requests, settings, seed=seed, prefix=prefix)
        out[f"{prefix}/success"] = stats[f"{prefix}/success"]
        out[f"{prefix}/format_error_rate"] = stats[f"{prefix}/format_error_rate"]
    for env in envs:
        env.close()
    return out

"""Multi-turn episodes against ToolGym envs, kept as token ids with a loss mask.

Token-in/token-out: the sampled ids are appended to the episode as they were sampled; only the
env's observations are tokenized (and masked out of the loss). An :class:`Episode` therefore holds
exactly the sequence the policy saw and produced.

Expert (oracle) episodes are built the same way from the oracle's action texts, so SFT data,
off-policy expert rollouts and on-policy rollouts share one layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from baselines.llm.policy import CausalLMPolicy
from baselines.llm.tokenizer import ChatFormat, ControlTokens

INFO_KEYS = ("turn", "error", "success", "stop_reason")
"""Keys of the env's step ``info`` kept per turn in :attr:`Episode.turn_infos`."""

STOP_CONTEXT = "context_length"
"""``Episode.stop_reason`` when the sequence would outgrow the model's context."""


@dataclass
class Episode:
    """One multi-turn episode as tokens.

    Attributes:
        task_id: The env task.
        input_ids: The training sequence: prompt (without any hint), then each assistant turn
            (sampled ids, ending with end-of-turn) and each observation turn.
        loss_mask: Same length as ``input_ids``: 1 for tokens the policy produced (assistant
            turns), 0 for the prompt and the observations (tool outputs).
        sample_logprobs: Same length: the behaviour log-prob of each produced token (0 elsewhere,
            and 0 for expert episodes, which were not sampled).
        prompt_len: Number of prompt tokens at the start of ``input_ids``.
        sample_prompt_ids: The prompt used while sampling, if it differed (a hint was added).
        actions: The action text of each turn (decoded from the sampled ids).
        turn_rewards: Reward of each env step.
        turn_infos: Per turn, the env info restricted to :data:`INFO_KEYS`.
        reward: Sum of ``turn_rewards``.
        success: Whether the env reported success.
        stop_reason: The env's ``stop_reason`` at the end, or ``"context_length"``.
        is_expert: Built from the oracle's actions (off-policy).
        hint: The hint text shown while sampling, if any.
        group: Index of the GRPO group the episode belongs to (set by the trainer).
    """

    task_id: str
    input_ids: list[int]
    loss_mask: list[int]
    sample_logprobs: list[float]
    prompt_len: int
    sample_prompt_ids: list[int] | None = None
    actions: list[str] = field(default_factory=list)
    turn_rewards: list[float] = field(default_factory=list)
    turn_infos: list[dict[str, Any]] = field(default_factory=list)
    reward: float = 0.0
    success: bool = False
    stop_reason: str | None = None
    is_expert: bool = False
    hint: str | None = None
    group: int = -1

    @property
    def num_turns(self) -> int:
        """Number of env steps taken."""
        return len(self.actions)

    @property
    def num_generated(self) -> int:
        """Number of policy (assistant) tokens."""
        return int(sum(self.loss_mask))

    def errors(self) -> list[str]:
        """Error codes of the turns that had one."""
        return [str(i["error"]) for i in self.turn_infos if i.get("error")]

    def control_positions(self, control: ControlTokens) -> list[int]:
        """Indices in ``input_ids`` of control tokens the policy produced (loss-mask positions)."""
        ids = set(control.id_list)
        return [t for t, (tok, m) in enumerate(zip(self.input_ids, self.loss_mask, strict=True)) if m and tok in ids]


@dataclass(frozen=True)
class EpisodeRequest:
    """What to roll out: a task, the env seed, and an optional hint shown only while sampling."""

    task_id: str
    seed: int
    hint: str | None = None


@dataclass
class RolloutSettings:
    """Limits of a rollout."""

    max_new_tokens: int = 64
    """Tokens per assistant turn."""
    max_observation_tokens: int = 256
    """Observation tokens kept per tool output (head and tail)."""
    greedy: bool = False
    """Argmax decoding (evaluation) instead of sampling."""
    per_episode_rng: bool = False
    """Sample each episode from its own generator seeded by :func:`episode_sampling_seed` of its
    request seed (the ``generator`` argument is then unused): an episode no longer depends on which
    other episodes share its batch, so any split of the requests over workers or ranks gives the
    same episodes. Off by default (one shared generator, the original behaviour)."""


def episode_sampling_seed(request_seed: int) -> int:
    """Seed of an episode's sampling generator under ``per_episode_rng`` (a fixed mix of the
    request seed, so the token stream is not the env's own seed reused)."""
    return (int(request_seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (2**63)


def unwrap_envs(envs: Sequence[gym.Env] | gym.vector.VectorEnv) -> list[gym.Env]:
    """The individual envs of a list or of a ``SyncVectorEnv``.

    Episodes of one task run to different lengths, so rollouts step each env on its own instead
    of through the vector env's autoreset loop.
    """
    if isinstance(envs, gym.vector.VectorEnv):
        inner = getattr(envs, "envs", None)
        if inner is None:
            raise TypeError(
                "Rollouts need direct access to each env: pass a list of envs or a SyncVectorEnv "
                f"(got {type(envs).__name__})."
            )
        return list(inner)
    return list(envs)


def _system_and_user(observation: str, info: dict[str, Any]) -> tuple[str | None, str]:
    system = info.get("system_prompt")
    user = info.get("task_prompt")
    if user is None:
        return None, observation
    return system, user


def with_hint(user: str, hint: str) -> str:
    """The task prompt with a hint appended (the form shown while sampling)."""
    return f"{user}\n{hint}"


def collect_episodes(
    policy: CausalLMPolicy,
    chat: ChatFormat,
    envs: Sequence[gym.Env] | gym.vector.VectorEnv,
    requests: Sequence[EpisodeRequest],
    settings: RolloutSettings,
    *,
    generator: torch.Generator | None = None,
    context_length: int | None = None,
) -> list[Episode]:
    """Roll out one episode per request, as many in parallel as there are envs.

    Each wave resets up to ``len(envs)`` envs on their requests' tasks, then repeatedly samples
    one assistant turn for every running episode in a single batch, steps the envs with the
    decoded action texts and appends the observations, until every episode has ended.

    Returns:
        Episodes in request order.
    """
    pool = unwrap_envs(envs)
    if not pool:
        raise ValueError("collect_episodes needs at least one env.")
    limit = context_length
    episodes: list[Episode] = []
    for start in range(0, len(requests), len(pool)):
        wave = requests[start : start + len(pool)]
        episodes.extend(_run_wave(policy, chat, pool[: len(wave)], wave, settings, generator, limit))
    return episodes


def _run_wave(
    policy: CausalLMPolicy,
    chat: ChatFormat,
    envs: list[gym.Env],
    requests: Sequence[EpisodeRequest],
    settings: RolloutSettings,
    generator: torch.Generator | None,
    context_length: int | None,
) -> list[Episode]:
    episodes: list[Episode] = []
    contexts: list[list[int]] = []  # what the policy conditions on (with the hint, if any)
    for env, req in zip(envs, requests, strict=True):
        observation, info = env.reset(seed=req.seed, options={"task_id": req.task_id})
        system, user = _system_and_user(observation, info)
        prompt = chat.prompt_ids(system, user)
        sample_prompt = chat.prompt_ids(system, with_hint(user, req.hint)) if req.hint else None
        episodes.append(
            Episode(
                task_id=req.task_id,
                input_ids=list(prompt),
                loss_mask=[0] * len(prompt),
                sample_logprobs=[0.0] * len(prompt),
                prompt_len=len(prompt),
                sample_prompt_ids=sample_prompt,
                hint=req.hint,
            )
        )
        contexts.append(list(sample_prompt or prompt))
    episode_generators = (
        [torch.Generator().manual_seed(episode_sampling_seed(req.seed)) for req in requests]
        if settings.per_episode_rng
        else None
    )
    running = list(range(len(envs)))
    while running:
        if context_length is not None:
            fits = []
            for i in running:
                if len(contexts[i]) + settings.max_new_tokens > context_length:
                    episodes[i].stop_reason = STOP_CONTEXT
                else:
                    fits.append(i)
            running = fits
            if not running:
                break
        generations = policy.generate(
            [contexts[i] for i in running],
            max_new_tokens=settings.max_new_tokens,
            generator=generator if episode_generators is None else [episode_generators[i] for i in running],
            greedy=settings.greedy,
        )
        still = []
        for i, gen in zip(running, generations, strict=True):
            ep = episodes[i]
            action = chat.decode_action(gen.token_ids)
            ep.input_ids += gen.token_ids
            ep.loss_mask += [1] * len(gen.token_ids)
            ep.sample_logprobs += gen.logprobs
            contexts[i] += gen.token_ids
            observation, reward, terminated, truncated, info = envs[i].step(action)
            ep.actions.append(action)
            ep.turn_rewards.append(float(reward))
            ep.turn_infos.append({k: info.get(k) for k in INFO_KEYS})
            ep.reward += float(reward)
            ep.success = ep.success or bool(info.get("success"))
            if terminated or truncated:
                ep.stop_reason = info.get("stop_reason") or ("truncated" if truncated else "terminated")
                continue
            obs_ids = chat.observation_ids(observation, settings.max_observation_tokens)
            ep.input_ids += obs_ids
            ep.loss_mask += [0] * len(obs_ids)
            ep.sample_logprobs += [0.0] * len(obs_ids)
            contexts[i] += obs_ids
            still.append(i)
        running = still
    return episodes


@dataclass
class ExpertTrajectory:
    """An oracle's episode as text: the prompt, each action and each observation after it."""

    task_id: str
    system: str | None
    user: str
    actions: list[str]
    observations: list[str]
    turn_infos: list[dict[str, Any]]
    reward: float
    success: bool
    tool_names: list[str]

    def to_episode(
        self,
        chat: ChatFormat,
        *,
        actions: Sequence[str] | None = None,
        max_observation_tokens: int | None = None,
    ) -> Episode:
        """Tokenize as an :class:`Episode` (``is_expert=True``); ``actions`` may replace the
        oracle's texts (e.g. with noisy ones) while the observations stay those of the oracle."""
        texts = list(actions if actions is not None else self.actions)
        prompt = chat.prompt_ids(self.system, self.user)
        ids, mask = list(prompt), [0] * len(prompt)
        for turn, text in enumerate(texts):
            act = chat.action_ids(text)
            ids += act
            mask += [1] * len(act)
            if turn < len(self.observations):
                obs = chat.observation_ids(self.observations[turn], max_observation_tokens)
                ids += obs
                mask += [0] * len(obs)
        return Episode(
            task_id=self.task_id,
            input_ids=ids,
            loss_mask=mask,
            sample_logprobs=[0.0] * len(ids),
            prompt_len=len(prompt),
            actions=texts,
            turn_rewards=[0.0] * (len(texts) - 1) + [self.reward],
            turn_infos=list(self.turn_infos),
            reward=self.reward,
            success=self.success,
            stop_reason=self.turn_infos[-1].get("stop_reason") if self.turn_infos else None,
            is_expert=True,
        )

    def hint(self, style: str = "tools") -> str:
        """A guidance hint derived from this trajectory.

        ``"tools"``: the sequence of tools to use; ``"first_call"``: the first action verbatim.
        """
        if style == "first_call" and self.actions:
            return f"Hint: start with {self.actions[0]}"
        plan = ", then ".join(self.tool_names) if self.tool_names else "no tool"
        return f"Hint: call {plan}, then answer."


def run_oracle(
    env: gym.Env, task_id: str, *, seed: int = 0, perturb: Callable[[str], str] | None = None
) -> ExpertTrajectory:
    """Run the env's scripted oracle on ``task_id`` and record the trajectory.

    Args:
        env: The env (its oracle comes from ``env.unwrapped.make_oracle()``).
        task_id: The task.
        seed: Seed of the reset and of the oracle.
        perturb: Optional function applied to each oracle action before the env sees it (see
            :class:`~baselines.train.envs.PlayedNoise`); the recorded actions are the perturbed
            ones, so the trajectory is what the env really answered (it may fail).

    Raises:
        ValueError: if the env has no oracle.
    """
    base = env.unwrapped
    make_oracle = getattr(base, "make_oracle", None)
    if make_oracle is None:
        raise ValueError(f"{type(base).__name__} has no scripted oracle (make_oracle()).")
    oracle = make_oracle()
    oracle.reset(seed=seed)
    observation, info = env.reset(seed=seed, options={"task_id": task_id})
    system, user = _system_and_user(observation, info)
    actions: list[str] = []
    observations: list[str] = []
    infos: list[dict[str, Any]] = []
    tools: list[str] = []
    reward = 0.0
    success = False
    done = False
    while not done:
        action = oracle.act(observation, info)
        if perturb is not None:
            action = perturb(action)
        observation, r, terminated, truncated, info = env.step(action)
        actions.append(action)
        infos.append({k: info.get(k) for k in INFO_KEYS})
        name = _tool_name(info.get("parsed"))
        if name is not None:
            tools.append(name)
        reward += float(r)
        success = success or bool(info.get("success"))
        done = terminated or truncated
        if not done:
            observations.append(observation)
    return ExpertTrajectory(
        task_id=task_id,
        system=system,
        user=user,
        actions=actions,
        observations=observations,
        turn_infos=infos,
        reward=reward,
        success=success,
        tool_names=tools,
    )


def _tool_name(parsed: Any) -> str | None:
    """The tool name of a parsed action (a ``ToolCall`` or its dict form), else None."""
    if parsed is None:
        return None
    if hasattr(parsed, "to_dict"):
        parsed = parsed.to_dict()
    if isinstance(parsed, dict) and parsed.get("type") == "tool_call":
        return str(parsed.get("name"))
    return None

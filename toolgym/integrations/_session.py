"""One ToolGym episode driven through native tool calls, shared by the trainer adapters.

Chat trainers (TRL, verifiers) do not send ToolGym action *text*: they parse the model's reply
into structured tool calls themselves, run the tools, and treat a reply without tool calls as
the end of the conversation. :class:`EpisodeSession` maps that protocol onto a ToolGym env
without changing the env:

* a tool call ``name(**arguments)`` is rendered into the env's action format and passed to
  :meth:`ToolEnv.step`, so ToolGym parses, validates against the tool's JSON Schema, runs the
  tool, applies its invalid-action policy and counts the turn exactly as for a text agent;
* the tool message the model sees is the env's observation with the action format's wrapping
  removed (e.g. without ``<tool_response>`` tags, which the chat template adds itself): the tool
  output, or ToolGym's typed error text ``Error [<code>]: <message>``;
* the final reply becomes a :class:`~toolgym.core.actions.FinalAnswer` step (see
  :func:`final_answer_action`), which grades it and ends the episode.

Every step is recorded (:class:`StepRecord`, with the env's full ``info``), so the episode's
return equals what ``toolgym run`` would compute for the same actions.

This module imports only ToolGym and Gymnasium.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym

from toolgym.core.actions import ActionFormat, FinalAnswer, ToolCall
from toolgym.core.errors import ActionError, ConfigError, ErrorCode

FinalAnswerMode = Literal["text", "strict"]

NATIVE_SYSTEM_PROMPT = (
    "You solve the user's task with the tools provided, one tool call at a time. "
    "When you know the answer, reply with the answer only, without calling a tool."
)
"""System prompt for native tool calling: the chat template lists the tools, so ToolGym's own
instructions (which describe its text action format) are not used. The same text as the
OpenAI-compatible baseline agent's, so that scores are comparable with ``toolgym run``."""

_PLAIN_TEXT_CODES = {ErrorCode.NO_ACTION, ErrorCode.EMPTY_ACTION}


def final_answer_action(fmt: ActionFormat, text: str, mode: FinalAnswerMode = "text") -> str:
    """The env action for a final reply (a reply without tool calls).

    Args:
        fmt: The env's action format.
        text: The reply's text.
        mode: ``"text"`` (native tool calling, as chat APIs do): the reply *is* the answer; if
            it already is an answer in the env's format (e.g. ``<answer>Paris</answer>``) that
            answer is used; if it holds no call or answer markup at all, the whole stripped
            text is the answer; text with broken markup (e.g. an unclosed ``<tool_call>``)
            is passed as is, so the env reports the typed format error. ``"strict"``: the reply is passed to
            the env as is, so a reply that is not an answer in the env's format is a typed
            format error (ToolGym's text-agent semantics).
    """
    if mode == "strict":
        return text
    if mode != "text":
        raise ConfigError(f"final_answer must be 'text' or 'strict', got {mode!r}.")
    parsed = fmt.parse(text)
    if isinstance(parsed, FinalAnswer):
        return fmt.render(parsed)
    if isinstance(parsed, ActionError) and parsed.code in _PLAIN_TEXT_CODES:
        return fmt.render(FinalAnswer(text.strip()))
    # Broken call / answer markup (or a call the trainer's parser missed): let the env report it.
    return text


@dataclass
class StepRecord:
    """One env step taken on the model's behalf.

    Attributes:
        kind: ``"tool"`` (a tool call) or ``"answer"`` (the final reply).
        action: The action text passed to ``env.step``.
        observation: The env's observation (with its format's wrapping).
        content: What the model was shown (the tool message), or ``None`` for the final step.
        reward: The step's reward.
        terminated: ``env.step``'s ``terminated``.
        truncated: ``env.step``'s ``truncated``.
        info: The env's step ``info`` (``error``, ``error_message``, ``tool_output``,
            ``success``, ``stop_reason``, ``reward_components``, ...).
    """

    kind: str
    action: str
    observation: str
    content: str | None
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass
class EpisodeRecord:
    """A finished or running episode: its task, seed and every step."""

    env_id: str
    task_id: str
    seed: int | None
    task_prompt: str
    steps: list[StepRecord] = field(default_factory=list)
    stop_reason: str | None = None
    """The env's ``stop_reason``, or ``"no_final_reply"`` when the trainer ended the
    conversation after a tool call (turn or length limit of the trainer)."""

    @property
    def reward(self) -> float:
        """Sum of the step rewards (what ``toolgym run`` reports as the episode reward)."""
        return float(sum(s.reward for s in self.steps))

    @property
    def success(self) -> bool:
        """Whether the final answer was graded correct."""
        return bool(self.steps and self.steps[-1].info.get("success", False))

    @property
    def actions(self) -> list[str]:
        """The action texts, in order (replaying them in a fresh env gives the same rewards)."""
        return [s.action for s in self.steps]

    @property
    def error_codes(self) -> list[str]:
        """The typed error codes of the steps that had one, in order."""
        return [s.info["error"] for s in self.steps if s.info.get("error")]


class EpisodeSession:
    """Drives one ToolGym env for a chat trainer: reset, tool calls, final reply.

    Args:
        env_id: A registered ToolGym id, e.g. ``"ToolGym/Search-v0"`` (plugins included).
        final_answer: How the final reply is turned into an action (see
            :func:`final_answer_action`).
        **env_kwargs: Passed to :func:`gymnasium.make` (``split``, ``max_turns``,
            ``invalid_action``, ``action_format``...).

    Raises:
        gymnasium.error.Error: for an unknown ``env_id`` (with Gymnasium's suggestions).
        ConfigError: if the env is not a ToolGym env or ``final_answer`` is unknown.
    """

    def __init__(self, env_id: str, *, final_answer: FinalAnswerMode = "text", **env_kwargs: Any) -> None:
        import toolgym  # noqa: F401  (registers the built-in envs and plugins)

        if final_answer not in ("text", "strict"):
            raise ConfigError(f"final_answer must be 'text' or 'strict', got {final_answer!r}.")
        self.env_id = env_id
        self.final_answer = final_answer
        self.env_kwargs = dict(env_kwargs)
        self.env = gym.make(env_id, **env_kwargs)
        base = self.env.unwrapped
        if not hasattr(base, "tools") or not hasattr(base, "format"):
            self.env.close()
            raise ConfigError(f"{env_id!r} is not a ToolGym env (no tools / action format).")
        self.format: ActionFormat = base.format
        self.record: EpisodeRecord | None = None
        self.done = True

    @property
    def tool_schemas(self) -> list[dict[str, Any]]:
        """OpenAI function schemas of every tool the env defines (exact ToolGym schemas)."""
        return [copy.deepcopy(t.to_openai()) for t in self.env.unwrapped.tools.values()]

    def reset(self, *, seed: int | None = None, task_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode (on ``task_id`` if given) and return ``(task_prompt, info)``.

        ``info`` is the env's reset info (``tools`` lists the tools active for this task).
        """
        options = {"task_id": task_id} if task_id is not None else None
        _, info = self.env.reset(seed=seed, options=options)
        self.record = EpisodeRecord(
            env_id=self.env_id,
            task_id=str(info.get("task_id", "")),
            seed=seed,
            task_prompt=str(info.get("task_prompt", "")),
        )
        self.done = False
        return self.record.task_prompt, info

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call as an env step; return the tool message content.

        The content is the tool output, or ToolGym's typed error text (``Error [code]: ...``),
        plus the env's notice when the call ended the episode. Never raises because of the call.
        """
        action = self.format.render(ToolCall(str(name), dict(arguments)))
        step = self._step("tool", action)
        return step.content or ""

    def send_action(self, action: str) -> str:
        """Pass raw action text to the env as a tool turn (e.g. a call whose arguments are not
        JSON, so that ToolGym reports ``bad_json``); return the tool message content."""
        return self._step("tool", action).content or ""

    def finish(self, text: str | None) -> EpisodeRecord:
        """End the episode with the model's final reply (``None``: the trainer stopped after a
        tool call, so there is no answer) and return the record. Idempotent."""
        record = self._require_record()
        if not self.done:
            if text is None:
                self.done = True
                record.stop_reason = "no_final_reply"
            else:
                self._step("answer", final_answer_action(self.format, text, self.final_answer))
                if not self.done:  # strict mode: an invalid final reply does not end the env
                    self.done = True
                    record.stop_reason = record.stop_reason or "no_final_reply"
        return record

    def close(self) -> None:
        """Close the underlying env."""
        self.env.close()

    def _require_record(self) -> EpisodeRecord:
        if self.record is None:
            raise RuntimeError("No episode: call reset() first.")
        return self.record

    def _step(self, kind: str, action: str) -> StepRecord:
        record = self._require_record()
        observation, reward, terminated, truncated, info = self.env.step(action)
        content = self.format.unwrap_observation(observation) if kind == "tool" else None
        step = StepRecord(
            kind=kind,
            action=action,
            observation=observation,
            content=content,
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=dict(info),
        )
        record.steps.append(step)
        if terminated or truncated:
            self.done = True
            record.stop_reason = info.get("stop_reason") or record.stop_reason
        return step


def replay_reward(record: EpisodeRecord, **env_kwargs: Any) -> float:
    """Replay ``record``'s actions in a fresh env (same task and seed) and return the summed
    reward: the reference value an adapter's reward must equal."""
    env = gym.make(record.env_id, **env_kwargs)
    try:
        env.reset(seed=record.seed, options={"task_id": record.task_id})
        return float(sum(env.step(action)[1] for action in record.actions))
    finally:
        env.close()


def oracle_conversations(env_id: str, num_tasks: int, *, seed: int = 0, **env_kwargs: Any) -> list[list[dict[str, Any]]]:
    """The env's scripted oracle on its first ``num_tasks`` tasks, as chat messages: a user
    message with the task, assistant messages with native ``tool_calls``, ``tool`` messages
    with the unwrapped tool output, and a final assistant message with the answer in the env's
    action format (e.g. ``<answer>…</answer>``). Useful to warm-start a chat model before RL.

    Raises:
        ConfigError: if the env has no oracle.
    """
    env = gym.make(env_id, **env_kwargs)
    base = env.unwrapped
    fmt: ActionFormat = base.format
    conversations = []
    try:
        for task in list(base.task_set)[:num_tasks]:
            observation, info = env.reset(seed=seed, options={"task_id": task.id})
            oracle = base.make_oracle()
            oracle.reset(seed=seed)
            messages: list[dict[str, Any]] = [{"role": "user", "content": info["task_prompt"]}]
            done = False
            while not done:
                action = oracle.act(observation, info)
                parsed = fmt.parse(action)
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                if isinstance(parsed, ToolCall):
                    call = {"type": "function", "function": {"name": parsed.name, "arguments": parsed.arguments}}
                    messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
                    messages.append(
                        {"role": "tool", "name": parsed.name, "content": fmt.unwrap_observation(observation)}
                    )
                else:
                    messages.append({"role": "assistant", "content": action})
            conversations.append(messages)
    finally:
        env.close()
    return conversations


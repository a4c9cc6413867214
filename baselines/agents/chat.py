"""One episode as an OpenAI-style chat conversation, shared by the local and the server LLM agents.

:class:`ChatTranscript` turns ToolGym observations into chat messages and the model's reply
message back into an action text. :class:`~baselines.agents.llm.LLMAgent` (a local model) and
:class:`~baselines.agents.openai_server.OpenAIChatAgent` (an HTTP server) both use it, so for the
same model and decoding they send the model exactly the same conversation.

Two protocols:

* ``"native"``: the env's tools go to the model as OpenAI function schemas (``tools``); a reply's
  ``tool_calls`` become the env's tool-call action, tool outputs come back as ``role: "tool"``
  messages, and a reply without tool calls is the final answer (passed through as is when it is
  already written in the env's action format, e.g. ``<answer>…</answer>``).
* ``"text"``: no ``tools`` field; the model's text is the action as is, and every observation is
  the next ``user`` message. This is how the tiny models of :mod:`baselines.train` are trained.

System prompt (``system``): ``"env"`` is the env's own system prompt (tool list and action format);
``"none"`` sends none (the tiny models are trained without it); ``"auto"`` is
:data:`NATIVE_SYSTEM_PROMPT` with the native protocol and ``"env"`` with the text protocol.

This module needs only the standard library and ``toolgym``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from toolgym.core.actions import (
    ActionFormat,
    FinalAnswer,
    ToolCall,
    action_from_openai_tool_call,
    get_action_format,
)
from toolgym.core.errors import ConfigError, ErrorCode
from toolgym.core.formats import AutoFormat, TagFormat

PROTOCOLS = ("native", "text")
"""How tools and actions are exchanged with the model (see the module docstring)."""

SYSTEM_MODES = ("auto", "env", "none")
"""Which system prompt the conversation starts with (see the module docstring)."""

NATIVE_SYSTEM_PROMPT = (
    "You solve the user's task with the tools provided, one tool call at a time. "
    "When you know the answer, reply with the answer only, without calling a tool."
)


def check_protocol(protocol: str, system: str) -> None:
    """Raise :class:`ConfigError` unless ``protocol`` and ``system`` are known values."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}.")
    if system not in SYSTEM_MODES:
        raise ConfigError(f"system must be one of {list(SYSTEM_MODES)}, got {system!r}.")


def new_call_id() -> str:
    """A fresh, unique OpenAI tool-call id (``call_`` and 24 hex digits)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_tool_calls(
    text: str, tool_format: str = "auto", tool_names: Collection[str] | None = None
) -> tuple[str | None, list[dict[str, Any]]]:
    """Split model text into ``(content, tool_calls)`` with ToolGym's action parsers, as chat
    servers do for tool-calling models.

    ``tool_format`` names a ToolGym action format (:func:`toolgym.core.actions.get_action_format`):
    ``"auto"`` (default) detects Hermes / Qwen2.5 ``<tool_call>{json}</tool_call>``, Qwen3-Coder
    ``<tool_call><function=...>``, Mistral ``[TOOL_CALLS]``, OpenAI-style JSON objects and pythonic
    ``name(arg=...)`` calls. Each call becomes an OpenAI tool call ``{"id": "call_<unique>",
    "type": "function", "function": {"name", "arguments"}}`` with ``arguments`` as a JSON string;
    several ``<tool_call>`` blocks give several calls. ``content`` is the text before the first
    call marker (``None`` if empty).

    Nothing is parsed (``(text, [])``, so the env sees the raw text) when the text holds no call,
    when any call block is malformed, or, for the formats without call markers (OpenAI JSON,
    pythonic), when the call's name is not in ``tool_names`` (plain text that merely looks like a
    call stays text).
    """
    fmt = get_action_format(tool_format)
    name = fmt.detect(text) if isinstance(fmt, AutoFormat) else fmt.name
    fmt = get_action_format(name)
    parsed = fmt.parse(text)
    if isinstance(parsed, ToolCall):
        calls = [parsed]
    elif getattr(parsed, "code", None) == ErrorCode.MULTIPLE_ACTIONS and isinstance(fmt, TagFormat):
        blocks = [fmt.parse(m.group(0)) for m in _tag_blocks(fmt).finditer(text)]
        if not blocks or not all(isinstance(b, ToolCall) for b in blocks):
            return text, []
        calls = [b for b in blocks if isinstance(b, ToolCall)]
    else:
        return text, []
    marker = _call_marker(fmt)
    if marker is None and tool_names is not None and any(c.name not in tool_names for c in calls):
        return text, []
    head = text[: text.index(marker)].strip() if marker and marker in text else ""
    return (head or None), [
        {
            "id": new_call_id(),
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for c in calls
    ]


def _call_marker(fmt: ActionFormat) -> str | None:
    """The string that opens a tool call in ``fmt`` (``None`` for formats without one)."""
    if isinstance(fmt, TagFormat):
        return fmt.call_open
    return getattr(fmt, "marker", None)


def _tag_blocks(fmt: TagFormat) -> re.Pattern[str]:
    return re.compile(re.escape(fmt.call_open) + r".*?" + re.escape(fmt.call_close), re.DOTALL)


def unwrap_observation(observation: str, fmt: ActionFormat) -> str:
    """The text inside the env's tool-response wrapper (the observation itself if unwrapped)."""
    opening = getattr(fmt, "response_open", "<tool_response>") + "\n"
    closing = "\n" + getattr(fmt, "response_close", "</tool_response>")
    if observation.startswith(opening) and observation.endswith(closing):
        return observation[len(opening) : len(observation) - len(closing)]
    return observation


class ChatTranscript:
    """The chat messages of one episode, built from the env's observations and ``info``.

    Args:
        protocol: ``"native"`` or ``"text"`` (see :data:`PROTOCOLS`).
        system: ``"auto"``, ``"env"`` or ``"none"`` (see :data:`SYSTEM_MODES`).

    Raises:
        ConfigError: for an unknown protocol or system mode.
    """

    def __init__(self, *, protocol: str = "native", system: str = "auto") -> None:
        check_protocol(protocol, system)
        self.protocol = protocol
        self.system = system
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self._format: ActionFormat = get_action_format("hermes")
        self._pending_call_id: str | None = None

    @property
    def request_tools(self) -> list[dict[str, Any]] | None:
        """The ``tools`` to send with the next request (``None`` with the text protocol)."""
        return self.tools if self.protocol == "native" and self.tools else None

    def reset(self) -> None:
        """Forget the conversation (a new episode starts)."""
        self.messages = []
        self.tools = []
        self._pending_call_id = None

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        """Append what the env returned: the task on the first call, then each observation."""
        if "action_format" in info:
            self._format = get_action_format(info["action_format"])
        if not self.messages:
            self.tools = list(info.get("tools", []))
            system = self._system_prompt(info)
            if system:
                self.messages.append({"role": "system", "content": system})
            self.messages.append({"role": "user", "content": info.get("task_prompt", observation)})
            return
        if self._pending_call_id is not None:
            content = info.get("tool_output")
            if content is None:
                content = unwrap_observation(observation, self._format)
            self.messages.append(
                {"role": "tool", "tool_call_id": self._pending_call_id, "content": str(content)}
            )
            self._pending_call_id = None
            return
        self.messages.append({"role": "user", "content": observation})

    def reply(self, message: dict[str, Any]) -> str:
        """Record the model's reply message (``content`` and optional ``tool_calls``) and return
        the action text for the env."""
        content = message.get("content") or ""
        calls = message.get("tool_calls") or []
        if self.protocol == "text":
            self.messages.append({"role": "assistant", "content": content})
            return content
        if not calls:
            self.messages.append({"role": "assistant", "content": content})
            if not _is_no_action(self._format.parse(content)):
                # Already an action in the env's format (an answer, or a malformed call the env
                # should report as such).
                return content
            return self._format.render(FinalAnswer(content.strip()))
        call = calls[0]
        call_id = str(call.get("id") or new_call_id())
        self.messages.append(
            {"role": "assistant", "content": message.get("content"), "tool_calls": [{**call, "id": call_id}]}
        )
        self._pending_call_id = call_id
        return action_from_openai_tool_call(call, self._format)

    def give_up(self) -> str:
        """Record an empty reply and return an empty final answer (used when the conversation no
        longer fits the model's context: the episode ends instead of failing)."""
        self.messages.append({"role": "assistant", "content": ""})
        self._pending_call_id = None
        return self._format.render(FinalAnswer(""))

    def _system_prompt(self, info: dict[str, Any]) -> str:
        mode = self.system
        if mode == "auto":
            mode = "native" if self.protocol == "native" else "env"
        if mode == "native":
            return NATIVE_SYSTEM_PROMPT
        if mode == "env":
            return str(info.get("system_prompt", ""))
        return ""


class ChatAgentSlots:
    """What the local and the server chat agents share: one :class:`ChatTranscript` and one token
    count per episode slot, and the single-episode ``reset`` / ``act`` on top of the batched ones.

    Subclasses set ``protocol``, ``system`` and ``seed``, implement :meth:`act_batch`, and may
    override :meth:`_start` to use the episodes' sampling seed.
    """

    protocol: str
    system: str
    seed: int | None
    transcripts: list[ChatTranscript]
    slot_tokens: list[int]

    @property
    def tokens_used(self) -> int:
        """Prompt plus generated tokens of the current episode(s)."""
        return sum(self.slot_tokens)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation of the current (first) episode."""
        return self.transcripts[0].messages

    def reset(self, *, seed: int | None = None) -> None:
        """Start one new episode (``seed`` replaces the agent's default sampling seed)."""
        self.reset_batch(1, seed=seed)

    def reset_batch(self, n: int, *, seed: int | None = None) -> None:
        """Start ``n`` new episodes, played together by :meth:`act_batch`."""
        if n < 1:
            raise ValueError(f"n must be ≥ 1, got {n!r}.")
        self.transcripts = [ChatTranscript(protocol=self.protocol, system=self.system) for _ in range(n)]
        self.slot_tokens = [0] * n
        self._start(seed if seed is not None else self.seed)

    def _start(self, seed: int | None) -> None:
        """Hook: new episodes start with sampling seed ``seed`` (``None``: unseeded)."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The action for the single episode started by :meth:`reset`."""
        return self.act_batch([observation], [info])[0]

    def act_batch(
        self, observations: Sequence[str], infos: Sequence[dict[str, Any]], slots: Sequence[int] | None = None
    ) -> list[str]:
        """One action per running episode (``slots``: which slot each observation belongs to;
        default ``0..len-1``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement act_batch().")


def _is_no_action(parsed: Any) -> bool:
    """Whether a parse result is the "no action tags at all" error."""
    return getattr(parsed, "code", None) == ErrorCode.NO_ACTION

"""Action formats: how an agent's text encodes a tool call or a final answer.

An :class:`ActionFormat` turns action text into a :class:`ToolCall` or a :class:`FinalAnswer`
(or an :class:`~toolgym.core.errors.ActionError` saying exactly what is wrong), renders calls and
answers back into text (for prompts and expert trajectories), wraps tool output for the next
observation, and writes the instructions that tell a model how to act.

Formats are looked up by name with :func:`get_action_format`; new ones are added with
:func:`register_action_format`. The default is ``"hermes"``: the Hermes / Qwen2.5 convention::

    <tool_call>{"name": "search", "arguments": {"query": "Drevmoor", "k": 5}}</tool_call>
    <answer>Drevmoor</answer>
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.core.errors import ActionError, ConfigError, ErrorCode, did_you_mean
from toolgym.core.tools import Tool

SNIPPET_CHARS = 120
EXPECTED_JSON_CALL = 'Expected {"name": "<tool name>", "arguments": {...}}.'
_CALL_KEYS = frozenset({"name", "arguments"})
_DECODER = json.JSONDecoder()  # the decoder json.loads uses when given no options
_JSON_WHITESPACE = " \t\n\r"  # what json.loads skips around a document


@dataclass(frozen=True)
class ToolCall:
    """A parsed tool call: the tool's ``name`` and its ``arguments`` object."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "tool_call", "name": ..., "arguments": ...}``."""
        return {"type": "tool_call", "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class FinalAnswer:
    """The agent's final answer, which ends the episode."""

    text: str

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "answer", "text": ...}``."""
        return {"type": "answer", "text": self.text}


Action = ToolCall | FinalAnswer


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A short, printable excerpt of agent text for error messages.

    Invalid surrogates and control characters are escaped so the observation stays valid UTF-8.
    """
    cut = text[:limit]
    safe = cut.encode("utf-8", "backslashreplace").decode("utf-8")
    safe = "".join(ch if ch.isprintable() or ch in "\n\t" else repr(ch)[1:-1] for ch in safe)
    return safe + ("…" if len(text) > limit else "")


class ActionFormat(ABC):
    """Parses and renders actions in one textual convention."""

    name: str = ""

    @abstractmethod
    def parse(self, text: str) -> Action | ActionError:
        """Parse one action. Never raises: every problem is returned as an ``ActionError``."""

    @abstractmethod
    def render(self, action: Action) -> str:
        """Render an action as text that :meth:`parse` maps back to an equal action."""

    @abstractmethod
    def wrap_observation(self, text: str) -> str:
        """Wrap a tool output or error message for the next observation."""

    @abstractmethod
    def instructions(self, tools: Sequence[Tool]) -> str:
        """Instructions telling a model how to call ``tools`` and how to answer."""


def decode_json_call(body: str) -> ToolCall | ActionError:
    """Decode a JSON tool-call body ``{"name": ..., "arguments": {...}}`` (never raises).

    ``arguments`` may also be a JSON-encoded string (OpenAI wire style) and may be omitted for
    tools without parameters.
    """
    # Fast path: decode the body with JSON whitespace stripped, skipping ``json.loads``'s
    # wrapper (about 1 µs of a 1.4 µs decode). Anything unusual (an error, trailing data) goes
    # through ``json.loads`` itself, so results and error messages are exactly the same.
    stripped = body.strip(_JSON_WHITESPACE)
    try:
        obj, end = _DECODER.raw_decode(stripped)
        if end == len(stripped):
            return call_from_object(obj)
    except (ValueError, RecursionError):
        pass
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        return ActionError(
            ErrorCode.BAD_JSON,
            f"The tool call is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{snippet(body.strip())!r}. {EXPECTED_JSON_CALL}",
        )
    except (RecursionError, ValueError) as exc:  # nesting too deep, huge integers
        return ActionError(
            ErrorCode.BAD_JSON,
            f"The tool call JSON could not be decoded ({type(exc).__name__}: {snippet(str(exc))}). "
            f"{EXPECTED_JSON_CALL}",
        )
    return call_from_object(obj)


def action_from_openai_tool_call(call: dict[str, Any], fmt: ActionFormat) -> str:
    """The env action for one entry of an OpenAI ``tool_calls`` list
    (``{"function": {"name": ..., "arguments": JSON string or object}}``): the call rendered in
    ``fmt``; when ``arguments`` is not a JSON object, the call is passed verbatim inside the
    format's call tags, so that the env reports ``bad_json`` as it would for a text agent."""
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        arguments = None
    if isinstance(arguments, dict):
        return fmt.render(ToolCall(name, arguments))
    body = f'{{"name": {json.dumps(name)}, "arguments": {raw}}}'
    return f"{getattr(fmt, 'call_open', '<tool_call>')}{body}{getattr(fmt, 'call_close', '</tool_call>')}"


def call_from_object(obj: Any) -> ToolCall | ActionError:
    """Validate a decoded JSON value as ``{"name": str, "arguments": object | JSON string}``."""
    if not isinstance(obj, dict):
        return ActionError(
            ErrorCode.MALFORMED_CALL,
            f"The tool call must be a JSON object, got {type(obj).__name__}. {EXPECTED_JSON_CALL}",
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ActionError(
            ErrorCode.MALFORMED_CALL,
            f'The tool call has no "name" string (keys: {sorted(map(str, obj))[:8]}). {EXPECTED_JSON_CALL}',
        )
    if len(obj) > 2 or not obj.keys() <= _CALL_KEYS:
        extra = set(obj) - _CALL_KEYS
        return ActionError(
            ErrorCode.MALFORMED_CALL,
            f"The tool call has unexpected keys {sorted(extra)[:8]}. {EXPECTED_JSON_CALL}",
        )
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError, ValueError):
            return ActionError(
                ErrorCode.BAD_JSON,
                f'"arguments" is a string that is not valid JSON: {snippet(arguments)!r}. {EXPECTED_JSON_CALL}',
            )
    if not isinstance(arguments, dict):
        return ActionError(
            ErrorCode.MALFORMED_CALL,
            f'"arguments" must be a JSON object, got {type(arguments).__name__}. {EXPECTED_JSON_CALL}',
        )
    return ToolCall(name=name, arguments=arguments)


def _builtin(class_name: str, **kwargs: Any) -> Callable[[], ActionFormat]:
    def factory() -> ActionFormat:
        from toolgym.core import formats  # imported lazily: formats imports this module

        return getattr(formats, class_name)(**kwargs)

    return factory


_INSTANCES: dict[str, ActionFormat] = {}
_FORMATS: dict[str, Callable[[], ActionFormat]] = {
    "hermes": _builtin("TagFormat"),
    # Same grammar, different tag names: an out-of-distribution variant for robustness tests.
    "xml_call": _builtin(
        "TagFormat", call_tag="call", answer_tag="final", response_tag="result", name="xml_call"
    ),
    "qwen3_coder": _builtin("Qwen3CoderFormat"),
    "openai_json": _builtin("OpenAIJSONFormat"),
    "pythonic": _builtin("PythonicFormat"),
    "mistral": _builtin("MistralFormat"),
    "auto": _builtin("AutoFormat"),
}


def register_action_format(name: str, factory: Callable[[], ActionFormat]) -> None:
    """Make a format available to envs as ``action_format=name``.

    Raises:
        ConfigError: if ``name`` is already registered.
    """
    if name in _FORMATS:
        raise ConfigError(f"Action format {name!r} is already registered.")
    _FORMATS[name] = factory


def action_format_names() -> list[str]:
    """Names of all registered action formats."""
    return sorted(_FORMATS)


def get_action_format(fmt: str | ActionFormat = "hermes") -> ActionFormat:
    """Return the action format called ``fmt`` (or ``fmt`` itself if it already is a format).

    Formats are stateless, so one shared instance per name is returned.

    Raises:
        ConfigError: for an unknown name, listing the known ones.
    """
    if isinstance(fmt, ActionFormat):
        return fmt
    try:
        instance = _INSTANCES.get(fmt)
        if instance is None:
            instance = _INSTANCES[fmt] = _FORMATS[fmt]()
        return instance
    except (KeyError, TypeError):
        raise ConfigError(
            f"Unknown action format {fmt!r}; expected one of {action_format_names()}."
            + did_you_mean(str(fmt), _FORMATS)
        ) from None

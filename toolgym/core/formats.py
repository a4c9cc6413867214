"""Action formats: how an agent's text encodes a tool call or a final answer, and their registry.

An :class:`ActionFormat` turns action text into a :class:`ToolCall` or a :class:`FinalAnswer`
(or an :class:`~toolgym.core.errors.ActionError` saying exactly what is wrong), renders calls and
answers back into text (for prompts and expert trajectories), wraps tool output for the next
observation (and unwraps it again), and writes the instructions that tell a model how to act.

This module owns the formats: the action types, the JSON call decoding, the tag strings (each
defined once, below), the built-in formats and the registry. Formats are looked up by name with
:func:`get_action_format`; new ones are added with :func:`register_action_format`.
(:mod:`toolgym.core.actions` re-exports the same names, for older imports.)

========================  =====================================================================
name                      a call looks like
========================  =====================================================================
``hermes`` (default)      ``<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>``
``xml_call``              ``<call>{"name": "f", "arguments": {"x": 1}}</call>`` (OOD variant)
``qwen3_coder``           ``<tool_call><function=f><parameter=x>1</parameter></function></tool_call>``
``openai_json``           ``{"name": "f", "arguments": {"x": 1}}`` (arguments may be a JSON string)
``pythonic``              ``f(x=1)`` or ``[f(x=1)]`` (Llama 3.x / pythonic)
``mistral``               ``[TOOL_CALLS][{"name": "f", "arguments": {"x": 1}}]`` or ``[TOOL_CALLS]f[ARGS]{"x": 1}``
``auto``                  any of the above, detected per action
========================  =====================================================================

The tag formats finish with ``<answer>…</answer>``; in ``openai_json``, ``pythonic`` and
``mistral``, as in the chat APIs they come from, text that is not a call is the final answer
(``<answer>`` tags are accepted there too). Every format renders actions that it parses back
to the same action (tested by round-trip property tests).
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.core.errors import ActionError, ConfigError, ErrorCode, did_you_mean
from toolgym.core.tools import Tool

# ------------------------------------------------------------------------------------ tag strings
# Every tag and marker of the built-in formats, defined once. Code elsewhere takes them from here
# (or from a format instance: ``TagFormat.call_open`` and friends), never spells them.

CALL_TAG, ANSWER_TAG, RESPONSE_TAG = "tool_call", "answer", "tool_response"
"""Tag names of the Hermes / Qwen convention (the ``hermes`` and ``qwen3_coder`` formats)."""
CALL_OPEN, CALL_CLOSE = f"<{CALL_TAG}>", f"</{CALL_TAG}>"
ANSWER_OPEN, ANSWER_CLOSE = f"<{ANSWER_TAG}>", f"</{ANSWER_TAG}>"
RESPONSE_OPEN, RESPONSE_CLOSE = f"<{RESPONSE_TAG}>", f"</{RESPONSE_TAG}>"
XML_CALL_TAGS = {"call_tag": "call", "answer_tag": "final", "response_tag": "result"}
"""Tag names of ``xml_call``, the out-of-distribution variant of the Hermes grammar."""
QWEN3_FUNCTION_OPEN, QWEN3_FUNCTION_CLOSE = "<function=", "</function>"
QWEN3_PARAMETER_OPEN, QWEN3_PARAMETER_CLOSE = "<parameter=", "</parameter>"
MISTRAL_CALLS, MISTRAL_ARGS = "[TOOL_CALLS]", "[ARGS]"
MISTRAL_RESULTS_OPEN, MISTRAL_RESULTS_CLOSE = "[TOOL_RESULTS]", "[/TOOL_RESULTS]"

# ----------------------------------------------------------------------------- actions and JSON

SNIPPET_CHARS = 120
EXPECTED_JSON_CALL = 'Expected {"name": "<tool name>", "arguments": {...}}.'
_CALL_KEYS = frozenset({"name", "arguments"})
_DECODER = json.JSONDecoder()  # the decoder json.loads uses when given no options
_JSON_WHITESPACE = " \t\n\r"  # what json.loads skips around a document
_MARKER = "\x00TOOLGYM-BODY\x00"  # stands for the body when a wrapper is taken apart


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

    def unwrap_observation(self, observation: str) -> str:
        """The inverse of :meth:`wrap_observation`: ``unwrap_observation(wrap_observation(x)) == x``.

        The env wraps a tool output or error as ``prefix + body + suffix`` and may append a
        notice after it (the turn-limit message) or cut the end off (the observation length
        limit). The result is ``body`` followed by that notice (the body's remains, if the
        suffix was cut off); text that is not wrapped (final messages) is returned unchanged.
        """
        prefix, _, suffix = self.wrap_observation(_MARKER).partition(_MARKER)
        if not prefix and not suffix:
            return observation
        if not observation.startswith(prefix):
            return observation
        rest = observation[len(prefix):]
        cut = rest.rfind(suffix) if suffix else -1
        if cut < 0:
            return rest
        return rest[:cut] + rest[cut + len(suffix):]

    def render_unparsed_call(self, body: str) -> str:
        """Action text carrying a JSON call ``body`` verbatim in this format's call syntax, for a
        call that cannot be rendered from a :class:`ToolCall` (its arguments do not decode to an
        object), so that :meth:`parse` reports what is wrong with it. Default: the body itself,
        as the JSON formats write calls."""
        return body

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
    format's call syntax (:meth:`ActionFormat.render_unparsed_call`), so that the env reports
    ``bad_json`` as it would for a text agent."""
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        arguments = None
    if isinstance(arguments, dict):
        return fmt.render(ToolCall(name, arguments))
    return fmt.render_unparsed_call(f'{{"name": {json.dumps(name)}, "arguments": {raw}}}')


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


# ---------------------------------------------------------------------------------- the formats


def tool_schemas(tools: Sequence[Tool]) -> str:
    """One JSON function schema per line, as the instructions list them."""
    return "\n".join(json.dumps(t.to_openai()["function"], ensure_ascii=False) for t in tools)


class TagFormat(ActionFormat):
    """Tag-delimited actions: ``<call>{json}</call>`` or ``<answer>text</answer>``.

    Exactly one action per turn. Text outside the tags (e.g. reasoning) is allowed and ignored.
    The tag names are configurable, which gives out-of-distribution variants of the same format.

    Args:
        call_tag: Tag around a JSON tool call (default ``tool_call``).
        answer_tag: Tag around the final answer (default ``answer``).
        response_tag: Tag wrapping tool output in observations (default ``tool_response``).
        name: Registry name of this format.
    """

    def __init__(
        self,
        call_tag: str = CALL_TAG,
        answer_tag: str = ANSWER_TAG,
        response_tag: str = RESPONSE_TAG,
        name: str = "hermes",
    ) -> None:
        self.name = name
        self.call_open, self.call_close = f"<{call_tag}>", f"</{call_tag}>"
        self.answer_open, self.answer_close = f"<{answer_tag}>", f"</{answer_tag}>"
        self.response_open, self.response_close = f"<{response_tag}>", f"</{response_tag}>"
        tags = [self.call_open, self.call_close, self.answer_open, self.answer_close]
        self._tag_re = re.compile("|".join(re.escape(t) for t in tags))
        # With word-character tag names no tag can occur inside another or overlap itself, so
        # counting each tag's occurrences decides the common one-action case exactly as the
        # general scan does (see _parse_single).
        self._simple_tags = all(re.fullmatch(r"\w+", t) for t in (call_tag, answer_tag))

    def _parse_single(self, text: str) -> Action | ActionError | None:
        """Fast path for exactly one well-formed call or answer block; ``None`` means "use the
        general scan" (any other tag layout, including every error case)."""
        count = text.count
        calls, answers = count(self.call_open), count(self.answer_open)
        if calls + answers != 1:
            return None
        if calls:
            open_tag, close_tag = self.call_open, self.call_close
            others = count(self.answer_close)
        else:
            open_tag, close_tag = self.answer_open, self.answer_close
            others = count(self.call_close)
        if others or count(close_tag) != 1:
            return None
        start = text.find(open_tag) + len(open_tag)
        end = text.find(close_tag)
        if end < start:
            return None
        if calls:
            return self.decode_call_body(text[start:end])
        return FinalAnswer(text[start:end].strip())

    def parse(self, text: str) -> Action | ActionError:
        """Parse one action; see the class docstring for the grammar."""
        if self._simple_tags:
            single = self._parse_single(text)
            if single is not None:
                return single
        tags = [(m.group(0), m.start(), m.end()) for m in self._tag_re.finditer(text)]
        if not tags:
            return ActionError(
                ErrorCode.NO_ACTION,
                f"No action found in {snippet(text.strip())!r}. Call a tool with "
                f"{self.call_open}{{\"name\": ..., \"arguments\": {{...}}}}{self.call_close} "
                f"or finish with {self.answer_open}your answer{self.answer_close}.",
            )
        blocks: list[tuple[str, int, int]] = []  # (open tag, body start, body end)
        pairs = {self.call_open: self.call_close, self.answer_open: self.answer_close}
        closers = {v: k for k, v in pairs.items()}
        current: tuple[str, int] | None = None
        for tag, start, end in tags:
            if tag in pairs:
                if current is not None:
                    return ActionError(
                        ErrorCode.NESTED_TAGS,
                        f"{tag} was opened inside {current[0]}; close {current[0]} with "
                        f"{pairs[current[0]]} first. Emit exactly one action per turn.",
                    )
                current = (tag, end)
            else:
                if current is None or pairs[current[0]] != tag:
                    return ActionError(
                        ErrorCode.MISSING_TAG,
                        f"{tag} has no matching {closers[tag]} before it.",
                    )
                blocks.append((current[0], current[1], start))
                current = None
        if current is not None:
            return ActionError(
                ErrorCode.MISSING_TAG,
                f"{current[0]} is never closed: expected {pairs[current[0]]} after it.",
            )
        if len(blocks) > 1:
            return ActionError(
                ErrorCode.MULTIPLE_ACTIONS,
                f"Found {len(blocks)} actions in one turn; emit exactly one tool call or one answer "
                "per turn and wait for its result.",
            )
        tag, start, end = blocks[0]
        body = text[start:end]
        if tag == self.answer_open:
            return FinalAnswer(body.strip())
        return self.decode_call_body(body)

    def decode_call_body(self, body: str) -> ToolCall | ActionError:
        """Decode the text between the call tags (JSON here; subclasses change the syntax)."""
        return decode_json_call(body)

    def render(self, action: Action) -> str:
        """Render a call as ``<tool_call>{json}</tool_call>`` or an answer as ``<answer>…</answer>``."""
        if isinstance(action, FinalAnswer):
            return f"{self.answer_open}{action.text}{self.answer_close}"
        return f"{self.call_open}{self.render_call_body(action)}{self.call_close}"

    def render_unparsed_call(self, body: str) -> str:
        """``body`` between the call tags."""
        return f"{self.call_open}{body}{self.call_close}"

    def render_call_body(self, call: ToolCall) -> str:
        """The text between the call tags."""
        return json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)

    def call_example(self) -> str:
        """How a call body looks, for the instructions."""
        return '{"name": <tool name>, "arguments": <arguments object>}'

    def wrap_observation(self, text: str) -> str:
        """``<tool_response>\\n{text}\\n</tool_response>``."""
        return f"{self.response_open}\n{text}\n{self.response_close}"

    def instructions(self, tools: Sequence[Tool]) -> str:
        """Hermes-style system instructions listing the tools' JSON schemas."""
        return (
            "You solve the task by calling tools, one call per turn, then giving a final answer.\n"
            f"Available tools (JSON Schema):\n<tools>\n{tool_schemas(tools)}\n</tools>\n"
            f"To call a tool, reply with {self.call_open}{self.call_example()}{self.call_close}\n"
            f"Tool results come back inside {self.response_open}...{self.response_close}.\n"
            f"When you know the answer, reply with {self.answer_open}your answer{self.answer_close}"
        )




def _encode_value(value: Any) -> str:
    """A parameter value as text: plain strings stay raw, anything else (or a string that would
    read back as another JSON value, or that contains ``</``) is JSON with ``</`` escaped."""
    if isinstance(value, str) and "</" not in value:
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            return value
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def _decode_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


class Qwen3CoderFormat(TagFormat):
    """Qwen3-Coder XML calls inside ``<tool_call>`` tags; ``<answer>…</answer>`` to finish::

        <tool_call>
        <function=search>
        <parameter=query>
        Drevmoor
        </parameter>
        </function>
        </tool_call>

    A parameter's text is read as JSON when it is valid JSON (``5``, ``true``, ``[1, 2]``) and
    as a plain string otherwise.
    """

    _function = re.compile(
        rf"\A\s*{re.escape(QWEN3_FUNCTION_OPEN)}([^>\n]+)>(.*){re.escape(QWEN3_FUNCTION_CLOSE)}\s*\Z", re.DOTALL
    )
    _parameter = re.compile(
        rf"{re.escape(QWEN3_PARAMETER_OPEN)}([^>\n]+)>(.*?){re.escape(QWEN3_PARAMETER_CLOSE)}", re.DOTALL
    )
    _expected = (
        f"Expected {QWEN3_FUNCTION_OPEN}NAME>{QWEN3_PARAMETER_OPEN}ARG>value{QWEN3_PARAMETER_CLOSE}..."
        f"{QWEN3_FUNCTION_CLOSE}."
    )

    def __init__(self) -> None:
        super().__init__(name="qwen3_coder")

    def decode_call_body(self, body: str) -> ToolCall | ActionError:
        """Parse ``<function=NAME><parameter=K>V</parameter>…</function>``."""
        expected = self._expected
        if QWEN3_FUNCTION_OPEN not in body:
            return ActionError(
                ErrorCode.MALFORMED_CALL, f"No {QWEN3_FUNCTION_OPEN}NAME> in the tool call. {expected}"
            )
        match = self._function.match(body)
        if match is None:
            return ActionError(
                ErrorCode.MISSING_TAG,
                f"{QWEN3_FUNCTION_OPEN}...> is not closed by {QWEN3_FUNCTION_CLOSE}. {expected}",
            )
        name, inner = match.group(1).strip(), match.group(2)
        arguments: dict[str, Any] = {}
        for key, raw in self._parameter.findall(inner):
            key = key.strip()
            if key in arguments:
                return ActionError(ErrorCode.MALFORMED_CALL, f"Parameter {key!r} is given twice. {expected}")
            raw = raw[1:] if raw.startswith("\n") else raw
            raw = raw[:-1] if raw.endswith("\n") else raw
            arguments[key] = _decode_value(raw)
        leftover = self._parameter.sub("", inner)
        if leftover.strip():
            return ActionError(
                ErrorCode.MALFORMED_CALL,
                f"Unexpected text inside {QWEN3_FUNCTION_OPEN}...>: {snippet(leftover.strip())!r}. {expected}",
            )
        return ToolCall(name=name, arguments=arguments)

    def render_call_body(self, call: ToolCall) -> str:
        """``\\n<function=NAME>\\n<parameter=K>\\nV\\n</parameter>…\\n</function>\\n``."""
        params = "".join(
            f"{QWEN3_PARAMETER_OPEN}{key}>\n{_encode_value(value)}\n{QWEN3_PARAMETER_CLOSE}\n"
            for key, value in call.arguments.items()
        )
        return f"\n{QWEN3_FUNCTION_OPEN}{call.name}>\n{params}{QWEN3_FUNCTION_CLOSE}\n"

    def call_example(self) -> str:
        """How a call body looks, for the instructions."""
        return (
            f"{QWEN3_FUNCTION_OPEN}TOOL_NAME>{QWEN3_PARAMETER_OPEN}ARG_NAME>value{QWEN3_PARAMETER_CLOSE}"
            f"{QWEN3_FUNCTION_CLOSE}"
        )


_TAGGED_ANSWER = re.compile(f"{re.escape(ANSWER_OPEN)}(.*){re.escape(ANSWER_CLOSE)}", re.DOTALL)


def _answer_or_text(text: str) -> FinalAnswer:
    """Plain-text final answer, with optional ``<answer>`` tags removed."""
    stripped = text.strip()
    match = _TAGGED_ANSWER.fullmatch(stripped)
    return FinalAnswer((match.group(1) if match else stripped).strip())


class _PlainAnswerFormat(ActionFormat):
    """Formats whose final answer is any text that is not a call (as in chat APIs)."""

    answer_hint = "When you know the answer, reply with the answer as plain text (no tool call)."

    def wrap_observation(self, text: str) -> str:
        """Tool output as is."""
        return text

    def render(self, action: Action) -> str:
        """A call in this format, or the answer's text."""
        return action.text if isinstance(action, FinalAnswer) else self.render_call(action)

    def render_call(self, call: ToolCall) -> str:
        """Render a tool call."""
        raise NotImplementedError

    def instructions(self, tools: Sequence[Tool]) -> str:
        """Instructions with the tools' JSON schemas and this format's call syntax."""
        example = self.render_call(ToolCall("TOOL_NAME", {"ARG_NAME": "value"}))
        return (
            "You solve the task by calling tools, one call per turn, then giving a final answer.\n"
            f"Available tools (JSON Schema):\n{tool_schemas(tools)}\n"
            f"To call a tool, reply with exactly: {example}\n{self.answer_hint}"
        )


class OpenAIJSONFormat(_PlainAnswerFormat):
    """OpenAI-style JSON: ``{"name": ..., "arguments": {...}}`` (``arguments`` may be a JSON
    string, and ``{"type": "function", "function": {...}}`` or a one-element list are accepted).
    Text that does not start with ``{`` or ``[`` is the final answer."""

    name = "openai_json"

    def parse(self, text: str) -> Action | ActionError:
        """Parse a JSON call or a plain-text answer."""
        stripped = text.strip()
        if not stripped.startswith(("{", "[")):
            return _answer_or_text(text)
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            return decode_json_call(stripped)  # produces the detailed bad_json error
        if isinstance(obj, list):
            if len(obj) != 1:
                return ActionError(
                    ErrorCode.MULTIPLE_ACTIONS if obj else ErrorCode.MALFORMED_CALL,
                    f"Expected exactly one tool call, got a list of {len(obj)}. {EXPECTED_JSON_CALL}",
                )
            obj = obj[0]
        if isinstance(obj, dict) and isinstance(obj.get("function"), dict) and set(obj) <= {"type", "id", "function"}:
            obj = obj["function"]
        return call_from_object(obj)

    def render_call(self, call: ToolCall) -> str:
        """``{"name": ..., "arguments": {...}}``."""
        return json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)


def _py_literal(value: Any) -> str:
    """A Python literal that ``ast.literal_eval`` reads back as ``value`` (JSON values only)."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} has no JSON representation")
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py_literal(str(k))}: {_py_literal(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot render {type(value).__name__} as a literal")


def _from_literal(value: Any) -> Any:
    """Python literal → JSON value (tuples become lists); raises ValueError otherwise."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_from_literal(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("dict keys must be strings")
        return {k: _from_literal(v) for k, v in value.items()}
    raise ValueError(f"{type(value).__name__} values are not allowed")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class PythonicFormat(_PlainAnswerFormat):
    """Pythonic calls as Llama 3.x emits them: ``search(query="Drevmoor", k=5)``, optionally in a
    list ``[search(query="Drevmoor")]``. Only keyword arguments with literal values; keys that are
    not identifiers go in ``**{"key": value}``. Other text is the final answer."""

    name = "pythonic"
    _looks_like_call = re.compile(r"\A\s*\[?\s*[A-Za-z_][\w.]*\s*\(")
    _expected = 'Expected a call like tool_name(arg="value", n=3).'

    def parse(self, text: str) -> Action | ActionError:
        """Parse a pythonic call or a plain-text answer."""
        if not self._looks_like_call.match(text):
            return _answer_or_text(text)
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return ActionError(
                ErrorCode.BAD_SYNTAX,
                f"The call is not valid Python syntax ({type(exc).__name__}: {snippet(str(exc), 80)}). {self._expected}",
            )
        node = tree.body
        if isinstance(node, ast.List):
            if len(node.elts) != 1:
                return ActionError(
                    ErrorCode.MULTIPLE_ACTIONS if node.elts else ErrorCode.MALFORMED_CALL,
                    f"Expected exactly one call, got {len(node.elts)}. {self._expected}",
                )
            node = node.elts[0]
        if not isinstance(node, ast.Call) or _dotted(node.func) is None:
            return ActionError(ErrorCode.MALFORMED_CALL, f"The action is not a single function call. {self._expected}")
        if node.args:
            return ActionError(ErrorCode.MALFORMED_CALL, f"Use keyword arguments only. {self._expected}")
        arguments: dict[str, Any] = {}
        try:
            for kw in node.keywords:
                value = _from_literal(ast.literal_eval(kw.value))
                if kw.arg is None:
                    if not isinstance(value, dict):
                        raise ValueError("** needs a dict")
                    arguments.update(value)
                else:
                    arguments[kw.arg] = value
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
            return ActionError(
                ErrorCode.MALFORMED_CALL,
                f"Argument values must be literals (strings, numbers, lists, dicts): {snippet(str(exc), 80)}. "
                f"{self._expected}",
            )
        return ToolCall(name=str(_dotted(node.func)), arguments=arguments)

    def render_call(self, call: ToolCall) -> str:
        """``name(key=literal, ..., **{"odd key": literal})``."""
        plain = {k: v for k, v in call.arguments.items() if k.isidentifier() and not keyword.iskeyword(k)}
        rest = {k: v for k, v in call.arguments.items() if k not in plain}
        parts = [f"{k}={_py_literal(v)}" for k, v in plain.items()]
        if rest:
            parts.append(f"**{_py_literal(rest)}")
        return f"{call.name}({', '.join(parts)})"


class MistralFormat(_PlainAnswerFormat):
    """Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]`` (v3) or
    ``[TOOL_CALLS]name[ARGS]{...}`` (v11). Text without ``[TOOL_CALLS]`` is the final answer."""

    name = "mistral"
    marker = MISTRAL_CALLS

    def parse(self, text: str) -> Action | ActionError:
        """Parse a ``[TOOL_CALLS]`` call or a plain-text answer."""
        if self.marker not in text:
            return _answer_or_text(text)
        if text.count(self.marker) > 1:
            return ActionError(ErrorCode.MULTIPLE_ACTIONS, f"Emit one {MISTRAL_CALLS} per turn.")
        body = text.split(self.marker, 1)[1].strip()
        if body.startswith(("[", "{")):
            return get_action_format("openai_json").parse(body)
        if MISTRAL_ARGS not in body:
            return ActionError(
                ErrorCode.MALFORMED_CALL,
                f"{MISTRAL_CALLS} must be followed by a JSON list of calls or by NAME{MISTRAL_ARGS}{{...}}. "
                + EXPECTED_JSON_CALL,
            )
        name, _, args = body.partition(MISTRAL_ARGS)
        try:
            arguments = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            return ActionError(
                ErrorCode.BAD_JSON,
                f"The arguments after {MISTRAL_ARGS} are not valid JSON: {snippet(args.strip())!r}.",
            )
        return call_from_object({"name": name.strip(), "arguments": arguments})

    def render_call(self, call: ToolCall) -> str:
        """``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``."""
        return self.marker + json.dumps([{"name": call.name, "arguments": call.arguments}], ensure_ascii=False)

    def render_unparsed_call(self, body: str) -> str:
        """``[TOOL_CALLS]`` followed by ``body``."""
        return self.marker + body

    def wrap_observation(self, text: str) -> str:
        """``[TOOL_RESULTS]{text}[/TOOL_RESULTS]``."""
        return f"{MISTRAL_RESULTS_OPEN}{text}{MISTRAL_RESULTS_CLOSE}"


class AutoFormat(ActionFormat):
    """Detects the format of each action: Mistral if ``[TOOL_CALLS]`` appears; Qwen3-Coder if a
    ``<tool_call>`` holds ``<function=``; Hermes for other ``<tool_call>`` / ``<answer>`` tags;
    OpenAI JSON if the text starts with ``{`` or ``[{``; pythonic if it starts like a call;
    otherwise the text is the final answer. Renders, wraps and instructs like Hermes."""

    name = "auto"

    def __init__(self) -> None:
        self._hermes = get_action_format("hermes")

    def detect(self, text: str) -> str:
        """The name of the format ``text`` is written in."""
        if MistralFormat.marker in text:
            return "mistral"
        if CALL_OPEN in text or CALL_CLOSE in text:
            return "qwen3_coder" if QWEN3_FUNCTION_OPEN in text else "hermes"
        if ANSWER_OPEN in text or ANSWER_CLOSE in text:
            return "hermes"
        stripped = text.lstrip()
        if stripped.startswith("{") or re.match(r"\[\s*\{", stripped):
            return "openai_json"
        if PythonicFormat._looks_like_call.match(text):
            return "pythonic"
        return "openai_json"  # plain text: a final answer, as in the chat formats

    def parse(self, text: str) -> Action | ActionError:
        """Parse with the detected format."""
        return get_action_format(self.detect(text)).parse(text)

    def render(self, action: Action) -> str:
        """As Hermes."""
        return self._hermes.render(action)

    def wrap_observation(self, text: str) -> str:
        """As Hermes."""
        return self._hermes.wrap_observation(text)

    def render_unparsed_call(self, body: str) -> str:
        """As Hermes."""
        return self._hermes.render_unparsed_call(body)

    def instructions(self, tools: Sequence[Tool]) -> str:
        """Hermes instructions (every other built-in call syntax is accepted too)."""
        return self._hermes.instructions(tools)


# ------------------------------------------------------------------------------------- registry

_INSTANCES: dict[str, ActionFormat] = {}
_FORMATS: dict[str, Callable[[], ActionFormat]] = {
    "hermes": TagFormat,
    # Same grammar, different tag names: an out-of-distribution variant for robustness tests.
    "xml_call": lambda: TagFormat(**XML_CALL_TAGS, name="xml_call"),
    "qwen3_coder": Qwen3CoderFormat,
    "openai_json": OpenAIJSONFormat,
    "pythonic": PythonicFormat,
    "mistral": MistralFormat,
    "auto": AutoFormat,
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

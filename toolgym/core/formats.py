"""The built-in action formats, one class per tool-call convention.

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
from collections.abc import Sequence
from typing import Any

from toolgym.core.actions import (
    EXPECTED_JSON_CALL,
    Action,
    ActionFormat,
    FinalAnswer,
    ToolCall,
    call_from_object,
    decode_json_call,
    get_action_format,
    snippet,
)
from toolgym.core.errors import ActionError, ErrorCode
from toolgym.core.tools import Tool


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
        call_tag: str = "tool_call",
        answer_tag: str = "answer",
        response_tag: str = "tool_response",
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

    _function = re.compile(r"\A\s*<function=([^>\n]+)>(.*)</function>\s*\Z", re.DOTALL)
    _parameter = re.compile(r"<parameter=([^>\n]+)>(.*?)</parameter>", re.DOTALL)

    def __init__(self) -> None:
        super().__init__(name="qwen3_coder")

    def decode_call_body(self, body: str) -> ToolCall | ActionError:
        """Parse ``<function=NAME><parameter=K>V</parameter>…</function>``."""
        expected = "Expected <function=NAME><parameter=ARG>value</parameter>...</function>."
        if "<function=" not in body:
            return ActionError(ErrorCode.MALFORMED_CALL, f"No <function=NAME> in the tool call. {expected}")
        match = self._function.match(body)
        if match is None:
            return ActionError(ErrorCode.MISSING_TAG, f"<function=...> is not closed by </function>. {expected}")
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
                f"Unexpected text inside <function=...>: {snippet(leftover.strip())!r}. {expected}",
            )
        return ToolCall(name=name, arguments=arguments)

    def render_call_body(self, call: ToolCall) -> str:
        """``\\n<function=NAME>\\n<parameter=K>\\nV\\n</parameter>…\\n</function>\\n``."""
        params = "".join(
            f"<parameter={key}>\n{_encode_value(value)}\n</parameter>\n" for key, value in call.arguments.items()
        )
        return f"\n<function={call.name}>\n{params}</function>\n"

    def call_example(self) -> str:
        """How a call body looks, for the instructions."""
        return "<function=TOOL_NAME><parameter=ARG_NAME>value</parameter></function>"


def _answer_or_text(text: str) -> FinalAnswer:
    """Plain-text final answer, with optional ``<answer>`` tags removed."""
    stripped = text.strip()
    match = re.fullmatch(r"<answer>(.*)</answer>", stripped, re.DOTALL)
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
    marker = "[TOOL_CALLS]"

    def parse(self, text: str) -> Action | ActionError:
        """Parse a ``[TOOL_CALLS]`` call or a plain-text answer."""
        if self.marker not in text:
            return _answer_or_text(text)
        if text.count(self.marker) > 1:
            return ActionError(ErrorCode.MULTIPLE_ACTIONS, "Emit one [TOOL_CALLS] per turn.")
        body = text.split(self.marker, 1)[1].strip()
        if body.startswith(("[", "{")):
            return get_action_format("openai_json").parse(body)
        if "[ARGS]" not in body:
            return ActionError(
                ErrorCode.MALFORMED_CALL,
                "[TOOL_CALLS] must be followed by a JSON list of calls or by NAME[ARGS]{...}. "
                + EXPECTED_JSON_CALL,
            )
        name, _, args = body.partition("[ARGS]")
        try:
            arguments = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            return ActionError(
                ErrorCode.BAD_JSON, f"The arguments after [ARGS] are not valid JSON: {snippet(args.strip())!r}."
            )
        return call_from_object({"name": name.strip(), "arguments": arguments})

    def render_call(self, call: ToolCall) -> str:
        """``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``."""
        return self.marker + json.dumps([{"name": call.name, "arguments": call.arguments}], ensure_ascii=False)

    def wrap_observation(self, text: str) -> str:
        """``[TOOL_RESULTS]{text}[/TOOL_RESULTS]``."""
        return f"[TOOL_RESULTS]{text}[/TOOL_RESULTS]"


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
        if "<tool_call>" in text or "</tool_call>" in text:
            return "qwen3_coder" if "<function=" in text else "hermes"
        if "<answer>" in text or "</answer>" in text:
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

    def instructions(self, tools: Sequence[Tool]) -> str:
        """Hermes instructions (every other built-in call syntax is accepted too)."""
        return self._hermes.instructions(tools)

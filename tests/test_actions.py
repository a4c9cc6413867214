"""Action formats: parsing, rendering, instructions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym import ConfigError, FinalAnswer, ToolCall, action_format_names, get_action_format
from toolgym.core.actions import (
    EXPECTED_JSON_CALL,
    ActionFormat,
    call_from_object,
    decode_json_call,
    register_action_format,
    snippet,
)
from toolgym.core.answers import normalize_answer
from toolgym.core.errors import ActionError, ErrorCode
from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN, CALL_CLOSE, CALL_OPEN, TagFormat

hermes = get_action_format("hermes")


def test_parses_a_call_with_surrounding_reasoning() -> None:
    text = 'Let me look.\n' + CALL_OPEN + '\n{"name": "search", "arguments": {"query": "x", "k": 3}}\n' + CALL_CLOSE
    assert hermes.parse(text) == ToolCall("search", {"query": "x", "k": 3})


def test_parses_an_answer_and_strips_it() -> None:
    assert hermes.parse(ANSWER_OPEN + "  Drevmoor \n" + ANSWER_CLOSE) == FinalAnswer("Drevmoor")


def test_accepts_arguments_as_json_string_and_missing_arguments() -> None:
    body = json.dumps({"name": "f", "arguments": json.dumps({"a": 1})})
    assert hermes.parse(f"{CALL_OPEN}{body}{CALL_CLOSE}") == ToolCall("f", {"a": 1})
    assert hermes.parse(CALL_OPEN + '{"name": "f"}' + CALL_CLOSE) == ToolCall("f", {})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("plain text", ErrorCode.NO_ACTION),
        (CALL_OPEN + "{}", ErrorCode.MISSING_TAG),
        (ANSWER_CLOSE, ErrorCode.MISSING_TAG),
        (ANSWER_OPEN + ANSWER_OPEN + "x" + ANSWER_CLOSE + ANSWER_CLOSE, ErrorCode.NESTED_TAGS),
        (ANSWER_OPEN + "a" + ANSWER_CLOSE + ANSWER_OPEN + "b" + ANSWER_CLOSE, ErrorCode.MULTIPLE_ACTIONS),
        (CALL_OPEN + "{bad}" + CALL_CLOSE, ErrorCode.BAD_JSON),
        (CALL_OPEN + '{"name": "f", "arguments": "{oops"}' + CALL_CLOSE, ErrorCode.BAD_JSON),
        (CALL_OPEN + "[" * 100_000 + CALL_CLOSE, ErrorCode.BAD_JSON),
        (CALL_OPEN + "1" * 5000 + CALL_CLOSE, ErrorCode.BAD_JSON),
        (CALL_OPEN + '"f"' + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        (CALL_OPEN + '{"name": 3}' + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        (CALL_OPEN + '{"name": "f", "arguments": 3}' + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        (CALL_OPEN + '{"name": "f", "arguments": {}, "id": 1}' + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
    ],
)
def test_each_problem_has_its_code_and_a_message(text: str, code: ErrorCode) -> None:
    result = hermes.parse(text)
    assert isinstance(result, ActionError) and result.code == code
    assert len(result.message) > 20


def test_xml_call_variant_uses_other_tags() -> None:
    fmt = get_action_format("xml_call")
    assert fmt.render(ToolCall("f", {})) == '<call>{"name": "f", "arguments": {}}</call>'
    assert isinstance(fmt.parse(CALL_OPEN + '{"name": "f"}' + CALL_CLOSE), ActionError)
    assert "<result>" in fmt.wrap_observation("x")


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="hermes"):
        get_action_format("hermess")


def test_register_a_custom_format() -> None:
    class Upper(TagFormat):
        pass

    register_action_format("test_upper", lambda: Upper(name="test_upper"))
    assert "test_upper" in action_format_names()
    assert isinstance(get_action_format("test_upper"), ActionFormat)
    with pytest.raises(ConfigError, match="already registered"):
        register_action_format("test_upper", Upper)


def test_snippet_escapes_surrogates_and_control_characters() -> None:
    out = snippet("a\ud800b\x00c" + "x" * 500)
    out.encode("utf-8")
    assert "\\x00" in out and out.endswith("…")


def test_openai_tool_call_becomes_the_env_action_or_a_bad_json_call() -> None:
    from toolgym.core.actions import action_from_openai_tool_call

    call = {"id": "c1", "function": {"name": "search", "arguments": '{"query": "x"}'}}
    assert action_from_openai_tool_call(call, hermes) == hermes.render(ToolCall("search", {"query": "x"}))
    as_object = {"function": {"name": "search", "arguments": {"query": "x"}}}
    assert action_from_openai_tool_call(as_object, hermes) == hermes.render(ToolCall("search", {"query": "x"}))
    broken = action_from_openai_tool_call({"function": {"name": "search", "arguments": "{query"}}, hermes)
    parsed = hermes.parse(broken)
    assert isinstance(parsed, ActionError) and parsed.code == ErrorCode.BAD_JSON


def _decode_with_json_loads(body: str) -> ToolCall | ActionError:
    """The reference: ``decode_json_call`` as it was before its fast path (``json.loads`` always)."""
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        return ActionError(
            ErrorCode.BAD_JSON,
            f"The tool call is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{snippet(body.strip())!r}. {EXPECTED_JSON_CALL}",
        )
    except (RecursionError, ValueError) as exc:
        return ActionError(
            ErrorCode.BAD_JSON,
            f"The tool call JSON could not be decoded ({type(exc).__name__}: {snippet(str(exc))}). "
            f"{EXPECTED_JSON_CALL}",
        )
    return call_from_object(obj)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
_calls = st.fixed_dictionaries(
    {"name": st.sampled_from(["search", "", "x"])},
    optional={"arguments": _json_values, "extra": st.integers()},
).map(json.dumps)
_padding = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\ufeffx,}]", max_size=3)


@settings(max_examples=500, deadline=None, database=None)
@given(body=st.tuples(_padding, _calls | st.text(max_size=20), _padding).map("".join))
def test_json_fast_path_gives_exactly_what_json_loads_gives(body: str) -> None:
    assert decode_json_call(body) == _decode_with_json_loads(body)


@pytest.mark.parametrize(
    "body",
    ['\ufeff{"name": "f"}', '{"name": "f"} x', '{"name": "f"}{}', " \n", "[" * 5000, '{"name": "f", "arguments": 1e999}'],
)
def test_json_fast_path_edge_cases(body: str) -> None:
    assert decode_json_call(body) == _decode_with_json_loads(body)


def test_normalize_answer_is_the_same_for_short_and_long_texts() -> None:
    short = "  The Drevmoor-City! "
    assert normalize_answer(short) == normalize_answer(short) == "drevmoor city"
    long = short * 40  # over the cached length
    assert normalize_answer(long) == " ".join(["drevmoor city"] * 40)
    assert normalize_answer("Ärger über Öl") == "arger uber ol"

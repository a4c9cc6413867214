"""Every built-in tool-call format: round trips over generated calls, detection, errors."""

from __future__ import annotations

import keyword
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym import FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ActionError, ErrorCode
from toolgym.core.formats import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CALL_CLOSE,
    CALL_OPEN,
    MISTRAL_ARGS,
    MISTRAL_CALLS,
    MISTRAL_RESULTS_CLOSE,
    MISTRAL_RESULTS_OPEN,
    RESPONSE_CLOSE,
    RESPONSE_OPEN,
    action_from_openai_tool_call,
)

FORMATS = ["hermes", "xml_call", "qwen3_coder", "openai_json", "pythonic", "mistral", "auto"]

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))
scalars = (
    st.none() | st.booleans() | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not math.isinf(f))
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8,
)
calls = st.builds(
    ToolCall,
    name=st.one_of(identifiers, st.builds(lambda a, b: f"{a}.{b}", identifiers, identifiers)),
    arguments=st.dictionaries(identifiers, json_values, max_size=4),
)


@settings(max_examples=1000, deadline=None)
@given(call=calls)
def test_render_then_parse_gives_the_same_call(call: ToolCall) -> None:
    # One draw serves every format, so each format round-trips the same 1,000 generated calls.
    # A string argument that holds a format's own markup (hypothesis draws the tag constants of
    # the code under test) cannot be written in every format (qwen3_coder writes values raw):
    # then the parser must report an error, never return a different call.
    markup = _holds_markup(call.arguments)
    for name in FORMATS:
        fmt = get_action_format(name)
        parsed = fmt.parse(fmt.render(call))
        if markup:
            assert parsed == call or isinstance(parsed, ActionError), name
        else:
            assert parsed == call, name


_MARKUP = ("<tool_call", "</tool_call", "<answer", "</answer", "<function", "</function", "<parameter",
           "</parameter", "<call", "</call", "<final", "</final", "[TOOL_CALLS]")


def _holds_markup(value: object) -> bool:
    """Whether any string inside ``value`` (keys and leaves) contains a format's control markup."""
    if isinstance(value, str):
        return any(m in value for m in _MARKUP)
    if isinstance(value, dict):
        return any(_holds_markup(k) or _holds_markup(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_markup(v) for v in value)
    return False


@pytest.mark.parametrize("value", ["<tool_call>", "</tool_call>", "<answer>", "[TOOL_CALLS]", "<function=x>"])
@pytest.mark.parametrize("name", FORMATS)
def test_an_argument_holding_control_markup_is_never_parsed_as_another_call(name: str, value: str) -> None:
    fmt = get_action_format(name)
    call = ToolCall("A", {"A": value})
    parsed = fmt.parse(fmt.render(call))
    assert parsed == call or isinstance(parsed, ActionError)


answers = st.text(alphabet=st.characters(blacklist_characters="<>[]{}()", blacklist_categories=("Cs",)), max_size=40)


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=200, deadline=None)
@given(text=answers.map(str.strip).filter(bool))
def test_render_then_parse_gives_the_same_answer(name: str, text: str) -> None:
    fmt = get_action_format(name)
    assert fmt.parse(fmt.render(FinalAnswer(text))) == FinalAnswer(text)


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_parse_never_raises(name: str, text: str) -> None:
    assert isinstance(get_action_format(name).parse(text), ToolCall | FinalAnswer | ActionError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CALL_OPEN + '{"name": "f", "arguments": {"x": 1}}' + CALL_CLOSE, ToolCall("f", {"x": 1})),
        (CALL_OPEN + "\n<function=f>\n<parameter=x>\n1\n</parameter>\n</function>\n" + CALL_CLOSE, ToolCall("f", {"x": 1})),
        ('{"name": "f", "arguments": "{\\"x\\": 1}"}', ToolCall("f", {"x": 1})),
        ('[{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]', ToolCall("f", {"x": 1})),
        ("[f(x=1)]", ToolCall("f", {"x": 1})),
        ("f(x=(1, 2))", ToolCall("f", {"x": [1, 2]})),
        (MISTRAL_CALLS + '[{"name": "f", "arguments": {"x": 1}}]', ToolCall("f", {"x": 1})),
        (MISTRAL_CALLS + "f" + MISTRAL_ARGS + '{"x": 1}', ToolCall("f", {"x": 1})),
        (ANSWER_OPEN + "42" + ANSWER_CLOSE, FinalAnswer("42")),
        ("The answer is 42.", FinalAnswer("The answer is 42.")),
    ],
)
def test_auto_detects_each_format(text: str, expected: object) -> None:
    assert get_action_format("auto").parse(text) == expected


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("qwen3_coder", CALL_OPEN + "<function=f><parameter=x>1</parameter>" + CALL_CLOSE, ErrorCode.MISSING_TAG),
        ("qwen3_coder", CALL_OPEN + "f(x=1)" + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        ("qwen3_coder", CALL_OPEN + "<function=f>junk</function>" + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        ("qwen3_coder", CALL_OPEN + "<function=f><parameter=a>1</parameter><parameter=a>2</parameter></function>" + CALL_CLOSE, ErrorCode.MALFORMED_CALL),
        ("openai_json", '{"name": "f", "arguments": {}', ErrorCode.BAD_JSON),
        ("openai_json", '[{"name": "f"}, {"name": "g"}]', ErrorCode.MULTIPLE_ACTIONS),
        ("openai_json", '{"function": "f"}', ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x=1", ErrorCode.BAD_SYNTAX),
        ("pythonic", "f(1)", ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x=open('/etc/passwd'))", ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x={1, 2})", ErrorCode.MALFORMED_CALL),
        ("pythonic", "[f(), g()]", ErrorCode.MULTIPLE_ACTIONS),
        ("pythonic", "f(x=" + "[" * 5000 + "]" * 5000 + ")", ErrorCode.BAD_SYNTAX),
        ("mistral", MISTRAL_CALLS + "f" + MISTRAL_ARGS + "{oops", ErrorCode.BAD_JSON),
        ("mistral", MISTRAL_CALLS + " hello", ErrorCode.MALFORMED_CALL),
        ("mistral", MISTRAL_CALLS + '[{"name": "f"}]' + MISTRAL_CALLS + '[{"name": "g"}]', ErrorCode.MULTIPLE_ACTIONS),
    ],
)
def test_format_specific_errors(name: str, text: str, code: ErrorCode) -> None:
    result = get_action_format(name).parse(text)
    assert isinstance(result, ActionError) and result.code == code, result


@pytest.mark.parametrize("name", FORMATS)
def test_instructions_show_the_format_and_the_tools(name: str) -> None:
    from toolgym import Tool

    t = Tool("lookup", "Looks up.", {"type": "object", "properties": {"key": {"type": "string"}}}, fn=str)
    text = get_action_format(name).instructions([t])
    assert '"name": "lookup"' in text and "answer" in text


@pytest.mark.parametrize("name", ["qwen3_coder", "openai_json", "pythonic", "mistral", "auto"])
def test_envs_accept_every_format(name: str) -> None:
    import gymnasium as gym

    env = gym.make("ToolGym/Lookup-v0", action_format=name)
    oracle = env.unwrapped.make_oracle()
    obs, info = env.reset(seed=0)
    oracle.reset()
    while True:
        obs, reward, terminated, truncated, info = env.step(oracle.act(obs, info))
        assert info["error"] is None, info["error_message"]
        if terminated or truncated:
            break
    assert reward == 1.0


# ------------------------------------------------------------------ one interface, tags defined once


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=60))
def test_unwrap_observation_inverts_wrap_observation(name: str, body: str) -> None:
    fmt = get_action_format(name)
    assert fmt.unwrap_observation(fmt.wrap_observation(body)) == body
    notice = "\nThe turn limit (3) is reached without a final answer; the episode is over."
    assert fmt.unwrap_observation(fmt.wrap_observation(body) + notice) == body + notice


@pytest.mark.parametrize("name", FORMATS)
def test_unwrap_observation_leaves_unwrapped_text_alone(name: str) -> None:
    final = "Correct! The episode is over."
    assert get_action_format(name).unwrap_observation(final) == final


@pytest.mark.parametrize("name", ["hermes", "xml_call", "openai_json", "mistral", "auto"])
def test_an_unparsable_native_call_is_reported_as_bad_json_in_every_json_format(name: str) -> None:
    # The call's arguments are not JSON: the action carries them verbatim in the format's own call
    # syntax, so the env says bad_json (before, the JSON formats got hermes tags: a final answer).
    fmt = get_action_format(name)
    action = action_from_openai_tool_call({"function": {"name": "search", "arguments": "{query"}}, fmt)
    parsed = fmt.parse(action)
    assert isinstance(parsed, ActionError) and parsed.code == ErrorCode.BAD_JSON, (name, action, parsed)


def test_the_tag_strings_are_the_hermes_wire_format() -> None:
    # The one place the tests spell the wire strings: everything else uses these names.
    assert (CALL_OPEN, CALL_CLOSE) == ("<tool_call>", "</tool_call>")
    assert (ANSWER_OPEN, ANSWER_CLOSE) == ("<answer>", "</answer>")
    assert (RESPONSE_OPEN, RESPONSE_CLOSE) == ("<tool_response>", "</tool_response>")
    assert (MISTRAL_CALLS, MISTRAL_ARGS) == ("[TOOL_CALLS]", "[ARGS]")
    assert (MISTRAL_RESULTS_OPEN, MISTRAL_RESULTS_CLOSE) == ("[TOOL_RESULTS]", "[/TOOL_RESULTS]")
    hermes = get_action_format("hermes")
    assert (hermes.call_open, hermes.answer_open, hermes.response_open) == (CALL_OPEN, ANSWER_OPEN, RESPONSE_OPEN)
    assert hermes.render(FinalAnswer("x")) == f"{ANSWER_OPEN}x{ANSWER_CLOSE}"
    assert hermes.wrap_observation("x") == f"{RESPONSE_OPEN}\nx\n{RESPONSE_CLOSE}"


def test_the_old_import_path_is_the_same_objects() -> None:
    from toolgym.core import actions, formats

    for name in actions.__all__:
        assert getattr(actions, name) is getattr(formats, name), name

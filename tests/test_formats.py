"""Every built-in tool-call format: round trips over generated calls, detection, errors."""

from __future__ import annotations

import keyword
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym import FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ActionError, ErrorCode

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
    for name in FORMATS:
        fmt = get_action_format(name)
        assert fmt.parse(fmt.render(call)) == call, name


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
        ('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', ToolCall("f", {"x": 1})),
        ("<tool_call>\n<function=f>\n<parameter=x>\n1\n</parameter>\n</function>\n</tool_call>", ToolCall("f", {"x": 1})),
        ('{"name": "f", "arguments": "{\\"x\\": 1}"}', ToolCall("f", {"x": 1})),
        ('[{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]', ToolCall("f", {"x": 1})),
        ("[f(x=1)]", ToolCall("f", {"x": 1})),
        ("f(x=(1, 2))", ToolCall("f", {"x": [1, 2]})),
        ('[TOOL_CALLS][{"name": "f", "arguments": {"x": 1}}]', ToolCall("f", {"x": 1})),
        ('[TOOL_CALLS]f[ARGS]{"x": 1}', ToolCall("f", {"x": 1})),
        ("<answer>42</answer>", FinalAnswer("42")),
        ("The answer is 42.", FinalAnswer("The answer is 42.")),
    ],
)
def test_auto_detects_each_format(text: str, expected: object) -> None:
    assert get_action_format("auto").parse(text) == expected


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("qwen3_coder", "<tool_call><function=f><parameter=x>1</parameter></tool_call>", ErrorCode.MISSING_TAG),
        ("qwen3_coder", "<tool_call>f(x=1)</tool_call>", ErrorCode.MALFORMED_CALL),
        ("qwen3_coder", "<tool_call><function=f>junk</function></tool_call>", ErrorCode.MALFORMED_CALL),
        ("qwen3_coder", "<tool_call><function=f><parameter=a>1</parameter><parameter=a>2</parameter></function></tool_call>", ErrorCode.MALFORMED_CALL),
        ("openai_json", '{"name": "f", "arguments": {}', ErrorCode.BAD_JSON),
        ("openai_json", '[{"name": "f"}, {"name": "g"}]', ErrorCode.MULTIPLE_ACTIONS),
        ("openai_json", '{"function": "f"}', ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x=1", ErrorCode.BAD_SYNTAX),
        ("pythonic", "f(1)", ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x=open('/etc/passwd'))", ErrorCode.MALFORMED_CALL),
        ("pythonic", "f(x={1, 2})", ErrorCode.MALFORMED_CALL),
        ("pythonic", "[f(), g()]", ErrorCode.MULTIPLE_ACTIONS),
        ("pythonic", "f(x=" + "[" * 5000 + "]" * 5000 + ")", ErrorCode.BAD_SYNTAX),
        ("mistral", "[TOOL_CALLS]f[ARGS]{oops", ErrorCode.BAD_JSON),
        ("mistral", "[TOOL_CALLS] hello", ErrorCode.MALFORMED_CALL),
        ("mistral", '[TOOL_CALLS][{"name": "f"}][TOOL_CALLS][{"name": "g"}]', ErrorCode.MULTIPLE_ACTIONS),
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

"""Tools: schema checks, validation messages, OpenAI export."""

from __future__ import annotations

import pickle

import pytest

from toolgym import ConfigError, Tool, tool
from toolgym.core.errors import ErrorCode

SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}, "k": {"type": "integer", "minimum": 1}},
    "required": ["query"],
    "additionalProperties": False,
}


def make() -> Tool:
    return Tool("search", "Search.", SCHEMA, fn=lambda query, k=5: f"{query}:{k}")


def test_valid_arguments_pass_and_the_tool_runs() -> None:
    t = make()
    assert t.validate({"query": "x", "k": 2}) is None
    assert t(query="x", k=2) == "x:2"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, "must contain ['query']"),
        ({"query": 3}, "arguments.query must be string"),
        ({"query": ""}, "arguments.query must be longer than or equal to 1"),
        ({"query": "x", "k": 0}, "arguments.k must be bigger than or equal to 1"),
        ({"query": "x", "extra": 1}, "must not contain {'extra'}"),
        ([], "arguments must be object"),
    ],
)
def test_schema_violations_name_the_field_and_the_rule(arguments: object, fragment: str) -> None:
    error = make().validate(arguments)
    assert error is not None and error.code is ErrorCode.SCHEMA_VIOLATION
    assert fragment in error.message
    assert "search(query: string, k?: integer)" in error.message


def test_invalid_schema_is_rejected_at_construction() -> None:
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        Tool("t", "d", {"type": "object", "properties": {"a": {"type": "strng"}}}, fn=str)
    with pytest.raises(ConfigError, match='"type": "object"'):
        Tool("t", "d", {"type": "string"}, fn=str)
    with pytest.raises(ConfigError, match="Tool name"):
        Tool("has space", "d", SCHEMA, fn=str)


def test_openai_export() -> None:
    exported = tool("f", "Does f.", SCHEMA, strict=True)(lambda query: query).to_openai()
    assert exported == {
        "type": "function",
        "function": {"name": "f", "description": "Does f.", "parameters": SCHEMA, "strict": True},
    }
    exported["function"]["parameters"]["type"] = "changed"
    assert make().parameters["type"] == "object"  # the export is a copy


def test_tool_pickles_with_a_working_validator() -> None:
    clone = pickle.loads(pickle.dumps(Tool("t", "d", SCHEMA, fn=str)))
    assert clone.validate({"query": "q"}) is None and clone.validate({}) is not None


def test_validators_are_compiled_once_per_schema() -> None:
    """Every env instance builds its tools anew; an identical schema reuses the compiled validator
    (checking and compiling cost milliseconds per tool), a different one gets its own."""
    first = make()
    second = Tool("find", "Find.", {**SCHEMA}, fn=lambda query, k=5: query)
    assert second._validate is first._validate
    other = Tool("search", "Search.", {**SCHEMA, "required": []}, fn=lambda query="", k=5: query)
    assert other._validate is not first._validate
    assert other.validate({}) is None and first.validate({}) is not None


def test_a_cached_validator_is_not_changed_by_the_callers_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    made = Tool("count", "Count.", schema, fn=lambda n: str(n))
    schema["properties"]["n"]["type"] = "string"  # the caller's dict, mutated afterwards
    again = Tool("count", "Count.", {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
                 fn=lambda n: str(n))
    assert again._validate is made._validate
    assert made.validate({"n": 3}) is None and made.validate({"n": "3"}) is not None


def test_an_invalid_schema_is_rejected_every_time() -> None:
    bad = {"type": "object", "properties": {"x": {"type": "nope"}}}
    for _ in range(2):
        with pytest.raises(ConfigError, match="parameters is not a valid JSON Schema"):
            Tool("bad", "Bad.", bad, fn=lambda x: x)


def test_a_schema_that_is_not_plain_json_is_rejected() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "x-note": object()}
    with pytest.raises(ConfigError, match="parameters must be plain JSON"):
        Tool("odd", "Odd.", schema, fn=lambda x: str(x))

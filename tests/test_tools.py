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

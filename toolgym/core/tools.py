"""Tools: a name, a description, a JSON Schema for the arguments, and a callable.

A :class:`Tool` validates its arguments against its JSON Schema before it runs. The schema is
checked against the JSON Schema meta-schema (``jsonschema``) and compiled into a fast validator
(``fastjsonschema``) once per process and schema: every env instance builds its tools anew, and
the check and compilation cost milliseconds while the cache lookup costs microseconds, so a second
``gym.make`` of an env reuses its tools' validators. Validation then costs microseconds per call.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import fastjsonschema
import jsonschema

from toolgym.core.errors import ActionError, ConfigError, ErrorCode

ToolFn = Callable[..., str]
"""A tool implementation: called with the validated arguments as keywords, returns text.

It reports agent-facing failures by raising :class:`toolgym.core.errors.ToolError`.
"""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

Validator = Callable[[Any], Any]
"""A compiled ``fastjsonschema`` validator: returns the data or raises ``JsonSchemaValueException``."""


@lru_cache(maxsize=1024)
def _validator_for(schema_json: str) -> Validator:
    """Check and compile the schema serialised as ``schema_json`` (key order kept, so only an
    identical schema shares a validator). Raises ``jsonschema.SchemaError`` (not cached)."""
    schema = json.loads(schema_json)
    jsonschema.Draft202012Validator.check_schema(schema)
    return fastjsonschema.compile(schema)


def compiled_validator(schema: dict[str, Any]) -> Validator:
    """The checked, compiled validator of ``schema``, cached per process by the schema's JSON
    text.

    Raises:
        TypeError | ValueError: if ``schema`` is not plain JSON (e.g. holds other objects or NaN).
        jsonschema.SchemaError: if ``schema`` is not a valid JSON Schema (draft 2020-12).
        fastjsonschema.JsonSchemaDefinitionException: if ``fastjsonschema`` cannot compile it.
    """
    return _validator_for(json.dumps(schema, allow_nan=False))


@dataclass
class Tool:
    """A callable tool with a JSON-Schema-described interface.

    Attributes:
        name: Identifier the agent uses to call the tool (``[A-Za-z_][A-Za-z0-9_.-]*``, ≤ 64 chars).
        description: What the tool does, shown to the agent.
        parameters: JSON Schema (draft 2020-12) of the arguments object. Must have
            ``"type": "object"``.
        fn: The implementation, called as ``fn(**arguments)`` after validation.
        strict: Whether the schema is meant for OpenAI strict mode (exported as ``"strict": true``).

    Raises:
        ConfigError: if the name is not a valid identifier or the schema is not a valid JSON
            Schema for an object.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFn = field(repr=False)
    strict: bool = False
    _validate: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(
                f"Tool name {self.name!r} is invalid: expected letters, digits, '_', '.', '-' "
                "starting with a letter or '_', at most 64 characters."
            )
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            raise ConfigError(
                f"Tool {self.name!r}: parameters must be a JSON Schema with "
                f'"type": "object", got {self.parameters!r}.'
            )
        self.parameters = copy.deepcopy(dict(self.parameters))
        try:
            self._validate = compiled_validator(self.parameters)
        except jsonschema.SchemaError as exc:
            raise ConfigError(
                f"Tool {self.name!r}: parameters is not a valid JSON Schema: {exc.message}"
            ) from exc
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise ConfigError(f"Tool {self.name!r}: parameters cannot be compiled: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"Tool {self.name!r}: parameters must be plain JSON (dicts, lists, strings, "
                f"finite numbers, booleans, null): {exc}"
            ) from exc

    def validate(self, arguments: Any) -> ActionError | None:
        """Check ``arguments`` against the schema.

        Returns:
            ``None`` if valid, else an :class:`ActionError` with code ``schema_violation`` whose
            message names the offending field, the rule it broke, and the expected schema.
        """
        try:
            self._validate(arguments)
        except fastjsonschema.JsonSchemaValueException as exc:
            where = exc.message.replace("data", "arguments", 1)
            return ActionError(
                ErrorCode.SCHEMA_VIOLATION,
                f"Invalid arguments for tool {self.name!r}: {where}. "
                f"Expected arguments matching: {self.signature()}",
            )
        except Exception as exc:  # noqa: BLE001 - a validator bug must not crash the env
            return ActionError(
                ErrorCode.SCHEMA_VIOLATION,
                f"Invalid arguments for tool {self.name!r} ({type(exc).__name__}). "
                f"Expected arguments matching: {self.signature()}",
            )
        return None

    def signature(self) -> str:
        """A compact human-readable signature, e.g. ``search(query: string, k?: integer)``."""
        props: dict[str, Any] = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", []))
        parts = []
        for key, spec in props.items():
            typ = spec.get("type", "any") if isinstance(spec, Mapping) else "any"
            if isinstance(typ, list):
                typ = "|".join(typ)
            parts.append(f"{key}{'' if key in required else '?'}: {typ}")
        return f"{self.name}({', '.join(parts)})"

    def to_openai(self) -> dict[str, Any]:
        """Export as an OpenAI function-calling tool: ``{"type": "function", "function": {...}}``."""
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def __getstate__(self) -> dict[str, Any]:
        # The compiled validator is generated code and cannot be pickled: rebuild it on load.
        state = self.__dict__.copy()
        del state["_validate"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._validate = compiled_validator(self.parameters)

    def __call__(self, **arguments: Any) -> str:
        """Run the tool on already-validated arguments."""
        return self.fn(**arguments)


def tool(
    name: str, description: str, parameters: dict[str, Any], *, strict: bool = False
) -> Callable[[ToolFn], Tool]:
    """Decorator form of :class:`Tool`.

    Example::

        @tool("add", "Add two integers.", {"type": "object",
              "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "required": ["a", "b"], "additionalProperties": False})
        def add(a: int, b: int) -> str:
            return str(a + b)
    """

    def wrap(fn: ToolFn) -> Tool:
        return Tool(name=name, description=description, parameters=parameters, fn=fn, strict=strict)

    return wrap

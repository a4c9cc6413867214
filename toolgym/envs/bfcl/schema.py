"""Conversion of BFCL function documentation to ToolGym tools (JSON Schema, draft 2020-12).

BFCL writes parameter types with Python-flavoured names (``dict``, ``float``, ``tuple``,
``any``...). JSON Schema has its own (``object``, ``number``, ``array``; "any" is the absence of
a ``type``). Everything else is kept as is: descriptions, ``properties``, ``required``,
``items`` and ``enum``. ``default`` is dropped (see ``_KEPT_KEYS``); optional parameters are
the ones not listed in ``required``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolgym.core.errors import ConfigError

TYPE_NAMES: dict[str, str | None] = {
    "dict": "object",
    "object": "object",
    "HashMap": "object",
    "Hashtable": "object",
    "float": "number",
    "double": "number",
    "number": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "Bigint": "integer",
    "string": "string",
    "str": "string",
    "String": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "Boolean": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "ArrayList": "array",
    "Array": "array",
    "Queue": "array",
    "Stack": "array",
    "any": None,
    "Any": None,
    "null": "null",
}
"""BFCL type name -> JSON Schema type (``None``: any value is accepted)."""

_KEPT_KEYS = ("description", "enum", "minimum", "maximum", "minItems", "maxItems")
# ``default`` is dropped: ToolGym's validator (fastjsonschema) fills defaults into the arguments,
# and BFCL's defaults are often placeholders (the string "None" for an optional value) that would
# change the call; an omitted optional argument must reach the API method omitted.


def to_json_schema(node: Mapping[str, Any], where: str = "parameters") -> dict[str, Any]:
    """Convert one BFCL schema node (and its children) to JSON Schema.

    Args:
        node: A BFCL parameter schema, e.g. ``{"type": "dict", "properties": {...}}``.
        where: Path of the node, for error messages.

    Returns:
        The equivalent JSON Schema. ``any`` becomes a schema without ``type``.

    Raises:
        ConfigError: on a type name this converter does not know.
    """
    if not isinstance(node, Mapping):
        raise ConfigError(f"BFCL schema at {where} must be an object, got {node!r}.")
    out: dict[str, Any] = {}
    if "type" in node:
        name = node["type"]
        if not isinstance(name, str) or name not in TYPE_NAMES:
            raise ConfigError(f"Unknown BFCL type {name!r} at {where}; known types: {sorted(TYPE_NAMES)}.")
        json_type = TYPE_NAMES[name]
        if json_type is not None:
            out["type"] = json_type
    for key in _KEPT_KEYS:
        if key in node:
            out[key] = node[key]
    if isinstance(node.get("properties"), Mapping):
        out["properties"] = {
            key: to_json_schema(sub, f"{where}.{key}") for key, sub in node["properties"].items()
        }
    if isinstance(node.get("required"), list):
        out["required"] = list(node["required"])
    if isinstance(node.get("items"), Mapping):
        out["items"] = to_json_schema(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"], f"{where}{{}}")
    return out


def parameters_schema(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a BFCL function's arguments object (always ``"type": "object"``)."""
    params = doc.get("parameters") or {"type": "dict", "properties": {}}
    schema = to_json_schema(params, f"{doc.get('name', '?')}.parameters")
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema

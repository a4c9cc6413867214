"""Random actions for an env: well-formed calls with schema-valid random arguments, final answers,
and malformed actions.

:class:`RandomActionSampler` is a :class:`~toolgym.core.policy.Policy`. The env checker
(:mod:`toolgym.checker`) drives it to exercise an env with many odd and broken calls, and the
random baseline (``baselines.agents.random.RandomAgent``) is this sampler.
"""

from __future__ import annotations

import json
import string
from typing import Any

import numpy as np

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format

_WORDS = ("alpha", "river", "city", "born", "company", "year", "who", "what", "north", "d00001")


def sample_from_schema(schema: dict[str, Any], rng: np.random.Generator, depth: int = 0) -> Any:
    """Draw a random JSON value that (mostly) satisfies ``schema``.

    Handles ``enum``, ``const``, ``type`` (string, integer, number, boolean, array, object, null,
    or a list of types), ``minimum``/``maximum``, ``minLength``/``maxLength``, ``properties`` and
    ``required``; optional properties are included with probability 1/2.
    """
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][int(rng.integers(len(schema["enum"])))]
    typ = schema.get("type", "string")
    if isinstance(typ, list):
        typ = typ[int(rng.integers(len(typ)))]
    if typ == "integer":
        low = int(schema.get("minimum", -5))
        high = int(schema.get("maximum", low + 20))
        return int(rng.integers(low, high + 1))
    if typ == "number":
        low = float(schema.get("minimum", -100.0))
        high = float(schema.get("maximum", low + 200.0))
        return float(rng.uniform(low, high))
    if typ == "boolean":
        return bool(rng.integers(2))
    if typ == "null":
        return None
    if typ == "array":
        items = schema.get("items", {"type": "string"})
        n = int(rng.integers(schema.get("minItems", 0), schema.get("maxItems", 3) + 1))
        return [sample_from_schema(items, rng, depth + 1) for _ in range(n)] if depth < 4 else []
    if typ == "object":
        required = set(schema.get("required", []))
        out = {}
        for key, sub in schema.get("properties", {}).items():
            if key in required or rng.random() < 0.5:
                out[key] = sample_from_schema(sub, rng, depth + 1) if depth < 4 else None
        return out
    n_words = int(rng.integers(1, 4))
    text = " ".join(_WORDS[int(rng.integers(len(_WORDS)))] for _ in range(n_words))
    lo, hi = int(schema.get("minLength", 0)), int(schema.get("maxLength", 1000))
    return text.ljust(lo, "x")[:hi]


class RandomActionSampler:
    """Emits random actions built from the env's tool schemas.

    With probability ``p_valid`` a well-formed call to a random tool with arguments drawn by
    :func:`sample_from_schema`; with probability ``p_answer`` a random final answer; otherwise a
    malformed action (bad JSON, missing tag, unknown tool, wrong argument types, plain text).

    Args:
        p_valid: Probability of a well-formed tool call.
        p_answer: Probability of a (random) final answer.
        seed: Default seed (``reset(seed=...)`` overrides it per episode).
    """

    def __init__(self, p_valid: float = 0.5, p_answer: float = 0.15, seed: int | None = None) -> None:
        if not 0 <= p_valid + p_answer <= 1:
            raise ValueError(f"p_valid + p_answer must be in [0, 1], got {p_valid + p_answer}.")
        self.p_valid, self.p_answer = p_valid, p_answer
        self.rng = np.random.default_rng(seed)
        self.tools: list[dict[str, Any]] = []

    def reset(self, *, seed: int | None = None) -> None:
        """Start a new episode (re-seeding if ``seed`` is given)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.tools = []

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """A random action for this turn."""
        if "tools" in info:
            self.tools = [t["function"] for t in info["tools"]]
        fmt = get_action_format(info.get("action_format", "hermes"))
        roll = self.rng.random()
        if roll < self.p_valid and self.tools:
            fn = self.tools[int(self.rng.integers(len(self.tools)))]
            return fmt.render(ToolCall(fn["name"], sample_from_schema(fn["parameters"], self.rng)))
        if roll < self.p_valid + self.p_answer:
            return fmt.render(FinalAnswer(" ".join(self.rng.choice(_WORDS, size=2))))
        return self._malformed(fmt.render(ToolCall("search", {"query": "x"})))

    def _malformed(self, valid: str) -> str:
        kind = int(self.rng.integers(5))
        if kind == 0:  # bad JSON
            return valid.replace('"arguments"', "arguments", 1)
        if kind == 1:  # missing closing tag
            return valid[: valid.rfind("<")]
        if kind == 2:  # unknown tool
            return valid.replace('"search"', '"no_such_tool"', 1)
        if kind == 3:  # wrong argument type
            return valid.replace(json.dumps("x"), "12345", 1)
        letters = list(string.ascii_lowercase + " ")
        return "".join(self.rng.choice(letters, size=int(self.rng.integers(1, 40))))

"""Scripted oracle for ``ToolGym/Search-v0``: answers multi-hop questions through the tools only.

The oracle reads the question (``info["task_prompt"]``) with the question templates of
:mod:`toolgym.envs.search.templates`, then for each hop searches the current entity's exact name,
opens the hit whose title equals it, and reads the next entity (or the final value) from the
document with the same templates' sentence regexes. It never sees the task's answer or the corpus
files: only observations and ``info``.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from toolgym.core.actions import Action, FinalAnswer, ToolCall, get_action_format
from toolgym.envs.search.templates import RELATIONS, extract_relation, parse_question

SEARCH_K: tuple[int, ...] = (5, 20)
"""``k`` of successive searches for one entity: retry wider when the title is not in the top 5."""
UNKNOWN_ANSWER = "unknown"
"""Answer given when the question cannot be parsed or a hop cannot be resolved."""

_HIT_RE = re.compile(r"^\d+\. \[(?P<id>[^\]]+)\] (?P<title>.+?): ", re.MULTILINE)
_DOC_RE = re.compile(r"\A\[(?P<id>[^\]]+)\] (?P<title>[^\n]*)\n(?P<text>.*)\Z", re.DOTALL)
_RESPONSE_RE = re.compile(r"\A\s*<(?P<tag>[\w.-]+)>\n?(?P<body>.*?)\n?</(?P=tag)>\s*\Z", re.DOTALL)

# What the plan yields (an action) and is sent back (the tool output text).
Plan = Generator[Action, str, None]


def parse_hits(output: str) -> list[tuple[str, str]]:
    """``(doc_id, title)`` of every line ``"{rank}. [{doc_id}] {title}: {snippet}"`` in ``output``."""
    return [(m.group("id"), m.group("title")) for m in _HIT_RE.finditer(output)]


def parse_document(output: str) -> tuple[str, str, str] | None:
    """``(doc_id, title, text)`` from an ``open`` output ``"[{doc_id}] {title}\\n{text}"``."""
    m = _DOC_RE.match(output.strip())
    return (m.group("id"), m.group("title").strip(), m.group("text")) if m else None


class SearchOracle:
    """Solves Search-v0 tasks by searching and opening documents hop by hop.

    Implements the :class:`~toolgym.core.policy.Policy` protocol. Deterministic: ``seed`` is
    accepted for the protocol and ignored.
    """

    def __init__(self) -> None:
        self._plan: Plan | None = None
        self._format_name = "hermes"

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode."""
        self._plan = None

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action text: a ``search``/``open`` call, or the final answer.

        Args:
            observation: The env's observation (the prompt on the first call, then wrapped tool
                output).
            info: The env's info; reads ``task_prompt``, ``action_format`` and ``tool_output``.
        """
        if self._plan is None or info.get("turn", None) == 0:
            self._format_name = str(info.get("action_format") or "hermes")
            question = str(info.get("task_prompt") or observation)
            self._plan = self._solve(question)
            action = next(self._plan)
        else:
            output = info.get("tool_output")
            if output is None:  # an error, or an env that does not report tool_output
                output = _unwrap(observation)
            try:
                action = self._plan.send(str(output))
            except StopIteration:  # pragma: no cover - the plan always ends with an answer
                action = FinalAnswer(UNKNOWN_ANSWER)
        return get_action_format(self._format_name).render(action)

    # ------------------------------------------------------------------------- the plan
    def _solve(self, question: str) -> Plan:
        readings = parse_question(question)
        if not readings:
            # The observation may hold instructions around the question: try line by line.
            for line in reversed(question.splitlines()):
                readings = parse_question(line)
                if readings:
                    break
        if not readings:
            yield FinalAnswer(UNKNOWN_ANSWER)
            return
        chain, name = readings[0]
        subject_type = chain.start_type
        value = name
        for relation in chain.relations:
            text = yield from self._open_entity(value)
            found = extract_relation(value, text, subject_type, relation) if text is not None else None
            if found is None:
                yield FinalAnswer(UNKNOWN_ANSWER)
                return
            value = found
            subject_type = RELATIONS[(subject_type, relation)].object_type
        yield FinalAnswer(value)

    def _open_entity(self, name: str) -> Generator[Action, str, str | None]:
        """Search ``name`` (wider on a miss), open the hit titled exactly ``name``; its text."""
        for k in SEARCH_K:
            output = yield ToolCall("search", {"query": name, "k": k})
            for doc_id, title in parse_hits(output):
                if title == name:
                    doc = parse_document((yield ToolCall("open", {"doc_id": doc_id})))
                    return doc[2] if doc is not None and doc[1] == name else None
        return None


def _unwrap(observation: str) -> str:
    """The body of a ``<tool_response>...</tool_response>``-style wrapper (any tag name)."""
    m = _RESPONSE_RE.match(observation)
    return m.group("body") if m else observation

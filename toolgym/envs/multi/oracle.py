"""Scripted oracle for ``ToolGym/Multi-v0``: looks facts up like the Search-v0 oracle, then
computes the answer with the calculator.

It reads the question with the Multi-v0 templates, finds each fact hop by hop (search the
entity's exact name, open the hit with that title, read the relation with the Search-v0 sentence
templates), calls ``calculator`` on the template's expression and answers its result. It sees only
observations and ``info`` (``task_prompt``, ``tool_output``), never the answer or the data files.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from toolgym.core.actions import Action, FinalAnswer, ToolCall, get_action_format
from toolgym.envs.multi.templates import parse_question
from toolgym.envs.search.oracle import SEARCH_K, parse_document, parse_hits
from toolgym.envs.search.templates import RELATIONS, extract_relation

UNKNOWN_ANSWER = "unknown"
"""Answer given when the question cannot be parsed or a fact cannot be found."""

# What the plan yields (an action) and is sent back (the tool output text).
Plan = Generator[Action, str, None]


class MultiOracle:
    """Implements :class:`~toolgym.core.policy.Policy`; deterministic (``seed`` is ignored).

    Each document is opened once per episode (facts of the same entity are read from the cached
    text).
    """

    def __init__(self) -> None:
        self._plan: Plan | None = None
        self._docs: dict[str, str | None] = {}

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode."""
        self._plan, self._docs = None, {}

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next ``search``/``open``/``calculator`` call, or the final answer."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if self._plan is None or info.get("turn", 0) == 0:
            self._docs = {}
            self._plan = self._solve(str(info.get("task_prompt") or observation))
            action = next(self._plan)
        else:
            try:
                action = self._plan.send(str(info.get("tool_output") or ""))
            except StopIteration:  # pragma: no cover - the plan always ends with an answer
                action = FinalAnswer(UNKNOWN_ANSWER)
        return fmt.render(action)

    def _solve(self, question: str) -> Plan:
        readings = parse_question(question)
        if len(readings) != 1:
            yield FinalAnswer(UNKNOWN_ANSWER)
            return
        template, names = readings[0]
        values: list[str] = []
        for lookup in template.lookups:
            entity, kind = names[lookup.slot], lookup.start_type
            for relation in lookup.relations:
                text = yield from self._document(entity)
                found = extract_relation(entity, text, kind, relation) if text is not None else None
                if found is None:
                    yield FinalAnswer(UNKNOWN_ANSWER)
                    return
                entity, kind = found, RELATIONS[(kind, relation)].object_type
            values.append(entity)
        result = yield ToolCall("calculator", {"expression": template.render_expression(values)})
        yield FinalAnswer(result.strip() or UNKNOWN_ANSWER)

    def _document(self, name: str) -> Generator[Action, str, str | None]:
        """The text of the document titled ``name``: search (wider on a miss), then open."""
        if name not in self._docs:
            self._docs[name] = None
            for k in SEARCH_K:
                output = yield ToolCall("search", {"query": name, "k": k})
                hit = next((doc_id for doc_id, title in parse_hits(output) if title == name), None)
                if hit is not None:
                    doc = parse_document((yield ToolCall("open", {"doc_id": hit})))
                    self._docs[name] = doc[2] if doc is not None and doc[1] == name else None
                    break
        return self._docs[name]

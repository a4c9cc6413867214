"""Scripted oracle for ``ToolGym/SQL-v0``: reads the question's template and parameters, writes
the SQL itself and answers from the ``query`` tool's output."""

from __future__ import annotations

import re
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.sql.templates import QuestionTemplate, parse_question

UNKNOWN_ANSWER = "unknown"
"""Answer given when the question cannot be parsed or the query fails."""
_FOOTER_RE = re.compile(r"^\((?:\d+ rows?|\d+ of \d+ rows shown.*|\d+ rows shown.*)\)$")


def parse_result(output: str) -> list[list[str]] | None:
    """The rows of a ``query`` output (header and footer removed), each a list of cell texts;
    ``None`` if ``output`` is not a result table."""
    lines = output.strip().split("\n")
    if len(lines) < 2 or not _FOOTER_RE.match(lines[-1]):
        return None
    return [line.split(" | ") for line in lines[1:-1]]


class SQLOracle:
    """Lists the tables (as an agent would, to see the schema), sends the question template's
    SQL with the parameters read from the question, then answers the single value or the
    comma-separated list of values.

    It reads only what an agent sees (``info["task_prompt"]``, ``info["tool_output"]``), never
    the answer or the task metadata. Deterministic; implements
    :class:`~toolgym.core.policy.Policy`.
    """

    def __init__(self) -> None:
        self._reading: tuple[QuestionTemplate, dict[str, str]] | None = None
        self._stage = 0

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous question."""
        self._reading, self._stage = None, 0

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """``list_tables``, then ``query``, then the answer."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if info.get("turn", 0) == 0:
            readings = parse_question(str(info.get("task_prompt", observation)))
            self._reading = readings[0] if len(readings) == 1 else None
            self._stage = 0
        if self._reading is None:
            return fmt.render(FinalAnswer(UNKNOWN_ANSWER))
        template, params = self._reading
        self._stage += 1
        if self._stage == 1:
            return fmt.render(ToolCall("list_tables", {}))
        if self._stage == 2:
            return fmt.render(ToolCall("query", {"sql": template.render_sql(params)}))
        rows = parse_result(str(info.get("tool_output") or ""))
        if not rows:
            return fmt.render(FinalAnswer(UNKNOWN_ANSWER))
        values = [row[0] for row in rows]
        return fmt.render(FinalAnswer(", ".join(values) if template.kind == "list" else values[0]))

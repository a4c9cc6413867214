"""Scripted oracle for ``ToolGym/Calc-v0``: reads the problem with the shared templates and
computes every step with the ``calculator`` tool."""

from __future__ import annotations

import re
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.calc.templates import Step, parse_problem

UNKNOWN_ANSWER = "unknown"
"""Answer given when the problem cannot be read or a calculator call fails."""
_RESULT_RE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")


class CalcOracle:
    """Calls ``calculator`` once per step (``previous result`` op ``numbers``), then answers the
    last result.

    It reads only what an agent sees: the problem (``info["task_prompt"]``) and the calculator's
    outputs (``info["tool_output"]``), never the answer. Deterministic; implements
    :class:`~toolgym.core.policy.Policy`.
    """

    def __init__(self) -> None:
        self._steps: list[tuple[Step, str, str]] = []
        self._next = 0

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous problem."""
        self._steps, self._next = [], 0

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next calculator call, or the final answer after the last step."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if info.get("turn", 0) == 0:
            parsed = parse_problem(str(info.get("task_prompt", observation)))
            if parsed is None:
                return fmt.render(FinalAnswer(UNKNOWN_ANSWER))
            start, self._steps = parsed
            self._next = 0
            value = start
        else:
            value = str(info.get("tool_output") or "").strip()
            if not _RESULT_RE.match(value):  # an error or an approximate result: give up
                return fmt.render(FinalAnswer(UNKNOWN_ANSWER))
        if self._next >= len(self._steps):
            return fmt.render(FinalAnswer(value))
        step, x, y = self._steps[self._next]
        self._next += 1
        return fmt.render(ToolCall("calculator", {"expression": step.render_expression(value, x, y)}))

"""Scripted oracle for ``ToolGym/Code-v0``: reads the task's family and parameters from the
prompt, writes the reference solution, tries it, submits it and answers with it."""

from __future__ import annotations

import re
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.code.families import parse_prompt

UNKNOWN_ANSWER = "unknown"
"""Answer given when the prompt cannot be read."""
_EXAMPLE_RE = re.compile(r"^Example: `(?P<call>[^\n]*)` returns `(?P<result>[^\n]*)`\.$", re.M)


class CodeOracle:
    """Three steps: ``run_python`` on the solution plus the prompt's example call (a probe, as an
    agent would check its code), ``submit`` of the solution, then the solution as final answer.

    It reads only what an agent sees (``info["task_prompt"]``), never the hidden tests or the
    task metadata; the solution is rendered from the family templates shared with the data
    generator. Deterministic; implements :class:`~toolgym.core.policy.Policy`.
    """

    def __init__(self) -> None:
        self._solution: str | None = None
        self._probe = ""
        self._stage = 0

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous task."""
        self._solution, self._probe, self._stage = None, "", 0

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """``run_python`` (probe), then ``submit``, then the final answer."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if info.get("turn", 0) == 0:
            prompt = str(info.get("task_prompt", observation))
            reading = parse_prompt(prompt)
            self._stage = 0
            self._solution = None if reading is None else reading[0].source(reading[1])
            example = _EXAMPLE_RE.search(prompt)
            self._probe = "" if example is None else f"\nprint(repr({example.group('call')}))\n"
        if self._solution is None:
            return fmt.render(FinalAnswer(UNKNOWN_ANSWER))
        self._stage += 1
        if self._stage == 1:
            return fmt.render(ToolCall("run_python", {"code": self._solution + self._probe}))
        if self._stage == 2:
            return fmt.render(ToolCall("submit", {"code": self._solution}))
        return fmt.render(FinalAnswer(self._solution))

"""Scripted oracle for ``ToolGym/Lookup-v0``: follows the chain through the ``get`` tool only."""

from __future__ import annotations

import re
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format

_KEY_RE = re.compile(r"\bK\d+\b")


class LookupOracle:
    """Calls ``get`` on the start key, then on each returned key, and answers the first value.

    It reads only what an agent sees: the task prompt (``info["task_prompt"]``) and the tool
    outputs (``info["tool_output"]``), never the hidden table.
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Nothing to forget: the oracle is stateless and deterministic."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action: ``get`` on the newest key, or the answer once a value came back."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if info.get("turn", 0) == 0:
            match = _KEY_RE.search(str(info.get("task_prompt", observation)))
            return fmt.render(ToolCall("get", {"key": match.group(0) if match else "K0"}))
        output = str(info.get("tool_output") or "").strip()
        if _KEY_RE.fullmatch(output):
            return fmt.render(ToolCall("get", {"key": output}))
        return fmt.render(FinalAnswer(output))

"""Oracle for the BFCL multi-turn envs: replays each user turn's ground-truth calls.

Unlike the scripted oracles of ToolGym's generated envs, this one reads the ground truth (BFCL's
``possible_answer`` call sequences, looked up by ``info["task_id"]``): it is a check that the
env executes and grades the ground truth as BFCL does, not a solver. Positional arguments of the
ground-truth calls are named from the API methods' signatures.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.bfcl import data, runtime
from toolgym.envs.bfcl.env import END_TURN

DONE_MESSAGE = "Done."


class BFCLOracle:
    """Calls the ground-truth functions of the current user turn one by one, then ends the turn
    (with ``end_turn``, or ``<answer>`` after the last turn and in ``turn_end="no_call"`` mode)."""

    def __init__(self) -> None:
        self._task_id: str | None = None
        self._user_turn = -1
        self._queue: deque[ToolCall] = deque()
        self._turn_end = "tool"

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode (the oracle is deterministic)."""
        self._task_id = None
        self._user_turn = -1
        self._queue = deque()

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next ground-truth call of this user turn, or ``<answer>`` once they are all made."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if info.get("turn", 0) == 0 or info.get("task_id") != self._task_id:
            self.reset()
            self._task_id = info.get("task_id")
        if info.get("turn", 0) == 0:
            self._turn_end = str(info.get("turn_end", "tool"))
        turn = int(info.get("user_turn", 0))
        if turn != self._user_turn:
            self._user_turn = turn
            self._queue = deque(self._calls(turn))
        if self._queue:
            return fmt.render(self._queue.popleft())
        last = self._task_id is None or turn + 1 >= len(data.task_by_id(self._task_id).answer)
        if self._turn_end == "tool" and not last:
            return fmt.render(ToolCall(END_TURN, {"message": DONE_MESSAGE}))
        return fmt.render(FinalAnswer(DONE_MESSAGE))

    def _calls(self, turn: int) -> list[ToolCall]:
        if self._task_id is None:
            return []
        task = data.task_by_id(self._task_id)
        if turn >= len(task.answer):
            return []
        classes = task.metadata["involved_classes"]
        owners: dict[str, type] = {}
        for name in classes:
            cls = runtime.api_class(name)
            owners.update({m: cls for m in dir(cls) if not m.startswith("_") and callable(getattr(cls, m))})
        calls = []
        for text in task.answer[turn]:
            spec = runtime.parse_call(text)
            method = getattr(owners[spec.name], spec.name) if spec.name in owners else None
            arguments = spec.keyword_arguments(method) if method is not None else dict(spec.kwargs)
            calls.append(ToolCall(spec.name, arguments))
        return calls

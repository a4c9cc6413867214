"""``ToolGym/Lookup-v0``: follow a chain of keys through a per-task key-value table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolgym.core.env import InvalidActionPolicy
from toolgym.core.tasks import Task
from toolgym.core.tools import Tool
from toolgym.envs.turn_end import SingleRequestEnv

UNKNOWN_KEY_OUTPUT = "none"
"""What ``get`` returns for a key that is not in the table (an output, not an error)."""


class LookupEnv(SingleRequestEnv):
    """Pointer chasing through a hidden key-value table.

    ## Description
    Each task has its own small table mapping keys (``K0``..``K23``) to either another key or a
    final value (``D0``..``D9``). The prompt names a start key; following the chain takes 1–3
    ``get`` calls (the task's ``hops``) and the last one returns the value to answer. Tables are
    random per task, so the answer cannot be memorised from the prompt: the tool must be used.
    This is the pilot's toy task in ToolGym form: short episodes, a tiny vocabulary, and a strict
    grammar, cheap enough to train a from-scratch model with RL on a CPU.

    ## Action Space
    Text in the env's action format (default Hermes):
    ``<tool_call>{"name": "get", "arguments": {"key": "K7"}}</tool_call>`` or ``<answer>D3</answer>``.

    ## Observation Space
    Text: first the instructions and the prompt (``"Find the value of key K7."``), then each
    tool output: the next key, the final value, or ``none`` for a key not in the table.

    ## Rewards
    ``success_reward`` (1.0) for the correct final value, 0 otherwise.

    ## Starting State
    A task drawn with the env's RNG from the split (or the one named in ``options``).

    ## Episode End
    Terminates on a final answer and, by default, on the first invalid action (``invalid_action=
    "terminate"``, as in the pilot and BFCL); truncates after ``max_turns`` (default 5) steps.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); under
    the default ``invalid_action="terminate"`` that changes nothing, so pass
    ``invalid_action="continue"`` too for exactly the reference rule (a failing but parseable
    call, such as an unknown tool, then lets the episode go on).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); ``difficulty`` is
    ``"easy"`` (1 hop), ``"medium"`` (2) or ``"hard"`` (3). Defaults differ from the base class:
    ``max_turns=5`` and ``invalid_action="terminate"``.

    ## Version History
    * v0: initial release.
    """

    data_name = "lookup"
    oracle_cls = "toolgym.envs.lookup.oracle:LookupOracle"

    def __init__(
        self,
        *,
        max_turns: int = 5,
        invalid_action: InvalidActionPolicy | Mapping[str, Any] | str | None = "terminate",
        **kwargs: Any,
    ) -> None:
        super().__init__(max_turns=max_turns, invalid_action=invalid_action, **kwargs)

    def make_tools(self) -> list[Tool]:
        """The single tool ``get(key)``."""
        return [
            Tool(
                name="get",
                description=(
                    "Look up a key in the table. Returns the next key to look up, the final "
                    f"value, or '{UNKNOWN_KEY_OUTPUT}' if the key is not in the table."
                ),
                parameters={
                    "type": "object",
                    "properties": {"key": {"type": "string", "description": "A key such as 'K7'."}},
                    "required": ["key"],
                    "additionalProperties": False,
                },
                fn=self._get,
            )
        ]

    def tools_for_task(self, task: Task) -> Sequence[Tool]:
        """Always ``[get]``."""
        return list(self.tools.values())

    def _get(self, key: str) -> str:
        table: Mapping[str, str] = self.task.metadata["table"] if self.task is not None else {}
        return table.get(key.strip(), UNKNOWN_KEY_OUTPUT)

    def check_answer(self, task: Task, answer: str) -> bool:
        """Exact match of the stripped answer with the final value."""
        return answer.strip() == str(task.answer)

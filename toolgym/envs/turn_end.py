"""The ``turn_end`` option of ToolGym's envs: what ends the agent's turn in a conversation.

An episode is a conversation: the user makes a request (several, one per turn, in the BFCL envs)
and the agent serves it with tool calls, one per message, then replies. ``turn_end`` says what
ends the agent's turn, i.e. what hands the conversation back to the user:

* ``"tool"`` (default, ToolGym's contract): a final answer (``<answer>``; BFCL's ``end_turn``
  tool between requests) ends it; an action that does not parse is an error observation, and
  the agent may retry (within the ``invalid_action`` policy).
* ``"no_call"`` (BFCL's inference loop, the reference collapse study's rule): every action
  without a parseable tool call ends it (``<answer>``, plain text, a malformed call). After the
  last request, that is the end of the episode. A parseable call that fails (unknown tool,
  schema violation, tool error) is still an error observation, as in BFCL.

The BFCL envs (several requests) implement the rule in their own step; the generated envs,
whose conversation is a single request, share :class:`SingleRequestEnv`.
"""

from __future__ import annotations

import time
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall
from toolgym.core.env import ToolEnv
from toolgym.core.errors import INVALID_ACTION_CODES, ActionError, ConfigError, ErrorCode

TURN_END_MODES = ("tool", "no_call")
"""The values of ``turn_end``: ``"tool"`` (default) and ``"no_call"`` (see the module docstring)."""

NO_CALL_RULE = "Any message without a tool call ends your turn."
"""The ``"no_call"`` rule in the agent's words (the BFCL envs' instructions state it)."""

NO_ANSWER_OUTCOME = "no final answer was given"
"""Why a single-request conversation ended by a message without a call fails."""


def check_turn_end(turn_end: Any) -> str:
    """Return ``turn_end`` if it is one of :data:`TURN_END_MODES`.

    Raises:
        ConfigError: naming the bad value and the accepted ones.
    """
    if turn_end not in TURN_END_MODES:
        raise ConfigError(f"turn_end={turn_end!r} is not understood; expected one of {TURN_END_MODES}.")
    return str(turn_end)


def ends_turn_without_call(turn_end: str, parsed: ToolCall | FinalAnswer | ActionError) -> bool:
    """Whether ``parsed`` (a parsed action) ends the agent's turn by the ``"no_call"`` rule: in
    that mode, anything but a parseable tool call; in ``"tool"`` mode, never."""
    return turn_end == "no_call" and not isinstance(parsed, ToolCall)


def conversation_over(outcome: str) -> str:
    """The observation line that ends a conversation, e.g. ``The conversation is over (all
    requests served).``"""
    return f"The conversation is over ({outcome})."


class SingleRequestEnv(ToolEnv):
    """A :class:`~toolgym.core.env.ToolEnv` whose conversation is one user request (the task),
    served with tool calls and answered with a final answer; adds the ``turn_end`` kwarg.

    With ``turn_end="tool"`` (default) the env is exactly a ``ToolEnv``. With
    ``turn_end="no_call"`` an action without a parseable tool call ends the agent's turn, and so
    the conversation (there is no later request):

    * a final answer (``<answer>``) is graded as always (``stop_reason="answer"``);
    * any other action without a parseable call (plain text, an empty or over-long action, a
      malformed or unclosed call, two calls in one message) ends the episode unanswered:
      ``terminated=True``, reward 0 plus the ``invalid_action`` penalty, ``info["success"]``
      ``False``, ``info["parsed"]`` ``None``, ``info["error"]`` the parse error's code (counted
      in ``invalid_actions``) and ``info["stop_reason"]`` ``"answer"`` (the conversation ended,
      as in the BFCL envs), or ``"too_many_invalid"`` when that error reaches the policy's
      ``terminate_after`` (then the observation is the usual one of that case). The
      observation is ``Error [<code>]: <message>`` followed by ``The conversation is over (no
      final answer was given).`` Plain text is not taken as an answer: answers need the action
      format's answer markup in both modes;
    * a parseable call behaves as in ``"tool"`` mode, failures included (unknown tool, schema
      violation, tool error: an error observation, and the agent may go on).

    The instructions and the task prompt are the same in both modes (as for ``invalid_action``,
    the mode changes what a mistake costs, not what the agent is asked to do). ``reset``'s
    ``info`` also has ``turn_end``.

    Args:
        turn_end: ``"tool"`` or ``"no_call"`` (see :data:`TURN_END_MODES`).
        **kwargs: Those of :class:`~toolgym.core.env.ToolEnv`.
    """

    def __init__(self, *, turn_end: str = "tool", **kwargs: Any) -> None:
        self.turn_end = check_turn_end(turn_end)
        super().__init__(**kwargs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode; ``info`` also has ``turn_end``."""
        observation, info = super().reset(seed=seed, options=options)
        info["turn_end"] = self.turn_end
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """As :meth:`ToolEnv.step`, except that with ``turn_end="no_call"`` an action without a
        parseable tool call or final answer ends the episode (see the class docstring)."""
        if self.turn_end == "no_call" and self._task is not None and not self._done and self._setup_error is None:
            started = time.perf_counter()
            parsed = self._parse(action)
            if isinstance(parsed, ActionError):
                return self._end_unanswered(action, parsed, started)
        return super().step(action)

    def _end_unanswered(
        self, action: Any, error: ActionError, started: float
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the conversation on an action that is neither a call nor an answer."""
        self._turn += 1
        penalty = 0.0
        stop_reason = "answer"
        if error.code in INVALID_ACTION_CODES:
            self._invalid += 1
            penalty = self.invalid_action.penalty
            limit = self.invalid_action.terminate_after
            if limit is not None and self._invalid >= limit:
                stop_reason = ErrorCode.TOO_MANY_INVALID.value
        if stop_reason == "answer":
            body = f"Error [{error.code}]: {error.message}\n\n{conversation_over(NO_ANSWER_OUTCOME)}"
        else:
            body = self._final_message(error, error, False)
        self._done = True
        now = time.perf_counter()
        info = self._step_info(
            parsed=None, error=error, tool_output=None, success=False, stop_reason=stop_reason,
            reward=penalty, penalty=penalty,
        )  # fmt: skip
        return self._finish_step(action, body, penalty, True, False, info, timing=(started, now, 0.0), output_chars=0)

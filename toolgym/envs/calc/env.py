"""``ToolGym/Calc-v0``: multi-step arithmetic word problems solved with a ``calculator`` tool."""

from __future__ import annotations

from typing import Any

from toolgym.core.tasks import Task
from toolgym.core.tools import Tool
from toolgym.envs.calc.calculator import calculator_tool
from toolgym.envs.calc.grading import REL_TOL, number_matches
from toolgym.envs.turn_end import SingleRequestEnv


class CalcEnv(SingleRequestEnv):
    """Arithmetic word problems with an exact, safe calculator.

    ## Description
    Each task is a short story about one person's running quantity (items, or money in dollars
    and cents): a start value, 2–6 operations, and a question about the final value, e.g.
    "Mia has 24 apples. She buys 3 packs of 6 apples each. She gives away 10 apples. How many
    apples does Mia have now? Answer with a single number." The numbers are random, so the agent
    has to carry out each step, ideally with the ``calculator`` tool: exact rational arithmetic
    over an allow-list of operations (never ``eval``), with clear errors for division by zero,
    overflow, syntax errors, unknown names and over-long expressions.

    ## Action Space
    Text in the env's action format (default Hermes):
    ``<tool_call>{"name": "calculator", "arguments": {"expression": "24 + 3 * 6"}}</tool_call>``
    or ``<answer>32</answer>``.

    ## Observation Space
    Text: first the instructions and the problem, then each calculator result: an exact decimal
    (``"32"``, ``"12.9675"``), or ``"≈..."`` for a rounded value (``1/3``, ``sqrt(2)``), or an
    error message.

    ## Rewards
    ``success_reward`` (1.0) if the final answer holds exactly one number within a relative
    tolerance of 1e-6 of the exact answer (thousands separators, ``$`` and units are allowed),
    0 otherwise; invalid actions add the ``invalid_action`` penalty (0 by default).

    ## Starting State
    A problem drawn with the env's RNG from the split (or the one named in ``options``).

    ## Episode End
    Terminates on a final answer (or on too many invalid actions if the policy says so);
    truncates after ``max_turns`` (default 12) steps.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); ``difficulty`` is
    ``"easy"`` (2 steps, small integers), ``"medium"`` (3–4 steps with products, multiples and exact
    divisions) or ``"hard"`` (4–6 steps with cents, percentages and parentheses). Default
    ``max_turns=12``.

    ## Version History
    * v0: initial release.
    """

    data_name = "calc"
    oracle_cls = "toolgym.envs.calc.oracle:CalcOracle"

    def __init__(self, *, max_turns: int = 12, **kwargs: Any) -> None:
        super().__init__(max_turns=max_turns, **kwargs)

    def make_tools(self) -> list[Tool]:
        """The single tool ``calculator(expression)``."""
        return [calculator_tool()]

    def check_answer(self, task: Task, answer: str) -> bool:
        """Exactly one number in ``answer``, within relative tolerance 1e-6 of ``task.answer``."""
        return number_matches(answer, str(task.answer), rel_tol=REL_TOL)

"""``ToolGym/Multi-v0``: find facts with ``search``/``open``, then compute with the ``calculator``."""

from __future__ import annotations

from typing import Any

from toolgym.core.tasks import Task
from toolgym.core.tools import Tool
from toolgym.envs.calc.calculator import calculator_tool
from toolgym.envs.calc.grading import REL_TOL, number_matches
from toolgym.envs.search.env import SearchEnv


class MultiEnv(SearchEnv):
    """Questions that need two tool families: knowledge-base search and arithmetic.

    ## Description
    Each task asks for a number computed from facts of the Search-v0 fictional knowledge base,
    e.g. "How old was the founder of Ovrafaex Labs when the company was founded?": find the
    company's founding year and its founder, then the founder's birth year (``search`` and
    ``open``, exactly as in ``ToolGym/Search-v0``, over the same corpus), then subtract (the
    ``calculator`` of ``ToolGym/Calc-v0``). Questions combine 2–3 facts, some of them reached
    through chains of up to 4 relations.

    ## Action Space
    Text in the env's action format (default Hermes): a call of ``search(query, k=5)``,
    ``open(doc_id)`` or ``calculator(expression)``, or a final answer ``<answer>...</answer>``.

    ## Observation Space
    Text: first the instructions and the question, then each tool's output (as in Search-v0 and
    Calc-v0).

    ## Rewards
    ``success_reward`` (1.0) if the final answer holds exactly one number within a relative
    tolerance of 1e-6 of the answer, 0 otherwise; invalid actions add the ``invalid_action``
    penalty (0 by default).

    ## Starting State
    A question drawn with the env's RNG from the split (or the one named in ``options``).

    ## Episode End
    Terminates on a final answer (or on too many invalid actions if the policy says so);
    truncates after ``max_turns`` (default 20) steps.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); ``difficulty`` is
    ``"easy"`` (two facts of two entities), ``"medium"`` (a direct and a 2-hop fact of one entity)
    or ``"hard"`` (2-hop facts of two entities, three entities, or a 4-hop chain). Default
    ``max_turns=20``.

    ## Version History
    * v0: initial release.
    """

    data_name = "multi"
    oracle_cls = "toolgym.envs.multi.oracle:MultiOracle"

    def __init__(self, *, max_turns: int = 20, **kwargs: Any) -> None:
        super().__init__(max_turns=max_turns, **kwargs)

    def make_tools(self) -> list[Tool]:
        """Search-v0's ``search`` and ``open``, and Calc-v0's ``calculator``."""
        return [*super().make_tools(), calculator_tool()]

    def check_answer(self, task: Task, answer: str) -> bool:
        """Exactly one number in ``answer``, within relative tolerance 1e-6 of ``task.answer``."""
        return number_matches(answer, str(task.answer), rel_tol=REL_TOL)
